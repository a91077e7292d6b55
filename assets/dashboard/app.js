/*
 * callrecords dashboard: CQD-style summary views over the /analytics/* API.
 * Plain script (no build step), served with index.html and style.css under /dashboard/,
 * drawing with the vendored Chart.js (/dashboard/vendor/chart.umd.min.js).
 *
 * For tests, window.dashboard exposes:
 *   charts      { <name>: Chart }                 one per chart canvas (#chart-<name>)
 *   ready       Promise                           settles when every chart shows the current filters' data
 *                                                 (replaced on each reload; resolves to { ok, errors })
 *   lastQuery   { <name>: url, calls, streams }   the URL each chart (or the drill-down) last asked for
 *   groups      { <name>: [ row ] }               for each chart, the API group behind each label index
 *   drillReady, streamsReady   Promises for the drill-down tables
 */
(function () {
  'use strict';

  // ---------------------------------------------------------------- constants

  const COLORS = {
    good: '#5b8db8',
    poor: '#d0605e',
    unclassified: '#c9d1d9',
    poorLine: '#e58e3c',
    setupFailed: '#e58e3c',
    dropped: '#c0453f',
    volume: '#e3e8ed',
    rating: '#3f7fb0',
    reason: '#e0884a',
    bar: '#d57a6c',
    ink: '#44505c',
    grid: '#edf0f3',
  };

  const CONDITIONS = [
    ['jitter', 'Jitter'],
    ['packetLoss', 'Packet loss'],
    ['degradation', 'Network degradation'],
    ['roundTrip', 'Round trip'],
    ['concealedRatio', 'Concealed samples'],
    ['frameLoss', 'Video frame loss'],
    ['frameRate', 'Video frame rate'],
    ['postFecPacketLoss', 'Post-FEC packet loss'],
  ];

  // A stream's poorDueTo condition -> the metric column that shows it.
  const CONDITION_METRIC = {
    jitter: 'jitter',
    packetLoss: 'loss',
    degradation: 'degradation',
    roundTrip: 'rtt',
    concealedRatio: 'concealed',
    frameLoss: 'frameLoss',
    frameRate: 'frameRate',
    postFecPacketLoss: 'postFec',
  };

  const MEDIA_LABEL = { audio: 'Audio', video: 'Video', vbss: 'Screen sharing', '': 'All media' };
  const CALL_TYPE_LABEL = { conference: 'Conference', peerToPeer: 'Peer-to-peer' };
  const CONNECTION_LABEL = { wired: 'Wired', wifi: 'Wi-Fi', mobile: 'Mobile', tunnel: 'Tunnel', unknown: 'Unknown' };
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const DAY_MS = 86400000;
  const TOKEN_KEY = 'callrecords.dashboard.token';
  const CALLS_TOP = 50;
  const WORST_TOP = 10;
  const WORST_MIN_STREAMS = 10;
  const TOP_BARS = 10; // bars in the inside/outside and client version charts: the most used groups

  // ---------------------------------------------------------------- formatting

  const intFormat = new Intl.NumberFormat('en-US');
  const fmtInt = (n) => (n == null || !isFinite(n) ? '–' : intFormat.format(n));
  const pct = (r) => (r == null || !isFinite(r) ? '–' : (r * 100).toFixed(1) + '%');
  const pctTick = (v) => {
    const p = Math.round(v * 1000) / 10;
    return (Number.isInteger(p) ? p.toFixed(0) : p.toFixed(1)) + '%';
  };
  const num = (x, digits) => (x == null || !isFinite(x) ? '–' : Number(x).toFixed(digits));

  function shortDay(day) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day || '');
    return m ? MONTHS[+m[2] - 1] + ' ' + +m[3] : String(day);
  }
  function longDay(day) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day || '');
    if (!m) return String(day);
    const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
    return WEEKDAYS[d.getUTCDay()] + ' ' + +m[3] + ' ' + MONTHS[+m[2] - 1] + ' ' + m[1];
  }
  function fmtDateTime(iso) {
    if (!iso) return '–';
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    return d.toISOString().slice(0, 16).replace('T', ' ');
  }
  const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);
  const isoInstant = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const dayMs = (day) => Date.parse(day + 'T00:00:00Z');

  function label(value, names) {
    if (value === null || value === undefined || value === '') return 'Unknown';
    return (names && names[value]) || String(value);
  }
  // "inside:outside" -> "Inside – Outside"; "wired:wifi" -> "Wired – Wi-Fi"; short: "In/Out", "Wired/Wi-Fi"
  const PLACE_SHORT = { inside: 'In', outside: 'Out' };
  function pairLabel(value, short) {
    if (value === null || value === undefined) return 'Unknown';
    return String(value)
      .split(':')
      .map((p) => (short && PLACE_SHORT[p]) || CONNECTION_LABEL[p] || (p ? p.charAt(0).toUpperCase() + p.slice(1) : '?'))
      .join(short ? '/' : ' – ');
  }
  const placeLabel = (keys, short) => pairLabel(keys.insideOutside, short) + ' · ' + pairLabel(keys.wiredWifi, short);

  // ---------------------------------------------------------------- state

  const $ = (sel) => document.querySelector(sel);
  const state = {
    range: '30',
    from: '',
    to: '',
    mediaType: 'audio',
    callType: '',
    firstConnectionType: '',
    secondConnectionType: '',
    pstn: '',
    defaultFilters: true,
  };
  const FILTER_KEYS = ['mediaType', 'callType', 'firstConnectionType', 'secondConnectionType', 'pstn'];

  const dashboard = {
    charts: {},
    ready: Promise.resolve({ ok: false, errors: ['not started'] }),
    lastQuery: {},
    groups: {},
    state,
    drillReady: Promise.resolve(),
    streamsReady: Promise.resolve(),
    reload: () => load(),
  };
  window.dashboard = dashboard;

  function readHash() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ''));
    if (params.has('range') && ['7', '30', '90', 'custom'].includes(params.get('range'))) state.range = params.get('range');
    for (const k of ['from', 'to']) {
      const v = params.get(k);
      if (v && /^\d{4}-\d{2}-\d{2}$/.test(v)) state[k] = v;
    }
    for (const k of FILTER_KEYS) if (params.has(k)) state[k] = params.get(k);
    if (params.has('defaultFilters')) state.defaultFilters = params.get('defaultFilters') !== 'false';
    if (state.range === 'custom' && !(state.from && state.to)) state.range = '30';
  }
  function writeHash() {
    const params = new URLSearchParams();
    params.set('range', state.range);
    if (state.range === 'custom') {
      params.set('from', state.from);
      params.set('to', state.to);
    }
    for (const k of FILTER_KEYS) if (state[k] !== (k === 'mediaType' ? 'audio' : '')) params.set(k, state[k]);
    if (!state.defaultFilters) params.set('defaultFilters', 'false');
    const hash = '#' + params.toString();
    if (location.hash !== hash) history.replaceState(null, '', hash);
  }

  function syncControls() {
    $('#range').value = state.range;
    for (const k of FILTER_KEYS) $('#' + k).value = state[k];
    $('#defaultFilters').checked = state.defaultFilters;
    const r = timeRange();
    $('#from').value = r.fromDay;
    $('#to').value = r.toDay;
  }

  // The time range: [fromDateTime, toDateTime), whole UTC days, the last day included.
  function timeRange() {
    let fromMs, endMs;
    if (state.range === 'custom' && state.from && state.to) {
      let a = dayMs(state.from);
      let b = dayMs(state.to);
      if (b < a) [a, b] = [b, a];
      fromMs = a;
      endMs = b + DAY_MS;
    } else {
      const n = parseInt(state.range, 10) || 30;
      const now = new Date();
      endMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) + DAY_MS;
      fromMs = endMs - n * DAY_MS;
    }
    const days = [];
    for (let t = fromMs; t < endMs; t += DAY_MS) days.push(isoDay(t));
    return {
      fromDateTime: isoInstant(fromMs),
      toDateTime: isoInstant(endMs),
      fromDay: isoDay(fromMs),
      toDay: isoDay(endMs - DAY_MS),
      days,
    };
  }

  // ---------------------------------------------------------------- queries

  const quote = (v) => "'" + String(v).replace(/'/g, "''") + "'";
  // An unknown (null) group value is matched with the literal null.
  const eq = (dim, value) => dim + ' eq ' + (value === null || value === undefined ? 'null' : quote(value));

  // The filter clauses the header's controls add. scope: 'streams' for /analytics/quality and
  // /analytics/calls (every dimension), 'sessions' for reliability and Rate My Call (no media or
  // connection dimensions there), 'worst' (media type goes in its own parameter).
  function filterClauses(scope) {
    const c = [];
    if (scope === 'streams' && state.mediaType) c.push(eq('mediaType', state.mediaType));
    if (state.callType) c.push(eq('callType', state.callType));
    if (state.pstn) c.push(eq('pstn', state.pstn));
    if (scope !== 'sessions') {
      if (state.firstConnectionType) c.push(eq('firstConnectionType', state.firstConnectionType));
      if (state.secondConnectionType) c.push(eq('secondConnectionType', state.secondConnectionType));
    }
    return c;
  }

  function queryString(params) {
    return Object.keys(params)
      .filter((k) => params[k] !== undefined && params[k] !== null && params[k] !== '')
      .map((k) => encodeURIComponent(k) + '=' + encodeURIComponent(params[k]))
      .join('&');
  }

  function aggregateUrl(endpoint, range, groupBy, scope, extraClauses) {
    const clauses = (extraClauses || []).concat(filterClauses(scope));
    return (
      '/analytics/' +
      endpoint +
      '?' +
      queryString({
        fromDateTime: range.fromDateTime,
        toDateTime: range.toDateTime,
        groupBy: groupBy.join(','),
        filter: clauses.join(' and '),
        defaultFilters: state.defaultFilters ? '' : 'false',
      })
    );
  }

  function worstUrl(by, range) {
    return (
      '/analytics/worst?' +
      queryString({
        by,
        fromDateTime: range.fromDateTime,
        toDateTime: range.toDateTime,
        mediaType: state.mediaType,
        minStreams: WORST_MIN_STREAMS,
        top: WORST_TOP,
        filter: filterClauses('worst').join(' and '),
        defaultFilters: state.defaultFilters ? '' : 'false',
      })
    );
  }

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch (_) {
      return '';
    }
  }

  async function api(url) {
    const headers = { Accept: 'application/json' };
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    let res;
    try {
      res = await fetch(url, { headers, cache: 'no-store' });
    } catch (_) {
      throw new ApiError(0, 'network', 'The server could not be reached.');
    }
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      body = null;
    }
    if (res.status === 401) {
      authRequired = true;
      showSignIn(t ? 'The token was refused (it may have expired). Sign in again.' : null);
      throw new ApiError(401, 'unauthorized', 'Sign in to see this.');
    }
    if (!res.ok) {
      const err = body && body.error;
      const message = (err && (err.message || err.code)) || res.status + ' ' + res.statusText;
      throw new ApiError(res.status, err && err.code, message);
    }
    if (!body || !Array.isArray(body.value)) throw new ApiError(res.status, 'badResponse', 'Unexpected answer from the server.');
    return body.value;
  }

  // ---------------------------------------------------------------- aggregation

  // Sums /analytics/quality rows over media types (when the media filter is "All"), keyed by `dims`,
  // in the API's order. With one row per key the API's own poorRatio is kept as it is.
  function groupQuality(rows, dims) {
    const byKey = new Map();
    for (const r of rows) {
      if (state.mediaType && r.mediaType != null && r.mediaType !== state.mediaType) continue;
      const keys = {};
      for (const d of dims) keys[d] = r[d] === undefined ? null : r[d];
      const id = JSON.stringify(dims.map((d) => keys[d]));
      let g = byKey.get(id);
      if (!g) {
        g = { keys, rows: [], streams: 0, poorStreams: 0, goodStreams: 0, unclassifiedStreams: 0, poorDueTo: {} };
        for (const [c] of CONDITIONS) g.poorDueTo[c] = 0;
        byKey.set(id, g);
      }
      g.rows.push(r);
      g.streams += r.streams || 0;
      g.poorStreams += r.poorStreams || 0;
      g.goodStreams += r.goodStreams || 0;
      g.unclassifiedStreams += r.unclassifiedStreams || 0;
      const due = r.poorDueTo || {};
      for (const [c] of CONDITIONS) g.poorDueTo[c] += due[c] || 0;
    }
    const groups = Array.from(byKey.values());
    for (const g of groups) {
      if (g.rows.length === 1 && g.rows[0].poorRatio !== undefined) g.poorRatio = g.rows[0].poorRatio;
      else {
        const classified = g.poorStreams + g.goodStreams;
        g.poorRatio = classified > 0 ? g.poorStreams / classified : null;
      }
    }
    return groups;
  }

  function totals(groups) {
    const t = { streams: 0, poorStreams: 0, goodStreams: 0, unclassifiedStreams: 0 };
    for (const g of groups) {
      t.streams += g.streams;
      t.poorStreams += g.poorStreams;
      t.goodStreams += g.goodStreams;
      t.unclassifiedStreams += g.unclassifiedStreams;
    }
    const classified = t.poorStreams + t.goodStreams;
    t.poorRatio = classified > 0 ? t.poorStreams / classified : null;
    return t;
  }

  // ---------------------------------------------------------------- charts

  function setupChartDefaults() {
    const C = window.Chart;
    C.defaults.font.family = getComputedStyle(document.body).fontFamily;
    C.defaults.font.size = 12;
    C.defaults.color = COLORS.ink;
    C.defaults.borderColor = COLORS.grid;
    C.defaults.animation = false;
    C.defaults.maintainAspectRatio = false;
    C.defaults.responsive = true;
    C.defaults.plugins.legend.labels.boxWidth = 12;
    C.defaults.plugins.legend.labels.boxHeight = 12;
    C.defaults.plugins.legend.position = 'bottom';
    C.defaults.plugins.legend.labels.sort = (a, b) => a.datasetIndex - b.datasetIndex;
    C.defaults.plugins.tooltip.backgroundColor = 'rgba(31, 41, 51, 0.92)';
    C.defaults.plugins.tooltip.padding = 10;
    C.defaults.plugins.tooltip.boxPadding = 4;
    C.defaults.plugins.tooltip.titleFont = { weight: '600' };
  }

  // Clicks open the drill-down for the element under the pointer; the pointer shows which are clickable.
  function clickHandlers(name) {
    const hit = (evt, chart) => chart.getElementsAtEventForMode(evt, 'nearest', { intersect: true }, true);
    return {
      onClick(evt, _elements, chart) {
        const els = hit(evt, chart);
        if (els.length) drillFromChart(name, els[0].datasetIndex, els[0].index);
      },
      onHover(evt, _elements, chart) {
        const els = hit(evt, chart);
        const ok = els.length > 0 && drillTarget(name, els[0].datasetIndex, els[0].index) !== null;
        chart.canvas.style.cursor = ok ? 'pointer' : 'default';
      },
    };
  }

  const dayTicks = {
    autoSkip: true,
    maxRotation: 0,
    callback(value) {
      return shortDay(this.getLabelForValue(value));
    },
  };
  const percentAxis = (extra) =>
    Object.assign({ beginAtZero: true, ticks: { callback: pctTick } }, extra || {});
  const countAxis = (extra) =>
    Object.assign({ beginAtZero: true, ticks: { precision: 0, callback: (v) => fmtInt(v) } }, extra || {});

  function streamFooter(name) {
    return (items) => {
      const g = items.length ? (dashboard.groups[name] || [])[items[0].dataIndex] : null;
      if (!g) return '';
      return fmtInt(g.streams) + ' streams · ' + fmtInt(g.poorStreams) + ' poor · ' + fmtInt(g.goodStreams) + ' good';
    };
  }

  function horizontalRatioChart(name, canvas, datasetLabel, color, opts) {
    opts = opts || {};
    return new window.Chart(canvas, {
      type: 'bar',
      data: { labels: [], datasets: [{ label: datasetLabel, data: [], backgroundColor: color, borderRadius: 3, maxBarThickness: 20 }] },
      options: Object.assign(
        {
          indexAxis: 'y',
          plugins: {
            legend: { display: false },
            tooltip: {
              callbacks: {
                title: opts.title,
                label: (ctx) => ctx.dataset.label + ': ' + pct(ctx.parsed.x),
                footer: opts.footer || streamFooter(name),
              },
            },
          },
          scales: {
            x: percentAxis({ title: { display: true, text: datasetLabel } }),
            y: { grid: { display: false }, ticks: { autoSkip: false } },
          },
        },
        opts.clickable ? clickHandlers(name) : {}
      ),
    });
  }

  const SPECS = {
    qualityOverTime: {
      scope: 'streams',
      url: (r) => aggregateUrl('quality', r, ['day'], 'streams'),
      create(canvas) {
        return new window.Chart(canvas, {
          type: 'bar',
          data: {
            labels: [],
            datasets: [
              { label: 'Good', data: [], backgroundColor: COLORS.good, stack: 'streams', order: 2 },
              { label: 'Poor', data: [], backgroundColor: COLORS.poor, stack: 'streams', order: 2 },
              { label: 'Unclassified', data: [], backgroundColor: COLORS.unclassified, stack: 'streams', order: 2 },
              {
                type: 'line',
                label: 'Poor %',
                data: [],
                yAxisID: 'y1',
                borderColor: COLORS.poorLine,
                backgroundColor: COLORS.poorLine,
                borderWidth: 2,
                pointRadius: 3,
                pointHoverRadius: 5,
                pointHitRadius: 6,
                cubicInterpolationMode: 'monotone',
                spanGaps: true,
                order: 1,
              },
            ],
          },
          options: Object.assign(
            {
              interaction: { mode: 'index', intersect: false },
              plugins: {
                tooltip: {
                  callbacks: {
                    title: (items) => (items.length ? longDay(items[0].label) : ''),
                    label: (ctx) =>
                      ctx.dataset.label + ': ' + (ctx.datasetIndex === 3 ? pct(ctx.parsed.y) : fmtInt(ctx.parsed.y)),
                    footer: (items) => {
                      const g = items.length ? dashboard.groups.qualityOverTime[items[0].dataIndex] : null;
                      return g ? fmtInt(g.streams) + ' streams in all' : '';
                    },
                  },
                },
              },
              scales: {
                x: { stacked: true, grid: { display: false }, ticks: dayTicks },
                y: countAxis({ stacked: true, title: { display: true, text: 'Streams' } }),
                y1: percentAxis({ position: 'right', grid: { drawOnChartArea: false }, title: { display: true, text: 'Poor %' } }),
              },
            },
            clickHandlers('qualityOverTime')
          ),
        });
      },
      render(chart, rows, r) {
        const groups = groupQuality(rows, ['day']);
        const byDay = new Map(groups.map((g) => [g.keys.day, g]));
        // Every day of the range gets a slot; days the API did not answer for had no streams.
        const days = r.days.slice();
        for (const g of groups) if (g.keys.day != null && !days.includes(g.keys.day)) days.push(g.keys.day);
        days.sort();
        const slots = days.map(
          (day) =>
            byDay.get(day) || { keys: { day }, streams: 0, poorStreams: 0, goodStreams: 0, unclassifiedStreams: 0, poorRatio: null }
        );
        dashboard.groups.qualityOverTime = slots;
        chart.data.labels = days;
        chart.data.datasets[0].data = slots.map((g) => g.goodStreams);
        chart.data.datasets[1].data = slots.map((g) => g.poorStreams);
        chart.data.datasets[2].data = slots.map((g) => g.unclassifiedStreams);
        chart.data.datasets[3].data = slots.map((g) => (g.poorRatio == null ? null : g.poorRatio));
        const t = totals(groups);
        setSub('qualityOverTime', MEDIA_LABEL[state.mediaType] + ' streams: ' + fmtInt(t.streams) + ', ' + pct(t.poorRatio) + ' poor.');
        return t.streams === 0 ? 'No streams in this range' : null;
      },
    },

    poorDueTo: {
      scope: 'streams',
      url: (r) => aggregateUrl('quality', r, [], 'streams'),
      create(canvas) {
        return new window.Chart(canvas, {
          type: 'bar',
          data: {
            labels: CONDITIONS.map((c) => c[1]),
            datasets: [{ label: 'Poor streams', data: [], backgroundColor: COLORS.reason, borderRadius: 3, maxBarThickness: 20 }],
          },
          options: Object.assign(
            {
              indexAxis: 'y',
              plugins: {
                legend: { display: false },
                tooltip: {
                  callbacks: {
                    label: (ctx) => {
                      const t = dashboard.groups.poorDueToTotals;
                      const share = t && t.poorStreams ? ' (' + pct(ctx.parsed.x / t.poorStreams) + ' of poor streams)' : '';
                      return fmtInt(ctx.parsed.x) + ' poor streams' + share;
                    },
                  },
                },
              },
              scales: {
                x: countAxis({ title: { display: true, text: 'Poor streams' } }),
                y: { grid: { display: false }, ticks: { autoSkip: false } },
              },
            },
            clickHandlers('poorDueTo')
          ),
        });
      },
      render(chart, rows) {
        const groups = groupQuality(rows, []);
        const g = groups[0] || { poorDueTo: {}, streams: 0, poorStreams: 0 };
        dashboard.groups.poorDueTo = CONDITIONS.map(([c]) => ({ keys: {}, condition: c, poorStreams: g.poorDueTo[c] || 0 }));
        dashboard.groups.poorDueToTotals = totals(groups);
        chart.data.datasets[0].data = CONDITIONS.map(([c]) => g.poorDueTo[c] || 0);
        updateStreamKpis(totals(groups));
        const t = totals(groups);
        if (t.streams === 0) return 'No streams in this range';
        return t.poorStreams === 0 ? 'No poor streams in this range' : null;
      },
    },

    callType: {
      scope: 'streams',
      url: (r) => aggregateUrl('quality', r, ['callType'], 'streams'),
      create(canvas) {
        return new window.Chart(canvas, {
          type: 'bar',
          data: { labels: [], datasets: [{ label: 'Poor %', data: [], backgroundColor: COLORS.poor, borderRadius: 3, maxBarThickness: 64 }] },
          options: Object.assign(
            {
              plugins: {
                legend: { display: false },
                tooltip: {
                  callbacks: {
                    label: (ctx) => 'Poor: ' + pct(ctx.parsed.y),
                    footer: streamFooter('callType'),
                  },
                },
              },
              scales: {
                x: { grid: { display: false } },
                y: percentAxis({ title: { display: true, text: 'Poor %' } }),
              },
            },
            clickHandlers('callType')
          ),
        });
      },
      render(chart, rows) {
        const groups = groupQuality(rows, ['callType']);
        dashboard.groups.callType = groups;
        chart.data.labels = groups.map((g) => label(g.keys.callType, CALL_TYPE_LABEL));
        chart.data.datasets[0].data = groups.map((g) => g.poorRatio);
        const t = totals(groups);
        setSub(
          'callType',
          groups.length
            ? groups.map((g) => label(g.keys.callType, CALL_TYPE_LABEL) + ' ' + fmtInt(g.streams) + ' streams').join(' · ')
            : 'Poor stream share by call type'
        );
        return t.streams === 0 ? 'No streams in this range' : null;
      },
    },

    insideOutside: {
      scope: 'streams',
      url: (r) => aggregateUrl('quality', r, ['insideOutside', 'wiredWifi'], 'streams'),
      create(canvas) {
        return horizontalRatioChart('insideOutside', canvas, 'Poor %', COLORS.bar, {
          clickable: true,
          title: (items) => {
            const g = items.length ? dashboard.groups.insideOutside[items[0].dataIndex] : null;
            return g ? placeLabel(g.keys, false) : '';
          },
        });
      },
      render(chart, rows) {
        const all = groupQuality(rows, ['insideOutside', 'wiredWifi']);
        const groups = mostUsed(all, TOP_BARS);
        dashboard.groups.insideOutside = groups;
        chart.data.labels = groups.map((g) => placeLabel(g.keys, true));
        chart.data.datasets[0].data = groups.map((g) => g.poorRatio);
        setSub(
          'insideOutside',
          'Poor stream share by where the endpoints were and how they connected (first/second)' +
            (all.length > groups.length ? ', the ' + groups.length + ' most used of ' + all.length + ' combinations' : '')
        );
        return totals(all).streams === 0 ? 'No streams in this range' : null;
      },
    },

    reliability: {
      scope: 'sessions',
      url: (r) => aggregateUrl('reliability', r, ['day'], 'sessions'),
      create(canvas) {
        return new window.Chart(canvas, {
          type: 'bar',
          data: {
            labels: [],
            datasets: [
              { type: 'line', label: 'Setup failed %', data: [], borderColor: COLORS.setupFailed, backgroundColor: COLORS.setupFailed, borderWidth: 2, pointRadius: 2, cubicInterpolationMode: 'monotone', spanGaps: true, yAxisID: 'y', order: 1 },
              { type: 'line', label: 'Dropped %', data: [], borderColor: COLORS.dropped, backgroundColor: COLORS.dropped, borderWidth: 2, pointRadius: 2, cubicInterpolationMode: 'monotone', spanGaps: true, yAxisID: 'y', order: 1 },
              { label: 'Sessions', data: [], backgroundColor: COLORS.volume, yAxisID: 'y1', order: 2 },
            ],
          },
          options: {
            interaction: { mode: 'index', intersect: false },
            plugins: {
              tooltip: {
                callbacks: {
                  title: (items) => (items.length ? longDay(items[0].label) : ''),
                  label: (ctx) => ctx.dataset.label + ': ' + (ctx.datasetIndex === 2 ? fmtInt(ctx.parsed.y) : pct(ctx.parsed.y)),
                  footer: (items) => {
                    const g = items.length ? dashboard.groups.reliability[items[0].dataIndex] : null;
                    return g && g.sessions ? fmtInt(g.setupFailed) + ' failed to set up · ' + fmtInt(g.dropped) + ' dropped' : '';
                  },
                },
              },
            },
            scales: {
              x: { grid: { display: false }, ticks: dayTicks },
              y: percentAxis({ title: { display: true, text: 'Share of sessions' } }),
              y1: countAxis({ position: 'right', grid: { drawOnChartArea: false }, title: { display: true, text: 'Sessions' } }),
            },
          },
        });
      },
      render(chart, rows, r) {
        const byDay = new Map(rows.map((x) => [x.day, x]));
        const days = r.days.slice();
        for (const x of rows) if (x.day != null && !days.includes(x.day)) days.push(x.day);
        days.sort();
        const slots = days.map((day) => byDay.get(day) || { day, sessions: 0, setupFailed: 0, dropped: 0, setupFailedRatio: null, droppedRatio: null });
        dashboard.groups.reliability = slots.map((x) => Object.assign({ keys: { day: x.day } }, x));
        chart.data.labels = days;
        chart.data.datasets[0].data = slots.map((x) => (x.setupFailedRatio == null ? null : x.setupFailedRatio));
        chart.data.datasets[1].data = slots.map((x) => (x.droppedRatio == null ? null : x.droppedRatio));
        chart.data.datasets[2].data = slots.map((x) => x.sessions || 0);
        setSub('reliability', sessionScopeNote('Sessions that failed to set up or dropped'));
        return rows.reduce((s, x) => s + (x.sessions || 0), 0) === 0 ? 'No sessions in this range' : null;
      },
    },

    rateMyCall: {
      scope: 'sessions',
      url: (r) => aggregateUrl('rateMyCall', r, ['day'], 'sessions'),
      create(canvas) {
        return new window.Chart(canvas, {
          type: 'bar',
          data: {
            labels: [],
            datasets: [
              { type: 'line', label: 'Average rating', data: [], borderColor: COLORS.rating, backgroundColor: COLORS.rating, borderWidth: 2, pointRadius: 2, cubicInterpolationMode: 'monotone', spanGaps: true, yAxisID: 'y', order: 1 },
              { type: 'line', label: 'Poor ratings %', data: [], borderColor: COLORS.poor, backgroundColor: COLORS.poor, borderWidth: 2, pointRadius: 2, cubicInterpolationMode: 'monotone', spanGaps: true, yAxisID: 'y1', order: 1 },
              { label: 'Ratings', data: [], backgroundColor: COLORS.volume, yAxisID: 'y2', order: 2 },
            ],
          },
          options: {
            interaction: { mode: 'index', intersect: false },
            plugins: {
              tooltip: {
                callbacks: {
                  title: (items) => (items.length ? longDay(items[0].label) : ''),
                  label: (ctx) => {
                    const v = ctx.parsed.y;
                    if (ctx.datasetIndex === 0) return 'Average rating: ' + num(v, 2);
                    if (ctx.datasetIndex === 1) return 'Poor ratings (1–2): ' + pct(v);
                    return 'Ratings: ' + fmtInt(v);
                  },
                },
              },
            },
            scales: {
              x: { grid: { display: false }, ticks: dayTicks },
              y: { min: 1, max: 5, ticks: { stepSize: 1 }, title: { display: true, text: 'Average rating' } },
              y1: percentAxis({ position: 'right', grid: { drawOnChartArea: false }, title: { display: true, text: 'Poor ratings %' } }),
              y2: countAxis({ display: false }),
            },
          },
        });
      },
      render(chart, rows, r) {
        const byDay = new Map(rows.map((x) => [x.day, x]));
        const days = r.days.slice();
        for (const x of rows) if (x.day != null && !days.includes(x.day)) days.push(x.day);
        days.sort();
        const slots = days.map((day) => byDay.get(day) || { day, ratings: 0, averageRating: null, poorRatings: 0, poorRatingRatio: null });
        dashboard.groups.rateMyCall = slots.map((x) => Object.assign({ keys: { day: x.day } }, x));
        chart.data.labels = days;
        chart.data.datasets[0].data = slots.map((x) => (x.averageRating == null ? null : x.averageRating));
        chart.data.datasets[1].data = slots.map((x) => (x.poorRatingRatio == null ? null : x.poorRatingRatio));
        chart.data.datasets[2].data = slots.map((x) => x.ratings || 0);
        setSub('rateMyCall', sessionScopeNote('Average rating (1–5), the share of ratings of 1 or 2, and the number of ratings'));
        return rows.reduce((s, x) => s + (x.ratings || 0), 0) === 0 ? 'No ratings in this range' : null;
      },
    },

    worstSubnets: {
      scope: 'worst',
      url: (r) => worstUrl('subnet', r),
      create(canvas) {
        return horizontalRatioChart('worstSubnets', canvas, 'Poor %', COLORS.bar);
      },
      render(chart, rows) {
        dashboard.groups.worstSubnets = rows.map((x) => Object.assign({ keys: { subnet: x.subnet } }, x));
        chart.data.labels = rows.map((x) => label(x.subnet));
        chart.data.datasets[0].data = rows.map((x) => x.poorRatio);
        setSub('worstSubnets', worstNote());
        return rows.length ? null : 'No subnet with at least ' + WORST_MIN_STREAMS + ' streams';
      },
    },

    worstBuildings: {
      scope: 'worst',
      url: (r) => worstUrl('building', r),
      create(canvas) {
        return horizontalRatioChart('worstBuildings', canvas, 'Poor %', COLORS.bar);
      },
      render(chart, rows) {
        dashboard.groups.worstBuildings = rows.map((x) => Object.assign({ keys: { building: x.building } }, x));
        chart.data.labels = rows.map((x) => label(x.building));
        chart.data.datasets[0].data = rows.map((x) => x.poorRatio);
        setSub('worstBuildings', worstNote());
        return rows.length ? null : 'No building with at least ' + WORST_MIN_STREAMS + ' streams';
      },
    },

    clientVersions: {
      scope: 'streams',
      url: (r) => aggregateUrl('quality', r, ['secondProductFamily', 'secondVersion'], 'streams'),
      create(canvas) {
        return horizontalRatioChart('clientVersions', canvas, 'Poor %', COLORS.good);
      },
      render(chart, rows) {
        const groups = mostUsed(groupQuality(rows, ['secondProductFamily', 'secondVersion']), TOP_BARS);
        dashboard.groups.clientVersions = groups;
        chart.data.labels = groups.map((g) => {
          const fam = g.keys.secondProductFamily;
          const ver = g.keys.secondVersion;
          return (fam == null ? '' : fam + ' ') + (ver == null ? 'unknown version' : ver);
        });
        chart.data.datasets[0].data = groups.map((g) => g.poorRatio);
        return totals(groups).streams === 0 ? 'No streams in this range' : null;
      },
    },
  };

  // The `top` groups with the most streams, most first (ties in the API's order).
  function mostUsed(groups, top) {
    return groups
      .map((g, i) => [g, i])
      .sort((a, b) => b[0].streams - a[0].streams || a[1] - b[1])
      .slice(0, top)
      .map((p) => p[0]);
  }

  function setSub(name, text) {
    const el = document.querySelector('#card-' + name + ' [data-sub]');
    if (el) el.textContent = text;
  }

  function sessionScopeNote(base) {
    const ignored = [];
    if (state.mediaType) ignored.push('media type');
    if (state.firstConnectionType || state.secondConnectionType) ignored.push('connection');
    return ignored.length ? base + ' (all media; the ' + ignored.join(' and ') + ' filter does not apply to sessions)' : base;
  }
  function worstNote() {
    return MEDIA_LABEL[state.mediaType] + ' streams, highest poor share first, at least ' + WORST_MIN_STREAMS + ' streams';
  }

  // ---------------------------------------------------------------- KPIs

  function setKpi(id, value, sub) {
    $('#kpi-' + id).textContent = value;
    $('#kpi-' + id + '-sub').textContent = sub || '';
  }
  function updateStreamKpis(t) {
    setKpi('streams', fmtInt(t.streams), MEDIA_LABEL[state.mediaType]);
    setKpi('poor', pct(t.poorRatio), fmtInt(t.poorStreams) + ' poor of ' + fmtInt(t.poorStreams + t.goodStreams) + ' classified');
  }
  async function loadSessionKpis(range, gen) {
    const relUrl = aggregateUrl('reliability', range, [], 'sessions');
    const rmcUrl = aggregateUrl('rateMyCall', range, [], 'sessions');
    dashboard.lastQuery.reliabilityTotals = relUrl;
    dashboard.lastQuery.rateMyCallTotals = rmcUrl;
    const [rel, rmc] = await Promise.allSettled([api(relUrl), api(rmcUrl)]);
    if (gen !== generation) return;
    if (rel.status === 'fulfilled') {
      const x = rel.value[0] || { sessions: 0, setupFailed: 0, dropped: 0, setupFailedRatio: null, droppedRatio: null };
      setKpi('sessions', fmtInt(x.sessions), state.callType ? label(state.callType, CALL_TYPE_LABEL) : 'All calls');
      setKpi('setup', pct(x.setupFailedRatio), fmtInt(x.setupFailed) + ' sessions');
      setKpi('dropped', pct(x.droppedRatio), fmtInt(x.dropped) + ' sessions');
    } else {
      for (const k of ['sessions', 'setup', 'dropped']) setKpi(k, '–', '');
    }
    if (rmc.status === 'fulfilled') {
      const x = rmc.value[0] || { ratings: 0, averageRating: null, poorRatingRatio: null };
      setKpi('rating', x.averageRating == null ? '–' : num(x.averageRating, 2) + ' / 5', fmtInt(x.ratings) + ' ratings · ' + pct(x.poorRatingRatio) + ' poor');
    } else {
      setKpi('rating', '–', '');
    }
    if (rel.status === 'rejected') throw rel.reason;
    if (rmc.status === 'rejected') throw rmc.reason;
  }

  // ---------------------------------------------------------------- loading

  let generation = 0;
  let authRequired = false; // a 401 was seen: without a token, reloads ask for nothing and show the sign-in panel

  function showOverlay(name, text, isError) {
    const box = dashboard.charts[name].canvas.parentNode;
    const ov = box.querySelector('.overlay');
    ov.textContent = text || '';
    ov.hidden = !text;
    ov.classList.toggle('error', !!isError);
  }

  // A chart without data (its condition labels stay on "Poor due to").
  function clearChart(name) {
    const chart = dashboard.charts[name];
    dashboard.groups[name] = [];
    if (name !== 'poorDueTo') chart.data.labels = [];
    for (const ds of chart.data.datasets) ds.data = [];
    chart.update('none');
  }

  async function loadChart(name, range, gen) {
    const spec = SPECS[name];
    const chart = dashboard.charts[name];
    const card = document.getElementById('card-' + name);
    const url = spec.url(range);
    dashboard.lastQuery[name] = url;
    chart.canvas.dataset.ready = 'false';
    card.classList.add('loading');
    try {
      const rows = await api(url);
      if (gen !== generation) return;
      const empty = spec.render(chart, rows, range);
      chart.update('none');
      showOverlay(name, empty, false);
      chart.canvas.dataset.ready = 'true';
    } catch (e) {
      if (gen !== generation) return;
      clearChart(name);
      if (name === 'poorDueTo') for (const k of ['streams', 'poor']) setKpi(k, '–', ''); // its rows give these totals
      showOverlay(name, e.status === 401 ? 'Sign in to see this chart' : "Couldn't load this chart: " + e.message, e.status !== 401);
      chart.canvas.dataset.ready = 'error';
      throw new Error(name + ': ' + e.message);
    } finally {
      if (gen === generation) card.classList.remove('loading');
    }
  }

  function load() {
    const gen = ++generation;
    writeHash();
    const range = timeRange();
    $('#range-text').textContent = longDay(range.fromDay) + ' – ' + longDay(range.toDay) + ' (UTC)';
    if (authRequired && !token()) {
      // Signed out (or never signed in): nothing of what an earlier token could see stays on the page.
      showSignIn(null);
      if (drill.open) closeDrawer();
      for (const name of Object.keys(SPECS)) {
        clearChart(name);
        showOverlay(name, 'Sign in to see this chart', false);
        dashboard.charts[name].canvas.dataset.ready = 'error';
      }
      for (const k of ['streams', 'poor', 'sessions', 'setup', 'dropped', 'rating']) setKpi(k, '–', '');
      $('#updated').textContent = '';
      dashboard.ready = Promise.resolve({ ok: false, errors: ['sign in'] });
      return dashboard.ready;
    }
    const tasks = Object.keys(SPECS).map((name) => loadChart(name, range, gen));
    tasks.push(loadSessionKpis(range, gen));
    const ready = Promise.allSettled(tasks).then((results) => {
      if (gen !== generation) return dashboard.ready;
      const errors = results.filter((x) => x.status === 'rejected').map((x) => String(x.reason && x.reason.message));
      $('#updated').textContent = errors.length ? '' : 'Updated ' + new Date().toISOString().slice(11, 16) + ' UTC';
      return { ok: errors.length === 0, errors };
    });
    dashboard.ready = ready;
    return ready;
  }

  // ---------------------------------------------------------------- drill-down

  // What a click on (dataset, index) of a chart lists: { title, keys, classification } or null.
  function drillTarget(name, datasetIndex, index) {
    const g = (dashboard.groups[name] || [])[index];
    if (!g) return null;
    if (name === 'qualityOverTime') {
      const classification = ['good', 'poor', 'unclassified', 'poor'][datasetIndex];
      if (!g.streams) return null;
      return { keys: { day: g.keys.day }, classification, title: longDay(g.keys.day) };
    }
    if (name === 'poorDueTo') {
      if (!g.poorStreams) return null;
      const cond = CONDITIONS.find((c) => c[0] === g.condition);
      return { keys: {}, classification: 'poor', title: 'Poor streams', note: 'Calls with poor streams; the streams table shows which were poor due to ' + (cond ? cond[1].toLowerCase() : g.condition) + '.' };
    }
    if (name === 'callType' || name === 'insideOutside') {
      const keys = g.keys;
      const title =
        name === 'callType' ? label(keys.callType, CALL_TYPE_LABEL) : placeLabel(keys, false);
      return g.poorStreams ? { keys, classification: 'poor', title } : null;
    }
    return null;
  }

  function drillFromChart(name, datasetIndex, index) {
    const t = drillTarget(name, datasetIndex, index);
    if (t) openCalls(t);
  }

  const drill = { open: false, lastFocus: null };

  function showDrawer() {
    if (!drill.open) drill.lastFocus = document.activeElement;
    drill.open = true;
    $('#drill').hidden = false;
    $('#drill-backdrop').hidden = false;
    document.body.style.overflow = 'hidden';
    $('#drill-close').focus({ preventScroll: true });
  }
  function closeDrawer() {
    drill.open = false;
    $('#drill').hidden = true;
    $('#drill-backdrop').hidden = true;
    document.body.style.overflow = '';
    if (drill.lastFocus && drill.lastFocus.focus) drill.lastFocus.focus({ preventScroll: true });
  }

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    if (attrs) for (const k of Object.keys(attrs)) {
      if (k === 'class') e.className = attrs[k];
      else if (k === 'text') e.textContent = attrs[k];
      else if (k === 'dataset') Object.assign(e.dataset, attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    for (const c of children || []) if (c != null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  function openCalls(target) {
    const range = timeRange();
    const clauses = Object.keys(target.keys).map((k) => eq(k, target.keys[k])).concat(filterClauses('streams'));
    const url =
      '/analytics/calls?' +
      queryString({
        fromDateTime: range.fromDateTime,
        toDateTime: range.toDateTime,
        filter: clauses.join(' and '),
        classification: target.classification || '',
        top: CALLS_TOP,
        defaultFilters: state.defaultFilters ? '' : 'false',
      });
    dashboard.lastQuery.calls = url;
    dashboard.lastDrill = { keys: target.keys, classification: target.classification || null, filter: clauses.join(' and ') };
    const what = target.classification ? target.classification.charAt(0).toUpperCase() + target.classification.slice(1) + ' streams' : 'Streams';
    $('#drill-title').textContent = 'Calls · ' + target.title;
    $('#drill-sub').textContent = what + (clauses.length ? ' where ' + clauses.join(' and ') : '') + (target.note ? '. ' + target.note : '');
    const table = $('#calls-table');
    table.dataset.ready = 'false';
    table.tBodies[0].replaceChildren();
    $('#calls-status').textContent = 'Loading calls…';
    $('#streams-section').hidden = true;
    $('#streams-table').dataset.ready = 'false';
    showDrawer();
    const token = ++drill.callsGen;
    dashboard.drillReady = api(url).then(
      (calls) => {
        if (token !== drill.callsGen) return;
        renderCalls(calls);
      },
      (e) => {
        if (token !== drill.callsGen) return;
        $('#calls-status').textContent = "Couldn't load the calls: " + e.message;
        table.dataset.ready = 'error';
      }
    );
    return dashboard.drillReady;
  }
  drill.callsGen = 0;
  drill.streamsGen = 0;

  function renderCalls(calls) {
    const table = $('#calls-table');
    const rows = calls.map((c) => {
      const tr = el('tr', { dataset: { callId: c.id }, tabindex: '-1' }, [
        el('td', null, [el('button', { type: 'button', class: 'link', text: fmtDateTime(c.startDateTime) })]),
        el('td', { text: label(c.callType, CALL_TYPE_LABEL) }),
        el('td', { class: 'num', text: fmtInt(c.streams) }),
        el('td', { class: 'num' + (c.poorStreams ? ' bad' : ''), text: fmtInt(c.poorStreams) }),
        el('td', null, [el('code', { text: c.id })]),
      ]);
      tr.addEventListener('click', () => openStreams(c, tr));
      return tr;
    });
    table.tBodies[0].replaceChildren(...rows);
    $('#calls-status').textContent = calls.length
      ? (calls.length >= CALLS_TOP ? 'The first ' + fmtInt(calls.length) + ' calls' : fmtInt(calls.length) + (calls.length === 1 ? ' call' : ' calls')) + '. Pick one to see its streams.'
      : 'No calls match.';
    table.dataset.ready = 'true';
  }

  function openStreams(call, tr) {
    for (const row of $('#calls-table').tBodies[0].rows) row.classList.toggle('selected', row === tr);
    const url = '/analytics/calls/' + encodeURIComponent(call.id) + '/streams';
    dashboard.lastQuery.streams = url;
    const section = $('#streams-section');
    const table = $('#streams-table');
    section.hidden = false;
    table.dataset.ready = 'false';
    table.tBodies[0].replaceChildren();
    $('#streams-title').textContent = 'Streams of the call at ' + fmtDateTime(call.startDateTime) + ' UTC';
    $('#streams-status').textContent = 'Loading streams…';
    const token = ++drill.streamsGen;
    dashboard.streamsReady = api(url).then(
      (streams) => {
        if (token !== drill.streamsGen) return;
        renderStreams(streams);
        section.scrollIntoView({ block: 'start' });
      },
      (e) => {
        if (token !== drill.streamsGen) return;
        $('#streams-status').textContent = "Couldn't load the streams: " + e.message;
        table.dataset.ready = 'error';
      }
    );
    return dashboard.streamsReady;
  }

  function endpointCell(ep) {
    ep = ep || {};
    const who = ep.userDisplayName || (ep.isServer === true ? 'Server' : null);
    const line1 = [who, label(ep.connectionType, CONNECTION_LABEL), ep.subnet, ep.building].filter((x) => x != null && x !== '').join(' · ');
    const line2 = [ep.productFamily, ep.platform, ep.version, ep.serviceRole].filter((x) => x != null && x !== '').join(' · ');
    return el('td', { class: 'endpoint' }, [el('div', { text: line1 }), line2 ? el('div', { class: 'sub', text: line2 }) : null]);
  }

  function renderStreams(streams) {
    const table = $('#streams-table');
    const rows = streams.map((s) => {
      const cls = s.classification || 'unclassified';
      const due = Array.isArray(s.poorDueTo) ? s.poorDueTo : [];
      const bad = new Set(due.map((c) => CONDITION_METRIC[c]));
      const pair = (a, b, f) => f(a) + ' / ' + f(b);
      const ms = (x) => num(x, 0);
      const rate = (x) => (x == null ? '–' : pct(x));
      const metric = (key, text) => el('td', { class: 'num' + (bad.has(key) ? ' bad' : ''), text });
      return el('tr', { class: 'cls-' + cls, dataset: { classification: cls, sessionId: s.sessionId || '', segmentId: s.segmentId || '' } }, [
        el('td', { text: fmtDateTime(s.startDateTime) }),
        el('td', { text: label(s.mediaType, MEDIA_LABEL) }),
        el('td', { text: s.direction === 'firstToSecond' ? 'First → second' : s.direction === 'secondToFirst' ? 'Second → first' : label(s.direction) }),
        el('td', null, [el('span', { class: 'badge ' + cls, text: cls })]),
        el('td', { text: due.length ? due.map((c) => (CONDITIONS.find((x) => x[0] === c) || [c, c])[1]).join(', ') : '' }),
        metric('jitter', pair(s.averageJitterMs, s.maxJitterMs, ms)),
        metric('loss', pair(s.averagePacketLossRate, s.maxPacketLossRate, rate)),
        metric('rtt', pair(s.averageRoundTripTimeMs, s.maxRoundTripTimeMs, ms)),
        metric('degradation', num(s.averageAudioDegradation, 2)),
        metric('concealed', rate(s.averageRatioOfConcealedSamples)),
        metric('frameLoss', s.averageVideoFrameLossPercentage == null ? '–' : num(s.averageVideoFrameLossPercentage, 1) + '%'),
        metric('frameRate', num(s.averageVideoFrameRate, 1)),
        metric('postFec', rate(s.postForwardErrorCorrectionPacketLossRate)),
        endpointCell(s.first),
        endpointCell(s.second),
        el('td', null, [el('code', { text: short(s.sessionId) + ' / ' + short(s.segmentId) })]),
      ]);
    });
    table.tBodies[0].replaceChildren(...rows);
    const poor = streams.filter((s) => s.classification === 'poor').length;
    $('#streams-status').textContent = streams.length
      ? fmtInt(streams.length) + ' streams, ' + fmtInt(poor) + ' poor. Values past a poor threshold are in red.'
      : 'This call has no streams.';
    table.dataset.ready = 'true';
  }
  const short = (id) => (id ? String(id).slice(0, 8) : '–');

  // ---------------------------------------------------------------- sign-in

  function showSignIn(reason) {
    $('#signin').hidden = false;
    $('#signin-reason').textContent = reason || 'This server asks for a bearer token for its analytics.';
    $('#signout').hidden = !token();
  }
  function signedIn(t) {
    try {
      sessionStorage.setItem(TOKEN_KEY, t);
    } catch (_) {
      /* storage refused: the token lasts until reload */
    }
    $('#signin').hidden = true;
    $('#signin-error').hidden = true;
    $('#signout').hidden = false;
    load();
  }
  function signInError(text) {
    const e = $('#signin-error');
    e.textContent = text;
    e.hidden = false;
  }

  async function issuerSignIn() {
    const tenant = $('#issuer-tenant').value.trim();
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: $('#issuer-client').value.trim(),
      client_secret: $('#issuer-secret').value,
      scope: 'https://graph.microsoft.com/.default',
    });
    let res, json = null;
    try {
      res = await fetch('/' + encodeURIComponent(tenant) + '/oauth2/v2.0/token', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body,
      });
      json = await res.json().catch(() => null);
    } catch (_) {
      signInError('The server could not be reached.');
      return;
    }
    if (res.ok && json && json.access_token) {
      $('#issuer-secret').value = '';
      signedIn(json.access_token);
      return;
    }
    const err = json && (json.error_description || (json.error && (json.error.message || json.error)));
    signInError('Sign-in failed: ' + (typeof err === 'string' ? err : res.status + ' ' + res.statusText));
  }

  // ---------------------------------------------------------------- wiring

  function wire() {
    $('#controls').addEventListener('submit', (e) => e.preventDefault());
    $('#range').addEventListener('change', () => {
      state.range = $('#range').value;
      if (state.range === 'custom') {
        state.from = $('#from').value;
        state.to = $('#to').value;
      }
      syncControls();
      load();
    });
    for (const id of ['from', 'to']) {
      $('#' + id).addEventListener('change', () => {
        const f = $('#from').value;
        const t = $('#to').value;
        if (!f || !t) return;
        state.range = 'custom';
        state.from = f;
        state.to = t;
        syncControls();
        load();
      });
    }
    for (const k of FILTER_KEYS) {
      $('#' + k).addEventListener('change', () => {
        state[k] = $('#' + k).value;
        load();
      });
    }
    $('#defaultFilters').addEventListener('change', () => {
      state.defaultFilters = $('#defaultFilters').checked;
      load();
    });
    $('#refresh').addEventListener('click', () => load());
    $('#signout').addEventListener('click', () => {
      try {
        sessionStorage.removeItem(TOKEN_KEY);
      } catch (_) {
        /* nothing kept */
      }
      $('#signout').hidden = true;
      authRequired = true;
      load();
    });
    $('#token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = $('#token-input').value.trim().replace(/^bearer\s+/i, '');
      if (!t) return;
      $('#token-input').value = '';
      signedIn(t);
    });
    $('#issuer-form').addEventListener('submit', (e) => {
      e.preventDefault();
      issuerSignIn();
    });
    $('#drill-close').addEventListener('click', closeDrawer);
    $('#drill-backdrop').addEventListener('click', closeDrawer);
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && drill.open) closeDrawer();
    });
    window.addEventListener('hashchange', () => {
      readHash();
      syncControls();
      load();
    });
  }

  function start() {
    if (!window.Chart) {
      const b = $('#banner');
      b.textContent = 'The chart library did not load (/dashboard/vendor/chart.umd.min.js).';
      b.hidden = false;
      dashboard.ready = Promise.resolve({ ok: false, errors: ['Chart.js missing'] });
      return;
    }
    setupChartDefaults();
    readHash();
    syncControls();
    $('#signout').hidden = !token();
    for (const name of Object.keys(SPECS)) {
      const canvas = document.getElementById('chart-' + name);
      canvas.dataset.ready = 'false';
      dashboard.charts[name] = SPECS[name].create(canvas);
    }
    wire();
    load();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
