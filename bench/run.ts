/**
 * The benchmark: native vs pure-JS backend, scenario by scenario.
 *
 *   npm run bench -- --quick
 *   node dist/bench/run.js --scenarios echo,chat100 --backends native,js --rounds 5
 *
 * Every run starts a fresh server process (the echo server of
 * bench/echo-server.ts, or the chat server of the CLI), drives it with the
 * C++ load generator (bench/loadgen, built on demand into build-loadgen/),
 * samples the server's CPU and memory from /proc around the measured window,
 * and stops it. Backends alternate run by run (native, js, native, js, ...),
 * so drift of the machine hits both alike; the table shows medians.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { MultiBar, Presets } from 'cli-progress';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureLoadgen } from './loadgen-build';
import { pollMetrics } from './metrics-poller';
import { sample } from './proc-stats';
import { runLoadgen, startServer, type ServerProcess } from './processes';
import { formatTable, renderSvg, summarize, type RunRecord } from './report';
import {
  SCENARIO_NAMES,
  computeFigures,
  planScenario,
  type LoadgenReport,
  type PlanSettings,
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
  chatServerCli: string;
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

function rate(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1e6) throw new InvalidArgumentError('expected a rate in [0, 1e6]');
  return n;
}

function scenarioList(value: string): ScenarioName[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!(SCENARIO_NAMES as readonly string[]).includes(n)) {
      throw new InvalidArgumentError(`unknown scenario '${n}' (known: ${SCENARIO_NAMES.join(', ')})`);
    }
  }
  if (names.length === 0) throw new InvalidArgumentError('no scenario given');
  return [...new Set(names)] as ScenarioName[];
}

function backendList(value: string): string[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) if (n !== 'native' && n !== 'js') throw new InvalidArgumentError(`unknown backend '${n}' (native, js)`);
  if (names.length === 0) throw new InvalidArgumentError('no backend given');
  return [...new Set(names)];
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseArgs(argv: string[]): CliOptions {
  const program = new Command('bench')
    .description('iocpnet benchmark: native vs pure-JS backend, driven by a C++ epoll load generator')
    .option('--scenarios <list>', `comma-separated: ${SCENARIO_NAMES.join(',')}`, scenarioList, [...SCENARIO_NAMES])
    .option('--backends <list>', 'comma-separated: native,js (run alternately)', backendList, ['native', 'js'])
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
    .option('--io-threads <n>', 'native backend IO threads (default: the server default)', integer(1, 64))
    .option('--server-host <address>', 'use a running server at this IPv4 address instead of spawning one')
    .option('--server-port <n>', 'port of the running server (with --server-host)', integer(1, 65535))
    .option('--label <name>', 'name of the running server in the results', 'external')
    .option('--chat-server-cli <file>', 'the script with the chat-server command', path.join(ROOT, 'dist', 'lib', 'cli.js'))
    .option(
      '--metrics-port <n>',
      'chat scenarios: start the server with --metrics-port n and poll /stats.json and /metrics once a second, as an open dashboard and a scraper do',
      integer(1, 65535),
    )
    .option('--server-arg <arg>', 'extra argument for the spawned server (repeatable)', collect, [] as string[])
    .option('--json <file>', 'write every run and the medians here', path.join('.bench', 'bench.json'))
    .option('--svg <file>', 'write the ratio chart here (default: the json path with .svg)')
    .addOption(new Option('--no-progress', 'no progress bar'))
    .option('--verbose', 'print each run as it finishes', false)
    .parse(argv);
  const o = program.opts<CliOptions>();
  if ((o.serverHost === undefined) !== (o.serverPort === undefined)) {
    program.error('--server-host and --server-port go together');
  }
  return o;
}

function planSettings(o: CliOptions): PlanSettings {
  return { ...o, warmupS: o.warmup, durationS: o.duration };
}

/** The server process for a plan: its script and arguments. */
function serverCommand(plan: ScenarioPlan, backend: string, o: CliOptions): { script: string; args: string[] } {
  // Headroom over the connections the scenario holds: the connect scenario
  // may briefly have more open while the server handles disconnects.
  const maxConnections = String(Math.max(1024, plan.connections * 2 + 64));
  const io = o.ioThreads !== undefined && backend === 'native' ? ['--io-threads', String(o.ioThreads)] : [];
  if (plan.server === 'echo') {
    return {
      script: path.join(ROOT, 'dist', 'bench', 'echo-server.js'),
      args: ['--backend', backend, '--host', '127.0.0.1', '--port', '0', '--max-connections', maxConnections, ...io, ...o.serverArg],
    };
  }
  return {
    script: path.resolve(o.chatServerCli),
    args: [
      'chat-server',
      '--backend',
      backend,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--max-connections',
      maxConnections,
      '--start-room',
      '0',
      '--max-rooms',
      String(Math.max(10, plan.rooms)),
      '--max-room-users',
      String(Math.max(10, plan.roomUsers)),
      ...io,
      ...(o.metricsPort === undefined ? [] : ['--metrics-port', String(o.metricsPort)]),
      ...o.serverArg,
    ],
  };
}

