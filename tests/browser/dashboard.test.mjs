// The /dashboard page in headless Chromium against a running callrecords server (see run.sh):
// it loads without console errors or failed requests, its charts show exactly what the
// /analytics API answers for the same query, filters change both, the drill-down lists the
// calls and streams behind a bar, and the page fits a phone's width.
//
// Env: CALLRECORDS_URL (required), CALLRECORDS_SCREENSHOTS (directory, optional), CHROMIUM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const BASE = (process.env.CALLRECORDS_URL || '').replace(/\/+$/, '');
const SHOTS = process.env.CALLRECORDS_SCREENSHOTS || '';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const DESKTOP = { width: 1366, height: 768, deviceScaleFactor: 1 };
const PHONE = { width: 390, height: 844, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const CHARTS = [
  'qualityOverTime', 'poorDueTo', 'insideOutside', 'callType', 'reliability',
  'rateMyCall', 'worstSubnets', 'worstBuildings', 'clientVersions',
];
const CONDITIONS = ['jitter', 'packetLoss', 'degradation', 'roundTrip', 'concealedRatio', 'frameLoss', 'frameRate', 'postFecPacketLoss'];
const DAY = 86400000;
const T = { timeout: 90_000 };

let browser;
let page;
const problems = { console: [], pageErrors: [], failedRequests: [] };

// ---------------------------------------------------------------- helpers

// The page's default range: the last 30 whole UTC days, today included.
function defaultRange(days = 30) {
  const now = new Date();
  const end = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) + DAY;
  const start = end - days * DAY;
  const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const list = [];
  for (let t = start; t < end; t += DAY) list.push(new Date(t).toISOString().slice(0, 10));
  return { from: iso(start), to: iso(end), days: list };
}

const qs = (params) =>
  Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');

function aggregateUrl(endpoint, range, { groupBy = '', filter = [] } = {}) {
  return `/analytics/${endpoint}?${qs({ fromDateTime: range.from, toDateTime: range.to, groupBy, filter: filter.join(' and ') })}`;
}

function worstUrl(by, range, mediaType, filter = []) {
  return `/analytics/worst?${qs({ by, fromDateTime: range.from, toDateTime: range.to, mediaType, minStreams: 10, top: 10, filter: filter.join(' and ') })}`;
}

// The same query, whatever the order of parameters or of the filter's clauses.
function normalizedQuery(url) {
  const u = new URL(url, 'http://x');
  const entries = [...u.searchParams.entries()].map(([k, v]) =>
    k === 'filter' ? [k, v.split(' and ').map((c) => c.trim()).sort().join(' and ')] : [k, v]
  );
  return { path: u.pathname, params: Object.fromEntries(entries.sort(([a], [b]) => a.localeCompare(b))) };
}
function assertSameQuery(actual, expected, what) {
  assert.deepEqual(normalizedQuery(actual), normalizedQuery(expected), `${what}: the page asked ${actual}, expected ${expected}`);
}

async function apiGet(url) {
  const res = await fetch(BASE + url, { headers: { Accept: 'application/json' } });
  const text = await res.text();
  assert.equal(res.status, 200, `GET ${url} answered ${res.status}: ${text.slice(0, 300)}`);
  const body = JSON.parse(text);
  assert.ok(Array.isArray(body.value), `GET ${url}: no value array`);
  return body.value;
}

async function ready() {
  const result = await page.evaluate(() => window.dashboard.ready);
  assert.ok(result && result.ok, `dashboard.ready reported errors: ${JSON.stringify(result)}`);
  const states = await page.$$eval('canvas[id^="chart-"]', (cs) => cs.map((c) => [c.id, c.dataset.ready]));
  for (const [id, s] of states) assert.equal(s, 'true', `${id} data-ready=${s}`);
}

async function chart(name) {
  return page.evaluate((n) => {
    const c = window.dashboard.charts[n];
    return {
      labels: c.data.labels.slice(),
      data: c.data.datasets.map((d) => d.data.slice()),
      datasetLabels: c.data.datasets.map((d) => d.label),
      groups: window.dashboard.groups[n] || [],
      query: window.dashboard.lastQuery[n],
    };
  }, name);
}

