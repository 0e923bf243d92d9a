import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { DisconnectReason, Transport } from '../contract';
import type { Backend, BackendSink } from '../backends/backend';
import { emptyStats } from '../backends/stats';
import { Connection, EMPTY_BODY, type ConnectionOwner } from './connection';
import { HandlerError, IocpnetError, ListenError } from './errors';
import { resolveServerOptions } from './options';
import { reportError } from './report-error';
import type { ListenAddress, ResolvedServerOptions, ServerOptions, ServerStats } from './types';
import { checkInteger, checkPacketArgs, describe } from './validate';

/** The events of a Server whose connections carry data of type T, with their arguments. */
export interface ServerEvents<T = unknown> {
  connect: [conn: Connection<T>];
  /** The same arguments as a PacketRouter handler's. body is valid only during the call. */
  packet: [conn: Connection<T>, packetId: number, body: Uint8Array];
  disconnect: [conn: Connection<T>, reason: DisconnectReason];
  error: [err: Error];
  listening: [address: ListenAddress];
  close: [];
}

type State = 'idle' | 'listening' | 'closing' | 'closed';

/**
 * Told what the JS side of a Server does, for metrics (lib/http/metrics.ts).
 * Called on the JS thread, inside the batch: it must not throw and must be
 * cheap. A server without an observer pays one null check per packet and
 * per batch; with one, one clock read per packet: a packet's time runs from
 * the end of the packet before it in the same batch (or from a read of its
 * own, for the first packet of a batch and after any other event) to the
 * end of its listeners.
 */
export interface ServerObserver {
  /** A packet's 'packet' listeners returned after seconds (their synchronous part). */
  packetHandled(packetId: number, seconds: number): void;
  /** A batch from the backend ended; packets: the packets it handed to the 'packet' event. */
  batchEnded(packets: number): void;
}

/**
 * A TCP game server. Events are emitted on the JS thread, in arrival order
 * per connection. A listener may be async: a rejection is reported as a throw
 * is. T is the type of every connection's `data`. Create it with createServer().
 */
export class Server<T = unknown> extends EventEmitter implements BackendSink, ConnectionOwner {
  readonly options: ResolvedServerOptions;
  readonly #connections = new Map<number, Connection<T>>();
  #backend: Backend | undefined;
  #state: State = 'idle';
  #flushScheduled = false;
  #inBatch = false;
  #closePromise: Promise<void> | undefined;
  #address: ListenAddress | undefined;
  #observer: ServerObserver | null = null;
  #batchPackets = 0;
  /** With an observer: when the previous packet of this batch was handled (performance.now()), else -1. */
  #mark = -1;
  readonly #backendFactory: (options: ResolvedServerOptions, sink: BackendSink) => Backend;

  /** @internal Use createServer(). */
  constructor(options: ServerOptions | undefined, backendFactory: (options: ResolvedServerOptions, sink: BackendSink) => Backend) {
    // A listener's rejected promise reaches the method below instead of
    // becoming an unhandled rejection.
    super({ captureRejections: true });
    this.options = resolveServerOptions(options);
    this.#backendFactory = backendFactory;
  }

