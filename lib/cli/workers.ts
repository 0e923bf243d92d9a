/**
 * `chat-server --workers N`. The primary process runs no chat server of its
 * own: it starts N worker processes (node:cluster) that each run one and
 * share the listening port, restarts a worker that dies, and shuts them all
 * down on SIGINT or SIGTERM (docs/CLUSTER.md, "Worker processes"); that is
 * runWorkers(). PrimaryChannel is the worker's side. Both run on their
 * process's JS thread.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../http/logger';

/** The most workers --workers takes: far more than one machine's cores, below what would exhaust it. */
export const MAX_WORKERS = 64;

/** Set in a worker's environment: its slot (1..N) and the port it listens on. */
export const WORKER_ENV = 'IOCPNET_WORKER';
export const WORKER_PORT_ENV = 'IOCPNET_WORKER_PORT';

/** A worker that ran at least this long before it died is restarted at once; a shorter life counts as a crash in a row. */
const STABLE_MS = 10_000;
/** The pause before the second quick death's restart; it doubles per death in a row up to MAX_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 10_000;

/** The message a worker sends its primary once it listens. */
export interface WorkerListening {
  iocpnet: 'listening';
  address: string;
  port: number;
  backend: string;
}

/** The message a primary sends a worker to shut it down as on SIGTERM; reason is what the worker says. */
export interface WorkerShutdown {
  iocpnet: 'shutdown';
  reason: string;
}

function isListening(message: unknown): message is WorkerListening {
  return typeof message === 'object' && message !== null && (message as { iocpnet?: unknown }).iocpnet === 'listening';
}

function isShutdown(message: unknown): message is WorkerShutdown {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { iocpnet?: unknown }).iocpnet === 'shutdown' &&
    typeof (message as { reason?: unknown }).reason === 'string'
  );
}

/**
 * Asks a worker to shut down gracefully: by message while its channel is
 * open (on Windows, kill('SIGTERM') would end it at once), else by SIGTERM.
 */
function stopWorker(worker: Worker, reason: string): void {
  if (worker.isConnected()) worker.send({ iocpnet: 'shutdown', reason } satisfies WorkerShutdown);
  else worker.process.kill('SIGTERM');
}

/** This process's worker slot when it is a worker of `chat-server --workers`, else undefined. */
export function workerSlot(): number | undefined {
  const slot = process.env[WORKER_ENV];
  return cluster.isWorker && slot !== undefined && /^\d+$/.test(slot) ? Number(slot) : undefined;
}

/** The pause before restarting a worker that died after `crashes` quick deaths in a row (this one included). */
export function restartDelayMs(crashes: number): number {
  return crashes <= 1 ? 0 : Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (crashes - 2));
}

export interface WorkersPlan {
  count: number;
  port: number;
  host: string;
  /**
   * The workers of the native engine bind the port themselves (SO_REUSEPORT), so
   * with port 0 the others take the one the first was given; those of the js
   * backend ask the primary (node:cluster), which shares one socket per
   * port argument, 0 included.
   */
  sameBindArgument: boolean;
  /** How long a worker's own shutdown may take at most (it bounds itself); the primary SIGKILLs it past this. */
  shutdownBoundMs: number;
  logger?: Logger;
  /** Starts the orphan watch once the workers listen: calls onGone when the process that started the primary is gone. */
  watchParent?: (onGone: (reason: string) => void) => () => void;
}

interface Slot {
  index: number;
  worker?: Worker;
  startedAt: number;
  /** Quick deaths in a row. */
  crashes: number;
  restartTimer?: NodeJS.Timeout;
  listening: boolean;
}

