/**
 * What each benchmark scenario runs and which figures it reports. The load
 * generator does the driving and timing (bench/loadgen); this file only
 * chooses its arguments, the server each scenario needs, and how the
 * figures are computed from the load generator's JSON and the server's
 * /proc samples.
 */
import type { ProcessSample } from './proc-stats';

export type ScenarioName = 'echo' | 'ping' | 'chat10' | 'chat100' | 'connect' | 'idle' | 'cluster-base' | 'cluster-1node' | 'cluster-2nodes';
export const SCENARIO_NAMES: readonly ScenarioName[] = [
  'echo',
  'ping',
  'chat10',
  'chat100',
  'connect',
  'idle',
  'cluster-base',
  'cluster-1node',
  'cluster-2nodes',
];
/** What `npm run bench` runs unless told otherwise: the cluster scenarios need redis-server (npm run bench:cluster). */
export const DEFAULT_SCENARIOS: readonly ScenarioName[] = ['echo', 'ping', 'chat10', 'chat100', 'connect', 'idle'];
/** The same rooms-of-100 load on one node without Redis, one node on Redis, and two nodes on Redis. */
export const CLUSTER_SCENARIOS: readonly ScenarioName[] = ['cluster-base', 'cluster-1node', 'cluster-2nodes'];

/** The yardstick backend: bench/reference/reference_server.cpp, a plain single-threaded epoll server. */
export const REFERENCE = 'reference';

export interface Figure {
  key: string;
  label: string;
  unit: string;
  /** 'info': context for the other figures (server CPU % depends on the load it was given). */
  better: 'higher' | 'lower' | 'info';
  /** Needs /proc samples of the server, so absent against an external server. */
  fromServer: boolean;
}

export interface Target {
  text: string;
  /** undefined when a side is missing. */
  check(native: Record<string, number | null>, js: Record<string, number | null>): boolean | undefined;
}

export interface ScenarioPlan {
  name: ScenarioName;
  description: string;
  server: 'echo' | 'chat';
  /** Users a room must hold and rooms the server must have, for the chat server. */
  roomUsers: number;
  rooms: number;
  /** Chat servers (nodes) the load is spread over, connection i on node i mod nodes; 1 unless a cluster scenario. */
  nodes: number;
  /** The nodes join a cluster on a redis-server of the run's own. */
  redis: boolean;
  connections: number;
  loadgenArgs: string[];
  warmupS: number;
  durationS: number;
  figures: Figure[];
  target?: Target;
  /** What native must reach against the reference server (check(native, reference)). */
  referenceTarget?: Target;
}

export interface PlanSettings {
  quick: boolean;
  /** How the load generator's clients reach the server: the raw framing, or WebSocket on the same port. */
  transport: 'tcp' | 'websocket';
  warmupS?: number;
  durationS?: number;
  loadgenThreads: number;
  echoConnections: number;
  echoInflight: number;
  echoBodySize: number;
  chatUsers: number;
  chatRate: number;
  messageSize: number;
  connectParallel: number;
  idleConnections: number;
  clusterUsers: number;
  clusterRate: number;
}

