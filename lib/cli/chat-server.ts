import { Command, Option } from 'commander';
import { CHAT_OPTIONS as C, type ChatServer, type ChatServerOptions } from '../chat/chat-server';
import { createChatServer } from '../chat/create-chat-server';
import { ENGINE_OPTIONS as E } from '../contract';
import type { BackendName } from '../server/types';
import { IocpnetError, ListenError } from '../server/errors';
import { LOG_LEVELS, createLogger, type LogFormat, type LogLevel, type Logger } from '../http/logger';
import { attachLogger } from '../http/logs';
import { serveMetrics, type MetricsHandle } from '../http/serve-metrics';
import { intOption } from './int-option';

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
      let chat: ChatServer;
      try {
        chat = createChatServer({
          backend: flags.backend,
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
          ...clusterOptions(flags, command),
        });
      } catch (err) {
        // Flags that are fine alone but not together, e.g. --start-room near the i32 limit with many rooms.
        if (err instanceof RangeError || err instanceof TypeError) command.error(`error: ${err.message}`);
        throw err;
      }
      await serve(chat, flags, parent);
    });
}

/** The cluster options of the flags; cluster flags without --redis are a usage error. */
function clusterOptions(flags: ChatServerFlags, command: Command): Pick<ChatServerOptions, 'cluster'> {
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
      ...(flags.nodeId === undefined ? {} : { nodeId: flags.nodeId }),
      ...(flags.clusterBufferBytes === undefined ? {} : { maxBufferBytes: flags.clusterBufferBytes }),
    },
  };
}

async function serve(chat: ChatServer, flags: ChatServerFlags, parent: number): Promise<void> {
  // Without --log-level or --log-format the server prints its plain lines, as it always did.
  const logger: Logger | undefined =
    flags.logLevel === undefined && flags.logFormat === undefined
      ? undefined
      : createLogger({ level: flags.logLevel ?? 'info', format: flags.logFormat ?? 'pretty' });
  const say = (message: string, fields: object = {}): void => (logger === undefined ? console.log(message) : logger.info(fields, message));
  if (logger !== undefined) attachLogger(chat, logger);
  else chat.server.on('error', (err) => console.error(`error: ${err.message}`));
  let address;
  try {
    address = await chat.listen(flags.port, flags.host);
  } catch (err) {
    if (err instanceof ListenError || (err instanceof IocpnetError && err.code === 'ECLUSTERJOIN')) {
      console.error(`error: ${err.message}`);
    } else {
      const code = (err as { code?: unknown } | null)?.code;
      const message = err instanceof Error ? err.message : String(err);
      const detail = typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
      console.error(`error: cannot listen on ${flags.host}:${flags.port}: ${detail}`);
    }
    process.exit(1);
  }
  // With a logger, the server's 'listening' event was logged already.
  if (logger === undefined) console.log(`iocpnet chat server (${chat.server.backend} backend) listening on ${address.address}:${address.port}`);
  let metrics: MetricsHandle | undefined;
  if (flags.metricsPort !== undefined) {
    try {
      metrics = await serveMetrics(chat, { port: flags.metricsPort, host: flags.metricsHost, ...(logger === undefined ? {} : { logger }) });
    } catch (err) {
      console.error(`error: cannot serve metrics on ${flags.metricsHost}:${flags.metricsPort}: ${err instanceof Error ? err.message : String(err)}`);
      await chat.close();
      process.exit(1);
    }
    const m = metrics.address();
    const web = flags.websocket ? `, web chat on http://${m.address}:${m.port}/chat` : '';
    if (logger === undefined) console.log(`metrics on http://${m.address}:${m.port}/metrics, dashboard on http://${m.address}:${m.port}/${web}`);
  }

  let closing: 'signal' | 'parent' | undefined;
  let stopWatching = (): void => {};
  const shutdown = (reason: string): void => {
    stopWatching();
    say(`${reason}: shutting down`, { reason });
    // server.close() bounds itself by closeTimeoutMs; this only guards against a hang.
    const guard = setTimeout(() => {
      console.error('error: shutdown did not finish in time');
      process.exit(1);
    }, chat.server.options.closeTimeoutMs + 5000);
    guard.unref();
    Promise.all([chat.close(), metrics?.close()]).then(
      () => {
        if (logger === undefined) console.log('closed');
        process.exit(0);
      },
      (err: unknown) => {
        console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) {
      console.error(`${signal} ${closing === 'signal' ? 'again' : 'during shutdown'}: exiting without waiting for clients`);
      process.exit(1);
    }
    closing = 'signal';
    shutdown(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  if (flags.exitWithParent) {
    stopWatching = watchParent(parent, (now) => {
      if (closing) return;
      closing = 'parent';
      shutdown(`parent process ${parent} exited (parent is now ${now})`);
    });
  }
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