/** Runs the primary until its workers have shut down; then exits the process (0 after a clean shutdown). */
export function runWorkers(plan: WorkersPlan): void {
  const { logger } = plan;
  const say = (message: string, fields: object = {}): void => (logger === undefined ? console.log(message) : logger.info(fields, message));
  const warn = (message: string, fields: object = {}): void => (logger === undefined ? console.error(message) : logger.warn(fields, message));
  const slots: Slot[] = Array.from({ length: plan.count }, (_, i) => ({ index: i + 1, startedAt: 0, crashes: 0, listening: false }));
  let port = plan.port;
  let phase: 'starting' | 'running' | 'closing' = 'starting';
  let unclean = false;
  let stopWatching = (): void => {};

  // The workers run this same command line; the environment tells them their slot.
  cluster.setupPrimary({ exec: process.argv[1], args: process.argv.slice(2) });

  const fork = (slot: Slot): void => {
    slot.listening = false;
    slot.startedAt = Date.now();
    const worker = cluster.fork({ [WORKER_ENV]: String(slot.index), [WORKER_PORT_ENV]: String(port) });
    slot.worker = worker;
    worker.on('message', (message: unknown) => {
      if (!isListening(message) || slot.worker !== worker) return;
      slot.listening = true;
      onListening(slot, message);
    });
  };

  const live = (): Slot[] => slots.filter((s) => s.worker !== undefined);

  const onListening = (slot: Slot, m: WorkerListening): void => {
    const pid = slot.worker?.process.pid;
    if (phase === 'running') {
      say(`worker ${slot.index}: pid ${pid} (restarted)`, { worker: slot.index, pid });
      return;
    }
    if (phase !== 'starting') return;
    if (slot.index === 1 && port === 0 && !plan.sameBindArgument) {
      // The first worker picked the port; the others take the same one.
      port = m.port;
    }
    if (slot.index === 1) for (const s of slots.slice(1)) fork(s);
    if (!slots.every((s) => s.listening)) return;
    phase = 'running';
    const workers = slots.map((s) => ({ worker: s.index, pid: s.worker?.process.pid }));
    say(`iocpnet chat server (${m.backend} backend, ${plan.count} worker${plan.count === 1 ? '' : 's'}) listening on ${m.address}:${m.port}`, {
      address: m.address,
      port: m.port,
      backend: m.backend,
      workers,
    });
    if (logger === undefined) for (const w of workers) console.log(`worker ${w.worker}: pid ${w.pid}`);
    if (plan.watchParent) stopWatching = plan.watchParent((reason) => shutdown(reason));
  };

  cluster.on('exit', (worker, code, signal) => {
    const slot = slots.find((s) => s.worker === worker);
    if (slot === undefined) return;
    slot.worker = undefined;
    const how = signal === null ? `exit code ${code}` : `signal ${signal}`;
    const pid = worker.process.pid;
    if (phase === 'closing') {
      // A worker ended by a SIGTERM before its handler was set up had no clients yet.
      if (code !== 0 && signal !== 'SIGTERM') unclean = true;
      if (live().length === 0) finish();
      return;
    }
    if (phase === 'starting') {
      // As a single server that cannot listen: the worker has said why; the others are stopped.
      warn(`worker ${slot.index} (pid ${pid}) ended (${how}) before it listened: stopping`, { worker: slot.index, pid, code, signal });
      unclean = true;
      phase = 'closing';
      for (const s of slots) clearTimeout(s.restartTimer);
      for (const s of live()) if (s.worker) stopWorker(s.worker, 'a worker failed to start');
      if (live().length === 0) finish(typeof code === 'number' && code !== 0 ? code : 1);
      return;
    }
    slot.crashes = Date.now() - slot.startedAt >= STABLE_MS ? 1 : slot.crashes + 1;
    const delay = restartDelayMs(slot.crashes);
    warn(`worker ${slot.index} (pid ${pid}) ended (${how}); restarting in ${delay} ms`, { worker: slot.index, pid, code, signal, restartInMs: delay });
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (phase === 'running') fork(slot);
    }, delay);
  });

  let guard: NodeJS.Timeout | undefined;
  const shutdown = (reason: string): void => {
    if (phase === 'closing') return;
    phase = 'closing';
    stopWatching();
    for (const s of slots) clearTimeout(s.restartTimer);
    const running = live();
    say(`${reason}: shutting down ${running.length} worker${running.length === 1 ? '' : 's'}`, { reason });
    // A worker that got a signal from elsewhere as well (a process group, systemd) takes the second request calmly.
    for (const s of running) if (s.worker) stopWorker(s.worker, reason);
    guard = setTimeout(() => {
      warn('error: workers did not shut down in time; killing them', {});
      killAll();
    }, plan.shutdownBoundMs);
    guard.unref();
    if (running.length === 0) finish();
  };

  const killAll = (): void => {
    unclean = true;
    for (const s of live()) s.worker?.process.kill('SIGKILL');
    if (live().length === 0) finish();
  };

  const finish = (code?: number): void => {
    clearTimeout(guard);
    if (!unclean && logger === undefined) console.log('closed');
    if (!unclean && logger !== undefined) logger.info({}, 'closed');
    process.exit(code ?? (unclean ? 1 : 0));
  };

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (phase === 'closing') {
      warn(`${signal} ${signalled ? 'again' : 'during shutdown'}: killing the workers without waiting for clients`, { signal });
      killAll();
      return;
    }
    signalled = true;
    shutdown(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  fork(slots[0]);
}

/**
 * A worker's side of its channel to the primary, set up before the worker's
 * server starts, so that a request that comes early is kept. node:cluster
 * ends a worker at once (process.exit) when the channel closes, as when the
 * primary is killed; a chat worker is to shut down gracefully instead, so
 * that its clients get DISCONNECT_NOTIFY(SERVER_SHUTDOWN): this replaces
 * that handler. A message that node:cluster sends to a primary that is gone
 * must not become an uncaught error either.
 */
export class PrimaryChannel {
  #pending: string | undefined;
  #onStop: ((reason: string) => void) | undefined;

  constructor(primary: number) {
    process.removeAllListeners('disconnect');
    process.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ERR_IPC_CHANNEL_CLOSED') console.error(`error: ${err.message}`);
    });
    process.on('message', (message: unknown) => {
      if (isShutdown(message)) this.#stop(message.reason);
    });
    process.once('disconnect', () => this.#stop(`primary process ${primary} is gone`));
    if (!process.connected) this.#stop(`primary process ${primary} is gone`);
    // A terminal's Ctrl+C reaches the whole process group; the primary then asks each worker.
    process.on('SIGINT', () => {});
  }

  /** Calls onStop once, with the reason, when the primary asks to shut down or is gone (at once if that came already). */
  onStop(onStop: (reason: string) => void): void {
    this.#onStop = onStop;
    if (this.#pending !== undefined) onStop(this.#pending);
  }

  listening(address: string, port: number, backend: string): void {
    process.send?.({ iocpnet: 'listening', address, port, backend } satisfies WorkerListening);
  }

  #stop(reason: string): void {
    if (this.#pending !== undefined) return;
    this.#pending = reason;
    this.#onStop?.(reason);
  }
}
