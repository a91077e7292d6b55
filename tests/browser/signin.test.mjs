// The /dashboard page in headless Chromium against a callrecords server that asks for tokens
// (`serve --demo --auth local`, see run.sh): without a token it shows the sign-in panel and no data;
// signing in with the local issuer's form (tenant, client id, secret) loads charts that show what
// the API answers that tenant; signing out clears them; another tenant's app sees none of the demo
// tenant's data; a pasted bearer token works too; a wrong secret shows an error and loads nothing.
//
// Env: CALLRECORDS_URL (required), CHROMIUM,
//      CALLRECORDS_SCREENSHOTS (directory, optional) for signin-panel.png, -done.png, -other-tenant.png,
//      CALLRECORDS_TENANT, CALLRECORDS_CLIENT_ID, CALLRECORDS_CLIENT_SECRET
//        the demo data's tenant and an app of it with the role CallRecords.Read.All,
//      CALLRECORDS_OTHER_TENANT, CALLRECORDS_OTHER_CLIENT_ID, CALLRECORDS_OTHER_CLIENT_SECRET
//        another tenant, with no data, and an app of it with the same role.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const BASE = (process.env.CALLRECORDS_URL || '').replace(/\/+$/, '');
const SHOTS = process.env.CALLRECORDS_SCREENSHOTS || '';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const DEMO = {
  tenant: process.env.CALLRECORDS_TENANT || '',
  clientId: process.env.CALLRECORDS_CLIENT_ID || '',
  secret: process.env.CALLRECORDS_CLIENT_SECRET || '',
};
const OTHER = {
  tenant: process.env.CALLRECORDS_OTHER_TENANT || '',
  clientId: process.env.CALLRECORDS_OTHER_CLIENT_ID || '',
  secret: process.env.CALLRECORDS_OTHER_CLIENT_SECRET || '',
};
const DESKTOP = { width: 1366, height: 768, deviceScaleFactor: 1 };
const CHARTS = [
  'qualityOverTime', 'poorDueTo', 'insideOutside', 'callType', 'reliability',
  'rateMyCall', 'worstSubnets', 'worstBuildings', 'clientVersions',
];
const TOKEN_KEY = 'callrecords.dashboard.token'; // where the page keeps its token (sessionStorage)
const AUDIO = ["mediaType eq 'audio'"];
const DAY = 86400000;
const T = { timeout: 90_000 };

let browser;
let page;
// What each step expects to fail: 401s from /analytics while signed out, the token endpoint's
// refusal of a wrong secret. Anything else that fails is a problem.
let phase = 'start';
const problems = { console: [], pageErrors: [], failedRequests: [] };
const responses = []; // { phase, method, url, status } of every /analytics and token request the page made

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

const tokenUrl = (tenant) => `${BASE}/${encodeURIComponent(tenant)}/oauth2/v2.0/token`;

// The local issuer's client-credentials grant, as the page's form asks it: { status, body }.
async function requestToken(app) {
  const res = await fetch(tokenUrl(app.tenant), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: app.clientId,
      client_secret: app.secret,
      scope: 'https://graph.microsoft.com/.default',
    }),
  });
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

async function token(app) {
  const { status, body } = await requestToken(app);
  assert.equal(status, 200, `token for ${app.clientId} of ${app.tenant}: ${status} ${JSON.stringify(body).slice(0, 300)}`);
  assert.equal(typeof body.access_token, 'string', 'an access_token');
  assert.ok(body.access_token.length > 20, 'a non-trivial access_token');
  return body.access_token;
}

async function apiStatus(url, bearer) {
  const headers = { Accept: 'application/json' };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const res = await fetch(BASE + url, { headers });
  return { status: res.status, text: await res.text() };
}

async function apiGet(url, bearer) {
  const { status, text } = await apiStatus(url, bearer);
  assert.equal(status, 200, `GET ${url} answered ${status}: ${text.slice(0, 300)}`);
  const body = JSON.parse(text);
  assert.ok(Array.isArray(body.value), `GET ${url}: no value array`);
  return body.value;
}

