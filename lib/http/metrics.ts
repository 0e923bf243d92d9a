/**
 * The metrics of a Server (and of a ChatServer on it) as prom-client
 * metrics in a registry of their own. Only serve-metrics.ts loads this
 * module's prom-client, when the user asks for metrics; `import type` keeps
 * the package entry from loading it.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type * as Prom from 'prom-client';
import { DISCONNECT_REASONS, STATS_FIELDS, THREAD_STATS_FIELDS, type ThreadStatsField } from '../contract';
import { ChatServer } from '../chat/chat-server';
import type { Server, ServerObserver } from '../server/server';
import type { ServerStats } from '../server/types';
import type { PacketRouter } from '../toolkit/packet-router';
import { CLUSTER_STATS_FIELDS, REDIS_SECONDS_BUCKETS, type ClusterStats } from '../cluster/cluster-stats';
import { Buckets } from './buckets';

/** The cluster's gauges (CLUSTER_GAUGES); every other field of ClusterStats is a counter. */
const CLUSTER_GAUGE_NAMES: Partial<Record<keyof ClusterStats, { name: string; help: string }>> = {
  bufferedChats: {
    name: 'iocpnet_cluster_buffered_messages',
    help: 'Chats of this node waiting for Redis to take them for the other nodes (not sent yet, or sent and not acknowledged).',
  },
  bufferedBytes: { name: 'iocpnet_cluster_buffered_bytes', help: 'The bytes of those chats (bounded by the cluster option maxBufferBytes).' },
  nodes: { name: 'iocpnet_cluster_nodes', help: 'Live nodes of the cluster seen at the last heartbeat, this one included.' },
};

/** Upper bounds of the handler-time histogram, in seconds. */
export const HANDLER_SECONDS_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1] as const;
/** Upper bounds of the batch-size histogram, in packets. */
export const BATCH_PACKETS_BUCKETS = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096] as const;
/**
 * Milliseconds between two samples of the event loop's delay, for the
 * dashboard's monitor and prom-client's (nodejs_eventloop_lag_*). Each sample
 * wakes the JS thread: at prom-client's default of 10 ms, the two monitors
 * cost an idle server about 9 ms of CPU a second on this project's test
 * machine, at 20 ms about 4 ms. A stall shorter than this is caught in
 * proportion to its length; longer ones always.
 */
export const EVENT_LOOP_RESOLUTION_MS = 20;
/** Upper bounds of the members-per-room histogram. */
export const ROOM_MEMBERS_BUCKETS = [1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000] as const;

/** How one ServerStats counter is exported. */
interface FieldSpec {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  /** A bounded label this field's series carries, e.g. { cause: 'send_queue' }. */
  label?: readonly [name: string, value: string];
}

/**
 * The names of the engine's counters. A field of STATS_FIELDS missing here
 * is still exported, as the gauge iocpnet_engine_<field in snake case>, so a
 * new engine counter shows up before it is given its proper name here.
 */
