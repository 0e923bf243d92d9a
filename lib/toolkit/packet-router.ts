import type { Connection } from '../server/connection';
import { HandlerError } from '../server/errors';
import { reportError } from '../server/report-error';
import type { Server } from '../server/server';
import { checkInteger, checkPacketId, describe, isThenable } from '../server/validate';
import { ProtocolError } from './protocol-error';

/**
 * Handles one packet, with the arguments of the Server's 'packet' event.
 * body is a view valid only until the handler returns (or, for an async
 * handler, until its first await); copy what must live longer. A handler may
 * return a promise: until it settles, later packets of the same connection
 * wait, so they are still handled in arrival order. Any other value it
 * returns is ignored.
 */
export type PacketHandler<T = unknown> = (conn: Connection<T>, packetId: number, body: Uint8Array) => unknown;

export interface PacketRouterOptions {
  /**
   * Bytes of packets one connection may have waiting behind an unsettled
   * handler; past that the connection is closed (KICKED). Default 64 KiB.
   */
  maxQueuedBytes?: number;
  /** Called for a handler that threw or rejected (other than with a ProtocolError). Default: console.error. */
  onError?: (err: HandlerError) => void;
}

export interface PacketRouterStats {
  /** Packets handed to a handler. */
  handled: number;
  /** Packets with no handler, ignored. */
  unknown: number;
  /** Connections closed because a handler threw a ProtocolError. */
  protocolErrors: number;
  /** Handlers that threw or rejected with anything else. */
  handlerErrors: number;
  /** Packets that waited behind an unsettled handler. */
  queued: number;
  /** Connections closed because too many bytes waited behind an unsettled handler. */
  queueOverflows: number;
}

interface Waiting {
  packetId: number;
  body: Buffer;
}

interface ConnectionQueue {
  items: Waiting[];
  bytes: number;
}

/**
 * Maps packet ids to handlers, like a dictionary of packet id to function.
 * A handler that throws a ProtocolError gets its connection closed with
 * DISCONNECT_NOTIFY(PROTOCOL_ERROR); any other throw is reported and the
 * connection stays open. JS thread only.
 */
export class PacketRouter<T = unknown> {
  readonly #handlers = new Map<number, PacketHandler<T>>();
  /** Connections whose handler has not settled yet, with what arrived meanwhile. */
  readonly #busy = new WeakMap<Connection<T>, ConnectionQueue>();
  readonly #maxQueuedBytes: number;
  #onError: (err: HandlerError) => void;
  readonly #stats: PacketRouterStats = { handled: 0, unknown: 0, protocolErrors: 0, handlerErrors: 0, queued: 0, queueOverflows: 0 };

  constructor(options: PacketRouterOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${describe(options)}`);
    this.#maxQueuedBytes = options.maxQueuedBytes === undefined ? 64 * 1024 : checkInteger('maxQueuedBytes', options.maxQueuedBytes, 0, 2 ** 31 - 1);
    if (options.onError !== undefined && typeof options.onError !== 'function') {
      throw new TypeError(`onError must be a function, got ${describe(options.onError)}`);
    }
    this.#onError = options.onError ?? ((err) => console.error(err));
  }

  /** Registers the handler of packetId (100..65535); throws if it has one already. */
  on(packetId: number, handler: PacketHandler<T>): this {
    checkPacketId(packetId);
    if (typeof handler !== 'function') throw new TypeError(`handler must be a function, got ${describe(handler)}`);
    if (this.#handlers.has(packetId)) throw new RangeError(`packet id ${packetId} already has a handler; call off(${packetId}) first to replace it`);
    this.#handlers.set(packetId, handler);
    return this;
  }

  /** Removes the handler of packetId; returns whether there was one. */
  off(packetId: number): boolean {
    return this.#handlers.delete(packetId);
  }

  has(packetId: number): boolean {
    return this.#handlers.has(packetId);
  }

  /** The registered ids, ascending. */
  packetIds(): number[] {
    return [...this.#handlers.keys()].sort((a, b) => a - b);
  }

  stats(): PacketRouterStats {
    return { ...this.#stats };
  }

  /**
   * Routes a server's 'packet' events here and reports handler errors as
   * its 'error' event (or console.error when it has no listener).
   */
  attach(server: Server<T>): this {
    this.#onError = (err) => reportError(server, err);
    server.on('packet', (conn, packetId, body) => this.dispatch(conn, packetId, body));
    return this;
  }

  /** True while a handler of conn has not settled; its later packets wait. */
  isBusy(conn: Connection<T>): boolean {
    return this.#busy.has(conn);
  }

  /** Handles one packet now, or queues a copy when conn's previous handler has not settled. */
  dispatch(conn: Connection<T>, packetId: number, body: Uint8Array): void {
    const queue = this.#busy.get(conn);
    if (queue === undefined) {
      this.#run(conn, packetId, body);
      return;
    }
    if (!conn.isOpen) return;
    if (queue.bytes + body.length > this.#maxQueuedBytes) {
      this.#stats.queueOverflows++;
      queue.items.length = 0;
      conn.close('kicked');
      return;
    }
    this.#stats.queued++;
    queue.bytes += body.length;
    queue.items.push({ packetId, body: Buffer.from(body) });
  }

  /** Runs the handler of packetId; returns true when it went async (conn is then busy). */
  #run(conn: Connection<T>, packetId: number, body: Uint8Array): boolean {
    const handler = this.#handlers.get(packetId);
    if (handler === undefined) {
      this.#stats.unknown++;
      return false;
    }
    this.#stats.handled++;
    let result: unknown;
    try {
      result = handler(conn, packetId, body);
    } catch (err) {
      this.#fail(conn, packetId, err);
      return false;
    }
    if (!isThenable(result)) return false;
    if (!this.#busy.has(conn)) this.#busy.set(conn, { items: [], bytes: 0 });
    // Promise.resolve makes even a thenable that settles synchronously resume later, never re-entrantly.
    Promise.resolve(result).then(
      () => this.#resume(conn),
      (err: unknown) => {
        this.#fail(conn, packetId, err);
        this.#resume(conn);
      },
    );
    return true;
  }

  /** Runs what waited behind a settled handler, until the queue is empty or a handler goes async again. */
  #resume(conn: Connection<T>): void {
    const queue = this.#busy.get(conn);
    if (queue === undefined) return;
    while (queue.items.length > 0 && conn.isOpen) {
      const next = queue.items.shift() as Waiting;
      queue.bytes -= next.body.length;
      if (this.#run(conn, next.packetId, next.body)) return;
    }
    this.#busy.delete(conn);
  }

  #fail(conn: Connection<T>, packetId: number, err: unknown): void {
    if (err instanceof ProtocolError) {
      this.#stats.protocolErrors++;
      conn.close('protocol_error');
      return;
    }
    this.#stats.handlerErrors++;
    try {
      this.#onError(new HandlerError(`packet ${packetId}`, conn.id, err));
    } catch (inner) {
      console.error(inner);
    }
  }
}