let activeServer: ServerProcess | undefined;

let runCounter = 0;

async function runOnce(plan: ScenarioPlan, backend: string, round: number, o: CliOptions, loadgen: string): Promise<RunRecord> {
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
  };
  const samples: ServerSamples = {};
  let server: ServerProcess | undefined;
  try {
    let host: string;
    let port: number;
    if (o.serverHost !== undefined && o.serverPort !== undefined) {
      host = o.serverHost;
      port = o.serverPort;
    } else {
      const cmd = serverCommand(plan, backend, o);
      server = await startServer(cmd.script, cmd.args);
      activeServer = server;
      record.server = { command: ['node', path.relative(ROOT, cmd.script), ...cmd.args], samples };
      host = server.host;
      port = server.port;
      // Let start-up work (module loading, first GC) finish before the baseline.
      await new Promise((resolve) => setTimeout(resolve, 200));
      samples.base = sample(server.pid);
    }
    const pid = server?.pid;
    const args = [
      ...plan.loadgenArgs,
      '--id-prefix',
      idPrefix,
      '--host',
      host,
      '--port',
      String(port),
      '--warmup',
      String(plan.warmupS),
      '--duration',
      String(plan.durationS),
    ];
    const timeoutMs = (60 + plan.warmupS + plan.durationS + 30) * 1000;
    const poller = o.metricsPort !== undefined && plan.server === 'chat' && server !== undefined ? pollMetrics(o.metricsPort) : undefined;
    const result = await runLoadgen(loadgen, args, timeoutMs, (phase) => {
      if (pid === undefined) return;
      if (phase === 'ready') samples.ready = sample(pid);
      else if (phase === 'measure-start') samples.measureStart = sample(pid);
      else if (phase === 'measure-end') samples.measureEnd = sample(pid);
    });
    poller?.stop();
    if (poller !== undefined && poller.requests() === 0) record.warnings.push('the metrics port never answered');
    if (pid !== undefined) samples.last = sample(pid);
    record.loadgen = result.report;
    record.figures = computeFigures(plan, result.report, samples);
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
    if (server) {
      await server.stop();
      activeServer = undefined;
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
    const needChat = plans.some((p) => p.server === 'chat');
    const cli = path.resolve(o.chatServerCli);
    if (needChat && !fs.existsSync(cli)) {
      throw new Error(`the chat scenarios need the chat server CLI at ${cli}; run tsc first`);
    }
  }
  const loadgen = ensureLoadgen(ROOT, (line) => process.stderr.write(`${line}\n`));

  const jobs: Array<{ plan: ScenarioPlan; backend: string; round: number }> = [];
  for (let round = 1; round <= o.rounds; round++) {
    for (const plan of plans) for (const backend of backends) jobs.push({ plan, backend, round });
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
    const s = activeServer;
    void (s ? s.stop() : Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);

  const runs: RunRecord[] = [];
  const started = Date.now();
  for (const job of jobs) {
    bar?.update({ job: `${job.plan.name} ${job.backend} (round ${job.round})` });
    const record = await runOnce(job.plan, job.backend, job.round, o, loadgen);
    runs.push(record);
    bar?.increment();
    const name = `${job.plan.name} ${job.backend} #${job.round}`;
    if (!record.ok) log(`${name}: FAILED: ${record.error}`);
    else if (o.verbose) {
      const figs = job.plan.figures.map((f) => `${f.key}=${record.figures[f.key]?.toFixed(1) ?? 'n/a'}`).join(' ');
      log(`${name}: ${figs}`);
    }
    for (const w of record.warnings) log(`${name}: warning: ${w}`);
  }
  bars.stop();

  const summaries = summarize(plans, backends, runs);
  const info = machine();
  const elapsedS = (Date.now() - started) / 1000;
  const header =
    `iocpnet benchmark: ${info.cpus} x ${info.cpuModel}, ${info.memoryGiB} GiB, ${info.kernel}, Node ${info.node}\n` +
    `${o.rounds} rounds, backends alternating (${backends.join(', ')}), medians; load generator: ${o.loadgenThreads} thread(s), ${o.transport}` +
    (external ? `; external server ${o.serverHost}:${o.serverPort}` : '') +
    `; ${elapsedS.toFixed(0)} s\n`;
  process.stdout.write(`\n${header}\n${formatTable(summaries, backends, o.rounds)}`);

  const jsonPath = path.resolve(o.json);
  const svgPath = path.resolve(o.svg ?? jsonPath.replace(/\.json$/i, '') + '.svg');
  fs.mkdirSync(path.dirname(jsonPath), { recursive: true });
  fs.mkdirSync(path.dirname(svgPath), { recursive: true });
  const doc = {
    version: 1,
    date: new Date().toISOString(),
    machine: info,
    settings: { ...settings, rounds: o.rounds, backends, external: external ? `${o.serverHost}:${o.serverPort}` : null },
    elapsedSeconds: elapsedS,
    summaries,
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
