/**
 * The benchmark: native vs pure-JS backend vs the reference server (the
 * yardstick, bench/reference), scenario by scenario.
 *
 *   npm run bench -- --quick
 *   node dist/bench/run.js --scenarios echo,chat100 --backends native,reference --rounds 5 --pin
 *   npm run bench -- --scenarios chat100 --backends native --metrics-paired --rounds 8
 *
 * Every run starts a fresh server process (the echo server of
 * bench/echo-server.ts, the chat server of the CLI, or the reference server
 * in the matching mode), drives it with the C++ load generator
 * (bench/loadgen, built on demand into build-loadgen/), samples the server's
 * CPU and memory from /proc around the measured window, and stops it.
 * Backends alternate run by run (native, js, reference, native, ...), so
 * drift of the machine hits all alike; the table shows medians.
 *
 * The cluster scenarios (npm run bench:cluster) run the same rooms-of-100 load
 * on one node without Redis, one node on Redis, and two nodes on Redis (each
 * room's members alternating between them), with a redis-server of the run's
 * own; they add its CPU and its commands per chat (INFO commandstats).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { MultiBar, Presets } from 'cli-progress';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureLoadgen, ensureReference } from './loadgen-build';
import { pollMetrics } from './metrics-poller';
import { sample, type ProcessSample } from './proc-stats';
import { RedisServer, redisServerAvailable } from './redis-server';
import { runLoadgen, startServer, type ServerProcess } from './processes';
import { formatPairs, formatTable, metricsPairs, renderSvg, summarize, type RunRecord } from './report';
import {
  CLUSTER_SCENARIOS,
  DEFAULT_SCENARIOS,
  REFERENCE,
  SCENARIO_NAMES,
  computeFigures,
  planScenario,
  type LoadgenReport,
  type PlanSettings,
  type RedisWindow,
  type ScenarioName,
  type ScenarioPlan,
  type ServerSamples,
} from './scenarios';

const ROOT = path.resolve(__dirname, '..', '..');

// The load settings are PlanSettings', named as the command line names them.
interface CliOptions extends Omit<PlanSettings, 'warmupS' | 'durationS'> {
  scenarios: ScenarioName[];
  backends: string[];
  rounds: number;
  warmup?: number;
  duration?: number;
  ioThreads?: number;
  serverHost?: string;
  serverPort?: number;
  label: string;
  serverArg: string[];
  metricsPort?: number;
  metricsPaired: boolean;
  metricsScrapeInterval: number;
  serverCpus?: string;
  loadgenCpus?: string;
  pin: boolean;
  chatServerCli: string;
  echoServer: string;
  json: string;
  svg?: string;
  progress: boolean;
  verbose: boolean;
}

function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer in [${min}, ${max}]`);
    return n;
  };
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 3600) throw new InvalidArgumentError('expected seconds in [0, 3600]');
  return n;
}

function scrapeSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 1 || n > 3600) throw new InvalidArgumentError('expected seconds in [1, 3600]');
  return n;
}

function rate(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1e6) throw new InvalidArgumentError('expected a rate in [0, 1e6]');
  return n;
}

function scenarioList(value: string): ScenarioName[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .flatMap((s) => (s === 'cluster' ? [...CLUSTER_SCENARIOS] : [s]));
  for (const n of names) {
    if (!(SCENARIO_NAMES as readonly string[]).includes(n)) {
      throw new InvalidArgumentError(`unknown scenario '${n}' (known: ${SCENARIO_NAMES.join(', ')})`);
    }
  }
  if (names.length === 0) throw new InvalidArgumentError('no scenario given');
  return [...new Set(names)] as ScenarioName[];
}

const BACKENDS = ['native', 'js', REFERENCE];

function backendList(value: string): string[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) if (!BACKENDS.includes(n)) throw new InvalidArgumentError(`unknown backend '${n}' (${BACKENDS.join(', ')})`);
  if (names.length === 0) throw new InvalidArgumentError('no backend given');
  return [...new Set(names)];
}

function cpuList(value: string): string {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(value)) throw new InvalidArgumentError('expected a CPU list for taskset -c, like 1 or 0,2-3');
  return value;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseArgs(argv: string[]): CliOptions {
  const program = new Command('bench')
    .description('iocpnet benchmark: native vs pure-JS backend vs a plain C++ epoll reference server, driven by a C++ epoll load generator')
    .option(
      '--scenarios <list>',
      `comma-separated: ${SCENARIO_NAMES.join(',')}; 'cluster' = ${CLUSTER_SCENARIOS.join(',')} (need redis-server)`,
      scenarioList,
      [...DEFAULT_SCENARIOS],
    )
    .option('--backends <list>', `comma-separated: ${BACKENDS.join(',')} (run alternately; ${REFERENCE} is the yardstick)`, backendList, [...BACKENDS])
    .option('--rounds <n>', 'runs per scenario and backend (medians are reported)', integer(1, 100), 3)
    .option('--quick', 'short warm-up and measurement (whole default set in under 2 minutes)', false)
    .option('--warmup <s>', 'seconds of warm-up before measuring (default 2, quick 0.5)', seconds)
    .option('--duration <s>', 'seconds measured (default 5, quick 1.5)', seconds)
    .option('--loadgen-threads <n>', 'epoll threads of the load generator', integer(1, 64), 1)
    .addOption(
      new Option('--transport <name>', "the load generator's clients: raw TCP framing, or WebSocket on the same port")
        .choices(['tcp', 'websocket'])
        .default('tcp'),
    )
    .option('--echo-connections <n>', 'echo: connections', integer(1, 100000), 100)
    .option('--echo-inflight <n>', 'echo: packets in flight per connection', integer(1, 10000), 4)
    .option('--echo-body-size <n>', 'echo: body bytes', integer(8, 8000), 32)
    .option('--chat-users <n>', 'chat10/chat100: users (connections)', integer(1, 100000), 1000)
    .option('--chat-rate <x>', 'chat: chats/s per user; 0 = closed loop', rate, 0)
    .option('--message-size <n>', 'chat: message bytes', integer(16, 256), 32)
    .option('--connect-parallel <n>', 'connect: cycles in parallel', integer(1, 10000), 32)
    .option('--idle-connections <n>', 'idle: connections held', integer(1, 999_999), 10000)
    .option('--cluster-users <n>', 'cluster scenarios: users (connections), in rooms of 100', integer(100, 100000), 1000)
    .option('--cluster-rate <x>', 'cluster scenarios: chats/s per user; 0 = closed loop', rate, 1)
    .option('--io-threads <n>', 'native backend IO threads (default: the server default)', integer(1, 64))
    .option('--server-host <address>', 'use a running server at this IPv4 address instead of spawning one')
    .option('--server-port <n>', 'port of the running server (with --server-host)', integer(1, 65535))
    .option('--label <name>', 'name of the running server in the results', 'external')
    .option(
      '--chat-server-cli <file>',
      "the script with the chat-server command (another build's, to compare builds)",
      path.join(ROOT, 'dist', 'lib', 'cli.js'),
    )
    .option(
      '--echo-server <file>',
      "the echo server script of the echo scenarios (another build's, to compare builds)",
      path.join(ROOT, 'dist', 'bench', 'echo-server.js'),
    )
    .option(
      '--metrics-port <n>',
      'chat scenarios: start the server with --metrics-port n and poll it as an open dashboard and a scraper do (see --metrics-scrape-interval)',
      integer(1, 65535),
    )
    .option(
      '--metrics-paired',
      'chat scenarios: each round runs the server twice back to back, metrics off and metrics on and polled (the order alternating), and reports the median of the on/off ratios',
      false,
    )
    .option(
      '--metrics-scrape-interval <s>',
      'with metrics on: seconds between two GET /metrics, as a Prometheus scrape interval (GET /stats.json stays once a second, as the open dashboard asks)',
      scrapeSeconds,
      15,
    )
    .option('--server-cpus <list>', 'run the spawned server on these CPUs (taskset -c)', cpuList)
    .option('--loadgen-cpus <list>', 'run the load generator on these CPUs (taskset -c)', cpuList)
    .option('--pin', 'the load generator on CPU 0, the server on the other CPUs (as if each had its own machine)', false)
    .option('--server-arg <arg>', 'extra argument for the spawned iocpnet server (repeatable; not for the reference server)', collect, [] as string[])
    .option('--json <file>', 'write every run and the medians here', path.join('.bench', 'bench.json'))
    .option('--svg <file>', 'write the ratio chart here (default: the json path with .svg)')
    .addOption(new Option('--no-progress', 'no progress bar'))
    .option('--verbose', 'print each run as it finishes', false)
    .parse(argv);
  const o = program.opts<CliOptions>();
  if ((o.serverHost === undefined) !== (o.serverPort === undefined)) {
    program.error('--server-host and --server-port go together');
  }
  if (o.metricsPaired && o.serverHost !== undefined) program.error('--metrics-paired spawns the servers: not with --server-host');
  if (o.pin) {
    const n = os.cpus().length;
    if (n < 2) program.error('--pin needs at least 2 CPUs');
    o.loadgenCpus ??= '0';
    o.serverCpus ??= n === 2 ? '1' : `1-${n - 1}`;
  }
  return o;
}

function planSettings(o: CliOptions): PlanSettings {
  return { ...o, warmupS: o.warmup, durationS: o.duration };
}

/** The server process for a plan: its script and arguments, or the reference server's command. */
/** The metrics port a run's server gets: --metrics-port, or with --metrics-paired any free one (0) for the runs with metrics. */
function metricsPortOf(plan: ScenarioPlan, metrics: boolean, o: CliOptions): number | undefined {
  if (plan.server !== 'chat' || !metrics) return undefined;
  return o.metricsPort ?? 0;
}

