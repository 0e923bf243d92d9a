import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { DisconnectCode, FIRST_APP_PACKET_ID, HEADER_SIZE, MAX_PING_BODY, PacketId, type DisconnectReason } from '../contract';
import { IocpnetError } from '../server/errors';
import type { ListenAddress, ResolvedServerOptions, ServerStats } from '../server/types';
import { encodePacket } from '../protocol';
import type { Backend, BackendSink } from './backend';
import { emptyStats } from './stats';

const enum Phase {
  /** Reading and sending. */
  Open,
  /** FIN queued behind the last packets; input is read and discarded until the peer closes or the deadline passes. */
  Closing,
  /** destroy() called; the slot is freed on 'close'. */
  Dead,
}

/** A split packet's buffer larger than this is given back once the packet is complete. */
const PARTIAL_KEEP = 4096;
/** First size of a connection's outbound buffer; it doubles while one flush fills it, up to OUT_MAX. */
const OUT_MIN = 1024;
const OUT_MAX = 64 * 1024;
/** Broadcast bodies from this size are encoded once and shared by every receiver's write instead of copied. */
const SHARE_MIN = 1024;

/** The DISCONNECT_NOTIFY bodies (u16 reason), by code. */
const NOTIFY_BODY: Uint8Array[] = [];
for (const code of Object.values(DisconnectCode)) NOTIFY_BODY[code] = new Uint8Array([code & 0xff, code >>> 8]);

function ignore(): void {}

function destroySelf(this: net.Socket): void {
  this.destroy();
}

/**
 * One accepted socket and its framing and send state. Owned by JsBackend;
 * JS main thread only.
 */
class JsConnection {
  phase = Phase.Open;
  /** Index in JsBackend's list of live connections. */
  listIndex = -1;
  lastActivity: number;
  /** When a Closing connection is destroyed if the peer has not finished. */
  deadline = 0;

  /** The start of a packet split across reads, and how many of its bytes are here. */
  partial: Buffer | null = null;
  partialFill = 0;

  /**
   * Outbound bytes not yet handed to the socket: full earlier pieces in
   * segments, then out[outStart, outEnd). Bytes before outStart belong to
   * writes in flight and are not touched until they complete.
   */
  out: Buffer | null = null;
  outStart = 0;
  outEnd = 0;
  segments: Buffer[] | null = null;
  pendingBytes = 0;
  dirty = false;
  /** Sizes of the writes in flight, oldest first; their callbacks complete in order. */
  readonly writeSizes: number[] = [];
  onWritten: (err?: Error | null) => void = ignore;

  constructor(
    readonly id: number,
    readonly slot: number,
    readonly socket: net.Socket,
    now: number,
  ) {
    this.lastActivity = now;
  }
}

/**
 * The pure-JS backend on node:net. Everything runs on the JS main thread:
 * each socket 'data' event is framed in place and its packets are handed to
 * the sink at once, then the sink's onBatchEnd flushes; every connection's
 * packets of one flush go out in one write.
 *
 * Inbound flow control: packets are delivered synchronously inside the
 * 'data' event that carried them, so nothing waits for JS and
 * maxPendingBytes never applies (stats.readPauses stays 0). A slow handler
 * slows the event loop, and with it reading, which pushes back on clients
 * through TCP.
 */
export class JsBackend implements Backend {
  readonly name = 'js' as const;
  readonly #sink: BackendSink;
  readonly #capacity: number;
  readonly #maxPacketSize: number;
  readonly #idleTimeoutMs: number;
  readonly #maxSendQueueBytes: number;
  readonly #closeTimeoutMs: number;
  readonly #stats: ServerStats = emptyStats();
  #open = 0;

  /** Slot index to connection; a slot is held from accept until its socket is closed. */
  readonly #slots: Array<JsConnection | null> = [];
  readonly #generations: number[] = [];
  readonly #freeSlots: number[] = [];
  readonly #maxGeneration: number;
  /** Every connection whose socket is not closed yet, in no order. */
  readonly #live: JsConnection[] = [];
  /** Connections with bytes waiting for flush(). */
  readonly #dirty: JsConnection[] = [];
  /** Sockets refused at accept, until they are closed. */
  readonly #rejected = new Set<net.Socket>();