// Numbers: exactly the API's (the page keeps them as they come), allowing float noise.
function close(actual, expected, what) {
  if (expected === null || expected === undefined) {
    assert.ok(actual === null || actual === undefined, `${what}: expected no value, chart has ${actual}`);
    return;
  }
  assert.equal(typeof actual, 'number', `${what}: chart has ${actual}, API ${expected}`);
  assert.ok(Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${what}: chart ${actual}, API ${expected}`);
}

async function select(id, value) {
  await page.select(`#${id}`, value); // fires change, which starts a reload synchronously
  await ready();
}

// A fresh load of /dashboard with its default filters (the URL without the page's #state).
async function freshLoad() {
  const res = await page.goto(`${BASE}/dashboard`, { waitUntil: 'load' });
  assert.equal(res.status(), 200, 'GET /dashboard');
  await page.waitForFunction(() => window.dashboard && Object.keys(window.dashboard.charts).length > 0);
  await ready();
  return res;
}

async function screenshot(name, opts = {}) {
  if (!SHOTS) return;
  await mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name), ...opts });
}

// Checkers: each compares one chart with the API's answer to the query the test builds itself.

async function checkQualityOverTime(range, mediaType, filter) {
  const c = await chart('qualityOverTime');
  const expectedUrl = aggregateUrl('quality', range, { groupBy: 'day', filter });
  assertSameQuery(c.query, expectedUrl, 'qualityOverTime');
  const rows = (await apiGet(expectedUrl)).filter((r) => r.mediaType === mediaType);
  assert.deepEqual(c.labels, range.days, 'qualityOverTime: one label per day of the range');
  assert.deepEqual(c.datasetLabels, ['Good', 'Poor', 'Unclassified', 'Poor %']);
  const byDay = new Map(rows.map((r) => [r.day, r]));
  for (const r of rows) assert.ok(range.days.includes(r.day), `API day ${r.day} outside the range`);
  range.days.forEach((day, i) => {
    const r = byDay.get(day);
    close(c.data[0][i], r ? r.goodStreams : 0, `good streams ${day}`);
    close(c.data[1][i], r ? r.poorStreams : 0, `poor streams ${day}`);
    close(c.data[2][i], r ? r.unclassifiedStreams : 0, `unclassified streams ${day}`);
    close(c.data[3][i], r ? r.poorRatio : null, `poor ratio ${day}`);
  });
  return rows;
}

async function checkPoorDueTo(range, mediaType, filter) {
  const c = await chart('poorDueTo');
  const expectedUrl = aggregateUrl('quality', range, { filter });
  assertSameQuery(c.query, expectedUrl, 'poorDueTo');
  const rows = (await apiGet(expectedUrl)).filter((r) => r.mediaType === mediaType);
  assert.ok(rows.length <= 1, 'one row for one media type');
  assert.deepEqual(c.groups.map((g) => g.condition).sort(), [...CONDITIONS].sort());
  c.groups.forEach((g, i) => close(c.data[0][i], rows[0] ? rows[0].poorDueTo[g.condition] : 0, `poorDueTo ${g.condition}`));
  return rows[0];
}

async function checkKeyed(name, range, dims, filter, mediaType, { top = 0 } = {}) {
  const c = await chart(name);
  const expectedUrl = aggregateUrl('quality', range, { groupBy: dims.join(','), filter });
  assertSameQuery(c.query, expectedUrl, name);
  let rows = (await apiGet(expectedUrl)).filter((r) => r.mediaType === mediaType);
  if (top) rows = rows.map((r, i) => [r, i]).sort((a, b) => b[0].streams - a[0].streams || a[1] - b[1]).map((p) => p[0]).slice(0, top);
  assert.equal(c.labels.length, rows.length, `${name}: one bar per API group`);
  rows.forEach((r, i) => {
    for (const d of dims) assert.equal(c.groups[i].keys[d], r[d] === undefined ? null : r[d], `${name}[${i}].${d}`);
    close(c.data[0][i], r.poorRatio, `${name} poor ratio of ${dims.map((d) => r[d]).join('/')}`);
  });
  return rows;
}

