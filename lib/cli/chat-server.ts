import { Command, Option } from 'commander';
import { CHAT_OPTIONS as C, type ChatServer, type ChatServerOptions } from '../chat/chat-server';
import { createChatServer } from '../chat/create-chat-server';
import { ENGINE_OPTIONS as E } from '../contract';
import type { BackendName } from '../server/types';
import { IocpnetError, ListenError } from '../server/errors';
import { LOG_LEVELS, createLogger, type LogFormat, type LogLevel, type Logger } from '../http/logger';
import { serveMetrics, type MetricsHandle } from '../http/serve-metrics';
import { intOption } from './int-option';
import { MAX_WORKERS, PrimaryChannel, WORKER_PORT_ENV, runWorkers, workerSlot } from './workers';

interface ChatServerFlags {
  port: number;
  host: string;
  backend: BackendName;
  ioThreads?: number;
  startRoom: number;
  maxRooms: number;
  maxRoomUsers: number;
  maxConnections: number;
  maxUsers?: number;
  maxPacketSize: number;
  idleTimeoutMs: number;
  chatRateLimit: number;
  exitWithParent: boolean;
  websocket: boolean;
  websocketOrigin?: string[];
  metricsPort?: number;
  metricsHost: string;
  logLevel?: LogLevel;
  logFormat?: LogFormat;
  redis?: string;
  clusterLeaseMs?: number;
  clusterPrefix?: string;
  nodeId?: string;
  clusterBufferBytes?: number;
  workers?: number;
}

/** How often the server looks whether the process that started it is gone. */
const PARENT_POLL_MS = 1000;