const ENGINE_FIELDS: Readonly<Record<string, FieldSpec>> = {
  connections: { name: 'iocpnet_connections', help: 'Connections open now.', type: 'gauge' },
  accepted: { name: 'iocpnet_connections_accepted_total', help: 'Connections accepted since listen (refused ones excluded).', type: 'counter' },
  packetsIn: { name: 'iocpnet_packets_received_total', help: 'Framed packets received, system packets included.', type: 'counter' },
  packetsOut: {
    name: 'iocpnet_packets_sent_total',
    help: 'Packets queued for sending, system packets and every broadcast receiver included.',
    type: 'counter',
  },
  bytesIn: { name: 'iocpnet_received_bytes_total', help: 'Bytes received.', type: 'counter' },
  bytesOut: { name: 'iocpnet_sent_bytes_total', help: 'Bytes written to sockets.', type: 'counter' },
  pings: { name: 'iocpnet_pings_answered_total', help: 'PING packets answered by the engine.', type: 'counter' },
  ignoredSystemPackets: { name: 'iocpnet_system_packets_ignored_total', help: 'System packets (ids 1..99) other than PING, ignored.', type: 'counter' },
  staleRefused: { name: 'iocpnet_stale_refused_total', help: 'Sends and closes refused because the connection id was stale or closed.', type: 'counter' },
  readPauses: {
    name: 'iocpnet_read_pauses_total',
    help: 'Times a connection stopped reading, by cause: pending_bytes (maxPendingBytes waiting for JS), send_queue (its send queue past the high-water mark).',
    type: 'counter',
    label: ['cause', 'pending_bytes'],
  },
  readPausesSendQueue: { name: 'iocpnet_read_pauses_total', help: '', type: 'counter', label: ['cause', 'send_queue'] },
  descriptorRefused: {
    name: 'iocpnet_connections_refused_total',
    help: 'Connections refused at accept, by cause: server_full (maxConnections open), no_descriptor (the process had no file descriptor left).',
    type: 'counter',
    label: ['cause', 'no_descriptor'],
  },
  pendingBytes: {
    name: 'iocpnet_js_pending_bytes',
    help: 'Bytes of received packets waiting for the JS thread now (native backend; the js backend hands each read over at once: 0).',
    type: 'gauge',
  },
  sendQueueBytes: { name: 'iocpnet_send_queue_bytes', help: 'Bytes queued for sending and not yet written to the sockets now.', type: 'gauge' },
};

/** The per-IO-thread series, labelled thread="<index>" (at most ioThreads of them, 64). */
const THREAD_FIELDS: Readonly<Record<ThreadStatsField, { name: string; help: string; type: 'counter' | 'gauge' }>> = {
  connections: { name: 'iocpnet_io_thread_connections', help: 'Connections open now, by the IO thread that owns them.', type: 'gauge' },
  packetsIn: { name: 'iocpnet_io_thread_packets_received_total', help: 'Framed packets received, by IO thread.', type: 'counter' },
  packetsOut: { name: 'iocpnet_io_thread_packets_sent_total', help: 'Packets queued for sending, by IO thread.', type: 'counter' },
  bytesIn: { name: 'iocpnet_io_thread_received_bytes_total', help: 'Bytes received, by IO thread.', type: 'counter' },
  bytesOut: { name: 'iocpnet_io_thread_sent_bytes_total', help: 'Bytes written to sockets, by IO thread.', type: 'counter' },
  sendQueueBytes: { name: 'iocpnet_io_thread_send_queue_bytes', help: 'Bytes queued for sending and not yet written now, by IO thread.', type: 'gauge' },
};

/** The engine's Prometheus names, for the docs and tests: every field of STATS_FIELDS, then the closes. */
export function engineMetricName(field: string): string {
  return ENGINE_FIELDS[field]?.name ?? `iocpnet_engine_${field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`;
}

/** What the metrics read of a Server. */
export type ObservedServer = Pick<Server, 'stats' | 'setObserver' | 'address' | 'backend'>;
/** What the metrics read of a PacketRouter. */
export type ObservedRouter = Pick<PacketRouter, 'has' | 'stats'>;

/** What the metrics need to know of the application on the server. */
export interface MetricsSource {
  server: ObservedServer;
  /** Its router: handler times are labelled by the ids it knows, any other id as 'other'. */
  router: ObservedRouter | undefined;
  chat: ChatServer | undefined;
}

/** The cluster's metrics register here once the cluster exists (Redis round trip, buffered and lost messages, nodes seen). */
export type MetricsExtension = (prom: typeof Prom, registry: Prom.Registry) => void;

