#!/usr/bin/env node
'use strict';
// Soak: the chat server under a steady chat load plus churn (clients that
// log in, enter a room, chat, leave or drop, and reconnect under the same
// user id), for a bounded number of minutes. The server's RSS, open
// descriptors and CPU are sampled from /proc every few seconds; after the
// warm-up a least-squares line is fitted to RSS and to descriptors, and the
// run fails if either trends upward past its bound, if the descriptors do
// not return to their baseline once the load is gone, or if any client saw
// an error.
//
//   npm run soak -- --minutes 3
//   npm run soak -- --minutes 30 --backend js --json soak.json
//
// Linux only (/proc). Exit code 0 = pass, 1 = fail, 2 = usage error.

const fs = require('node:fs');
const path = require('node:path');
const {
  ROOT,
  ensureCompiled,
  startServer,
  fdCount,
  runLoadgen,
  sleep,
  log,
  numberIn,
  backendName,
  scriptProgram,
  ChatConnection,
  ID,
  loginBody,
  enterBody,
} = require('./harness.js');

/**
 * @typedef {object} Options
 * @property {number} minutes
 * @property {'native' | 'js'} backend
 * @property {number} users
 * @property {number} roomUsers
 * @property {number} rate chats per second per user
 * @property {number} churn churn loops
 * @property {number} churnPauseMs
 * @property {number} sampleS
 * @property {number} warmupMinutes
 * @property {number} maxRssSlope
 * @property {number} maxFdSlope
 * @property {string} [json]
 * @property {string} nodeFlags
 * @property {string} [serverLog]
 */
/** @typedef {import('./harness.js').ChurnState} ChurnState */
/** @typedef {{ t: number, rssKiB: number, fds: number, cpuPct: number, cycles: number }} Sample */

const DEFAULTS = {
  minutes: 3,
  backend: /** @type {'native' | 'js'} */ ('native'),
  users: 1000,
  roomUsers: 10,
  rate: 1,
  churn: 8,
  churnPauseMs: 100,
  sampleS: 5,
  warmupMinutes: undefined,
  // RSS bound, MiB per minute after the warm-up. With no leak, RSS moves in a
  // sawtooth of about 9 MiB with a period of about 15 minutes (V8 lets
  // promoted garbage pile up until a full collection): the slope fitted to a
  // 2-minute window reaches +0.6 MiB/min, to 25 minutes +0.02 MiB/min (native
  // backend, default load). A leak of 1 KiB per churn cycle at the default
  // ~70 cycles/s is +4 MiB/min.
  maxRssSlope: 2,
  // Descriptor bound, per minute: churn keeps up to --churn sockets in
  // flight, so single samples vary by that much; a leak of one socket per
  // hundred cycles is +40/min. Once every client is gone the count must also
  // be back at its baseline exactly.
  maxFdSlope: 2,
  json: undefined,
  nodeFlags: '',
  serverLog: undefined,
};

/**
 * @param {string[]} argv
 * @returns {Options}
 */