function serverCommand(plan: ScenarioPlan, backend: string, o: CliOptions, reference: string, metrics: boolean): { script: string; args: string[] } {
  const metricsPort = metricsPortOf(plan, metrics, o);
  // Headroom over the connections the scenario holds: the connect scenario
  // may briefly have more open while the server handles disconnects.
  const maxConnections = String(Math.max(1024, plan.connections * 2 + 64));
  const address = ['--host', '127.0.0.1', '--port', '0', '--max-connections', maxConnections];
  const rooms = ['--start-room', '0', '--max-rooms', String(Math.max(10, plan.rooms)), '--max-room-users', String(Math.max(10, plan.roomUsers))];
  if (backend === REFERENCE) return { script: reference, args: ['--mode', plan.server, ...address, ...rooms] };
  const io = o.ioThreads !== undefined && backend === 'native' ? ['--io-threads', String(o.ioThreads)] : [];
  if (plan.server === 'echo') {
    return {
      script: path.resolve(o.echoServer),
      args: ['--backend', backend, ...address, ...io, ...o.serverArg],
    };
  }
  return {
    script: path.resolve(o.chatServerCli),
    args: [
      'chat-server',
      '--backend',
      backend,
      ...address,
      ...rooms,
      ...io,
      ...(metricsPort === undefined ? [] : ['--metrics-port', String(metricsPort)]),
      ...o.serverArg,
    ],
  };
}