/** Adds `chat-server` to program. */
export function addChatServerCommand(program: Command): void {
  program
    .command('chat-server')
    .description('run the chat server (docs/PROTOCOL.md section 3) until SIGINT, SIGTERM or the exit of the process that started it')
    .option('--port <n>', 'TCP port; 0 picks a free one', intOption(0, 65535), 12021)
    .option('--host <address>', 'address to listen on', '0.0.0.0')
    .addOption(new Option('--backend <name>', 'network backend').choices(['native', 'js']).default('native'))
    .option('--io-threads <n>', 'native IO threads (default: cores - 1, at least 1)', intOption(E.ioThreads.min, E.ioThreads.max))
    .option('--start-room <n>', 'first room number', intOption(C.startRoom.min, C.startRoom.max), C.startRoom.default)
    .option('--max-rooms <n>', 'number of rooms', intOption(C.maxRooms.min, C.maxRooms.max), C.maxRooms.default)
    .option('--max-room-users <n>', 'users a room holds at most', intOption(C.maxRoomUsers.min, C.maxRoomUsers.max), C.maxRoomUsers.default)
    .option('--max-connections <n>', 'open connections at most', intOption(E.maxConnections.min, E.maxConnections.max), E.maxConnections.default)
    .option('--max-users <n>', 'users logged in at once at most (default: --max-connections)', intOption(C.maxUsers.min, C.maxUsers.max))
    .option(
      '--max-packet-size <n>',
      'largest accepted packet in bytes, header included',
      intOption(E.maxPacketSize.min, E.maxPacketSize.max),
      E.maxPacketSize.default,
    )
    .option(
      '--idle-timeout-ms <n>',
      'close connections silent for this long; 0 disables',
      intOption(E.idleTimeoutMs.min, E.idleTimeoutMs.max),
      E.idleTimeoutMs.default,
    )
    .option(
      '--chat-rate-limit <n>',
      'chat messages per user per second; 0 disables',
      intOption(C.chatRateLimit.min, C.chatRateLimit.max),
      C.chatRateLimit.default,
    )
    .option('--no-websocket', 'raw TCP framing only: no WebSocket clients on the port (by default both share it)')
    .option('--websocket-origin <origin...>', "origins a browser's WebSocket may come from, e.g. http://127.0.0.1:9464 (default: any)")
    .option('--redis <url>', 'join a cluster of chat servers on this Redis, redis://HOST:PORT[/DB] (docs/CLUSTER.md)')
    .option('--cluster-lease-ms <n>', "with --redis: a dead node's users leave within this time (default 5000)", intOption(1, Number.MAX_SAFE_INTEGER))
    .option('--cluster-prefix <s>', "with --redis: prefix of the cluster's keys (default iocpnet:)")
    .option('--node-id <s>', "with --redis: this node's name, unique in the cluster (default HOSTNAME:PID)")
    .option('--cluster-buffer-bytes <n>', 'with --redis: chat bytes held while Redis does not answer (default 8 MiB)', intOption(1, Number.MAX_SAFE_INTEGER))
    .option(
      '--workers <n>',
      `run this many worker processes that share the port (1..${MAX_WORKERS}); above 1 they form a cluster and need --redis`,
      intOption(1, MAX_WORKERS),
    )
    .option(
      '--metrics-port <n>',
      'serve Prometheus metrics (GET /metrics), the dashboard (GET /) and the web chat client (GET /chat) on this HTTP port; 0 picks a free one',
      intOption(0, 65535),
    )
    .option('--metrics-host <address>', 'address the metrics port listens on', '127.0.0.1')
    .addOption(new Option('--log-level <level>', 'structured logs through pino from this level on (debug: every connect and disconnect)').choices(LOG_LEVELS))
    .addOption(new Option('--log-format <format>', 'structured logs: one JSON object a line, or pretty lines (default pretty)').choices(['json', 'pretty']))
    .option('--no-exit-with-parent', 'keep running when the process that started the server exits (by default the server then shuts down as on SIGTERM)')
    .action(async (flags: ChatServerFlags, command: Command) => {
      // Taken first, so that a parent that dies while the server starts is still noticed.
      const parent = process.ppid;
      const worker = workerSlot();
      if (flags.workers !== undefined && worker === undefined) {
        checkWorkerFlags(flags, command);
        const logger = createCliLogger(flags);
        runWorkers({
          count: flags.workers,
          port: flags.port,
          host: flags.host,
          sameBindArgument: flags.backend === 'js',
          // A worker bounds its own shutdown by closeTimeoutMs + 5 s (serve() below).
          shutdownBoundMs: E.closeTimeoutMs.default + 5000 + WORKER_SHUTDOWN_MARGIN_MS,
          ...(logger === undefined ? {} : { logger }),
          ...(flags.exitWithParent ? { watchParent: (onGone: (reason: string) => void) => watchParent(parent, (now) => onGone(parentGone(parent, now))) } : {}),
        });
        return;
      }
      const channel = worker === undefined ? undefined : new PrimaryChannel(parent);
      const logger = createCliLogger(flags, worker === undefined ? {} : { worker });
      let chat: ChatServer;
      try {
        chat = createChatServer({
          backend: flags.backend,
          // Workers of the native engine share the port through SO_REUSEPORT; those of the js backend
          // through node:cluster, which listens in the primary and hands the connections out.
          ...(worker !== undefined && flags.backend === 'native' && (flags.workers ?? 1) > 1 ? { reusePort: true } : {}),
          ...(flags.ioThreads === undefined ? {} : { ioThreads: flags.ioThreads }),
          maxConnections: flags.maxConnections,
          maxPacketSize: flags.maxPacketSize,
          idleTimeoutMs: flags.idleTimeoutMs,
          startRoom: flags.startRoom,
          maxRooms: flags.maxRooms,
          maxRoomUsers: flags.maxRoomUsers,
          ...(flags.maxUsers === undefined ? {} : { maxUsers: flags.maxUsers }),
          chatRateLimit: flags.chatRateLimit,
          webSocket: flags.websocket,
          ...(flags.websocketOrigin === undefined ? {} : { webSocketOrigins: flags.websocketOrigin }),
          ...clusterOptions(flags, command, worker),
          ...(logger === undefined ? {} : { logger }),
        });
      } catch (err) {
        // Flags that are fine alone but not together, e.g. --start-room near the i32 limit with many rooms.
        if (err instanceof RangeError || err instanceof TypeError) command.error(`error: ${err.message}`);
        throw err;
      }
      await serve(chat, flags, parent, worker === undefined || channel === undefined ? undefined : { slot: worker, channel }, logger);
    });
}

/** How much longer than a worker's own bound the primary waits before it kills the worker. */
const WORKER_SHUTDOWN_MARGIN_MS = 3000;