/** A snapshot for the dashboard's /stats.json; counters are totals since the server started. */
export interface DashboardSample {
  /** Milliseconds since the epoch, on the server. */
  time: number;
  engine: ServerStats;
  /** Handler time over every packet id: cumulative counts per bound of HANDLER_SECONDS_BUCKETS, then the total. */
  handler: { bounds: readonly number[]; cumulative: number[]; count: number };
  /** The event loop's delay since the previous sample, p99 and max, in seconds. */
  eventLoop: { p99: number; max: number };
  chat?: {
    users: number;
    roomsOccupied: number;
    chats: number;
    rateLimited: number;
    notifies: number;
    /** The fullest rooms, at most ten, fullest first. */
    busiestRooms: Array<{ room: number; members: number }>;
  };
}

/** The bounded label of a packet id: its number when the router has a handler for it, else 'other'. */
function packetLabel(router: ObservedRouter | undefined, packetId: number): string {
  return router !== undefined && router.has(packetId) ? String(packetId) : 'other';
}

/**
 * The metrics of one server: an observer of its JS side (plain counters on
 * the hot path) and prom-client metrics that read everything at scrape time.
 */
export class ServerMetrics implements ServerObserver {
  readonly registry: Prom.Registry;
  readonly #source: MetricsSource;
  /** Handler times by packet id; one Buckets per id seen, created once. */
  readonly #handler = new Map<number, Buckets>();
  readonly #batches = new Buckets(BATCH_PACKETS_BUCKETS);
  readonly #loop: IntervalHistogram;
  #stats: ServerStats | undefined;