async function checkSessions(name, range, filter, fields) {
  const c = await chart(name);
  const endpoint = name === 'reliability' ? 'reliability' : 'rateMyCall';
  const expectedUrl = aggregateUrl(endpoint, range, { groupBy: 'day', filter });
  assertSameQuery(c.query, expectedUrl, name);
  const rows = await apiGet(expectedUrl);
  assert.deepEqual(c.labels, range.days, `${name}: one label per day`);
  const byDay = new Map(rows.map((r) => [r.day, r]));
  range.days.forEach((day, i) => {
    const r = byDay.get(day);
    fields.forEach(([field, empty], d) => close(c.data[d][i], r ? r[field] : empty, `${name} ${field} ${day}`));
  });
  return rows;
}

async function checkWorst(name, by, range, mediaType, filter) {
  const c = await chart(name);
  const expectedUrl = worstUrl(by, range, mediaType, filter);
  assertSameQuery(c.query, expectedUrl, name);
  const rows = await apiGet(expectedUrl);
  assert.deepEqual(c.groups.map((g) => g.keys[by]), rows.map((r) => r[by]), `${name}: the API's ${by}s, worst first`);
  rows.forEach((r, i) => close(c.data[0][i], r.poorRatio, `${name} ${r[by]}`));
  return rows;
}

// ---------------------------------------------------------------- setup

before(async () => {
  assert.ok(BASE, 'set CALLRECORDS_URL to the server under test (e.g. http://127.0.0.1:8080)');
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run', '--no-default-browser-check'],
  });
  page = await browser.newPage();
  page.setDefaultTimeout(30_000);
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warn' || msg.type() === 'warning') {
      const loc = msg.location();
      problems.console.push(`${msg.type()}: ${msg.text()}${loc && loc.url ? ` (${loc.url}:${loc.lineNumber})` : ''}`);
    }
  });
  page.on('pageerror', (err) => problems.pageErrors.push(String(err && err.stack ? err.stack : err)));
  page.on('requestfailed', (req) => problems.failedRequests.push(`${req.method()} ${req.url()}: ${req.failure() && req.failure().errorText}`));
  page.on('response', (res) => {
    if (res.status() >= 400) problems.failedRequests.push(`${res.request().method()} ${res.url()}: ${res.status()}`);
  });
  await page.setViewport(DESKTOP);
});

after(async () => {
  if (browser) await browser.close();
});

// ---------------------------------------------------------------- tests

test('the dashboard loads and renders every chart', T, async () => {
  const res = await freshLoad();
  assert.match(res.headers()['content-type'] || '', /text\/html/);
  const names = await page.evaluate(() => Object.keys(window.dashboard.charts).sort());
  assert.deepEqual(names, [...CHARTS].sort());
  for (const name of CHARTS) {
    const box = await page.$eval(`#chart-${name}`, (c) => {
      const r = c.getBoundingClientRect();
      return { w: r.width, h: r.height, isChart: !!window.Chart.getChart(c) };
    });
    assert.ok(box.isChart && box.w > 100 && box.h > 100, `#chart-${name} drawn (${JSON.stringify(box)})`);
  }
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(overflow <= DESKTOP.width, `no horizontal overflow at ${DESKTOP.width}px (scrollWidth ${overflow})`);
  await screenshot('dashboard-desktop.png', { fullPage: true });
});

test('quality over time matches the API (audio streams by day)', T, async () => {
  const range = defaultRange();
  const rows = await checkQualityOverTime(range, 'audio', ["mediaType eq 'audio'"]);
  assert.ok(rows.some((r) => r.streams > 0), 'the server has audio streams in the last 30 days');
});

test('poor due to, call type, inside/outside and client versions match the API', T, async () => {
  const range = defaultRange();
  const f = ["mediaType eq 'audio'"];
  const due = await checkPoorDueTo(range, 'audio', f);
  assert.ok(due && due.poorStreams > 0, 'some poor audio streams');
  const types = await checkKeyed('callType', range, ['callType'], f, 'audio');
  assert.ok(types.length >= 1);
  // These two show the 10 groups with the most streams, most first.
  await checkKeyed('insideOutside', range, ['insideOutside', 'wiredWifi'], f, 'audio', { top: 10 });
  await checkKeyed('clientVersions', range, ['secondProductFamily', 'secondVersion'], f, 'audio', { top: 10 });
});