function parseArgs(argv) {
  const cmd = scriptProgram(
    'soak',
    "Runs the chat server (a child process) under the load generator's chat scenario at a fixed rate, plus churn " +
      'clients, samples its RSS, descriptors and CPU, and fails if RSS or descriptors trend upward after the warm-up.',
  )
    .option('--minutes <n>', 'length of the run; the load generator runs for an hour at most', numberIn(0.5, 60), DEFAULTS.minutes)
    .option('--backend <name>', 'native | js', backendName, DEFAULTS.backend)
    .option('--users <n>', 'chat users held by the load generator', numberIn(1, 50000), DEFAULTS.users)
    .option('--room-users <n>', 'users per room', numberIn(1, 100), DEFAULTS.roomUsers)
    .option('--rate <x>', 'chats per second per user', numberIn(0.01, 1000), DEFAULTS.rate)
    .option('--churn <n>', 'churn loops: connect, login, enter, chat, leave or drop, reconnect', numberIn(0, 1000), DEFAULTS.churn)
    .option('--churn-pause-ms <n>', "pause between one loop's cycles", numberIn(0, 60000), DEFAULTS.churnPauseMs)
    .option('--sample-s <n>', 'seconds between samples', numberIn(0.5, 600), DEFAULTS.sampleS)
    .option('--warmup-minutes <n>', 'samples before this are not fitted (default: a third of the run, at most 5)', numberIn(0, 600))
    .option('--max-rss-slope <x>', 'fail above this RSS trend, MiB/min', numberIn(0, 1e6), DEFAULTS.maxRssSlope)
    .option('--max-fd-slope <x>', 'fail above this descriptor trend, per minute', numberIn(0, 1e6), DEFAULTS.maxFdSlope)
    .option('--json <file>', 'write every sample and the summary to FILE')
    .option('--node-flags <flags>', 'flags for the server\'s node, e.g. "--trace-gc"', DEFAULTS.nodeFlags)
    .option('--server-log <file>', 'write what the server prints to FILE')
    .parse(argv, { from: 'user' });
  // The shape the options above give (commander's opts<T>()); warmupMinutes is set below when not given.
  const o = /** @type {Options} */ (cmd.opts());
  if (o.users % o.roomUsers !== 0) cmd.error('--users must be a multiple of --room-users', { exitCode: 2 });
  if (o.warmupMinutes === undefined) o.warmupMinutes = Math.min(5, o.minutes / 3);
  if (o.warmupMinutes >= o.minutes) cmd.error('--warmup-minutes must be shorter than --minutes', { exitCode: 2 });
  return o;
}

// ---- churn ----

/**
 * A churn loop: the same user id over and over, in one of the churn rooms.
 * Two cycles in three end with ROOM_LEAVE and a FIN, waiting for the
 * server's FIN; every third drops the connection (RST) while in the room.
 * @param {number} k the loop's number
 * @param {number} port
 * @param {number} firstRoom the first churn room
 * @param {number} rooms churn rooms
 * @param {Options} o
 * @param {ChurnState} state
 */
async function churnLoop(k, port, firstRoom, rooms, o, state) {
  const userId = `churn${k}`;
  let cycle = 0;
  while (!state.stopping) {
    cycle++;
    let c;
    try {
      c = await ChatConnection.open(port);
      let login = await c.request(ID.LOGIN, loginBody(userId), ID.LOGIN_RES);
      // After a dropped connection the id is free once the server has handled the reset; until then
      // LOGIN_USER_ALREADY (31) is the right answer, and a failed login may be retried (PROTOCOL.md 3).
      for (let retry = 0; login === 31 && retry < 100; retry++) {
        state.relogins++;
        await sleep(20);
        login = await c.request(ID.LOGIN, loginBody(userId), ID.LOGIN_RES);
      }
      if (login !== 0) throw new Error(`login of ${userId} refused with ${login}`);
      const enter = await c.request(ID.ENTER, enterBody(firstRoom + ((k + cycle) % rooms)), ID.ENTER_RES);
      if (enter !== 0) throw new Error(`enter refused with ${enter}`);
      const chat = await c.request(ID.CHAT, Buffer.from(`churn ${k} cycle ${cycle}\0`), ID.CHAT_RES);
      if (chat !== 0) throw new Error(`chat refused with ${chat}`);
      if (cycle % 3 === 0) {
        c.socket.resetAndDestroy();
        state.drops++;
        await c.ended;
      } else {
        const leave = await c.request(ID.LEAVE, Buffer.alloc(0), ID.LEAVE_RES);
        if (leave !== 0) throw new Error(`leave refused with ${leave}`);
        c.socket.end();
        await c.ended;
      }
      state.cycles++;
    } catch (err) {
      state.errors++;
      state.lastError = err instanceof Error ? err.message : String(err);
      if (c) c.socket.destroy();
      await sleep(200);
    }
    if (o.churnPauseMs > 0) await sleep(o.churnPauseMs);
  }
}

