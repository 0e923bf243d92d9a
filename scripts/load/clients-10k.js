#!/usr/bin/env node
'use strict';
// 10,000 concurrent chat clients: every one logged in and in a room, chatting
// at a low rate, against `iocpnet chat-server` on this machine. The load
// generator holds the clients (bench/loadgen, epoll, source addresses
// 127.0.0.1..4 so that ephemeral ports do not run short); the server runs
// with its descriptor limit raised. Fails on any client error, refused
// set-up or server-side disconnect, and reports the chat latency
// percentiles and the server's memory and CPU.
//
//   npm run clients:10k
//   npm run clients:10k -- --backend js --duration-s 120 --json 10k.json
//
// Linux only. Exit code 0 = pass, 1 = fail, 2 = usage error.

const fs = require('node:fs');
const path = require('node:path');
const { ROOT, ensureCompiled, startServer, fdCount, runLoadgen, sleep, log, numberIn, backendName, scriptProgram } = require('./harness.js');

/** @typedef {import('../../bench/proc-stats').ProcessSample} ProcessSample */
/**
 * @typedef {object} Options
 * @property {number} clients
 * @property {number} roomUsers
 * @property {number} rate chats per second per client
 * @property {number} warmupS
 * @property {number} durationS
 * @property {'native' | 'js'} backend
 * @property {number} threads load generator threads
 * @property {string} [json]
 */

const DEFAULTS = {
  clients: 10000,
  roomUsers: 10,
  rate: 0.2,
  warmupS: 10,
  durationS: 60,
  backend: /** @type {'native' | 'js'} */ ('native'),
  threads: 1,
  json: undefined,
};

/**
 * @param {string[]} argv
 * @returns {Options}
 */