let activeServers: ServerProcess[] = [];
let activeRedis: RedisServer | undefined;

/** One sample of every node, summed (CPU and memory); undefined when one is gone. */
function sampleAll(servers: ServerProcess[]): ProcessSample | undefined {
  const all = servers.map((s) => sample(s.pid));
  if (all.length === 0 || all.some((s) => s === undefined)) return undefined;
  const list = all as ProcessSample[];
  return {
    atMs: list[0].atMs,
    machineCpuSeconds: list[0].machineCpuSeconds,
    cpuSeconds: list.reduce((a, s) => a + s.cpuSeconds, 0),
    // Every node's JS thread, summed like the rest; unknown if any is.
    ...(list.every((s) => s.jsThreadCpuSeconds !== undefined) ? { jsThreadCpuSeconds: list.reduce((a, s) => a + (s.jsThreadCpuSeconds ?? 0), 0) } : {}),
    rssKiB: list.reduce((a, s) => a + s.rssKiB, 0),
    hwmKiB: list.reduce((a, s) => a + s.hwmKiB, 0),
  };
}

/** The redis-server's CPU and commands between the two samples of the measured window. */
function redisWindow(at: Array<{ cpuSeconds: number; calls: Record<string, number> } | undefined>): RedisWindow | undefined {
  const [a, b] = at;
  if (a === undefined || b === undefined) return undefined;
  const delta = (name: string): number => (b.calls[name] ?? 0) - (a.calls[name] ?? 0);
  // The cluster's commands only: not the INFO (and the admin connection's set-up) that took the samples.
  const names = [...new Set([...Object.keys(a.calls), ...Object.keys(b.calls)])].filter((n) => n !== 'info' && !n.startsWith('client'));
  const commands = names.reduce((sum, n) => sum + delta(n), 0);
  const calls: Record<string, number> = {};
  for (const n of names) if (delta(n) !== 0) calls[n] = delta(n);
  return { cpuSeconds: b.cpuSeconds - a.cpuSeconds, commands, xadds: delta('xadd'), evals: delta('eval'), calls };
}

let runCounter = 0;