// ---- /proc ----

/** @type {typeof import('../../bench/proc-stats')} */
let procStats;
/** @param {number} pid */
function sampleServer(pid) {
  const s = procStats.sample(pid);
  if (s === undefined) return undefined;
  let fds;
  try {
    fds = fdCount(pid);
  } catch {
    return undefined;
  }
  return { atMs: Date.now(), cpuSeconds: s.cpuSeconds, rssKiB: s.rssKiB, fds };
}

/**
 * The server's resident memory; throws when it is gone.
 * @param {number} pid
 */
function serverRssKiB(pid) {
  const m = procStats.memory(pid);
  if (m === undefined) throw new Error(`the server (pid ${pid}) is gone`);
  return m.rssKiB;
}

/**
 * Least-squares line through (x, y): slope, intercept, and the residual standard deviation.
 * @param {number[]} xs
 * @param {number[]} ys
 */
function fitLine(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  const slope = sxx === 0 ? 0 : sxy / sxx;
  const intercept = my - slope * mx;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (ys[i] - (intercept + slope * xs[i])) ** 2;
  return { slope, intercept, residualSd: n > 2 ? Math.sqrt(ss / (n - 2)) : 0 };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (process.platform !== 'linux') throw new Error('the soak reads /proc: Linux only');
  ensureCompiled();
  procStats = /** @type {typeof import('../../bench/proc-stats')} */ (require(path.join(ROOT, 'dist', 'bench', 'proc-stats.js')));
  const { ensureLoadgen } = /** @type {typeof import('../../bench/loadgen-build')} */ (require(path.join(ROOT, 'dist', 'bench', 'loadgen-build.js')));
  const loadgen = ensureLoadgen(ROOT, log);

  const chatRooms = o.users / o.roomUsers;
  const churnRooms = Math.max(1, Math.ceil(o.churn / 2));
  const server = await startServer(o, chatRooms + churnRooms, o.users + o.churn + 64);
  const { pid, port } = server;
  let serverExited = false;
  server.child.once('exit', () => (serverExited = true));
  log(`server pid ${pid} (${o.backend}) on 127.0.0.1:${port}`);

  /** @type {ChurnState} */
  const state = { stopping: false, cycles: 0, drops: 0, relogins: 0, errors: 0, lastError: '' };
  /** @type {Sample[]} */
  const samples = [];
  /** @type {NodeJS.Timeout | undefined} */
  let sampler;
  /** @type {ReturnType<typeof runLoadgen> | undefined} */
  let loadgenRun;
  /** @type {string[]} */
  const failures = [];
  let summary;
  try {
    // Each IO thread makes its lazy allocations (libuv keeps a spare descriptor per loop) before the baseline.
    for (let i = 0; i < 4; i++) {
      const c = await ChatConnection.open(port);
      c.socket.end();
      await c.ended;
    }
    await sleep(500);
    const baseFds = fdCount(pid);
    const baseRss = serverRssKiB(pid);

    const durationS = Math.round(o.minutes * 60);
    /** @type {(line: string) => void} */
    let ready = () => undefined;
    /** @type {Promise<string>} */
    const readyPromise = new Promise((resolve) => (ready = resolve));
    loadgenRun = runLoadgen(
      loadgen,
      [
        '--scenario',
        'chat',
        '--port',
        String(port),
        '--connections',
        String(o.users),
        '--room-users',
        String(o.roomUsers),
        '--rate',
        String(o.rate),
        '--warmup',
        '0',
        '--duration',
        String(durationS),
        '--threads',
        '1',
        '--source-addresses',
        '4',
      ],
      (line) => ready(line),
      // Sampling ends with the load, before the load generator closes its connections.
      () => clearInterval(sampler),
    );
    const readyLine = await Promise.race([readyPromise, loadgenRun.done.then((r) => `exited ${r.code}: ${r.stderr.join(' ')}`)]);
    if (!String(readyLine).startsWith('@ready')) throw new Error(`the load generator did not set up its users: ${readyLine}`);
    log(`${o.users} chat users ready (${readyLine.split(' ').slice(1).join(' ')}), ${o.rate} chats/s each; ${o.churn} churn loops`);

    const start = Date.now();
    const churn = Array.from({ length: o.churn }, (_, k) => churnLoop(k, port, chatRooms, churnRooms, o, state));
    let last = sampleServer(pid);
    const take = () => {
      const s = sampleServer(pid);
      if (s === undefined || last === undefined) return;
      const cpuPct = (100 * (s.cpuSeconds - last.cpuSeconds)) / ((s.atMs - last.atMs) / 1000);
      samples.push({ t: (s.atMs - start) / 1000, rssKiB: s.rssKiB, fds: s.fds, cpuPct, cycles: state.cycles });
      last = s;
    };
    let nextReport = 0;
    sampler = setInterval(() => {
      take();
      const s = samples[samples.length - 1];
      if (s && s.t >= nextReport) {
        nextReport = s.t + 60;
        log(
          `t=${s.t.toFixed(0)} s rss=${(s.rssKiB / 1024).toFixed(1)} MiB fds=${s.fds} cpu=${s.cpuPct.toFixed(0)}% churn cycles=${state.cycles} errors=${state.errors}`,
        );
      }
    }, o.sampleS * 1000);

    // The load generator stops by itself after durationS; churn stops with it.
    const watchdog = setTimeout(
      () => {
        log('the load generator did not stop in time; killing it');
        loadgenRun?.child.kill('SIGKILL');
      },
      (durationS + 120) * 1000,
    );
    const result = await loadgenRun.done;
    clearTimeout(watchdog);
    clearInterval(sampler);
    state.stopping = true;
    await Promise.all(churn);
    const report = result.report;

    // Once every client is gone, the descriptors are back where they started.
    let endFds = fdCount(pid);
    for (let i = 0; i < 100 && endFds !== baseFds; i++) {
      await sleep(100);
      endFds = fdCount(pid);
    }
    const endRss = serverRssKiB(pid);

    const fitted = samples.filter((s) => s.t >= o.warmupMinutes * 60);
    if (fitted.length < 5) throw new Error(`only ${fitted.length} samples after the warm-up; run longer or sample more often`);
    const minutes = fitted.map((s) => s.t / 60);
    const rssFit = fitLine(
      minutes,
      fitted.map((s) => s.rssKiB / 1024),
    );
    const fdFit = fitLine(
      minutes,
      fitted.map((s) => s.fds),
    );
    const cpu = samples.map((s) => s.cpuPct);
    const meanCpu = cpu.reduce((a, b) => a + b, 0) / cpu.length;

    if (serverExited) failures.push('the server exited during the run');
    if (!report) failures.push(`the load generator gave no report (exit ${result.code}): ${result.stderr.join(' ')}`);
    else {
      const errs = Object.entries(report.errors).filter(([k, v]) => k !== 'last_errno' && k !== 'last_result' && v > 0);
      if (report.ready !== o.users || report.failed > 0) failures.push(`chat users ready ${report.ready}/${o.users}, failed ${report.failed}`);
      if (errs.length > 0) failures.push(`chat load errors: ${errs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
      if (Object.keys(report.disconnect_notify).length > 0) failures.push(`chat users were disconnected: ${JSON.stringify(report.disconnect_notify)}`);
    }
    if (state.errors > 0) failures.push(`${state.errors} churn errors, last: ${state.lastError}`);
    if (state.cycles === 0 && o.churn > 0) failures.push('no churn cycle completed');
    if (rssFit.slope > o.maxRssSlope) failures.push(`RSS trends up ${rssFit.slope.toFixed(2)} MiB/min (bound ${o.maxRssSlope})`);
    if (fdFit.slope > o.maxFdSlope) failures.push(`descriptors trend up ${fdFit.slope.toFixed(2)}/min (bound ${o.maxFdSlope})`);
    if (endFds !== baseFds) failures.push(`${endFds - baseFds} descriptors left open after every client left (${baseFds} -> ${endFds})`);

    summary = {
      backend: o.backend,
      minutes: o.minutes,
      users: o.users,
      rate: o.rate,
      churnLoops: o.churn,
      churnCycles: state.cycles,
      churnDrops: state.drops,
      churnRelogins: state.relogins,
      churnErrors: state.errors,
      chats: report ? Math.round(report.requests_per_s * report.duration_s) : null,
      notifiesPerS: report ? report.throughput.value : null,
      chatLatencyUs: report ? report.latency_us : null,
      warmupMinutes: o.warmupMinutes,
      baseRssMiB: baseRss / 1024,
      rssAfterWarmupMiB: fitted[0].rssKiB / 1024,
      rssEndOfLoadMiB: samples[samples.length - 1].rssKiB / 1024,
      rssIdleMiB: endRss / 1024,
      peakRssMiB: Math.max(...samples.map((s) => s.rssKiB)) / 1024,
      rssSlopeMiBPerMin: rssFit.slope,
      rssResidualSdMiB: rssFit.residualSd,
      fdsBase: baseFds,
      fdsLoadedMin: Math.min(...fitted.map((s) => s.fds)),
      fdsLoadedMax: Math.max(...fitted.map((s) => s.fds)),
      fdsEnd: endFds,
      fdSlopePerMin: fdFit.slope,
      meanCpuPct: meanCpu,
      samples: samples.length,
      pass: failures.length === 0,
      failures,
    };
  } finally {
    if (sampler) clearInterval(sampler);
    state.stopping = true;
    if (loadgenRun && loadgenRun.child.exitCode === null) loadgenRun.child.kill('SIGKILL');
    if (!serverExited) {
      server.child.kill('SIGTERM');
      await Promise.race([new Promise((r) => server.child.once('exit', r)), sleep(15000)]);
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    }
  }

  if (o.json) fs.writeFileSync(o.json, `${JSON.stringify({ summary, samples }, null, 1)}\n`);
  const s = summary;
  const lat = s.chatLatencyUs;
  console.log(
    `soak ${s.pass ? 'PASS' : 'FAIL'}: ${s.backend}, ${s.minutes} min, ${s.users} users at ${s.rate} chat/s + ${s.churnLoops} churn loops ` +
      `(${s.churnCycles} cycles, ${s.churnDrops} dropped, ${s.churnRelogins} login retries); RSS ${s.rssAfterWarmupMiB.toFixed(1)} -> ${s.rssEndOfLoadMiB.toFixed(1)} MiB, ` +
      `trend ${s.rssSlopeMiBPerMin >= 0 ? '+' : ''}${s.rssSlopeMiBPerMin.toFixed(2)} MiB/min (bound ${o.maxRssSlope}); ` +
      `fds ${s.fdsBase} base, ${s.fdsLoadedMin}..${s.fdsLoadedMax} loaded, ${s.fdsEnd} after, trend ${s.fdSlopePerMin.toFixed(2)}/min; ` +
      `CPU ${s.meanCpuPct.toFixed(0)}%; chat p99 ${lat ? (lat.p99 / 1000).toFixed(1) : '?'} ms; errors ${s.churnErrors}` +
      (s.pass ? '' : `\n  ${s.failures.join('\n  ')}`),
  );
  process.exitCode = s.pass ? 0 : 1;
}

main().catch((err) => {
  console.error(`soak: ${err instanceof Error ? err.stack || err.message : String(err)}`);
  process.exit(1);
});