  override on<E extends keyof ServerEvents<T>>(event: E, listener: (...args: ServerEvents<T>[E]) => unknown): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }
  override once<E extends keyof ServerEvents<T>>(event: E, listener: (...args: ServerEvents<T>[E]) => unknown): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }
  override off<E extends keyof ServerEvents<T>>(event: E, listener: (...args: ServerEvents<T>[E]) => unknown): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }
  override emit<E extends keyof ServerEvents<T>>(event: E, ...args: ServerEvents<T>[E]): boolean {
    return super.emit(event, ...args);
  }

  /**
   * @internal A listener returned a promise (or any thenable) that rejected:
   * reported exactly as a synchronous throw is, a HandlerError to 'error'.
   */
  override [EventEmitter.captureRejectionSymbol](err: unknown, event: string | symbol, ...args: unknown[]): void {
    if (event === 'error') {
      // Reporting it to 'error' again could loop.
      console.error(err);
      return;
    }
    const conn = args[0] instanceof Connection ? args[0] : undefined;
    reportError(this, new HandlerError(String(event), conn?.id ?? -1, err));
  }

  /** Emits one of the server's own events; a throwing listener is reported as for the connection events. */
  #emitServerEvent<E extends 'listening' | 'close'>(event: E, ...args: ServerEvents<T>[E]): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      reportError(this, new HandlerError(event, -1, err));
    }
  }

  /** The backend in use: 'native' or 'js'. */
  get backend(): 'native' | 'js' {
    return this.options.backend;
  }

  /** The bound address, once listening. */
  address(): ListenAddress | undefined {
    return this.#address;
  }

  /** Open connections, by id. */
  get connections(): ReadonlyMap<number, Connection<T>> {
    return this.#connections;
  }

  /**
   * Binds and starts accepting. Rejects with a ListenError whose code is, for
   * example, EADDRINUSE. Port 0 picks a free port.
   */
  async listen(port = 12021, host = '0.0.0.0'): Promise<ListenAddress> {
    checkInteger('port', port, 0, 65535);
    if (typeof host !== 'string' || host.length === 0) {
      throw new TypeError(`host must be a non-empty string, got ${describe(host)}`);
    }
    if (this.#state !== 'idle') {
      throw new IocpnetError('ERR_SERVER_STATE', `listen() called on a server that is ${this.#state}`);
    }
    this.#state = 'listening';
    try {
      this.#backend = this.#backendFactory(this.options, this);
      this.#address = await this.#backend.listen(port, host);
    } catch (err) {
      this.#state = 'idle';
      const backend = this.#backend;
      this.#backend = undefined;
      if (backend) await backend.close().catch(() => undefined);
      throw ListenError.from(err, host, port);
    }
    this.#emitServerEvent('listening', this.#address);
    return this.#address;
  }

  /**
   * Sends one packet to each open connection in conns; the body is copied
   * once and shared by all receivers. Returns how many were open (one that
   * is ending may still lose the packet, as with send()).
   */
  broadcast(conns: Iterable<Connection<T>>, packetId: number, body: Uint8Array = EMPTY_BODY): number {
    checkPacketArgs(packetId, body);
    if (conns === null || typeof conns !== 'object' || typeof conns[Symbol.iterator] !== 'function') {
      throw new TypeError(`conns must be an iterable of Connection, got ${describe(conns)}`);
    }
    const ids: number[] = [];
    for (const c of conns) {
      if (!(c instanceof Connection)) throw new TypeError(`conns must hold only Connection objects, got ${describe(c)}`);
      if (c.isOpen) ids.push(c.id);
    }
    if (ids.length === 0 || !this.#backend) return 0;
    const n = this.#backend.broadcast(ids, packetId, body);
    this.#scheduleFlush();
    return n;
  }

  /**
   * Sets (or, with null, removes) the one observer of the server's batches
   * and handlers; serveMetrics() uses it. Throws if another observer is set.
   */
  setObserver(observer: ServerObserver | null): void {
    if (observer !== null && this.#observer !== null && this.#observer !== observer) {
      throw new IocpnetError('ERR_SERVER_STATE', 'the server already has an observer (serveMetrics() called twice?)');
    }
    this.#observer = observer;
  }

  /** Counters of the engine. */
  stats(): ServerStats {
    if (this.#backend) return this.#backend.stats();
    return emptyStats();
  }

  /**
   * Stops accepting, sends DISCONNECT_NOTIFY(SERVER_SHUTDOWN) to every
   * connection after what handlers already queued, closes them, releases
   * every thread and handle, then resolves.
   */
  close(): Promise<void> {
    if (this.#closePromise) return this.#closePromise;
    this.#closePromise = (async () => {
      const backend = this.#backend;
      this.#state = 'closing';
      if (backend) {
        backend.flush();
        await backend.close();
      }
      for (const conn of this.#connections.values()) conn._markClosed();
      this.#connections.clear();
      this.#state = 'closed';
      this.#emitServerEvent('close');
    })();
    return this.#closePromise;
  }

  /** @internal */
  _send(id: number, packetId: number, body: Uint8Array): boolean {
    const backend = this.#backend;
    if (!backend) return false;
    const ok = backend.send(id, packetId, body);
    if (ok) this.#scheduleFlush();
    return ok;
  }

  /** @internal */
  _closeConnection(id: number, mode: 'close' | 'destroy', code?: number): boolean {
    const backend = this.#backend;
    if (!backend) return false;
    const ok = backend.closeConnection(id, mode, code);
    this.#scheduleFlush();
    return ok;
  }

  // The BackendSink methods run once per event: no closure per packet, and a
  // throwing handler is reported without stopping the batch.

  /** @internal BackendSink */
  onConnect(id: number, remoteAddress: string, remotePort: number, transport: Transport): void {
    const conn = new Connection<T>(this, id, remoteAddress, remotePort, transport);
    this.#connections.set(id, conn);
    this.#inBatch = true;
    this.#mark = -1;
    try {
      this.emit('connect', conn);
    } catch (err) {
      reportError(this, new HandlerError('connect', id, err));
    }
  }

  /** @internal BackendSink */
  onPacket(id: number, packetId: number, body: Uint8Array): void {
    const conn = this.#connections.get(id);
    if (!conn) return;
    this.#inBatch = true;
    this.#batchPackets++;
    const observer = this.#observer;
    const start = observer === null ? 0 : this.#mark >= 0 ? this.#mark : performance.now();
    try {
      this.emit('packet', conn, packetId, body);
    } catch (err) {
      reportError(this, new HandlerError('packet', id, err));
    }
    if (observer !== null) {
      const end = performance.now();
      this.#mark = end;
      observer.packetHandled(packetId, (end - start) / 1000);
    }
  }

  /** @internal BackendSink */
  onDisconnect(id: number, reason: DisconnectReason): void {
    const conn = this.#connections.get(id);
    if (!conn) return;
    this.#connections.delete(id);
    conn._markClosed();
    this.#inBatch = true;
    this.#mark = -1;
    try {
      this.emit('disconnect', conn, reason);
    } catch (err) {
      reportError(this, new HandlerError('disconnect', id, err));
    }
  }

  /** @internal BackendSink */
  onBatchEnd(): void {
    this.#inBatch = false;
    this.#mark = -1;
    if (this.#observer !== null) this.#observer.batchEnded(this.#batchPackets);
    this.#batchPackets = 0;
    if (this.#backend) this.#backend.flush();
    this.#flushScheduled = false;
  }

  #scheduleFlush(): void {
    // Inside a batch the flush happens once at its end; elsewhere once per
    // synchronous run of application code.
    if (this.#inBatch || this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      if (!this.#flushScheduled) return;
      this.#flushScheduled = false;
      if (this.#backend) this.#backend.flush();
    });
  }
}
