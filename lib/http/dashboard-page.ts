/**
 * The dashboard served at GET /: one static page, no external resource. It
 * polls GET /stats.json about once a second and draws its charts on plain
 * canvases. Rates are counted over the time between two samples; a counter
 * that went down means the server restarted, and that interval gets no rate
 * instead of a negative one. A hidden tab stops polling, and a tab the
 * browser froze cannot poll: when it is visible or resumed again it polls at
 * once, and the charts show a gap for the time it was away (one empty point,
 * not an average over the whole absence drawn as if it were a second).
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>iocpnet dashboard</title>
<link rel="icon" href="data:,">
<style>
  :root { --bg: #0f1419; --panel: #1a2129; --fg: #e6e6e6; --dim: #8a96a3; --grid: #2a333d; --a: #4fc3f7; --b: #ffb74d; --c: #81c784; --d: #e57373; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
  header { display: flex; flex-wrap: wrap; gap: 6px 24px; align-items: baseline; padding: 12px 20px; background: var(--panel); border-bottom: 1px solid var(--grid); }
  header h1 { font-size: 18px; margin: 0; }
  header span { color: var(--dim); }
  header b { color: var(--fg); font-weight: 600; }
  #status.ok { color: var(--c); } #status.bad { color: var(--d); }
  main { padding: 16px 20px; display: grid; gap: 16px; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); }
  .tiles { grid-column: 1 / -1; display: grid; gap: 12px; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); }
  .tile, .panel { background: var(--panel); border: 1px solid var(--grid); border-radius: 6px; padding: 10px 14px; }
  .tile .v { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
  .tile .k, .panel h2 { color: var(--dim); font-size: 12px; text-transform: uppercase; letter-spacing: .05em; margin: 0 0 6px; font-weight: 500; }
  canvas { width: 100%; height: 160px; display: block; }
  .legend { font-size: 12px; color: var(--dim); }
  .legend i { display: inline-block; width: 10px; height: 3px; margin: 0 4px 3px 10px; vertical-align: middle; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  td, th { padding: 3px 6px; text-align: right; border-bottom: 1px solid var(--grid); }
  td:first-child, th:first-child { text-align: left; }
  th { color: var(--dim); font-weight: 500; }
</style>
</head>
<body>
<header>
  <h1>iocpnet</h1>
  <span>node <b id="node-id">—</b></span>
  <span>address <b id="node-addr">—</b></span>
  <span>pid <b id="node-pid">—</b></span>
  <span>backend <b id="node-backend">—</b></span>
  <span>up <b id="node-up">—</b></span>
  <span id="status">connecting…</span>
</header>
<main>
  <section class="tiles">
    <div class="tile"><div class="k">connections</div><div class="v" id="t-connections">—</div></div>
    <div class="tile"><div class="k">packets/s in</div><div class="v" id="t-in">—</div></div>
    <div class="tile"><div class="k">packets/s out</div><div class="v" id="t-out">—</div></div>
    <div class="tile"><div class="k">notifies/s</div><div class="v" id="t-notifies">—</div></div>
    <div class="tile"><div class="k">handler p99</div><div class="v" id="t-handler">—</div></div>
    <div class="tile"><div class="k">event-loop lag p99</div><div class="v" id="t-lag">—</div></div>
    <div class="tile"><div class="k">chat users</div><div class="v" id="t-users">—</div></div>
  </section>
  <section class="panel"><h2>connections</h2><canvas id="c-connections"></canvas></section>
  <section class="panel"><h2>packets/s <span class="legend"><i style="background:var(--a)"></i>in<i style="background:var(--b)"></i>out</span></h2><canvas id="c-packets"></canvas></section>
  <section class="panel"><h2>chat notifies/s</h2><canvas id="c-notifies"></canvas></section>
  <section class="panel"><h2>latency, ms <span class="legend"><i style="background:var(--a)"></i>handler p99<i style="background:var(--d)"></i>event-loop lag p99</span></h2><canvas id="c-latency"></canvas></section>
  <section class="panel"><h2>closes by reason</h2><table><thead><tr><th>reason</th><th>total</th><th>per s</th></tr></thead><tbody id="closes"></tbody></table></section>
  <section class="panel"><h2>busiest rooms</h2><table><thead><tr><th>room</th><th>members</th></tr></thead><tbody id="rooms"><tr><td colspan="2">—</td></tr></tbody></table></section>
</main>
<script>
'use strict';
(function () {
  const HISTORY = 120;
  const PERIOD_MS = 1000;
  // Two samples further apart than this have a gap between them on the charts.
  const GAP_MS = 3 * PERIOD_MS;
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const series = { connections: [], in: [], out: [], notifies: [], handler: [], lag: [] };
  // For tests and the curious: what the page took and every rate it computed.
  const state = { samples: 0, resets: 0, gaps: 0, errors: 0, last: null, rates: [], times: [], polls: 0 };
  state.series = series;
  window.__dashboard = state;
  let prev = null;
  let node = null;

  const $ = (id) => document.getElementById(id);
  const fmt = (v) => (v === null || v === undefined || !isFinite(v) ? '—' : v >= 1e6 ? (v / 1e6).toFixed(2) + ' M' : v >= 1e4 ? (v / 1e3).toFixed(1) + ' k' : String(Math.round(v)));
  const ms = (s) => (s === null || s === undefined ? '—' : s * 1000 < 1 ? (s * 1e6).toFixed(0) + ' µs' : (s * 1000).toFixed(s * 1000 < 10 ? 2 : 0) + ' ms');
  const duration = (sec) => (sec < 120 ? Math.round(sec) + ' s' : sec < 7200 ? Math.round(sec / 60) + ' min' : (sec / 3600).toFixed(1) + ' h');
  const push = (list, v) => { list.push(v); if (list.length > HISTORY) list.shift(); };

  // A counter's rate over dt seconds; null when it went down (the server restarted) or no time passed.
  function rate(cur, old, dt) {
    if (old === undefined || cur < old || !(dt > 0)) return null;
    return (cur - old) / dt;
  }

  // The p99 of the handler times of the interval, from the cumulative bucket counts of two samples.
  function intervalP99(cur, old) {
    if (!old || cur.count < old.count) return null;
    const n = cur.count - old.count;
    if (n === 0) return null;
    for (let i = 0; i < cur.bounds.length; i++) {
      if (cur.cumulative[i] - old.cumulative[i] >= 0.99 * n) return cur.bounds[i];
    }
    return cur.bounds[cur.bounds.length - 1];
  }

  function draw(id, lines, opts) {
    const canvas = $(id);
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const left = 48, bottom = 16, top = 6, right = 6;
    let max = 0;
    for (const l of lines) for (const v of l.data) if (v !== null && v > max) max = v;
    max = max <= 0 ? 1 : niceCeil(max * 1.1);
    g.strokeStyle = color('--grid'); g.fillStyle = color('--dim'); g.lineWidth = 1; g.font = '11px system-ui, sans-serif';
    g.textAlign = 'right'; g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const y = top + ((h - top - bottom) * i) / 4;
      g.beginPath(); g.moveTo(left, y + 0.5); g.lineTo(w - right, y + 0.5); g.stroke();
      const v = max * (1 - i / 4);
      g.fillText(opts && opts.scale ? (v * opts.scale).toFixed(v * opts.scale < 10 ? 1 : 0) : fmt(v), left - 6, y);
    }
    g.textAlign = 'left'; g.textBaseline = 'alphabetic';
    g.fillText(HISTORY + ' samples', left, h - 2);
    const x = (i, n) => left + ((w - left - right) * (HISTORY - n + i)) / (HISTORY - 1);
    const y = (v) => top + (h - top - bottom) * (1 - v / max);
    for (const l of lines) {
      g.strokeStyle = color(l.color); g.lineWidth = 2; g.beginPath();
      let pen = false;
      l.data.forEach((v, i) => {
        if (v === null) { pen = false; return; }
        if (pen) g.lineTo(x(i, l.data.length), y(v)); else g.moveTo(x(i, l.data.length), y(v));
        pen = true;
      });
      g.stroke();
    }
  }
  function niceCeil(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function render(data) {
    const s = data.sample;
    const restarted = node !== null && (node.pid !== data.node.pid || node.startedAt !== data.node.startedAt);
    node = data.node;
    $('node-id').textContent = node.id === null ? '— (no cluster)' : node.id;
    $('node-addr').textContent = node.server ? node.server.address + ':' + node.server.port : '—';
    $('node-pid').textContent = node.pid;
    $('node-backend').textContent = node.backend;
    $('node-up').textContent = duration((s.time - node.startedAt) / 1000);
    const reset = restarted || (prev !== null && s.engine.packetsIn < prev.engine.packetsIn);
    // Back from the background (or from a server that did not answer for a while): no rate over the absence.
    const away = !reset && prev !== null && s.time - prev.time > GAP_MS;
    const old = reset || away ? null : prev;
    if (reset) state.resets++;
    if (away) state.gaps++;
    if (reset || away) for (const k in series) push(series[k], null);
    const dt = old ? (s.time - old.time) / 1000 : 0;
    const e = s.engine, o = old ? old.engine : {};
    const pin = rate(e.packetsIn, o.packetsIn, dt), pout = rate(e.packetsOut, o.packetsOut, dt);
    const notifies = s.chat && old && old.chat ? rate(s.chat.notifies, old.chat.notifies, dt) : null;
    const handler = intervalP99(s.handler, old ? old.handler : null);
    push(series.connections, e.connections); push(series.in, pin); push(series.out, pout);
    push(series.notifies, notifies); push(series.handler, handler); push(series.lag, s.eventLoop.p99);
    $('t-connections').textContent = fmt(e.connections);
    $('t-in').textContent = fmt(pin); $('t-out').textContent = fmt(pout); $('t-notifies').textContent = fmt(notifies);
    $('t-handler').textContent = ms(handler); $('t-lag').textContent = ms(s.eventLoop.p99);
    $('t-users').textContent = s.chat ? fmt(s.chat.users) : '—';
    draw('c-connections', [{ data: series.connections, color: '--c' }]);
    draw('c-packets', [{ data: series.in, color: '--a' }, { data: series.out, color: '--b' }]);
    draw('c-notifies', [{ data: series.notifies, color: '--c' }]);
    draw('c-latency', [{ data: series.handler, color: '--a' }, { data: series.lag, color: '--d' }], { scale: 1000 });
    const rows = Object.keys(e.closes).map((r) => {
      const per = rate(e.closes[r], o.closes ? o.closes[r] : undefined, dt);
      return '<tr><td>' + r + '</td><td>' + fmt(e.closes[r]) + '</td><td>' + (per === null ? '—' : per.toFixed(1)) + '</td></tr>';
    });
    $('closes').innerHTML = rows.join('');
    const rooms = s.chat ? s.chat.busiestRooms : [];
    $('rooms').innerHTML = rooms.length === 0 ? '<tr><td colspan="2">' + (s.chat ? 'no occupied room' : 'not a chat server') + '</td></tr>'
      : rooms.map((r) => '<tr><td>' + r.room + '</td><td>' + r.members + '</td></tr>').join('');
    prev = s;
    state.samples++;
    state.times.push(s.time); if (state.times.length > 1000) state.times.shift();
    for (const r of [pin, pout, notifies]) { state.rates.push(r); if (state.rates.length > 1000) state.rates.shift(); }
    state.last = { connections: e.connections, packetsInPerSecond: pin, packetsOutPerSecond: pout, notifiesPerSecond: notifies, handlerP99: handler, eventLoopP99: s.eventLoop.p99 };
  }

  // One request at a time, one timer at most: a tab coming back never fires a burst of polls.
  let timer = null;
  let inFlight = false;
  async function poll() {
    timer = null;
    if (inFlight || document.hidden) return;
    inFlight = true;
    state.polls++;
    try {
      const res = await fetch('stats.json', { cache: 'no-store' });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const data = await res.json();
      render(data);
      $('status').textContent = 'live'; $('status').className = 'ok';
    } catch (err) {
      state.errors++;
      $('status').textContent = 'no answer (' + (err && err.message ? err.message : err) + '), retrying';
      $('status').className = 'bad';
    } finally {
      inFlight = false;
    }
    schedule(PERIOD_MS);
  }
  function schedule(ms) {
    if (timer !== null) clearTimeout(timer);
    timer = document.hidden ? null : setTimeout(poll, ms);
  }
  // Hidden: no polling (the server does no work for a tab nobody looks at). Visible or resumed: a sample now.
  document.addEventListener('visibilitychange', () => schedule(0));
  document.addEventListener('resume', () => schedule(0));
  window.addEventListener('pageshow', () => schedule(0));
  poll();
})();
</script>
</body>
</html>
`;