/** Flags that --workers cannot go with; each is a usage error. */
function checkWorkerFlags(flags: ChatServerFlags, command: Command): void {
  const n = flags.workers ?? 1;
  if (n === 1) return;
  if (flags.redis === undefined) {
    command.error(`error: --workers ${n} needs --redis: without a cluster each worker would keep its own logins and rooms (docs/CLUSTER.md)`);
  }
  if (flags.metricsPort !== undefined) command.error('error: --metrics-port serves one process: it cannot go with --workers above 1 yet');
  if (process.platform === 'win32' && flags.backend === 'native') {
    command.error('error: --workers above 1 needs --backend js on Windows, which has no SO_REUSEPORT (docs/CLUSTER.md)');
  }
  if (flags.nodeId !== undefined && flags.nodeId.length + 1 + String(n).length > NODE_ID_MAX) {
    command.error(`error: --node-id with --workers ${n} is at most ${NODE_ID_MAX - 1 - String(n).length} characters (each worker adds -<n>)`);
  }
}

/** The longest node id (lib/cluster/cluster-options.ts). */
const NODE_ID_MAX = 100;

function createCliLogger(flags: ChatServerFlags, fields: object = {}): Logger | undefined {
  // Without --log-level or --log-format the server prints its plain lines, as it always did.
  if (flags.logLevel === undefined && flags.logFormat === undefined) return undefined;
  const logger = createLogger({ level: flags.logLevel ?? 'info', format: flags.logFormat ?? 'pretty' });
  return Object.keys(fields).length === 0 ? logger : withFields(logger, fields);
}

/** logger with fields added to every line (a worker's slot). */
function withFields(logger: Logger, fields: object): Logger {
  return {
    error: (obj, msg) => logger.error({ ...fields, ...obj }, msg),
    warn: (obj, msg) => logger.warn({ ...fields, ...obj }, msg),
    info: (obj, msg) => logger.info({ ...fields, ...obj }, msg),
    debug: (obj, msg) => logger.debug({ ...fields, ...obj }, msg),
    ...(logger.isLevelEnabled === undefined ? {} : { isLevelEnabled: (level: string) => logger.isLevelEnabled?.(level) ?? true }),
  };
}

/** The cluster options of the flags; cluster flags without --redis are a usage error. */
function clusterOptions(flags: ChatServerFlags, command: Command, worker: number | undefined): Pick<ChatServerOptions, 'cluster'> {
  const given = (['clusterLeaseMs', 'clusterPrefix', 'nodeId', 'clusterBufferBytes'] as const).filter((k) => flags[k] !== undefined);
  if (flags.redis === undefined) {
    if (given.length > 0) command.error(`error: --${given[0].replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --redis`);
    return {};
  }
  return {
    cluster: {
      redis: flags.redis,
      ...(flags.clusterLeaseMs === undefined ? {} : { leaseMs: flags.clusterLeaseMs }),
      ...(flags.clusterPrefix === undefined ? {} : { prefix: flags.clusterPrefix }),
      // Each worker is a node of its own; without --node-id the default (hostname:pid) differs anyway.
      ...(flags.nodeId === undefined ? {} : { nodeId: worker === undefined || (flags.workers ?? 1) === 1 ? flags.nodeId : `${flags.nodeId}-${worker}` }),
      ...(flags.clusterBufferBytes === undefined ? {} : { maxBufferBytes: flags.clusterBufferBytes }),
    },
  };
}

/** What serve() needs to know when it runs as a worker of `--workers`. */
interface WorkerRole {
  slot: number;
  channel: PrimaryChannel;
}

/**
 * Listens and runs until a signal or the parent's exit. A worker tags its
 * plain lines with its slot, tells its primary where it listens instead of
 * printing it, leaves SIGINT to the primary (PrimaryChannel), takes a
 * repeated request calmly, and always follows its primary out.
 */