test('reliability and Rate My Call match the API', T, async () => {
  const range = defaultRange();
  const rel = await checkSessions('reliability', range, [], [['setupFailedRatio', null], ['droppedRatio', null], ['sessions', 0]]);
  assert.ok(rel.some((r) => r.sessions > 0), 'some sessions');
  await checkSessions('rateMyCall', range, [], [['averageRating', null], ['poorRatingRatio', null], ['ratings', 0]]);
});

test('worst subnets and buildings match the API', T, async () => {
  const range = defaultRange();
  await checkWorst('worstSubnets', 'subnet', range, 'audio');
  await checkWorst('worstBuildings', 'building', range, 'audio');
});

test('changing filters reloads every chart with the API numbers for those filters', T, async () => {
  await freshLoad();
  const range = defaultRange();
  const audio = await chart('qualityOverTime');

  await select('mediaType', 'video');
  const video = await checkQualityOverTime(range, 'video', ["mediaType eq 'video'"]);
  const videoChart = await chart('qualityOverTime');
  if (video.some((r) => r.streams > 0)) {
    assert.notDeepEqual(videoChart.data.slice(0, 3), audio.data.slice(0, 3), 'video numbers differ from audio');
  }
  await checkPoorDueTo(range, 'video', ["mediaType eq 'video'"]);
  await checkWorst('worstSubnets', 'subnet', range, 'video');

  await select('callType', 'conference');
  const f = ["mediaType eq 'video'", "callType eq 'conference'"];
  await checkQualityOverTime(range, 'video', f);
  await checkPoorDueTo(range, 'video', f);
  const types = await checkKeyed('callType', range, ['callType'], f, 'video');
  assert.ok(types.every((r) => r.callType === 'conference'), 'only conference calls');
  await checkSessions('reliability', range, ["callType eq 'conference'"], [['setupFailedRatio', null], ['droppedRatio', null], ['sessions', 0]]);
  await checkSessions('rateMyCall', range, ["callType eq 'conference'"], [['averageRating', null], ['poorRatingRatio', null], ['ratings', 0]]);
  await checkWorst('worstBuildings', 'building', range, 'video', ["callType eq 'conference'"]);

  // And back.
  await select('callType', '');
  await select('mediaType', 'audio');
  await checkQualityOverTime(range, 'audio', ["mediaType eq 'audio'"]);
});

test('a range with no data shows empty charts without errors', T, async () => {
  await freshLoad();
  await page.evaluate(() => {
    document.querySelector('#from').value = '2001-01-01';
    const to = document.querySelector('#to');
    to.value = '2001-01-07';
    to.dispatchEvent(new Event('change', { bubbles: true }));
  });
  await ready();
  const range = { from: '2001-01-01T00:00:00Z', to: '2001-01-08T00:00:00Z', days: [] };
  for (let t = Date.parse(range.from); t < Date.parse(range.to); t += DAY) range.days.push(new Date(t).toISOString().slice(0, 10));
  await checkQualityOverTime(range, 'audio', ["mediaType eq 'audio'"]);
  const overlay = await page.$eval('#card-qualityOverTime .overlay', (o) => (o.hidden ? '' : o.textContent));
  assert.match(overlay, /No streams in this range/);
  await select('range', '30');
  await checkQualityOverTime(defaultRange(), 'audio', ["mediaType eq 'audio'"]);
});