  constructor(prom: typeof Prom, source: MetricsSource, options: { defaultMetrics: boolean; extensions: readonly MetricsExtension[] }) {
    this.#source = source;
    this.registry = new prom.Registry();
    this.#loop = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
    this.#loop.enable();
    this.#engine(prom);
    this.#js(prom);
    if (source.chat !== undefined) this.#chat(prom, source.chat);
    if (source.router !== undefined) this.#router(prom, source.router);
    if (options.defaultMetrics) prom.collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_RESOLUTION_MS });
    for (const extend of options.extensions) extend(prom, this.registry);
  }

  /** @internal ServerObserver: one Map lookup and an array increment per packet. */
  packetHandled(packetId: number, seconds: number): void {
    let b = this.#handler.get(packetId);
    if (b === undefined) {
      // Unknown ids share one Buckets, so the map stays as small as the router.
      const key = packetLabel(this.#source.router, packetId) === 'other' ? -1 : packetId;
      b = this.#handler.get(key) ?? new Buckets(HANDLER_SECONDS_BUCKETS);
      this.#handler.set(key, b);
      if (key !== -1) this.#handler.set(packetId, b);
    }
    b.observe(seconds);
  }

  /** @internal ServerObserver */
  batchEnded(packets: number): void {
    this.#batches.observe(packets);
  }

  /** Stops the event-loop monitor; the registry is left as it is. */
  stop(): void {
    this.#loop.disable();
  }

  /** The dashboard's figures now. */
  sample(): DashboardSample {
    const handler = new Buckets(HANDLER_SECONDS_BUCKETS);
    for (const [id, b] of this.#handler) if (id === -1 || packetLabel(this.#source.router, id) !== 'other') handler.add(b);
    const loop = this.#loop;
    const eventLoop = { p99: loop.count > 0 ? loop.percentile(99) / 1e9 : 0, max: loop.count > 0 ? loop.max / 1e9 : 0 };
    loop.reset();
    const out: DashboardSample = {
      time: Date.now(),
      engine: this.#source.server.stats(),
      handler: { bounds: handler.bounds, cumulative: handler.cumulative(), count: handler.count },
      eventLoop,
    };
    const chat = this.#source.chat;
    if (chat !== undefined) {
      const s = chat.stats();
      const occupied: Array<{ room: number; members: number }> = [];
      for (const room of chat.rooms) if (room.count > 0) occupied.push({ room: room.number, members: room.count });
      occupied.sort((a, b) => b.members - a.members || a.room - b.room);
      out.chat = {
        users: s.users,
        roomsOccupied: occupied.length,
        chats: s.chats,
        rateLimited: s.rateLimited,
        notifies: s.notifies,
        busiestRooms: occupied.slice(0, 10),
      };
    }
    return out;
  }

  /** One stats() call serves every engine metric of a scrape: prom-client collects them all in one synchronous run. */
  #engineStats(): ServerStats {
    if (this.#stats === undefined) {
      this.#stats = this.#source.server.stats();
      setImmediate(() => (this.#stats = undefined));
    }
    return this.#stats;
  }

  #engine(prom: typeof Prom): void {
    // Fields grouped by metric name: several fields may be one metric's labelled series.
    const groups = new Map<string, Array<{ field: string; spec: FieldSpec }>>();
    for (const field of STATS_FIELDS) {
      const spec: FieldSpec = ENGINE_FIELDS[field] ?? {
        name: engineMetricName(field),
        help: `The engine's ${field} counter (ServerStats.${field}).`,
        type: 'gauge',
      };
      const group = groups.get(spec.name) ?? [];
      group.push({ field, spec });
      groups.set(spec.name, group);
    }
    const refused = 'iocpnet_connections_refused_total';
    if (!groups.has(refused)) groups.set(refused, []);
    const read = (field: string): number => {
      const value = (this.#engineStats() as unknown as Record<string, unknown>)[field];
      return typeof value === 'number' ? value : 0;
    };
    for (const [name, group] of groups) {
      const first = group.find((g) => g.spec.help !== '')?.spec ?? ENGINE_FIELDS.descriptorRefused;
      const labelName = group.find((g) => g.spec.label !== undefined)?.spec.label?.[0] ?? (name === refused ? 'cause' : undefined);
      const labelNames = labelName === undefined ? [] : [labelName];
      const fill = (set: (labels: Record<string, string>, value: number) => void): void => {
        for (const { field, spec } of group) set(spec.label === undefined ? {} : { [spec.label[0]]: spec.label[1] }, read(field));
        if (name === refused) set({ cause: 'server_full' }, this.#engineStats().closes.server_full);
      };
      if (first.type === 'gauge' && name !== refused) {
        new prom.Gauge({
          name,
          help: first.help,
          labelNames,
          registers: [this.registry],
          collect() {
            fill((labels, value) => this.set(labels, value));
          },
        });
      } else {
        new prom.Counter({
          name,
          help: first.help,
          labelNames,
          registers: [this.registry],
          collect() {
            this.reset();
            fill((labels, value) => this.inc(labels, value));
          },
        });
      }
    }
    const stats = (): ServerStats => this.#engineStats();
    for (const field of THREAD_STATS_FIELDS) {
      const spec = THREAD_FIELDS[field];
      const fill = (set: (labels: { thread: string }, value: number) => void): void => {
        stats().threads.forEach((t, i) => set({ thread: String(i) }, t[field]));
      };
      const options = { name: spec.name, help: spec.help, labelNames: ['thread'], registers: [this.registry] };
      if (spec.type === 'gauge') {
        new prom.Gauge({
          ...options,
          collect() {
            fill((labels, value) => this.set(labels, value));
          },
        });
      } else {
        new prom.Counter({
          ...options,
          collect() {
            this.reset();
            fill((labels, value) => this.inc(labels, value));
          },
        });
      }
    }
    new prom.Counter({
      name: 'iocpnet_connections_closed_total',
      help: 'Connections ended, by reason (server_full: refused at accept, counted here too).',
      labelNames: ['reason'],
      registers: [this.registry],
      collect() {
        this.reset();
        const closes = stats().closes;
        for (const reason of DISCONNECT_REASONS) this.inc({ reason }, closes[reason]);
      },
    });
  }

  #js(prom: typeof Prom): void {
    const router = this.#source.router;
    const handler = this.#handler;
    histogramMetric(prom, this.registry, {
      name: 'iocpnet_handler_duration_seconds',
      help: "Time a packet's 'packet' listeners took (their synchronous part), by packet id: the ids the router has a handler for, any other as 'other'.",
      labelName: 'packet_id',
      bounds: HANDLER_SECONDS_BUCKETS,
      series() {
        const out: Array<[string, Buckets]> = [];
        const seen = new Set<Buckets>();
        for (const [id, b] of handler) {
          if (seen.has(b)) continue;
          seen.add(b);
          out.push([id === -1 ? 'other' : packetLabel(router, id), b]);
        }
        return out;
      },
    });
    const batches = this.#batches;
    histogramMetric(prom, this.registry, {
      name: 'iocpnet_js_batch_packets',
      help: 'Batches the engine handed to the JS thread (the _count), by the packets each held.',
      bounds: BATCH_PACKETS_BUCKETS,
      series: () => [['', batches]],
    });
  }

  #chat(prom: typeof Prom, chat: ChatServer): void {
    const registers = [this.registry];
    let cached: ReturnType<ChatServer['stats']> | undefined;
    // As #engineStats: one chat.stats() per scrape.
    const stats = (): ReturnType<ChatServer['stats']> => {
      if (cached === undefined) {
        cached = chat.stats();
        setImmediate(() => (cached = undefined));
      }
      return cached;
    };
    new prom.Gauge({
      name: 'iocpnet_chat_users',
      help: 'Chat users logged in now.',
      registers,
      collect() {
        this.set(stats().users);
      },
    });
    const members = new Buckets(ROOM_MEMBERS_BUCKETS);
    new prom.Gauge({
      name: 'iocpnet_chat_rooms_occupied',
      help: 'Chat rooms with at least one member now.',
      registers,
      collect() {
        let n = 0;
        for (const room of chat.rooms) if (room.count > 0) n++;
        this.set(n);
      },
    });
    histogramMetric(prom, this.registry, {
      name: 'iocpnet_chat_room_members',
      help: 'Members of each occupied chat room now.',
      bounds: ROOM_MEMBERS_BUCKETS,
      series() {
        members.reset();
        for (const room of chat.rooms) if (room.count > 0) members.observe(room.count);
        return [['', members]];
      },
    });
    const counter = (name: string, help: string, value: () => number): void => {
      new prom.Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(value());
        },
      });
    };
    counter('iocpnet_chat_logins_total', 'Chat logins accepted.', () => stats().logins);
    counter('iocpnet_chat_messages_total', 'Chat messages relayed to a room.', () => stats().chats);
    counter('iocpnet_chat_messages_rate_limited_total', 'Chat messages refused by the rate limit (ROOM_TOO_MANY_PACKET).', () => stats().rateLimited);
    counter('iocpnet_chat_notifies_total', 'ROOM_CHAT_NOTIFY packets queued, one per receiver.', () => stats().notifies);
    if (chat.options.cluster !== undefined) this.#cluster(prom, chat, () => stats().cluster);
    new prom.Counter({
      name: 'iocpnet_chat_logins_refused_total',
      help: 'Chat logins refused, by result code.',
      labelNames: ['code'],
      registers,
      collect() {
        this.reset();
        for (const [code, n] of Object.entries(stats().loginsRefusedByCode)) this.inc({ code }, n);
      },
    });
  }

  /** The cluster's figures: every field of ClusterStats, read at scrape time, and the Redis round trips. */
  #cluster(prom: typeof Prom, chat: ChatServer, stats: () => Readonly<Record<string, number>> | undefined): void {
    const registers = [this.registry];
    for (const field of CLUSTER_STATS_FIELDS) {
      const gauge = CLUSTER_GAUGE_NAMES[field];
      const read = (): number => stats()?.[field] ?? 0;
      if (gauge !== undefined) {
        new prom.Gauge({
          name: gauge.name,
          help: gauge.help,
          registers,
          collect() {
            this.set(read());
          },
        });
        continue;
      }
      new prom.Counter({
        name: `iocpnet_cluster_${field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}_total`,
        help:
          field === 'lostChats'
            ? 'Chats of other nodes missing from the stream (lost when Redis restarted empty), or that Redis refused.'
            : `The cluster's ${field} counter (ChatStats.cluster.${field}, docs/CLUSTER.md).`,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    }
    const empty = new Buckets(REDIS_SECONDS_BUCKETS);
    histogramMetric(prom, this.registry, {
      name: 'iocpnet_cluster_redis_round_trip_seconds',
      help: "Time from sending a command to Redis (a script, a stream append) to its answer; the stream reader's blocking read is not counted.",
      bounds: REDIS_SECONDS_BUCKETS,
      series: () => [['', chat._redisRoundTrip() ?? empty]],
    });
  }

  #router(prom: typeof Prom, router: ObservedRouter): void {
    const registers = [this.registry];
    const counter = (name: string, help: string, field: 'unknown' | 'protocolErrors' | 'handlerErrors' | 'queueOverflows'): void => {
      new prom.Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(router.stats()[field]);
        },
      });
    };
    counter('iocpnet_router_unknown_packets_total', 'Packets with no handler in the router, ignored.', 'unknown');
    counter('iocpnet_router_protocol_errors_total', 'Connections closed because a handler threw a ProtocolError.', 'protocolErrors');
    counter('iocpnet_router_handler_errors_total', 'Handlers that threw or rejected with anything else.', 'handlerErrors');
    counter('iocpnet_router_queue_overflows_total', 'Connections closed because too many bytes waited behind an unsettled handler.', 'queueOverflows');
  }
}