/** The loadgen's report (bench/loadgen/report.cpp), the fields used here. */
export interface LoadgenReport {
  scenario: string;
  ready: number;
  failed: number;
  setup_s: number;
  duration_s: number;
  throughput: { name: string; value: number };
  /** Requests sent per second of the measured window (chat messages in the chat scenarios). */
  requests_per_s: number;
  latency_us: { name: string; count: number; p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  /** chat: from a chat's send to each of its notifies, at every member. */
  delivery_us?: { name: string; count: number; p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  errors: Record<string, number>;
  disconnect_notify: Record<string, number>;
  loadgen_cpu_pct: number;
  error?: string;
}

/** What the run's redis-server did in the measured window. */
export interface RedisWindow {
  cpuSeconds: number;
  /** INFO commandstats calls in the window, every command (those inside scripts too). */
  commands: number;
  xadds: number;
  evals: number;
  /** The calls of each command in the window (INFO's own left out). */
  calls: Record<string, number>;
}

export interface ServerSamples {
  /** After the server printed its address, before any load. */
  base?: ProcessSample;
  ready?: ProcessSample;
  measureStart?: ProcessSample;
  measureEnd?: ProcessSample;
  /** Just before the server is stopped. */
  last?: ProcessSample;
}

const throughputFigure = (key: string, label: string): Figure => ({ key, label, unit: '/s', better: 'higher', fromServer: false });
const latencyFigures = (what: string): Figure[] => [
  { key: 'p50_us', label: `${what} p50`, unit: 'us', better: 'lower', fromServer: false },
  { key: 'p99_us', label: `${what} p99`, unit: 'us', better: 'lower', fromServer: false },
  { key: 'p999_us', label: `${what} p99.9`, unit: 'us', better: 'lower', fromServer: false },
];
const serverFigures = (per: string): Figure[] => [
  { key: 'server_cpu_pct', label: 'server CPU (100 = one core)', unit: '%', better: 'info', fromServer: true },
  { key: 'cpu_us_per_op', label: `server CPU per ${per}`, unit: 'us', better: 'lower', fromServer: true },
  { key: 'js_cpu_us_per_op', label: `server JS thread CPU per ${per}`, unit: 'us', better: 'lower', fromServer: true },
  { key: 'peak_rss_mb', label: 'server peak RSS', unit: 'MB', better: 'lower', fromServer: true },
];

function ratio(native: Record<string, number | null>, js: Record<string, number | null>, key: string): number | undefined {
  const a = native[key];
  const b = js[key];
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return undefined;
  return a / b;
}

/** native >= share x reference on throughput, and, with p99, at equal or lower p99. */
function referenceShare(share: number, withP99: boolean): Target {
  return {
    text: `native >= ${share} x reference ${withP99 ? 'throughput at equal or lower p99' : 'throughput'}`,
    check: (n, r) => {
      const t = ratio(n, r, 'throughput');
      const p = ratio(n, r, 'p99_us');
      if (t === undefined || (withP99 && p === undefined)) return undefined;
      return t >= share && (!withP99 || (p as number) <= 1);
    },
  };
}

/** The load generator's arguments of the echo and ping scenarios. */
function echoArgs(s: PlanSettings, bodySize: number): string[] {
  return ['--scenario', 'echo', '--connections', String(s.echoConnections), '--inflight', String(s.echoInflight), '--body-size', String(bodySize)];
}

/** The plan of one scenario under the given settings. */
export function planScenario(name: ScenarioName, s: PlanSettings): ScenarioPlan {
  const warmupS = s.warmupS ?? (s.quick ? 0.5 : 2);
  const durationS = s.durationS ?? (s.quick ? 1.5 : 5);
  const common = ['--threads', String(s.loadgenThreads), '--transport', s.transport];
  switch (name) {
    case 'ping': {
      // A PING body is at most 64 bytes.
      const bodySize = Math.min(64, s.echoBodySize);
      return {
        name,
        description: `${s.echoConnections} connections, ${s.echoInflight} PINGs in flight each, ${bodySize}-byte bodies, answered by the engine (no handler), closed loop`,
        server: 'echo',
        roomUsers: 0,
        rooms: 0,
        nodes: 1,
        redis: false,
        connections: s.echoConnections,
        loadgenArgs: [...common, ...echoArgs(s, bodySize), '--ping', '1'],
        warmupS,
        durationS,
        figures: [throughputFigure('throughput', 'PONGs'), ...latencyFigures('round trip'), ...serverFigures('packet')],
      };
    }
    case 'echo':
      return {
        name,
        description: `${s.echoConnections} connections, ${s.echoInflight} packets in flight each, ${s.echoBodySize}-byte bodies, echoed by a TS packet handler, closed loop`,
        server: 'echo',
        roomUsers: 0,
        rooms: 0,
        nodes: 1,
        redis: false,
        connections: s.echoConnections,
        loadgenArgs: [...common, ...echoArgs(s, s.echoBodySize)],
        warmupS,
        durationS,
        figures: [throughputFigure('throughput', 'echoed packets'), ...latencyFigures('round trip'), ...serverFigures('packet')],
        referenceTarget: referenceShare(0.8, true),
        target: {
          text: 'native >= 2x js packets/s',
          check: (n, j) => {
            const r = ratio(n, j, 'throughput');
            return r === undefined ? undefined : r >= 2;
          },
        },
      };
    case 'chat10':
    case 'chat100': {
      const roomUsers = name === 'chat10' ? 10 : 100;
      const rooms = Math.ceil(s.chatUsers / roomUsers);
      const mode = s.chatRate > 0 ? `${s.chatRate} chats/s per user` : 'closed loop, one chat outstanding per user';
      return {
        name,
        description: `${s.chatUsers} users in ${rooms} rooms of ${roomUsers}, ${mode}, ${s.messageSize}-byte messages`,
        server: 'chat',
        roomUsers,
        rooms,
        nodes: 1,
        redis: false,
        connections: s.chatUsers,
        loadgenArgs: [
          ...common,
          '--scenario',
          'chat',
          '--connections',
          String(s.chatUsers),
          '--room-users',
          String(roomUsers),
          '--rate',
          String(s.chatRate),
          '--message-size',
          String(s.messageSize),
        ],
        warmupS,
        durationS,
        figures: [throughputFigure('throughput', 'chat notifies delivered'), ...latencyFigures('chat to own notify'), ...serverFigures('notify')],
        referenceTarget: referenceShare(0.85, true),
        target:
          roomUsers === 100
            ? {
                text: 'native >= 4x js notifies/s at equal or lower p99',
                check: (n, j) => {
                  const r = ratio(n, j, 'throughput');
                  const p = ratio(n, j, 'p99_us');
                  return r === undefined || p === undefined ? undefined : r >= 4 && p <= 1;
                },
              }
            : {
                text: 'native >= 2x js notifies/s',
                check: (n, j) => {
                  const r = ratio(n, j, 'throughput');
                  return r === undefined ? undefined : r >= 2;
                },
              },
      };
    }
    case 'connect':
      return {
        name,
        description: `${s.connectParallel} parallel cycles of connect, login, room enter, room leave, close (FIN both ways)`,
        server: 'chat',
        roomUsers: 10,
        rooms: 10,
        nodes: 1,
        redis: false,
        connections: s.connectParallel,
        loadgenArgs: [...common, '--scenario', 'connect', '--connections', String(s.connectParallel), '--rooms', '10'],
        warmupS,
        durationS,
        figures: [
          throughputFigure('throughput', 'session cycles'),
          { key: 'p50_us', label: 'cycle p50', unit: 'us', better: 'lower', fromServer: false },
          { key: 'p99_us', label: 'cycle p99', unit: 'us', better: 'lower', fromServer: false },
          ...serverFigures('cycle'),
        ],
        target: {
          text: 'native >= 5000 cycles/s',
          check: (n) => {
            const v = n.throughput;
            return v === null || v === undefined ? undefined : v >= 5000;
          },
        },
      };
    case 'cluster-base':
    case 'cluster-1node':
    case 'cluster-2nodes': {
      const roomUsers = 100;
      const rooms = Math.ceil(s.clusterUsers / roomUsers);
      const nodes = name === 'cluster-2nodes' ? 2 : 1;
      const redis = name !== 'cluster-base';
      const mode = s.clusterRate > 0 ? `${s.clusterRate} chats/s per user` : 'closed loop, one chat outstanding per user';
      const where = nodes === 2 ? "each room's members alternating over two nodes on Redis" : redis ? 'one node on Redis' : 'one node, no Redis (the baseline)';
      return {
        name,
        description: `${s.clusterUsers} users in ${rooms} rooms of ${roomUsers}, ${where}, ${mode}, ${s.messageSize}-byte messages`,
        server: 'chat',
        roomUsers,
        rooms,
        nodes,
        redis,
        connections: s.clusterUsers,
        loadgenArgs: [
          ...common,
          '--scenario',
          'chat',
          '--connections',
          String(s.clusterUsers),
          '--room-users',
          String(roomUsers),
          '--rate',
          String(s.clusterRate),
          '--message-size',
          String(s.messageSize),
        ],
        warmupS,
        durationS,
        figures: [
          throughputFigure('throughput', 'chat notifies delivered'),
          ...latencyFigures('chat to own notify').filter((f) => f.key !== 'p999_us'),
          { key: 'delivery_p50_us', label: 'chat to every notify p50', unit: 'us', better: 'lower', fromServer: false },
          { key: 'delivery_p99_us', label: 'chat to every notify p99', unit: 'us', better: 'lower', fromServer: false },
          { key: 'server_cpu_pct', label: 'CPU of every node (100 = one core)', unit: '%', better: 'info', fromServer: true },
          { key: 'cpu_us_per_op', label: 'node CPU per notify', unit: 'us', better: 'lower', fromServer: true },
          { key: 'peak_rss_mb', label: 'peak RSS, nodes summed', unit: 'MB', better: 'lower', fromServer: true },
          { key: 'redis_cpu_pct', label: 'redis-server CPU', unit: '%', better: 'lower', fromServer: true },
          { key: 'redis_cmds_per_chat', label: 'Redis commands per chat', unit: '', better: 'lower', fromServer: true },
          { key: 'xadd_per_chat', label: 'XADDs per chat', unit: '', better: 'lower', fromServer: true },
        ],
      };
    }
    case 'idle': {
      const roomUsers = 10;
      const rooms = Math.ceil(s.idleConnections / roomUsers);
      return {
        name,
        description: `${s.idleConnections} users logged in and in rooms of ${roomUsers}, idle (PING every 20 s)`,
        server: 'chat',
        roomUsers,
        rooms,
        nodes: 1,
        redis: false,
        connections: s.idleConnections,
        loadgenArgs: [
          ...common,
          '--scenario',
          'idle',
          '--connections',
          String(s.idleConnections),
          '--room-users',
          String(roomUsers),
          '--ping-ms',
          '20000',
          '--setup-timeout',
          '60',
        ],
        // At rest there is nothing to warm up, but the server gets a moment
        // to finish the work of the set-up burst before the samples.
        warmupS: s.warmupS ?? (s.quick ? 0.5 : 1),
        // /proc counts CPU in 10 ms ticks: a longer window resolves a quieter server.
        durationS: s.durationS ?? (s.quick ? 1.5 : 10),
        figures: [
          { key: 'rss_added_mb', label: 'server RSS added', unit: 'MB', better: 'lower', fromServer: true },
          { key: 'rest_cpu_pct', label: 'server CPU at rest', unit: '%', better: 'lower', fromServer: true },
          { key: 'setup_s', label: 'set-up of all (connect, login, enter)', unit: 's', better: 'lower', fromServer: false },
          { key: 'peak_rss_mb', label: 'server peak RSS', unit: 'MB', better: 'lower', fromServer: true },
        ],
        target: {
          text: 'native adds <= 40 MB RSS',
          check: (n) => {
            const v = n.rss_added_mb;
            return v === null || v === undefined ? undefined : v <= 40;
          },
        },
      };
    }
  }
}

/** The figures of one run; null where a figure could not be measured. */
export function computeFigures(plan: ScenarioPlan, report: LoadgenReport, samples: ServerSamples, redis?: RedisWindow): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  const { measureStart: s0, measureEnd: s1, base, last } = samples;
  const windowS = s0 && s1 ? (s1.atMs - s0.atMs) / 1000 : 0;
  const cpuS = s0 && s1 ? s1.cpuSeconds - s0.cpuSeconds : undefined;
  const cpuPct = cpuS !== undefined && windowS > 0 ? (100 * cpuS) / windowS : null;
  const peak = last ?? s1;
  for (const f of plan.figures) {
    let v: number | null = null;
    switch (f.key) {
      case 'throughput':
        v = report.throughput.value;
        break;
      case 'p50_us':
      case 'p99_us':
      case 'p999_us': {
        if (report.latency_us.count > 0) {
          const key = f.key === 'p50_us' ? 'p50' : f.key === 'p99_us' ? 'p99' : 'p999';
          v = report.latency_us[key];
        }
        break;
      }
      case 'server_cpu_pct':
      case 'rest_cpu_pct':
        v = cpuPct;
        break;
      case 'cpu_us_per_op': {
        const ops = report.throughput.value * report.duration_s;
        v = cpuS !== undefined && ops > 0 ? (cpuS * 1e6) / ops : null;
        break;
      }
      case 'js_cpu_us_per_op': {
        const ops = report.throughput.value * report.duration_s;
        const a = s0?.jsThreadCpuSeconds;
        const b = s1?.jsThreadCpuSeconds;
        v = a !== undefined && b !== undefined && ops > 0 ? ((b - a) * 1e6) / ops : null;
        break;
      }
      case 'peak_rss_mb':
        v = peak ? peak.hwmKiB / 1024 : null;
        break;
      case 'rss_added_mb':
        v = base && s1 ? (s1.rssKiB - base.rssKiB) / 1024 : null;
        break;
      case 'setup_s':
        v = report.setup_s;
        break;
      case 'delivery_p50_us':
      case 'delivery_p99_us': {
        const d = report.delivery_us;
        if (d !== undefined && d.count > 0) v = f.key === 'delivery_p50_us' ? d.p50 : d.p99;
        break;
      }
      case 'redis_cpu_pct':
        v = redis !== undefined && windowS > 0 ? (100 * redis.cpuSeconds) / windowS : null;
        break;
      case 'redis_cmds_per_chat':
      case 'xadd_per_chat': {
        const chats = report.requests_per_s * report.duration_s;
        if (redis !== undefined && chats > 0) v = (f.key === 'xadd_per_chat' ? redis.xadds : redis.commands) / chats;
        break;
      }
    }
    out[f.key] = v;
  }
  return out;
}