function parseArgs(argv) {
  const cmd = scriptProgram('clients-10k', 'Holds concurrent chat clients, each logged in and in a room, chatting at a low rate.')
    .option('--clients <n>', 'concurrent clients, each logged in and in a room', numberIn(1, 60000), DEFAULTS.clients)
    .option('--room-users <n>', 'users per room', numberIn(1, 100), DEFAULTS.roomUsers)
    .option('--rate <x>', 'chats per second per client', numberIn(0.001, 100), DEFAULTS.rate)
    .option('--warmup-s <n>', 'seconds of chat before measuring', numberIn(0, 3600), DEFAULTS.warmupS)
    .option('--duration-s <n>', 'seconds measured', numberIn(1, 3600), DEFAULTS.durationS)
    .option('--backend <name>', 'native | js', backendName, DEFAULTS.backend)
    .option('--threads <n>', 'load generator threads', numberIn(1, 16), DEFAULTS.threads)
    .option('--json <file>', "write the summary and the load generator's report to FILE")
    .parse(argv, { from: 'user' });
  // The shape the options above give (commander's opts<T>()).
  const o = /** @type {Options} */ (cmd.opts());
  if (o.clients % o.roomUsers !== 0) cmd.error('--clients must be a multiple of --room-users', { exitCode: 2 });
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (process.platform !== 'linux') throw new Error('Linux only');
  ensureCompiled();
  const procStats = /** @type {typeof import('../../bench/proc-stats')} */ (require(path.join(ROOT, 'dist', 'bench', 'proc-stats.js')));
  const { ensureLoadgen } = /** @type {typeof import('../../bench/loadgen-build')} */ (require(path.join(ROOT, 'dist', 'bench', 'loadgen-build.js')));
  const loadgen = ensureLoadgen(ROOT, log);

  const rooms = o.clients / o.roomUsers;
  // Head room over the clients, so that a slow close on the server's side never turns a set-up into SERVER_FULL.
  const limit = Math.ceil(o.clients * 1.2);
  const server = await startServer(o, rooms, limit, ['--max-users', String(limit)]);
  const { pid, port } = server;
  let serverExited = false;
  server.child.once('exit', () => (serverExited = true));
  log(`server pid ${pid} (${o.backend}) on 127.0.0.1:${port}, limit ${limit} connections, ${rooms} rooms of ${o.roomUsers}`);

  let summary;
  /** @type {import('./harness.js').LoadgenReport | undefined} */
  let report;
  /** @type {string[]} */
  const failures = [];
  try {
    await sleep(300);
    const base = procStats.sample(pid);
    /** @type {{ ready?: ProcessSample, readyFds?: number, start?: ProcessSample, end?: ProcessSample, endFds?: number }} */
    const at = {};
    const run = runLoadgen(
      loadgen,
      [
        '--scenario',
        'chat',
        '--port',
        String(port),
        '--connections',
        String(o.clients),
        '--room-users',
        String(o.roomUsers),
        '--rate',
        String(o.rate),
        '--warmup',
        String(o.warmupS),
        '--duration',
        String(o.durationS),
        '--threads',
        String(o.threads),
        '--source-addresses',
        '4',
        '--setup-timeout',
        '180',
      ],
      (line) => {
        at.ready = procStats.sample(pid);
        at.readyFds = fdCount(pid);
        log(`ready: ${line.slice(1)}`);
      },
      () => {
        at.end = procStats.sample(pid);
        at.endFds = fdCount(pid);
      },
    );
    // The start of the measured window is not signalled to onReady's caller; sample it by time.
    const startTimer = setInterval(() => {
      if (at.ready && !at.start && Date.now() - at.ready.atMs >= o.warmupS * 1000) at.start = procStats.sample(pid);
    }, 100);
    const watchdog = setTimeout(
      () => {
        log('the load generator did not stop in time; killing it');
        run.child.kill('SIGKILL');
      },
      (180 + o.warmupS + o.durationS + 60) * 1000,
    );
    const result = await run.done;
    clearTimeout(watchdog);
    clearInterval(startTimer);
    report = result.report;
    if (!report) throw new Error(`the load generator gave no report (exit ${result.code}): ${result.stderr.join(' ')}`);

    if (serverExited) failures.push('the server exited during the run');
    if (report.ready !== o.clients || report.failed > 0) failures.push(`clients ready ${report.ready}/${o.clients}, failed ${report.failed}`);
    const errs = Object.entries(report.errors).filter(([k, v]) => k !== 'last_errno' && k !== 'last_result' && v > 0);
    if (errs.length > 0) failures.push(`client errors: ${errs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
    if (Object.keys(report.disconnect_notify).length > 0) failures.push(`clients were disconnected: ${JSON.stringify(report.disconnect_notify)}`);
    if (report.latency_us.count === 0) failures.push('no chat latency was recorded');

    const latency = report.latency_us;
    const window = at.start && at.end ? (at.end.atMs - at.start.atMs) / 1000 : undefined;
    summary = {
      backend: o.backend,
      clients: o.clients,
      rooms,
      roomUsers: o.roomUsers,
      ratePerClient: o.rate,
      setupS: report.setup_s,
      chatsPerS: report.requests_per_s,
      notifiesPerS: report.throughput.value,
      latencyMs: Object.fromEntries(/** @type {const} */ (['p50', 'p90', 'p99', 'p999', 'max']).map((k) => [k, latency[k] / 1000])),
      latencySamples: report.latency_us.count,
      errors: report.errors,
      serverFdsReady: at.readyFds,
      serverRssBaseMiB: base ? base.rssKiB / 1024 : null,
      serverRssReadyMiB: at.ready ? at.ready.rssKiB / 1024 : null,
      serverPeakRssMiB: at.end ? at.end.hwmKiB / 1024 : null,
      serverCpuPct: window && at.start && at.end ? (100 * (at.end.cpuSeconds - at.start.cpuSeconds)) / window : null,
      loadgenCpuPct: report.loadgen_cpu_pct,
      pass: failures.length === 0,
      failures,
    };
  } finally {
    if (!serverExited) {
      server.child.kill('SIGTERM');
      await Promise.race([new Promise((r) => server.child.once('exit', r)), sleep(20000)]);
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    }
  }

  if (o.json) fs.writeFileSync(o.json, `${JSON.stringify({ summary, loadgen: report }, null, 1)}\n`);
  const s = summary;
  const l = s.latencyMs;
  /**
   * @param {number | null | undefined} x
   * @param {number} [d] decimals
   */
  const fmt = (x, d = 1) => (x === null || x === undefined ? '?' : x.toFixed(d));
  console.log(
    `clients-10k ${s.pass ? 'PASS' : 'FAIL'}: ${s.backend}, ${s.clients} clients in ${s.rooms} rooms of ${s.roomUsers}, ready in ${fmt(s.setupS)} s; ` +
      `${fmt(s.chatsPerS, 0)} chats/s, ${fmt(s.notifiesPerS, 0)} notifies/s; chat latency p50 ${fmt(l.p50, 2)} ms, p99 ${fmt(l.p99, 2)} ms, ` +
      `p99.9 ${fmt(l.p999, 2)} ms, max ${fmt(l.max, 1)} ms; server RSS ${fmt(s.serverRssReadyMiB)} MiB with every client in, ` +
      `peak ${fmt(s.serverPeakRssMiB)} MiB, CPU ${fmt(s.serverCpuPct, 0)}%; errors ${Object.entries(s.errors)
        .filter(([k]) => k !== 'last_errno' && k !== 'last_result')
        .reduce((a, [, v]) => a + v, 0)}` +
      (s.pass ? '' : `\n  ${s.failures.join('\n  ')}`),
  );
  process.exitCode = s.pass ? 0 : 1;
}

main().catch((err) => {
  console.error(`clients-10k: ${err instanceof Error ? err.stack || err.message : String(err)}`);
  process.exit(1);
});