/** Which of target's parts the metrics read. */
export function metricsSource(target: ObservedServer | ChatServer, router?: ObservedRouter): MetricsSource {
  if (target instanceof ChatServer) return { server: target.server, router: router ?? target.router, chat: target };
  return { server: target, router, chat: undefined };
}

interface HistogramSpec {
  name: string;
  help: string;
  labelName?: string;
  bounds: readonly number[];
  /** The series to export now: label value ('' without a label) and counts. */
  series(): Iterable<readonly [string, Buckets]>;
}

/** A prom-client Histogram whose values come from Buckets at scrape time instead of observe(). */
function histogramMetric(prom: typeof Prom, registry: Prom.Registry, spec: HistogramSpec): void {
  type Value = { value: number; labels: Record<string, string | number>; metricName?: string };
  const values = (): Value[] => {
    const out: Value[] = [];
    for (const [label, b] of spec.series()) {
      const base: Record<string, string> = spec.labelName === undefined ? {} : { [spec.labelName]: label };
      const cumulative = b.cumulative();
      for (let i = 0; i < spec.bounds.length; i++) {
        out.push({ metricName: `${spec.name}_bucket`, labels: { ...base, le: spec.bounds[i] }, value: cumulative[i] });
      }
      out.push({ metricName: `${spec.name}_bucket`, labels: { ...base, le: '+Inf' }, value: b.count });
      out.push({ metricName: `${spec.name}_sum`, labels: base, value: b.sum });
      out.push({ metricName: `${spec.name}_count`, labels: base, value: b.count });
    }
    return out;
  };
  type Got = Awaited<ReturnType<Prom.Histogram['get']>>;
  class ScrapedHistogram extends prom.Histogram {
    override get(): Promise<Got> {
      return this.getForPromString();
    }
    /** What the registry reads to write the text format. */
    getForPromString(): Promise<Got> {
      // prom-client's MetricType enum exists only in its typings, hence the cast of 'histogram'.
      const metric = { name: spec.name, help: spec.help, type: 'histogram', aggregator: 'sum', values: values() };
      return Promise.resolve(metric as unknown as Got);
    }
  }
  new ScrapedHistogram({
    name: spec.name,
    help: spec.help,
    labelNames: spec.labelName === undefined ? [] : [spec.labelName],
    buckets: [...spec.bounds],
    registers: [registry],
  });
}