/** The port the server printed in "metrics on http://HOST:PORT/metrics", once it has (the line follows "listening on"). */
async function printedMetricsPort(server: ServerProcess, timeoutMs = 10000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const line of server.output) {
      const m = /metrics on http:\/\/[^\s/]+:(\d+)\/metrics/.exec(line);
      if (m) return Number(m[1]);
    }
    if (Date.now() > deadline) throw new Error(`the server did not print its metrics port within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function runOnce(
  plan: ScenarioPlan,
  backend: string,
  round: number,
  o: CliOptions,
  loadgen: string,
  reference: string,
  metrics: boolean,
): Promise<RunRecord> {
  // Fresh user ids every run: a long-lived external server may still be
  // logging out the users of the run before.
  const idPrefix = `r${(runCounter++ % 46656).toString(36)}`;
  const startedAt = performance.now();
  const record: RunRecord = {
    scenario: plan.name,
    backend,
    round,
    ok: false,
    elapsedMs: 0,
    figures: {},
    othersCpuPct: null,
    warnings: [],
    metrics: metricsPortOf(plan, metrics, o) !== undefined,
  };
  const samples: ServerSamples = {};
  let polledPort: number | undefined;
  const servers: ServerProcess[] = [];
  let redis: RedisServer | undefined;
  try {
    let host: string;
    let ports: number[];
    if (o.serverHost !== undefined && o.serverPort !== undefined) {
      host = o.serverHost;
      ports = [o.serverPort];
    } else {
      const cmd = serverCommand(plan, backend, o, reference, metrics);
      if (plan.redis) {
        redis = await RedisServer.start();
        activeRedis = redis;
      }
      const shown = backend === REFERENCE ? [path.relative(ROOT, cmd.script)] : ['node', path.relative(ROOT, cmd.script)];
      const pinned = o.serverCpus === undefined ? [] : ['taskset', '-c', o.serverCpus];
      for (let i = 0; i < plan.nodes; i++) {
        const args = redis === undefined ? cmd.args : [...cmd.args, '--redis', redis.url, '--node-id', `bench${i}`];
        const command = backend === REFERENCE ? [cmd.script, ...args] : [process.execPath, cmd.script, ...args];
        const server = await startServer(command, o.serverCpus);
        servers.push(server);
        activeServers.push(server);
        if (i === 0) record.server = { command: [...pinned, ...shown, ...args], samples };
        if (i === 0 && record.metrics) polledPort = await printedMetricsPort(server);
      }
      host = servers[0].host;
      ports = servers.map((s) => s.port);
      // Let start-up work (module loading, first GC) finish before the baseline.
      await new Promise((resolve) => setTimeout(resolve, 200));
      samples.base = sampleAll(servers);
    }
    const local = servers.length > 0;
    const redisAt: Array<Promise<{ cpuSeconds: number; calls: Record<string, number> } | undefined>> = [];
    const redisNow = (): void => {
      const r = redis;
      if (r === undefined) return;
      const cpu = r.cpuSeconds();
      redisAt.push(r.commandCalls().then((calls) => (cpu === undefined ? undefined : { cpuSeconds: cpu, calls })));
    };
    const args = [
      ...plan.loadgenArgs,
      '--id-prefix',
      idPrefix,
      '--host',
      host,
      ...(ports.length === 1 ? ['--port', String(ports[0])] : ['--ports', ports.join(',')]),
      '--warmup',
      String(plan.warmupS),
      '--duration',
      String(plan.durationS),
    ];
    const timeoutMs = (60 + plan.warmupS + plan.durationS + 30) * 1000;
    const poller = polledPort !== undefined ? pollMetrics(polledPort, o.metricsScrapeInterval * 1000) : undefined;
    const result = await runLoadgen(
      loadgen,
      args,
      timeoutMs,
      (phase) => {
        if (!local) return;
        if (phase === 'ready') samples.ready = sampleAll(servers);
        else if (phase === 'measure-start') {
          samples.measureStart = sampleAll(servers);
          redisNow();
        } else if (phase === 'measure-end') {
          samples.measureEnd = sampleAll(servers);
          redisNow();
        }
      },
      o.loadgenCpus,
    );
    poller?.stop();
    if (poller !== undefined && poller.requests() === 0) record.warnings.push('the metrics port never answered');
    record.loadAvg1 = os.loadavg()[0];
    if (local) samples.last = sampleAll(servers);
    record.loadgen = result.report;
    const redisInWindow = redisWindow(await Promise.all(redisAt));
    if (redisInWindow !== undefined) record.redis = redisInWindow;
    record.figures = computeFigures(plan, result.report, samples, redisInWindow);
    const r = result.report;
    record.othersCpuPct = othersCpu(samples, r);
    if (r.failed > 0) record.warnings.push(`${r.failed} of ${plan.connections} connections could not be set up`);
    const errs = Object.entries(r.errors).filter(([k, v]) => v > 0 && !k.startsWith('last_'));
    if (errs.length > 0) record.warnings.push(`load generator errors: ${errs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
    if (Object.keys(r.disconnect_notify).length > 0) record.warnings.push(`DISCONNECT_NOTIFY received: ${JSON.stringify(r.disconnect_notify)}`);
    if (r.loadgen_cpu_pct > 90 * o.loadgenThreads) {
      record.warnings.push(`the load generator used ${r.loadgen_cpu_pct.toFixed(0)}% CPU: it may be the bottleneck`);
    }
    // With users missing, a scenario no longer measures what it names.
    record.ok = r.failed === 0 && r.error === undefined;
    if (!record.ok) record.error = `only ${r.ready} of ${plan.connections} connections were set up (${r.error ?? 'failed'})`;
  } catch (err) {
    record.error = err instanceof Error ? err.message : String(err);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    activeServers = [];
    if (redis !== undefined) {
      await redis.stop();
      activeRedis = undefined;
    }
    record.elapsedMs = Math.round(performance.now() - startedAt);
  }
  return record;
}