// Waits for the page's current load to settle and checks it loaded every chart.
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

const fmtInt = (n) => new Intl.NumberFormat('en-US').format(n);

// The whole page. Not with fullPage: that resizes the viewport for the capture, Chart.js clears its
// canvases on the resize and draws them again a frame later, after the capture. So: resize, let the
// charts redraw, capture, resize back.
async function screenshot(name) {
  if (!SHOTS) return;
  await mkdir(SHOTS, { recursive: true });
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.setViewport({ ...DESKTOP, height: Math.max(DESKTOP.height, height) });
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 250)))));
  await page.screenshot({ path: path.join(SHOTS, name) });
  await page.setViewport(DESKTOP);
}

const visible = (sel) => page.$eval(sel, (e) => !e.hidden && e.getClientRects().length > 0);
const text = (sel) => page.$eval(sel, (e) => e.textContent.trim());
const storedToken = () => page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY);

async function fill(sel, value) {
  await page.$eval(sel, (e) => { e.value = ''; });
  await page.type(sel, value);
}

// Fills in and sends the local issuer's form; resolves once the page has the token (or an error).
async function issuerSignIn(app) {
  await fill('#issuer-tenant', app.tenant);
  await fill('#issuer-client', app.clientId);
  await fill('#issuer-secret', app.secret);
  await page.click('#issuer-form button[type="submit"]');
}

async function waitSignedIn() {
  await page.waitForSelector('#signin', { hidden: true });
  await page.waitForSelector('#signout', { visible: true });
  assert.ok(await storedToken(), 'the page keeps a token in sessionStorage');
}

async function signOut() {
  assert.ok(await visible('#signout'), 'a Sign out button while signed in');
  await page.click('#signout');
  await page.waitForSelector('#signin', { visible: true });
  assert.equal(await storedToken(), null, 'signing out forgets the token');
  assert.equal(await visible('#signout'), false, 'no Sign out button while signed out');
}

// Signed out: every chart is empty and says to sign in, the totals show nothing.
async function assertNoData(what) {
  const result = await page.evaluate(() => window.dashboard.ready);
  assert.ok(result && !result.ok, `${what}: the page reports that it loaded nothing (${JSON.stringify(result)})`);
  for (const name of CHARTS) {
    const c = await chart(name);
    for (const [i, d] of c.data.entries()) assert.deepEqual(d, [], `${what}: ${name} dataset ${i} holds no data`);
    const s = await page.$eval(`#chart-${name}`, (e) => e.dataset.ready);
    assert.notEqual(s, 'true', `${what}: #chart-${name} is not shown as loaded`);
    assert.match(await text(`#card-${name} .overlay`), /Sign in/, `${what}: ${name} asks to sign in`);
  }
  for (const kpi of ['streams', 'poor', 'sessions', 'setup', 'dropped', 'rating']) {
    assert.equal(await text(`#kpi-${kpi}`), '–', `${what}: the ${kpi} total shows nothing`);
  }
}