test('drill-down: a poor bar lists its calls, a call lists its streams', T, async () => {
  await freshLoad();
  const range = defaultRange();
  const c = await chart('qualityOverTime');
  // The day with the most poor audio streams: the tallest red segment.
  let j = 0;
  c.data[1].forEach((v, i) => { if (v > c.data[1][j]) j = i; });
  const dayPoor = c.data[1][j];
  assert.ok(dayPoor > 0, 'a day with poor streams to click');
  const day = c.labels[j];

  const point = await page.evaluate((index) => {
    const ch = window.dashboard.charts.qualityOverTime;
    ch.canvas.scrollIntoView({ block: 'center' });
    const el = ch.getDatasetMeta(1).data[index];
    const p = el.getCenterPoint();
    const r = ch.canvas.getBoundingClientRect();
    return { x: r.left + p.x, y: r.top + p.y };
  }, j);
  await page.mouse.click(point.x, point.y);
  await page.waitForSelector('#drill:not([hidden])');
  await page.evaluate(() => window.dashboard.drillReady);
  await page.waitForSelector('#calls-table[data-ready="true"]');

  const callsUrl = await page.evaluate(() => window.dashboard.lastQuery.calls);
  const expectedUrl = `/analytics/calls?${qs({
    fromDateTime: range.from, toDateTime: range.to,
    filter: `day eq '${day}' and mediaType eq 'audio'`, classification: 'poor', top: 50,
  })}`;
  assertSameQuery(callsUrl, expectedUrl, 'calls');
  const calls = await apiGet(expectedUrl);
  const shown = await page.$$eval('#calls-table tbody tr', (trs) => trs.map((tr) => tr.dataset.callId));
  assert.ok(shown.length > 0, 'the panel lists calls');
  assert.deepEqual(shown, calls.map((x) => x.id), 'the panel lists the API\'s calls in its order');
  assert.ok(calls.length <= 50, 'at most top=50 calls');
  assert.ok(calls.length <= dayPoor, `no more calls (${calls.length}) than poor streams that day (${dayPoor})`);
  for (const call of calls) assert.ok(call.poorStreams >= 1, `call ${call.id} has a poor stream`);
  if (calls.length < 50) {
    const sum = calls.reduce((s, x) => s + x.poorStreams, 0);
    assert.ok(sum >= dayPoor, `the calls hold the day's ${dayPoor} poor streams (they have ${sum})`);
  }

  await page.click('#calls-table tbody tr:first-child button');
  await page.evaluate(() => window.dashboard.streamsReady);
  await page.waitForSelector('#streams-table[data-ready="true"]');
  const streamsUrl = await page.evaluate(() => window.dashboard.lastQuery.streams);
  assert.equal(streamsUrl, `/analytics/calls/${encodeURIComponent(calls[0].id)}/streams`);
  const streams = await apiGet(streamsUrl);
  const rows = await page.$$eval('#streams-table tbody tr', (trs) =>
    trs.map((tr) => ({ classification: tr.dataset.classification, sessionId: tr.dataset.sessionId, segmentId: tr.dataset.segmentId }))
  );
  assert.equal(rows.length, streams.length, 'one row per stream');
  assert.deepEqual(rows, streams.map((s) => ({ classification: s.classification || 'unclassified', sessionId: s.sessionId || '', segmentId: s.segmentId || '' })));
  assert.ok(rows.some((r) => r.classification === 'poor'), 'the call has a poor stream, highlighted');
  const highlighted = await page.$$eval('#streams-table tbody tr.cls-poor .badge.poor', (b) => b.length);
  assert.equal(highlighted, rows.filter((r) => r.classification === 'poor').length);
  await screenshot('dashboard-drilldown.png');

  await page.keyboard.press('Escape');
  await page.waitForSelector('#drill', { hidden: true });
});

test('phone viewport: no horizontal overflow, charts drawn', T, async () => {
  await page.setViewport(PHONE);
  await freshLoad();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= PHONE.width, `scrollWidth ${width} <= ${PHONE.width}`);
  for (const name of CHARTS) {
    const r = await page.$eval(`#chart-${name}`, (c) => {
      const b = c.getBoundingClientRect();
      return { left: b.left, right: b.right, w: b.width, h: b.height };
    });
    assert.ok(r.w > 200 && r.h > 100 && r.left >= 0 && r.right <= PHONE.width, `#chart-${name} fits (${JSON.stringify(r)})`);
  }
  await checkQualityOverTime(defaultRange(), 'audio', ["mediaType eq 'audio'"]);
  await screenshot('dashboard-phone.png', { fullPage: true });
  await page.setViewport(DESKTOP);
});

test('no console errors or warnings, page errors or failed requests', async () => {
  assert.deepEqual(problems.pageErrors, [], 'page errors');
  assert.deepEqual(problems.console, [], 'console errors and warnings');
  assert.deepEqual(problems.failedRequests, [], 'failed requests');
});