/** CPU % of everything but the server and the load generator during the window. */
function othersCpu(samples: ServerSamples, report: LoadgenReport): number | null {
  const a = samples.measureStart;
  const b = samples.measureEnd;
  if (!a || !b || a.machineCpuSeconds === undefined || b.machineCpuSeconds === undefined) return null;
  const windowS = (b.atMs - a.atMs) / 1000;
  if (windowS <= 0) return null;
  const loadgenS = (report.loadgen_cpu_pct / 100) * report.duration_s;
  const others = b.machineCpuSeconds - a.machineCpuSeconds - (b.cpuSeconds - a.cpuSeconds) - loadgenS;
  return Math.max(0, (100 * others) / windowS);
}

function machine(): Record<string, string | number> {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
  };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv);
  const external = o.serverHost !== undefined;
  const backends = external ? [o.label] : o.backends;
  const settings = planSettings(o);
  const plans = o.scenarios.map((name) => planScenario(name, settings));

  if (!external) {
    for (const [server, file, what] of [
      ['chat', o.chatServerCli, 'the chat server CLI'],
      ['echo', o.echoServer, 'the echo server'],
    ] as const) {
      const script = path.resolve(file);
      if (plans.some((p) => p.server === server) && !fs.existsSync(script)) {
        throw new Error(`the ${server} scenarios need ${what} at ${script}; run tsc first`);
      }
    }
    if (plans.some((p) => p.redis) && !redisServerAvailable()) {
      throw new Error('the cluster scenarios need redis-server (apt-get install redis-server)');
    }
  }
  const loadgen = ensureLoadgen(ROOT, (line) => process.stderr.write(`${line}\n`));
  const reference = !external && backends.includes(REFERENCE) ? ensureReference(ROOT, (line) => process.stderr.write(`${line}\n`)) : '';

  // Without --metrics-paired every run has metrics as --metrics-port says. With it, a chat scenario's
  // round is two runs back to back, off then on in odd rounds and on then off in even ones, so that
  // drift of the machine and any order effect hit both alike. The reference server has neither
  // metrics nor a cluster: the scenarios on Redis run on the iocpnet backends only.
  const jobs: Array<{ plan: ScenarioPlan; backend: string; round: number; metrics: boolean }> = [];
  for (let round = 1; round <= o.rounds; round++) {
    for (const plan of plans) {
      for (const backend of backends) {
        if (plan.redis && backend === REFERENCE) continue;
        if (!o.metricsPaired || plan.server !== 'chat' || backend === REFERENCE)
          jobs.push({ plan, backend, round, metrics: o.metricsPort !== undefined && backend !== REFERENCE });
        else for (const metrics of round % 2 === 1 ? [false, true] : [true, false]) jobs.push({ plan, backend, round, metrics });
      }
    }
  }

  const bars = new MultiBar(
    {
      format: 'bench [{bar}] {value}/{total} runs | {eta_formatted} left | {job}',
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 8,
    },
    Presets.shades_classic,
  );
  // cli-progress draws nothing on a pipe; then plain lines say what happens.
  const bar = o.progress && process.stderr.isTTY ? bars.create(jobs.length, 0, { job: 'starting' }) : undefined;
  const log = (text: string): void => {
    if (bar) bars.log(`${text}\n`);
    else process.stderr.write(`${text}\n`);
  };

  const stopOnSignal = (): void => {
    bars.stop();
    void Promise.all([...activeServers.map((s) => s.stop()), activeRedis?.stop()]).finally(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);

  const runs: RunRecord[] = [];
  const started = Date.now();
  const loadStart = os.loadavg();
  const loadAtStart = loadStart.map((l) => l.toFixed(2)).join(' ');
  for (const job of jobs) {
    const variant = o.metricsPaired && job.plan.server === 'chat' && job.backend !== REFERENCE ? (job.metrics ? ' metrics on' : ' metrics off') : '';
    bar?.update({ job: `${job.plan.name} ${job.backend}${variant} (round ${job.round})` });
    const record = await runOnce(job.plan, job.backend, job.round, o, loadgen, reference, job.metrics);
    runs.push(record);
    bar?.increment();
    const name = `${job.plan.name} ${job.backend}${variant} #${job.round}`;
    if (!record.ok) log(`${name}: FAILED: ${record.error}`);
    else if (o.verbose) {
      const figs = job.plan.figures.map((f) => `${f.key}=${record.figures[f.key]?.toFixed(1) ?? 'n/a'}`).join(' ');
      log(`${name}: ${figs}`);
    }
    for (const w of record.warnings) log(`${name}: warning: ${w}`);
  }
  bars.stop();

  // With --metrics-paired the main table is of the runs without metrics; the pairs have their own.
  const summaries = summarize(plans, backends, o.metricsPaired ? runs.filter((r) => !r.metrics) : runs);
  const pairs = o.metricsPaired ? metricsPairs(plans, backends, runs) : [];
  const info = machine();
  const elapsedS = (Date.now() - started) / 1000;
  const header =
    `iocpnet benchmark: ${info.cpus} x ${info.cpuModel}, ${info.memoryGiB} GiB, ${info.kernel}, Node ${info.node}\n` +
    `${o.rounds} rounds, backends alternating (${backends.join(', ')}), medians; load generator: ${o.loadgenThreads} thread(s), ${o.transport}` +
    (o.loadgenCpus !== undefined ? ` on CPU ${o.loadgenCpus}` : '') +
    (o.serverCpus !== undefined ? `, server on CPU ${o.serverCpus}` : '') +
    `; load average ${loadAtStart} at the start, ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at the end` +
    (external ? `; external server ${o.serverHost}:${o.serverPort}` : '') +
    `; ${elapsedS.toFixed(0)} s\n`;
  process.stdout.write(`\n${header}\n${formatTable(summaries, backends, o.rounds)}`);
  if (pairs.length > 0) process.stdout.write(formatPairs(pairs, o.metricsScrapeInterval));

  const jsonPath = path.resolve(o.json);
  const svgPath = path.resolve(o.svg ?? jsonPath.replace(/\.json$/i, '') + '.svg');
  fs.mkdirSync(path.dirname(jsonPath), { recursive: true });
  fs.mkdirSync(path.dirname(svgPath), { recursive: true });
  const doc = {
    version: 1,
    date: new Date().toISOString(),
    machine: info,
    settings: {
      ...settings,
      rounds: o.rounds,
      backends,
      serverCpus: o.serverCpus ?? null,
      loadgenCpus: o.loadgenCpus ?? null,
      loadAverageAtStart: loadStart,
      loadAverageAtEnd: os.loadavg(),
      external: external ? `${o.serverHost}:${o.serverPort}` : null,
    },
    elapsedSeconds: elapsedS,
    summaries,
    ...(o.metricsPaired ? { metricsPairs: pairs } : {}),
    runs,
  };
  fs.writeFileSync(jsonPath, `${JSON.stringify(doc, null, 2)}\n`);
  const title = `iocpnet benchmark: medians of ${o.rounds} round${o.rounds === 1 ? '' : 's'} (${info.cpus} cores, Node ${info.node})`;
  fs.writeFileSync(svgPath, renderSvg(summaries, title));
  process.stdout.write(`results: ${path.relative(process.cwd(), jsonPath)}, chart: ${path.relative(process.cwd(), svgPath)}\n`);

  if (runs.some((r) => !r.ok)) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