// The quality-over-time chart and the stream and session totals equal the API's answers with `bearer`.
async function assertDemoNumbers(bearer, range) {
  const c = await chart('qualityOverTime');
  const expectedUrl = aggregateUrl('quality', range, { groupBy: 'day', filter: AUDIO });
  assertSameQuery(c.query, expectedUrl, 'qualityOverTime');
  const rows = (await apiGet(expectedUrl, bearer)).filter((r) => r.mediaType === 'audio');
  assert.ok(rows.some((r) => r.streams > 0), 'the demo tenant has audio streams in the last 30 days');
  assert.deepEqual(c.labels, range.days, 'qualityOverTime: one label per day of the range');
  assert.deepEqual(c.datasetLabels, ['Good', 'Poor', 'Unclassified', 'Poor %']);
  const byDay = new Map(rows.map((r) => [r.day, r]));
  range.days.forEach((day, i) => {
    const r = byDay.get(day);
    close(c.data[0][i], r ? r.goodStreams : 0, `good streams ${day}`);
    close(c.data[1][i], r ? r.poorStreams : 0, `poor streams ${day}`);
    close(c.data[2][i], r ? r.unclassifiedStreams : 0, `unclassified streams ${day}`);
    close(c.data[3][i], r ? r.poorRatio : null, `poor ratio ${day}`);
  });

  // The KPI totals: streams (and the poor share) of the range, sessions of the range.
  const totalUrl = aggregateUrl('quality', range, { filter: AUDIO });
  assertSameQuery((await chart('poorDueTo')).query, totalUrl, 'poorDueTo (the stream totals)');
  const total = (await apiGet(totalUrl, bearer)).filter((r) => r.mediaType === 'audio');
  const streams = total.reduce((s, r) => s + r.streams, 0);
  assert.ok(streams > 0, 'some audio streams in all');
  assert.equal(streams, rows.reduce((s, r) => s + r.streams, 0), 'the days add up to the total');
  assert.equal(await text('#kpi-streams'), fmtInt(streams), 'the Streams total');
  const relUrl = aggregateUrl('reliability', range);
  assertSameQuery(await page.evaluate(() => window.dashboard.lastQuery.reliabilityTotals), relUrl, 'reliability totals');
  const rel = await apiGet(relUrl, bearer);
  assert.ok(rel.length === 1 && rel[0].sessions > 0, `one row of sessions: ${JSON.stringify(rel)}`);
  assert.equal(await text('#kpi-sessions'), fmtInt(rel[0].sessions), 'the Sessions total');
  return { streams, sessions: rel[0].sessions };
}

// ---------------------------------------------------------------- setup

function expectedFailure(method, url, status) {
  const u = new URL(url);
  const isToken = method === 'POST' && /^\/[^/]+\/oauth2\/v2\.0\/token$/.test(u.pathname);
  if (phase === 'signed out' && status === 401 && u.pathname.startsWith('/analytics/')) return true;
  if (phase === 'wrong secret' && (status === 400 || status === 401) && isToken) return true;
  return false;
}

before(async () => {
  assert.ok(BASE, 'set CALLRECORDS_URL to the server under test (e.g. http://127.0.0.1:8080)');
  const needed = {
    CALLRECORDS_TENANT: DEMO.tenant, CALLRECORDS_CLIENT_ID: DEMO.clientId, CALLRECORDS_CLIENT_SECRET: DEMO.secret,
    CALLRECORDS_OTHER_TENANT: OTHER.tenant, CALLRECORDS_OTHER_CLIENT_ID: OTHER.clientId, CALLRECORDS_OTHER_CLIENT_SECRET: OTHER.secret,
  };
  for (const [name, value] of Object.entries(needed)) assert.ok(value, `set ${name} (see the header of signin.test.mjs)`);
  assert.notEqual(DEMO.tenant, OTHER.tenant, 'two different tenants');
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
      // The browser logs each 4xx answer as "Failed to load resource"; the response handler judges those.
      const status = /^Failed to load resource: the server responded with a status of (\d+)/.exec(msg.text());
      if (status && loc && loc.url && expectedFailure(/oauth2/.test(loc.url) ? 'POST' : 'GET', loc.url, +status[1])) return;
      problems.console.push(`[${phase}] ${msg.type()}: ${msg.text()}${loc && loc.url ? ` (${loc.url}:${loc.lineNumber})` : ''}`);
    }
  });
  page.on('pageerror', (err) => problems.pageErrors.push(`[${phase}] ${String(err && err.stack ? err.stack : err)}`));
  page.on('requestfailed', (req) => problems.failedRequests.push(`[${phase}] ${req.method()} ${req.url()}: ${req.failure() && req.failure().errorText}`));
  page.on('response', (res) => {
    const method = res.request().method();
    const url = res.url();
    const status = res.status();
    const u = new URL(url);
    if (u.pathname.startsWith('/analytics/') || u.pathname.endsWith('/oauth2/v2.0/token')) responses.push({ phase, method, url, status });
    if (status >= 400 && !expectedFailure(method, url, status)) problems.failedRequests.push(`[${phase}] ${method} ${url}: ${status}`);
  });
  await page.setViewport(DESKTOP);
});

