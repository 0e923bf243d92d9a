import { EventEmitter } from 'node:events';
import { HandlerError, IocpnetError } from './errors';
import { checkInteger, describe, resolveServerOptions } from './options';
import { DisconnectCode, MAX_BODY_SIZE } from './protocol';
import type {
  Backend,
  BackendSink,
  CloseReason,
  DisconnectReason,
  ListenAddress,
  ResolvedServerOptions,
  ServerOptions,
  ServerStats,
} from './types';

/**
 * One client connection. Created by the Server on 'connect'; after
 * 'disconnect' it is closed for good and every call on it is refused.
 * JS thread only.
 */
export class Connection {
  /** Opaque id, unique among open connections; a reused slot gets a new id. */
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Free for application state (the chat server keeps its user here). */
  data: unknown = undefined;
  #open = true;
  readonly #server: Server;

  /** @internal */
  constructor(server: Server, id: number, remoteAddress: string, remotePort: number) {
    this.#server = server;
    this.id = id;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
  }

  /** True until close(), destroy() or the 'disconnect' event. */
  get isOpen(): boolean {
    return this.#open;
  }

  /**
   * Queues one packet. Returns false when the connection is no longer open.
   * The body is copied before send() returns.
   */
  send(packetId: number, body: Uint8Array = EMPTY): boolean {
    checkPacketArgs(packetId, body);
    if (!this.#open) return false;
    return this.#server._send(this.id, packetId, body);
  }

  /**
   * Sends what is queued, then DISCONNECT_NOTIFY(KICKED), or
   * DISCONNECT_NOTIFY(PROTOCOL_ERROR) with reason 'protocol_error', then
   * closes. The 'disconnect' event reports the same reason.
   */
  close(reason: CloseReason = 'kicked'): boolean {
    if (reason !== 'kicked' && reason !== 'protocol_error') {
      throw new TypeError(`reason must be 'kicked' or 'protocol_error', got ${describe(reason)}`);
    }
    if (!this.#open) return false;
    this.#open = false;
    const code = reason === 'protocol_error' ? DisconnectCode.PROTOCOL_ERROR : DisconnectCode.KICKED;
    return this.#server._closeConnection(this.id, 'close', code);
  }

  /** Drops what is queued and closes now. */
  destroy(): boolean {
    if (!this.#open) return false;
    this.#open = false;
    return this.#server._closeConnection(this.id, 'destroy');
  }

  /** @internal */
  _markClosed(): void {
    this.#open = false;
  }
}

const EMPTY = new Uint8Array(0);

function checkPacketArgs(packetId: unknown, body: unknown): asserts body is Uint8Array {
  checkInteger('packetId', packetId, 0, 0xffff);
  if (!(body instanceof Uint8Array)) {
    throw new TypeError(`body must be a Uint8Array or Buffer, got ${describe(body)}`);
  }
  if (body.length > MAX_BODY_SIZE) {
    throw new RangeError(`body must be at most ${MAX_BODY_SIZE} bytes, got ${body.length}`);
  }
}

export interface ServerEvents {
  connect: [conn: Connection];
  packet: [conn: Connection, packetId: number, body: Uint8Array];
  disconnect: [conn: Connection, reason: DisconnectReason];
  error: [err: Error];
  listening: [address: ListenAddress];
  close: [];
}

type State = 'idle' | 'listening' | 'closing' | 'closed';

/**
 * A TCP game server. Events are emitted on the JS thread, in arrival order
 * per connection. Create it with createServer().
 */
export class Server extends EventEmitter implements BackendSink {
  readonly options: ResolvedServerOptions;
  readonly #connections = new Map<number, Connection>();
  #backend: Backend | undefined;
  #state: State = 'idle';
  #flushScheduled = false;
  #inBatch = false;
  #closePromise: Promise<void> | undefined;
  #address: ListenAddress | undefined;
  readonly #backendFactory: (options: ResolvedServerOptions, sink: BackendSink) => Backend;

  /** @internal Use createServer(). */
  constructor(
    options: ServerOptions | undefined,
    backendFactory: (options: ResolvedServerOptions, sink: BackendSink) => Backend,
  ) {
    super();
    this.options = resolveServerOptions(options);
    this.#backendFactory = backendFactory;
  }

  override on<E extends keyof ServerEvents>(event: E, listener: (...args: ServerEvents[E]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }
  override once<E extends keyof ServerEvents>(event: E, listener: (...args: ServerEvents[E]) => void): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }
  override off<E extends keyof ServerEvents>(event: E, listener: (...args: ServerEvents[E]) => void): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }
  override emit<E extends keyof ServerEvents>(event: E, ...args: ServerEvents[E]): boolean {
    return super.emit(event, ...args);
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
  get connections(): ReadonlyMap<number, Connection> {
    return this.#connections;
  }

  /**
   * Binds and starts accepting. Rejects with an Error whose code is, for
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
      throw err;
    }
    this.emit('listening', this.#address);
    return this.#address;
  }

  /**
   * Sends one packet to each open connection in conns; the body is copied
   * once and shared by all receivers. Returns how many received it.
   */
  broadcast(conns: Iterable<Connection>, packetId: number, body: Uint8Array = EMPTY): number {
    checkPacketArgs(packetId, body);
    if (conns === null || typeof conns !== 'object' || typeof (conns as Iterable<Connection>)[Symbol.iterator] !== 'function') {
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
      this.emit('close');
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
  onConnect(id: number, remoteAddress: string, remotePort: number): void {
    const conn = new Connection(this, id, remoteAddress, remotePort);
    this.#connections.set(id, conn);
    this.#inBatch = true;
    try {
      this.emit('connect', conn);
    } catch (err) {
      this.#reportError(new HandlerError('connect', id, err));
    }
  }

  /** @internal BackendSink */
  onPacket(id: number, packetId: number, body: Uint8Array): void {
    const conn = this.#connections.get(id);
    if (!conn) return;
    this.#inBatch = true;
    try {
      this.emit('packet', conn, packetId, body);
    } catch (err) {
      this.#reportError(new HandlerError('packet', id, err));
    }
  }

  /** @internal BackendSink */
  onDisconnect(id: number, reason: DisconnectReason): void {
    const conn = this.#connections.get(id);
    if (!conn) return;
    this.#connections.delete(id);
    conn._markClosed();
    this.#inBatch = true;
    try {
      this.emit('disconnect', conn, reason);
    } catch (err) {
      this.#reportError(new HandlerError('disconnect', id, err));
    }
  }

  /** @internal BackendSink */
  onBatchEnd(): void {
    this.#inBatch = false;
    if (this.#backend) this.#backend.flush();
    this.#flushScheduled = false;
  }

  #reportError(err: Error): void {
    if (this.listenerCount('error') === 0) {
      console.error(err);
      return;
    }
    try {
      this.emit('error', err);
    } catch (inner) {
      console.error(inner);
    }
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

export function emptyStats(): ServerStats {
  return {
    connections: 0,
    accepted: 0,
    packetsIn: 0,
    packetsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    pings: 0,
    ignoredSystemPackets: 0,
    staleRefused: 0,
    readPauses: 0,
    closes: {
      closed: 0,
      reset: 0,
      protocol_error: 0,
      idle_timeout: 0,
      slow_consumer: 0,
      server_full: 0,
      shutdown: 0,
      kicked: 0,
    },
  };
}