  /**
   * Disconnects waiting to be reported. They are reported at the end of the
   * current socket callback, or from setImmediate when application code
   * caused them, so that a handler never sees 'disconnect' from inside its
   * own send() or close().
   */
  readonly #gone: Array<{ id: number; reason: DisconnectReason }> = [];
  /** Nonzero while a socket callback or a report is running. */
  #depth = 0;
  #immediate: NodeJS.Immediate | undefined;
  readonly #onImmediate = (): void => {
    this.#immediate = undefined;
    this.#endBatch(false);
  };

  #server: net.Server | undefined;
  #ticker: NodeJS.Timeout | undefined;
  #closing = false;
  #serverClosed = false;
  #closePromise: Promise<void> | undefined;
  #closeResolve: (() => void) | undefined;
  #closeTimer: NodeJS.Timeout | undefined;

  constructor(options: ResolvedServerOptions, sink: BackendSink) {
    this.#sink = sink;
    this.#capacity = options.maxConnections;
    this.#maxPacketSize = options.maxPacketSize;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#maxSendQueueBytes = options.maxSendQueueBytes;
    this.#closeTimeoutMs = options.closeTimeoutMs;
    // Ids are slot + generation * capacity with generation >= 1: never 0,
    // always a u32, and a reused slot gets a new id.
    this.#maxGeneration = Math.floor((0xffffffff - this.#capacity) / this.#capacity);
  }

  listen(port: number, host: string): Promise<ListenAddress> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: true, noDelay: true });
      const onError = (err: Error): void => {
        server.off('listening', onListening);
        reject(err);
      };
      const onListening = (): void => {
        server.off('error', onError);
        if (this.#closing) {
          // close() ran while the bind was in flight.
          server.close();
          reject(new IocpnetError('ERR_SERVER_STATE', 'the server was closed before it started listening'));
          return;
        }
        // Later errors are failed accepts (EMFILE and the like); net.Server
        // keeps accepting after them.
        server.on('error', ignore);
        this.#server = server;
        this.#startTicker();
        const a = server.address() as net.AddressInfo;
        resolve({ address: a.address, port: a.port });
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.on('connection', (socket: net.Socket) => this.#accept(socket));
      server.listen({ port, host });
    });
  }

  send(id: number, packetId: number, body: Uint8Array): boolean {
    const c = this.#lookup(id);
    if (c === undefined) {
      this.#stats.staleRefused++;
      return false;
    }
    const size = HEADER_SIZE + body.length;
    if (!this.#admit(c, size)) return false;
    this.#stats.packetsOut++;
    this.#append(c, packetId, body, 0, body.length, size);
    return true;
  }

  broadcast(ids: readonly number[], packetId: number, body: Uint8Array): number {
    const size = HEADER_SIZE + body.length;
    const shared = body.length >= SHARE_MIN && ids.length > 1 ? encodePacket(packetId, body) : null;
    let sent = 0;
    for (let i = 0; i < ids.length; i++) {
      const c = this.#lookup(ids[i]);
      if (c === undefined) {
        this.#stats.staleRefused++;
        continue;
      }
      if (!this.#admit(c, size)) continue;
      this.#stats.packetsOut++;
      if (shared !== null) this.#appendShared(c, shared);
      else this.#append(c, packetId, body, 0, body.length, size);
      sent++;
    }
    return sent;
  }

  /**
   * 'close' queues DISCONNECT_NOTIFY(code) after what is queued and closes
   * gracefully; code PROTOCOL_ERROR reports 'protocol_error', any other
   * 'kicked'. 'destroy' drops what is queued.
   */
  closeConnection(id: number, mode: 'close' | 'destroy', code: number = DisconnectCode.KICKED): boolean {
    const c = this.#lookup(id);
    if (c === undefined) {
      this.#stats.staleRefused++;
      return false;
    }
    if (mode === 'destroy') {
      this.#beginClose(c, 'kicked', 0, false);
    } else {
      this.#beginClose(c, code === DisconnectCode.PROTOCOL_ERROR ? 'protocol_error' : 'kicked', code, true);
    }
    return true;
  }

  flush(): void {
    const dirty = this.#dirty;
    if (dirty.length === 0) return;
    for (let i = 0; i < dirty.length; i++) {
      const c = dirty[i];
      c.dirty = false;
      if (c.phase !== Phase.Dead) this.#writeOut(c);
    }
    dirty.length = 0;
  }

  stats(): ServerStats {
    const s = this.#stats;
    return { ...s, connections: this.#open, closes: { ...s.closes } };
  }

  close(): Promise<void> {
    if (this.#closePromise) return this.#closePromise;
    this.#closing = true;
    const server = this.#server;
    if (server === undefined) {
      this.#closePromise = Promise.resolve();
      return this.#closePromise;
    }
    this.#closePromise = new Promise<void>((resolve) => {
      this.#closeResolve = resolve;
      server.close(() => {
        this.#serverClosed = true;
        this.#checkClosed();
      });
      this.flush();
      // The 'shutdown' disconnects are reported from setImmediate, not from inside close().
      for (const c of this.#live.slice()) this.#beginClose(c, 'shutdown', DisconnectCode.SERVER_SHUTDOWN, true);
      // Whatever has not finished by then is dropped, so that close() is bounded.
      this.#closeTimer = setTimeout(() => {
        this.#closeTimer = undefined;
        for (const c of this.#live.slice()) if (c.phase !== Phase.Dead) this.#destroy(c);
        for (const s of this.#rejected) s.destroy();
      }, this.#closeTimeoutMs);
      this.#checkClosed();
    });
    return this.#closePromise;
  }

  // ---- accept and receive ----

  #accept(socket: net.Socket): void {
    if (this.#gone.length > 0) this.#endBatch(false);
    if (this.#closing) {
      this.#reject(socket, DisconnectCode.SERVER_SHUTDOWN);
      return;
    }
    const remoteAddress = socket.remoteAddress;
    const remotePort = socket.remotePort;
    if (remoteAddress === undefined || remotePort === undefined) {
      // Reset before it could be handed over; nothing to report.
      socket.on('error', ignore);
      socket.destroy();
      return;
    }
    const slot = this.#acquireSlot();
    if (slot < 0) {
      this.#stats.closes.server_full++;
      this.#reject(socket, DisconnectCode.SERVER_FULL);
      return;
    }
    let generation = this.#generations[slot] + 1;
    if (generation > this.#maxGeneration) generation = 1;
    this.#generations[slot] = generation;
    const c = new JsConnection(slot + generation * this.#capacity, slot, socket, performance.now());
    this.#slots[slot] = c;
    c.listIndex = this.#live.length;
    this.#live.push(c);
    c.onWritten = (err) => {
      const n = c.writeSizes.shift() ?? 0;
      if (err) return;
      this.#stats.bytesOut += n;
      // Once nothing is in flight or pending the buffer is free again from its start.
      if (c.writeSizes.length === 0 && c.pendingBytes === 0) c.outStart = c.outEnd = 0;
    };
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#receive(c, chunk));
    socket.on('end', () => this.#onEnd(c));
    socket.on('error', () => this.#onError(c));
    socket.on('close', (hadError: boolean) => this.#onClose(c, hadError));
    this.#open++;
    this.#stats.accepted++;
    this.#depth++;
    try {
      this.#sink.onConnect(c.id, remoteAddress, remotePort);
    } finally {
      this.#depth--;
    }
    this.#endBatch(true);
  }

  #acquireSlot(): number {
    if (this.#freeSlots.length > 0) return this.#freeSlots.pop() as number;
    const slot = this.#slots.length;
    if (slot >= this.#capacity) return -1;
    this.#slots.push(null);
    this.#generations.push(0);
    return slot;
  }

  /** Sends DISCONNECT_NOTIFY(code) to a socket that never became a connection, then closes it. */
  #reject(socket: net.Socket, code: number): void {
    this.#rejected.add(socket);
    socket.on('error', ignore);
    socket.once('close', () => {
      this.#rejected.delete(socket);
      this.#checkClosed();
    });
    socket.setNoDelay(true);
    socket.end(encodePacket(PacketId.DISCONNECT_NOTIFY, NOTIFY_BODY[code]));
    // Read and discard until the peer closes, so that unread input does not turn the close into a reset.
    socket.resume();
    socket.setTimeout(Math.max(1, this.#closeTimeoutMs));
    socket.on('timeout', destroySelf);
  }

  #lookup(id: number): JsConnection | undefined {
    const c = this.#slots[id % this.#capacity];
    return c != null && c.id === id && c.phase === Phase.Open ? c : undefined;
  }

  #receive(c: JsConnection, chunk: Buffer): void {
    this.#stats.bytesIn += chunk.length;
    // A closing connection keeps reading so that the peer's FIN is seen; its bytes are discarded.
    if (c.phase !== Phase.Open) return;
    c.lastActivity = performance.now();
    this.#depth++;
    try {
      this.#parse(c, chunk);
    } finally {
      this.#depth--;
    }
    this.#endBatch(true);
  }

  /** Frames one read in place: whole packets are handed over as views of chunk. */
  #parse(c: JsConnection, chunk: Buffer): void {
    const end = chunk.length;
    let pos = 0;
    if (c.partialFill > 0) {
      pos = this.#completePartial(c, chunk);
      if (pos < 0) return;
    }
    const max = this.#maxPacketSize;
    while (end - pos >= HEADER_SIZE) {
      const length = chunk[pos] | (chunk[pos + 1] << 8);
      if (length < HEADER_SIZE || length > max || chunk[pos + 4] !== 0) {
        this.#beginClose(c, 'protocol_error', DisconnectCode.PROTOCOL_ERROR, true);
        return;
      }
      if (end - pos < length) break;
      if (!this.#packet(c, chunk[pos + 2] | (chunk[pos + 3] << 8), chunk, pos + HEADER_SIZE, pos + length)) return;
      pos += length;
    }
    if (pos < end) {
      // The loop has checked the header of a cut-short packet when it is whole.
      const n = end - pos;
      const need = n >= HEADER_SIZE ? chunk[pos] | (chunk[pos + 1] << 8) : HEADER_SIZE;
      let p = c.partial;
      if (p === null || p.length < need) p = c.partial = Buffer.allocUnsafe(Math.max(need, 64));
      chunk.copy(p, 0, pos, end);
      c.partialFill = n;
    }
  }

  /**
   * Completes the packet split across reads from the start of chunk.
   * Returns where the rest of chunk starts, or -1 when chunk is used up or
   * the connection stopped reading.
   */
  #completePartial(c: JsConnection, chunk: Buffer): number {
    let p = c.partial as Buffer;
    let fill = c.partialFill;
    const end = chunk.length;
    let pos = 0;
    if (fill < HEADER_SIZE) {
      pos = Math.min(HEADER_SIZE - fill, end);
      chunk.copy(p, fill, 0, pos);
      fill += pos;
      if (fill < HEADER_SIZE) {
        c.partialFill = fill;
        return -1;
      }
      const length = p[0] | (p[1] << 8);
      if (length < HEADER_SIZE || length > this.#maxPacketSize || p[4] !== 0) {
        c.partialFill = 0;
        this.#beginClose(c, 'protocol_error', DisconnectCode.PROTOCOL_ERROR, true);
        return -1;
      }
      if (p.length < length) {
        const bigger = Buffer.allocUnsafe(length);
        p.copy(bigger, 0, 0, HEADER_SIZE);
        c.partial = p = bigger;
      }
    }
    const length = p[0] | (p[1] << 8);
    const take = Math.min(length - fill, end - pos);
    chunk.copy(p, fill, pos, pos + take);
    fill += take;
    pos += take;
    if (fill < length) {
      c.partialFill = fill;
      return -1;
    }
    c.partialFill = 0;
    const open = this.#packet(c, p[2] | (p[3] << 8), p, HEADER_SIZE, length);
    if (p.length > PARTIAL_KEEP) c.partial = null;
    return open ? pos : -1;
  }

  /** Handles one whole packet; returns whether the connection is still open. */
  #packet(c: JsConnection, packetId: number, buf: Buffer, start: number, end: number): boolean {
    this.#stats.packetsIn++;
    if (packetId >= FIRST_APP_PACKET_ID) {
      this.#sink.onPacket(c.id, packetId, buf.subarray(start, end));
    } else if (packetId === PacketId.PING) {
      if (end - start > MAX_PING_BODY) {
        this.#beginClose(c, 'protocol_error', DisconnectCode.PROTOCOL_ERROR, true);
        return false;
      }
      this.#stats.pings++;
      const size = HEADER_SIZE + end - start;
      if (this.#admit(c, size)) {
        this.#stats.packetsOut++;
        this.#append(c, PacketId.PONG, buf, start, end, size);
      }
    } else {
      this.#stats.ignoredSystemPackets++;
    }
    return c.phase === Phase.Open;
  }

  #onEnd(c: JsConnection): void {
    if (c.phase !== Phase.Open) return;
    this.#depth++;
    try {
      // What the peer sent before its FIN was answered in earlier batches; that goes out before ours.
      this.#beginClose(c, 'closed', 0, true);
    } finally {
      this.#depth--;
    }
    this.#endBatch(false);
  }

  #onError(c: JsConnection): void {
    if (c.phase === Phase.Open) {
      this.#depth++;
      try {
        this.#beginClose(c, 'reset', 0, false);
      } finally {
        this.#depth--;
      }
      this.#endBatch(false);
    } else {
      // node:net destroys a socket after its error.
      this.#destroy(c);
    }
  }

  #onClose(c: JsConnection, hadError: boolean): void {
    if (c.phase === Phase.Open) {
      this.#depth++;
      try {
        this.#beginClose(c, hadError ? 'reset' : 'closed', 0, false);
      } finally {
        this.#depth--;
      }
    }
    c.phase = Phase.Dead;
    c.partial = c.out = null;
    c.segments = null;
    this.#slots[c.slot] = null;
    this.#freeSlots.push(c.slot);
    const live = this.#live;
    const last = live.pop() as JsConnection;
    if (last !== c) {
      live[c.listIndex] = last;
      last.listIndex = c.listIndex;
    }
    c.listIndex = -1;
    this.#endBatch(false);
    this.#checkClosed();
  }

  // ---- send ----

  /** Checks maxSendQueueBytes before size more bytes are queued; closes a slow consumer. */
  #admit(c: JsConnection, size: number): boolean {
    if (c.socket.writableLength + c.pendingBytes + size <= this.#maxSendQueueBytes) return true;
    this.#beginClose(c, 'slow_consumer', 0, false);
    return false;
  }

  /** Copies one packet into c's outbound buffer. */
  #append(c: JsConnection, packetId: number, body: Uint8Array, start: number, end: number, size: number): void {
    let out = c.out;
    let at = c.outEnd;
    if (out === null || out.length - at < size) {
      out = this.#growOut(c, size);
      at = 0;
    }
    out[at] = size & 0xff;
    out[at + 1] = size >>> 8;
    out[at + 2] = packetId & 0xff;
    out[at + 3] = packetId >>> 8;
    out[at + 4] = 0;
    if (end > start) out.set(start === 0 && end === body.length ? body : body.subarray(start, end), at + HEADER_SIZE);
    c.outEnd = at + size;
    c.pendingBytes += size;
    if (!c.dirty) {
      c.dirty = true;
      this.#dirty.push(c);
    }
  }

  /** Queues an encoded packet that other connections share; it is written as is, never copied. */
  #appendShared(c: JsConnection, packet: Buffer): void {
    const segments = c.segments ?? (c.segments = []);
    if (c.out !== null && c.outEnd > c.outStart) {
      segments.push(c.out.subarray(c.outStart, c.outEnd));
      c.outStart = c.outEnd;
    }
    segments.push(packet);
    c.pendingBytes += packet.length;
    if (!c.dirty) {
      c.dirty = true;
      this.#dirty.push(c);
    }
  }

  /** Gives c a new outbound buffer with room for size bytes; returns it. */
  #growOut(c: JsConnection, size: number): Buffer {
    const old = c.out;
    let capacity = OUT_MIN;
    if (old !== null) {
      if (c.outEnd > c.outStart) (c.segments ?? (c.segments = [])).push(old.subarray(c.outStart, c.outEnd));
      // Grow only when a single flush's packets filled the whole buffer.
      capacity = c.outStart === 0 ? Math.min(OUT_MAX, old.length * 2) : old.length;
    }
    const out = Buffer.allocUnsafe(Math.max(capacity, size));
    c.out = out;
    c.outStart = c.outEnd = 0;
    return out;
  }

  /** Hands c's pending bytes to its socket: one write, or one corked writev for several pieces. */
  #writeOut(c: JsConnection): void {
    if (c.pendingBytes === 0) return;
    const socket = c.socket;
    const segments = c.segments;
    let tail: Buffer | null = null;
    if (c.out !== null && c.outEnd > c.outStart) {
      tail = c.out.subarray(c.outStart, c.outEnd);
      c.outStart = c.outEnd;
    }
    c.pendingBytes = 0;
    if (segments === null) {
      if (tail === null) return;
      c.writeSizes.push(tail.length);
      socket.write(tail, c.onWritten);
      return;
    }
    c.segments = null;
    socket.cork();
    for (let i = 0; i < segments.length; i++) {
      c.writeSizes.push(segments[i].length);
      socket.write(segments[i], c.onWritten);
    }
    if (tail !== null) {
      c.writeSizes.push(tail.length);
      socket.write(tail, c.onWritten);
    }
    socket.uncork();
  }

  // ---- close ----

  /**
   * Ends an open connection and reports it once. Graceful: what is queued,
   * then DISCONNECT_NOTIFY(code) unless code is 0, then FIN; the socket is
   * destroyed when the peer has finished too, or at the close deadline.
   * Otherwise the socket is destroyed now and what is queued is dropped.
   */
  #beginClose(c: JsConnection, reason: DisconnectReason, code: number, graceful: boolean): void {
    if (c.phase !== Phase.Open) return;
    this.#open--;
    this.#stats.closes[reason]++;
    this.#gone.push({ id: c.id, reason });
    if (this.#depth === 0 && this.#immediate === undefined) this.#immediate = setImmediate(this.#onImmediate);
    c.partial = null;
    c.partialFill = 0;
    if (!graceful) {
      this.#destroy(c);
      return;
    }
    c.phase = Phase.Closing;
    if (code !== 0) {
      // The last packet goes out even past maxSendQueueBytes.
      this.#stats.packetsOut++;
      const body = NOTIFY_BODY[code];
      this.#append(c, PacketId.DISCONNECT_NOTIFY, body, 0, body.length, HEADER_SIZE + body.length);
    }
    this.#writeOut(c);
    // The FIN follows the queued writes; the peer's FIN (or the deadline) then ends the socket.
    c.socket.end();
    c.deadline = performance.now() + this.#closeTimeoutMs;
  }

  #destroy(c: JsConnection): void {
    c.phase = Phase.Dead;
    c.out = null;
    c.segments = null;
    c.pendingBytes = 0;
    c.socket.destroy();
  }

  /** Reports queued disconnects, then ends the batch; batch says a batch was delivered and must be ended anyway. */
  #endBatch(batch: boolean): void {
    const gone = this.#gone;
    if (gone.length > 0) {
      batch = true;
      this.#depth++;
      try {
        // Handlers may close more connections while this runs; they are reported here too.
        for (let i = 0; i < gone.length; i++) this.#sink.onDisconnect(gone[i].id, gone[i].reason);
      } finally {
        gone.length = 0;
        this.#depth--;
      }
    }
    if (batch) this.#sink.onBatchEnd();
    this.flush();
  }

  // ---- timers ----

  #startTicker(): void {
    const idle = this.#idleTimeoutMs > 0 ? this.#idleTimeoutMs / 4 : 1000;
    const linger = this.#closeTimeoutMs > 0 ? this.#closeTimeoutMs / 4 : 10;
    const tick = Math.max(10, Math.min(1000, Math.floor(Math.min(idle, linger))));
    // One timer scans every connection; it does not keep the process alive (the listening server does).
    this.#ticker = setInterval(() => this.#onTick(), tick);
    this.#ticker.unref();
  }

  #onTick(): void {
    const now = performance.now();
    const idle = this.#idleTimeoutMs;
    const live = this.#live;
    this.#depth++;
    try {
      // Closing and destroying never remove from live (only 'close' does), so the loop is stable.
      for (let i = 0; i < live.length; i++) {
        const c = live[i];
        if (c.phase === Phase.Open) {
          if (idle > 0 && now - c.lastActivity >= idle) {
            this.#beginClose(c, 'idle_timeout', DisconnectCode.IDLE_TIMEOUT, true);
          }
        } else if (c.phase === Phase.Closing && now >= c.deadline) {
          this.#destroy(c);
        }
      }
    } finally {
      this.#depth--;
    }
    this.#endBatch(false);
  }

  #checkClosed(): void {
    if (!this.#closing || !this.#serverClosed || this.#live.length > 0 || this.#rejected.size > 0) return;
    const resolve = this.#closeResolve;
    if (resolve === undefined) return;
    this.#closeResolve = undefined;
    if (this.#ticker !== undefined) clearInterval(this.#ticker);
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#ticker = this.#closeTimer = this.#immediate = undefined;
    this.#endBatch(false);
    resolve();
  }
}