after(async () => {
  if (browser) await browser.close();
});

// ---------------------------------------------------------------- tests

test('without a token the page shows the sign-in panel and loads no data', T, async () => {
  phase = 'signed out';
  // The API itself asks for a token.
  const range = defaultRange();
  const url = aggregateUrl('quality', range, { groupBy: 'day', filter: AUDIO });
  assert.equal((await apiStatus(url)).status, 401, `GET ${url} without a token`);

  const res = await page.goto(`${BASE}/dashboard`, { waitUntil: 'load' });
  assert.equal(res.status(), 200, 'GET /dashboard is served without a token');
  await page.waitForFunction(() => window.dashboard && Object.keys(window.dashboard.charts).length > 0);
  await page.waitForSelector('#signin', { visible: true });
  assert.equal(await storedToken(), null, 'no token yet');
  assert.equal(await visible('#signout'), false, 'no Sign out button before signing in');
  assert.ok(await visible('#issuer-form'), 'the local issuer form');
  assert.ok(await visible('#token-form'), 'the token form');
  await assertNoData('before signing in');

  const asked = responses.filter((r) => r.phase === phase);
  assert.ok(asked.some((r) => new URL(r.url).pathname.startsWith('/analytics/')), 'the page asked the API once');
  for (const r of asked) assert.equal(r.status, 401, `${r.method} ${r.url} answered ${r.status} without a token`);
  await screenshot('signin-panel.png');
});

test('signing in with the local issuer loads the charts with the API\'s numbers', T, async () => {
  phase = 'demo tenant';
  const bearer = await token(DEMO); // a token got the way the page gets its own
  await issuerSignIn(DEMO);
  await waitSignedIn();
  await ready();
  assert.equal(await page.$eval('#issuer-secret', (e) => e.value), '', 'the form forgets the secret');
  assert.equal(await visible('#signin-error'), false, 'no sign-in error');
  const { streams } = await assertDemoNumbers(bearer, defaultRange());
  assert.match(await text('#card-qualityOverTime [data-sub]'), new RegExp(`${fmtInt(streams)}\\b`), 'the chart\'s caption counts the same streams');
  for (const r of responses.filter((x) => x.phase === phase && new URL(x.url).pathname.startsWith('/analytics/'))) {
    assert.equal(r.status, 200, `${r.method} ${r.url} answered ${r.status} when signed in`);
  }
  await screenshot('signin-done.png');
});