async function serve(chat: ChatServer, flags: ChatServerFlags, parent: number, worker: WorkerRole | undefined, logger: Logger | undefined): Promise<void> {
  const tag = worker === undefined ? '' : `worker ${worker.slot}: `;
  const say = (message: string, fields: object = {}): void => (logger === undefined ? console.log(`${tag}${message}`) : logger.info(fields, message));
  const fail = (message: string): void => console.error(`${tag}error: ${message}`);
  // With a logger, the chat server logs its errors itself.
  if (logger === undefined) chat.server.on('error', (err) => fail(err.message));
  const port = worker === undefined ? flags.port : Number(process.env[WORKER_PORT_ENV] ?? flags.port);
  let address;
  try {
    address = await chat.listen(port, flags.host);
  } catch (err) {
    if (err instanceof ListenError || (err instanceof IocpnetError && err.code === 'ECLUSTERJOIN')) {
      fail(err.message);
    } else {
      const code = (err as { code?: unknown } | null)?.code;
      const message = err instanceof Error ? err.message : String(err);
      const detail = typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
      fail(`cannot listen on ${flags.host}:${port}: ${detail}`);
    }
    process.exit(1);
  }
  if (worker !== undefined) {
    worker.channel.listening(address.address, address.port, chat.server.backend);
  } else if (logger === undefined) {
    // With a logger, the server's 'listening' event was logged already.
    console.log(`iocpnet chat server (${chat.server.backend} backend) listening on ${address.address}:${address.port}`);
  }
  let metrics: MetricsHandle | undefined;
  if (flags.metricsPort !== undefined) {
    try {
      metrics = await serveMetrics(chat, { port: flags.metricsPort, host: flags.metricsHost, ...(logger === undefined ? {} : { logger }) });
    } catch (err) {
      fail(`cannot serve metrics on ${flags.metricsHost}:${flags.metricsPort}: ${err instanceof Error ? err.message : String(err)}`);
      await chat.close();
      process.exit(1);
    }
    const m = metrics.address();
    const web = flags.websocket ? `, web chat on http://${m.address}:${m.port}/chat` : '';
    if (logger === undefined) say(`metrics on http://${m.address}:${m.port}/metrics, dashboard on http://${m.address}:${m.port}/${web}`);
  }

  let closing: 'signal' | 'parent' | undefined;
  let stopWatching = (): void => {};
  const shutdown = (reason: string): void => {
    stopWatching();
    say(`${reason}: shutting down`, { reason });
    // server.close() bounds itself by closeTimeoutMs; this only guards against a hang.
    const guard = setTimeout(() => {
      fail('shutdown did not finish in time');
      process.exit(1);
    }, chat.server.options.closeTimeoutMs + 5000);
    guard.unref();
    Promise.all([chat.close(), metrics?.close()]).then(
      () => {
        if (logger === undefined) say('closed');
        process.exit(0);
      },
      (err: unknown) => {
        fail(err instanceof Error ? err.message : String(err));
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) {
      if (worker !== undefined) return;
      console.error(`${signal} ${closing === 'signal' ? 'again' : 'during shutdown'}: exiting without waiting for clients`);
      process.exit(1);
    }
    closing = 'signal';
    shutdown(signal);
  };
  const onParentGone = (reason: string): void => {
    if (closing) return;
    closing = 'parent';
    shutdown(reason);
  };
  if (worker === undefined) process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  worker?.channel.onStop((reason) => {
    if (closing) return;
    closing = 'signal';
    shutdown(reason);
  });
  if (flags.exitWithParent || worker !== undefined) {
    stopWatching = watchParent(parent, (now) => onParentGone(parentGone(parent, now)));
  }
}

function parentGone(parent: number, now: number): string {
  return `parent process ${parent} exited (parent is now ${now})`;
}

/**
 * Calls onGone once process.ppid differs from parent, the parent the server
 * started with: the parent exited and the server was handed to init or a
 * subreaper. A server that a process manager starts directly keeps the
 * manager as its parent, so this does not fire there. On Windows the parent
 * id stays as it was when that process exits, so nothing is watched. Returns
 * a function that stops the watching.
 */
function watchParent(parent: number, onGone: (now: number) => void): () => void {
  if (process.platform === 'win32') return () => {};
  const check = (): void => {
    const now = process.ppid;
    if (now === parent) return;
    clearInterval(timer);
    onGone(now);
  };
  const timer = setInterval(check, PARENT_POLL_MS);
  timer.unref();
  check();
  return () => clearInterval(timer);
}