test('signing out clears the charts; another tenant\'s app sees none of the demo tenant\'s data', T, async () => {
  phase = 'signed out';
  await signOut();
  await assertNoData('after signing out');

  phase = 'other tenant';
  const range = defaultRange();
  const bearer = await token(OTHER);
  // The API answers that tenant no rows, whatever the query.
  for (const url of [
    aggregateUrl('quality', range, { groupBy: 'day', filter: AUDIO }),
    aggregateUrl('quality', range, { groupBy: 'day' }),
    aggregateUrl('quality', { ...range, from: new Date(Date.parse(range.to) - 365 * DAY).toISOString() }, { groupBy: 'callType' }),
    `/analytics/calls?${qs({ fromDateTime: range.from, toDateTime: range.to, top: 50 })}`,
    `/analytics/worst?${qs({ by: 'subnet', fromDateTime: range.from, toDateTime: range.to, minStreams: 1 })}`,
    aggregateUrl('reliability', range),
    aggregateUrl('rateMyCall', range, { groupBy: 'day' }),
  ]) {
    assert.deepEqual(await apiGet(url, bearer), [], `GET ${url} with the other tenant's token: no rows`);
  }

  await issuerSignIn(OTHER);
  await waitSignedIn();
  await ready();
  const c = await chart('qualityOverTime');
  assertSameQuery(c.query, aggregateUrl('quality', range, { groupBy: 'day', filter: AUDIO }), 'qualityOverTime');
  assert.deepEqual(c.labels, range.days, 'one (empty) slot per day');
  for (const [i, d] of c.data.slice(0, 3).entries()) assert.ok(d.every((v) => v === 0), `qualityOverTime dataset ${i} is all zero: ${d}`);
  assert.ok(c.data[3].every((v) => v === null), 'no poor share on any day');
  for (const name of ['qualityOverTime', 'poorDueTo', 'callType', 'insideOutside', 'clientVersions']) {
    assert.match(await text(`#card-${name} .overlay`), /No streams in this range/, `${name} says it has no streams`);
  }
  assert.match(await text('#card-reliability .overlay'), /No sessions in this range/);
  assert.match(await text('#card-worstSubnets .overlay'), /No subnet/);
  for (const name of ['callType', 'insideOutside', 'worstSubnets', 'worstBuildings', 'clientVersions']) {
    assert.deepEqual((await chart(name)).labels, [], `${name} has no bars`);
  }
  assert.equal(await text('#kpi-streams'), '0', 'no streams in all');
  assert.equal(await text('#kpi-sessions'), '0', 'no sessions in all');
  await screenshot('signin-other-tenant.png');
});

test('a pasted bearer token loads the charts', T, async () => {
  phase = 'signed out';
  await signOut();
  await assertNoData('after signing out of the other tenant');

  phase = 'pasted token';
  const bearer = await token(DEMO);
  await page.$eval('#token-input', (e) => { e.value = ''; });
  await page.type('#token-input', `Bearer ${bearer}`); // as copied from an Authorization header
  await page.click('#token-form button[type="submit"]');
  await waitSignedIn();
  assert.equal(await storedToken(), bearer, 'the page keeps the pasted token, without "Bearer "');
  await ready();
  await assertDemoNumbers(bearer, defaultRange());
});

test('a wrong secret shows an error in the panel and loads no data', T, async () => {
  phase = 'signed out';
  await signOut();
  await assertNoData('after signing out');

  phase = 'wrong secret';
  const wrong = { ...DEMO, secret: `${DEMO.secret.slice(0, -4)}XXXX` };
  const refused = await requestToken(wrong);
  assert.ok(refused.status === 400 || refused.status === 401, `the issuer refuses a wrong secret: ${refused.status}`);
  assert.ok(!refused.body || !refused.body.access_token, 'and gives no token');

  const before = responses.length;
  await issuerSignIn(wrong);
  await page.waitForSelector('#signin-error', { visible: true });
  assert.match(await text('#signin-error'), /Sign-in failed/, 'the panel says the sign-in failed');
  assert.ok(await visible('#signin'), 'the sign-in panel stays');
  assert.equal(await visible('#signout'), false, 'still signed out');
  assert.equal(await storedToken(), null, 'no token kept');
  const asked = responses.slice(before);
  assert.ok(asked.some((r) => r.method === 'POST' && r.status >= 400), 'the page asked the issuer, which refused');
  assert.deepEqual(asked.filter((r) => new URL(r.url).pathname.startsWith('/analytics/')), [], 'no analytics asked without a token');
  await assertNoData('after a wrong secret');

  // And the right secret after that works, and clears the error.
  phase = 'demo tenant';
  await issuerSignIn(DEMO);
  await waitSignedIn();
  await ready();
  assert.equal(await visible('#signin-error'), false, 'the error is gone once signed in');
  await assertDemoNumbers(await token(DEMO), defaultRange());
});

test('no console errors or warnings, page errors or unexpected failed requests', async () => {
  assert.deepEqual(problems.pageErrors, [], 'page errors');
  assert.deepEqual(problems.console, [], 'console errors and warnings');
  assert.deepEqual(problems.failedRequests, [], 'failed requests');
});
