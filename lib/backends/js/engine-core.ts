import type * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { DisconnectCode, FIRST_APP_PACKET_ID, HEADER_SIZE, MAX_PING_BODY, PacketId, WsCloseCode, type DisconnectReason, type Transport } from '../../contract';
import type { ResolvedServerOptions, ServerStats } from '../../server/types';
import { encodePacket } from '../../toolkit/packet-writer';
import type { BackendSink } from '../backend';
import { appCloseReason, reportedReason } from '../close-reason';
import { emptyStats } from '../stats';
import { ConnectionTable } from './connection-table';
import { PacketAssembler, type PacketSink, type SplitPacket } from './packet-assembler';
import { SendQueue, type QueuedBytes } from './send-queue';
import { closeCodeOf, closeFrame, createReceiver, pongFrame, type FrameReceiver } from './websocket';

const enum Phase {
  /** Accepted, its transport not known yet (webSocket on): not reported, read by the socket glue. */
  Pending,
  /** Reading and sending. */
  Open,
  /** FIN queued behind the last packets; input is read and discarded until the peer closes or the deadline passes. */
  Closing,
  /** The socket is destroyed or closed; the slot is freed on 'close'. */
  Dead,
}

/** Broadcast bodies from this size are encoded once and shared by every receiver's write instead of copied. */
const SHARE_MIN = 1024;

/** The DISCONNECT_NOTIFY bodies (u16 reason), by code. */
const NOTIFY_BODY: Uint8Array[] = [];
for (const code of Object.values(DisconnectCode)) NOTIFY_BODY[code] = new Uint8Array([code & 0xff, code >>> 8]);

/** #beginClose's wsCode for a CLOSE frame without a code (the echo of one that had none). */
const WS_CLOSE_WITHOUT_CODE = -1;

/** The WebSocket close code that follows DISCONNECT_NOTIFY(code). */
function wsCloseCode(code: number): number {
  switch (code) {
    case DisconnectCode.PROTOCOL_ERROR:
      return WsCloseCode.PROTOCOL_ERROR;
    case DisconnectCode.SERVER_SHUTDOWN:
    case DisconnectCode.IDLE_TIMEOUT:
      return WsCloseCode.GOING_AWAY;
    case DisconnectCode.SLOW_CONSUMER:
      return WsCloseCode.POLICY_VIOLATION;
    default:
      return WsCloseCode.NORMAL;
  }
}

function ignore(): void {}

/** The whole DISCONNECT_NOTIFY(code) packet, for a socket that never became a connection. */
export function disconnectNotifyPacket(code: number): Buffer {
  return encodePacket(PacketId.DISCONNECT_NOTIFY, NOTIFY_BODY[code]);
}

/**
 * One accepted socket: its phase, and its shares of the packet assembler's
 * and the send queue's state (as plain fields: a connection is one object).
 * Owned by the EngineCore that adopted it; JS main thread only.
 */
export class JsConnection implements SplitPacket, QueuedBytes {
  phase = Phase.Open;
  transport: Transport = 'tcp';
  /** A WebSocket connection's frame parser; null for the raw framing. */
  ws: FrameReceiver | null = null;
  /** QueuedBytes: each write goes out as a binary WebSocket message. */
  framed = false;
  /**
   * Open from the JS thread's view (see Backend): from its reported connect
   * until its disconnect is reported or the application closes it. The
   * engine's own close (phase) may come first.
   */
  appOpen = false;
  /** Index in EngineCore's list of live connections. */
  listIndex = -1;
  lastActivity: number;
  /** When a Closing connection is destroyed if the peer has not finished. */
  deadline = 0;
  /** Listed in EngineCore's connections with bytes waiting for flush(). */
  dirty = false;
  /** Reading paused by flow control: its queue passed the high-water mark. */
  flowPaused = false;

  partial: Buffer | null = null;
  partialFill = 0;

  out: Buffer | null = null;
  outStart = 0;
  outEnd = 0;
  segments: Buffer[] | null = null;
  pendingBytes = 0;
  readonly writeSizes: number[] = [];
  /** Set by the socket glue beside the socket's listeners, so that they share one closure context. */
  onWritten: (err?: Error | null) => void = ignore;

  constructor(
    readonly id: number,
    readonly socket: net.Socket,
    now: number,
  ) {
    this.lastActivity = now;
  }
}

/**
 * The socket-independent half of the js backend, as native/core's
 * EngineCore: the connection life cycle (connect, the close state machine,
 * the disconnects reported once), system packets (PING answered here),
 * maxSendQueueBytes and per-connection flow control (a socket is paused
 * past sendQueueHighWaterBytes), the commands of the Backend interface, and
 * one timer per server for the idle sweep and the close deadlines. The
 * node:net glue (JsBackend) derives from it, owns the listening server and
 * feeds it the sockets' events. JS main thread only.
 */
export abstract class EngineCore implements PacketSink<JsConnection> {
  readonly #sink: BackendSink;
  readonly #idleTimeoutMs: number;
  readonly #maxSendQueueBytes: number;
  readonly #highWater: number;
  readonly #lowWater: number;
  protected readonly closeTimeoutMs: number;
  readonly #stats: ServerStats = emptyStats();
  #open = 0;
  readonly #table: ConnectionTable<JsConnection>;
  readonly #assembler: PacketAssembler<JsConnection>;
  readonly #queue: SendQueue<JsConnection>;
  /** Every connection whose socket is not closed yet, in no order. */
  readonly #live: JsConnection[] = [];
  /** Connections with bytes waiting for flush(). */
  readonly #dirty: JsConnection[] = [];

  /**
   * Disconnects waiting to be reported. They are reported at the end of the
   * current socket callback, or from setImmediate when application code
   * caused them, so that a handler never sees 'disconnect' from inside its
   * own send() or close().
   */
  readonly #gone: Array<{ c: JsConnection; reason: DisconnectReason; graceful: boolean }> = [];
  /** Nonzero while a socket callback or a report is running. */
  #depth = 0;
  #immediate: NodeJS.Immediate | undefined;
  readonly #onImmediate = (): void => {
    this.#immediate = undefined;
    this.endBatch(false);
  };
  #ticker: NodeJS.Timeout | undefined;
  #tickMs = 1000;
  /** When the ticker last ran: a late tick means the JS thread was blocked. */
  #lastTick = 0;

  constructor(options: ResolvedServerOptions, sink: BackendSink) {
    this.#sink = sink;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#maxSendQueueBytes = options.maxSendQueueBytes;
    this.#highWater = options.sendQueueHighWaterBytes;
    this.#lowWater = options.sendQueueLowWaterBytes;
    this.closeTimeoutMs = options.closeTimeoutMs;
    this.#table = new ConnectionTable(options.maxConnections);
    this.#assembler = new PacketAssembler(options.maxPacketSize, this);
    this.#queue = new SendQueue(this.#stats);
  }

  // ---- the Backend commands ----

  send(id: number, packetId: number, body: Uint8Array): boolean {
    const c = this.#table.get(id);
    if (c === undefined || !c.appOpen) {
      this.#stats.staleRefused++;
      return false;
    }
    if (c.phase !== Phase.Open) {
      // The engine is closing it and JS has not been told yet: accepted, and dropped.
      this.#stats.staleRefused++;
      return true;
    }
    const size = HEADER_SIZE + body.length;
    if (this.#admit(c, size)) {
      this.#stats.packetsOut++;
      this.#append(c, packetId, body, 0, body.length, size);
    }
    return true;
  }

  broadcast(ids: readonly number[], packetId: number, body: Uint8Array): number {
    const size = HEADER_SIZE + body.length;
    const shared = body.length >= SHARE_MIN && ids.length > 1 ? encodePacket(packetId, body) : null;
    let open = 0;
    for (let i = 0; i < ids.length; i++) {
      const c = this.#table.get(ids[i]);
      if (c === undefined || !c.appOpen) {
        this.#stats.staleRefused++;
        continue;
      }
      open++;
      if (c.phase !== Phase.Open) {
        this.#stats.staleRefused++;
        continue;
      }
      if (!this.#admit(c, size)) continue;
      this.#stats.packetsOut++;
      if (shared !== null) {
        this.#queue.appendShared(c, shared);
        this.#markDirty(c);
        this.#checkHighWater(c);
      } else {
        this.#append(c, packetId, body, 0, body.length, size);
      }
    }
    return open;
  }

  /**
   * 'close' queues DISCONNECT_NOTIFY(code) after what is queued and closes
   * gracefully; code PROTOCOL_ERROR reports 'protocol_error', any other
   * 'kicked'. 'destroy' drops what is queued.
   */
  closeConnection(id: number, mode: 'close' | 'destroy', code: number = DisconnectCode.KICKED): boolean {
    const c = this.#table.get(id);
    if (c === undefined || !c.appOpen) {
      this.#stats.staleRefused++;
      return false;
    }
    c.appOpen = false;
    const appReason = appCloseReason(mode, code);
    if (c.phase !== Phase.Open) {
      // The engine began a close JS has not been told of yet. It goes on (its
      // DISCONNECT_NOTIFY, if any, is already queued); the reason reported is
      // decided as on the native backend.
      const pending = this.#gone.find((g) => g.c === c);
      const reason = pending === undefined ? undefined : reportedReason(pending.reason, pending.graceful, appReason);
      if (pending === undefined || reason === undefined || reason === pending.reason) {
        this.#stats.staleRefused++;
        return true;
      }
      this.#stats.closes[pending.reason]--;
      this.#stats.closes[reason]++;
      pending.reason = reason;
      return true;
    }
    if (mode === 'destroy') {
      this.#beginClose(c, appReason, 0, false);
    } else {
      this.#beginClose(c, appReason, code, true);
    }
    return true;
  }

  flush(): void {
    const dirty = this.#dirty;
    if (dirty.length === 0) return;
    for (let i = 0; i < dirty.length; i++) {
      const c = dirty[i];
      c.dirty = false;
      if (c.phase !== Phase.Dead) this.#queue.writeOut(c);
    }
    dirty.length = 0;
  }

  /**
   * The counters, and the gauges read now: sendQueueBytes walks the live
   * connections (a scrape's cost, not the hot path's). Every read and write
   * is the JS thread's, reported as the one IO thread.
   */
  stats(): ServerStats {
    const s = this.#stats;
    let queued = 0;
    const live = this.#live;
    for (let i = 0; i < live.length; i++) if (live[i].phase !== Phase.Dead) queued += this.#queued(live[i]);
    const thread = {
      connections: this.#open,
      packetsIn: s.packetsIn,
      packetsOut: s.packetsOut,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
      sendQueueBytes: queued,
    };
    return { ...s, connections: this.#open, pendingBytes: 0, sendQueueBytes: queued, closes: { ...s.closes }, threads: [thread] };
  }

  // ---- what the socket glue calls ----

  /** Gives socket a connection slot; undefined when maxConnections are open (counted as server_full). */
  protected adopt(socket: net.Socket): JsConnection | undefined {
    const id = this.#table.acquire();
    if (id === 0) {
      this.#stats.closes.server_full++;
      return undefined;
    }
    const c = new JsConnection(id, socket, performance.now());
    this.#table.set(c);
    c.listIndex = this.#live.length;
    this.#live.push(c);
    return c;
  }

  /** One of c's socket writes completed. */
  protected written(c: JsConnection, err: Error | null | undefined): void {
    this.#queue.written(c, err);
    // The socket has already taken the written bytes off its writableLength.
    if (c.flowPaused && c.phase === Phase.Open && this.#queued(c) <= this.#lowWater) {
      c.flowPaused = false;
      c.socket.resume();
    }
  }

  /** An adopted connection whose transport the socket glue has yet to learn from its first bytes. */
  protected setPending(c: JsConnection): void {
    c.phase = Phase.Pending;
  }

  /** c's idle time starts now. */
  protected restartIdleClock(c: JsConnection): void {
    c.lastActivity = performance.now();
  }

  /** Whether c still waits for its transport to be known (not closed meanwhile). */
  protected isPending(c: JsConnection): boolean {
    return c.phase === Phase.Pending;
  }

  /**
   * Ends a pending connection that never opened: response (an HTTP error),
   * if any, then FIN; counted under reason, never reported. Its bytes are read
   * and discarded until the peer closes or the close deadline passes.
   */
  protected refusePending(c: JsConnection, reason: DisconnectReason | null, response: Buffer | null): void {
    if (c.phase !== Phase.Pending) return;
    if (reason !== null) this.#stats.closes[reason]++;
    c.phase = Phase.Closing;
    if (response !== null) this.#queue.writeRaw(c, response);
    c.socket.end();
    c.deadline = performance.now() + this.closeTimeoutMs;
  }

  /** Makes c a WebSocket connection (its 101 response sent): what it reads goes through a frame parser. */
  protected upgraded(c: JsConnection, response: Buffer, maxMessage: number): void {
    this.#queue.writeRaw(c, response);
    const ws = createReceiver(maxMessage);
    c.ws = ws;
    c.framed = true;
    c.transport = 'websocket';
    ws.on('message', (data, isBinary) => this.#wsMessage(c, data, isBinary));
    ws.on('ping', (data) => this.#wsPing(c, data));
    ws.on('conclude', (code) => this.#wsPeerClose(c, code));
    ws.on('error', (err) => this.#wsError(c, ws, err));
  }

  /** Reports an adopted connection to the sink, once its socket's events are wired. */
  protected connected(c: JsConnection, remoteAddress: string, remotePort: number): void {
    c.phase = Phase.Open;
    this.#open++;
    this.#stats.accepted++;
    c.appOpen = true;
    this.#depth++;
    try {
      this.#sink.onConnect(c.id, remoteAddress, remotePort, c.transport);
    } finally {
      this.#depth--;
    }
    this.endBatch(true);
  }

  /** Counts bytes read before the connection opened (its first bytes, its upgrade request). */
  protected countBytesIn(n: number): void {
    this.#stats.bytesIn += n;
  }

  /** A read: framed in place, its packets handed over at once. counted: its bytes were counted already (countBytesIn). */
  protected received(c: JsConnection, chunk: Buffer, counted = false): void {
    if (!counted) this.#stats.bytesIn += chunk.length;
    // A closing connection keeps reading so that the peer's FIN is seen; its bytes are discarded.
    if (c.phase !== Phase.Open) return;
    c.lastActivity = performance.now();
    this.#depth++;
    try {
      if (c.ws !== null) c.ws.write(chunk);
      else if (!this.#assembler.feed(c, chunk)) this.#beginClose(c, 'protocol_error', DisconnectCode.PROTOCOL_ERROR, true);
    } finally {
      this.#depth--;
    }
    this.endBatch(true);
  }

  // ---- WebSocket frames, from c.ws inside received() ----

  /** A whole message: a binary one's payload goes on the connection's byte stream; a text one is refused (1003). */
  #wsMessage(c: JsConnection, data: Buffer, isBinary: boolean): void {
    if (c.phase !== Phase.Open) return;
    if (!isBinary) {
      this.#beginClose(c, 'protocol_error', DisconnectCode.PROTOCOL_ERROR, true, WsCloseCode.UNSUPPORTED_DATA);
    } else if (!this.#assembler.feed(c, data)) {
      this.#beginClose(c, 'protocol_error', DisconnectCode.PROTOCOL_ERROR, true);
    }
  }

  /**
   * A PING frame: answered with a PONG after what is queued, within
   * maxSendQueueBytes and flow control as any reply (a client that sends
   * PINGs and never reads is a slow consumer).
   */
  #wsPing(c: JsConnection, data: Buffer): void {
    if (c.phase !== Phase.Open) return;
    const pong = pongFrame(data);
    if (!this.#admit(c, pong.length)) return;
    this.#queue.writeOut(c);
    this.#queue.writeRaw(c, pong);
    this.#checkHighWater(c);
  }

  /** The peer's CLOSE frame: echoed (its code, or none), then FIN; reported as 'closed'. */
  #wsPeerClose(c: JsConnection, code: number): void {
    // 1005: the CLOSE had no code.
    this.#beginClose(c, 'closed', 0, true, code === 1005 ? WS_CLOSE_WITHOUT_CODE : code);
  }

  /**
   * The frame parser refused what c sent (unmasked, a bad opcode, RSV bits, a
   * bad control frame, a message too long). The parser reports it on the
   * next tick, after the frames before the bad one were handled.
   */
  #wsError(c: JsConnection, ws: FrameReceiver, err: Error): void {
    if (c.ws !== ws || c.phase !== Phase.Open) return;
    this.#depth++;
    try {
      this.#beginClose(c, 'protocol_error', DisconnectCode.PROTOCOL_ERROR, true, closeCodeOf(err));
    } finally {
      this.#depth--;
    }
    this.endBatch(false);
  }

  /** @internal PacketSink: one whole packet; returns whether the connection is still open. */
  onFramed(c: JsConnection, packetId: number, buf: Buffer, start: number, end: number): boolean {
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

  /** The peer's FIN. */
  protected peerEnded(c: JsConnection): void {
    if (c.phase !== Phase.Open) return;
    this.#depth++;
    try {
      // What the peer sent before its FIN was answered in earlier batches; that goes out before ours.
      this.#beginClose(c, 'closed', 0, true);
    } finally {
      this.#depth--;
    }
    this.endBatch(false);
  }

  /** A socket error. */
  protected socketFailed(c: JsConnection): void {
    if (c.phase === Phase.Open) {
      this.#depth++;
      try {
        this.#beginClose(c, 'reset', 0, false);
      } finally {
        this.#depth--;
      }
      this.endBatch(false);
    } else {
      // node:net destroys a socket after its error.
      this.#destroy(c);
    }
  }

  /** The socket is closed: its slot is free again. */
  protected socketClosed(c: JsConnection, hadError: boolean): void {
    if (c.phase === Phase.Open) {
      this.#depth++;
      try {
        this.#beginClose(c, hadError ? 'reset' : 'closed', 0, false);
      } finally {
        this.#depth--;
      }
    }
    c.phase = Phase.Dead;
    this.#assembler.reset(c);
    this.#queue.clear(c);
    const live = this.#live;
    const last = live.pop() as JsConnection;
    if (last !== c) {
      live[c.listIndex] = last;
      last.listIndex = c.listIndex;
    }
    c.listIndex = -1;
    this.endBatch(false);
    // Only now: until its disconnect is reported, its id still finds it (open for JS, closed for the engine).
    this.#table.release(c.id);
    this.socketGone();
  }

  /** Called after each socket closed, once its disconnect is reported. */
  protected abstract socketGone(): void;

  /** Connections whose sockets are not closed yet. */
  protected get liveCount(): number {
    return this.#live.length;
  }

  /** Begins the 'shutdown' close of every open connection (they are reported from setImmediate); pending ones just end. */
  protected closeAll(): void {
    for (const c of this.#live.slice()) {
      if (c.phase === Phase.Pending) this.refusePending(c, null, null);
      else this.#beginClose(c, 'shutdown', DisconnectCode.SERVER_SHUTDOWN, true);
    }
  }

  /** Destroys every socket not closed yet. */
  protected destroyAll(): void {
    for (const c of this.#live.slice()) if (c.phase !== Phase.Dead) this.#destroy(c);
  }

  /** Reports what is waiting to be reported before another socket's event. */
  protected reportPending(): void {
    if (this.#gone.length > 0) this.endBatch(false);
  }

  /** Reports queued disconnects, then ends the batch; batch says a batch was delivered and must be ended anyway. */
  protected endBatch(batch: boolean): void {
    const gone = this.#gone;
    if (gone.length > 0) {
      batch = true;
      this.#depth++;
      try {
        // Handlers may close more connections while this runs; they are reported here too.
        for (let i = 0; i < gone.length; i++) {
          const { c, reason } = gone[i];
          c.appOpen = false;
          this.#sink.onDisconnect(c.id, reason);
        }
      } finally {
        gone.length = 0;
        this.#depth--;
      }
    }
    if (batch) this.#sink.onBatchEnd();
    this.flush();
  }

  /** Starts the one timer that scans every connection. */
  protected startTicker(): void {
    const idle = this.#idleTimeoutMs > 0 ? this.#idleTimeoutMs / 4 : 1000;
    const linger = this.closeTimeoutMs > 0 ? this.closeTimeoutMs / 4 : 10;
    const tick = Math.max(10, Math.min(1000, Math.floor(Math.min(idle, linger))));
    this.#tickMs = tick;
    this.#lastTick = performance.now();
    // It does not keep the process alive (the listening server does).
    this.#ticker = setInterval(() => this.#onTick(), tick);
    this.#ticker.unref();
  }

  /** Stops the timer and a pending report's setImmediate. */
  protected stopTimers(): void {
    if (this.#ticker !== undefined) clearInterval(this.#ticker);
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#ticker = this.#immediate = undefined;
  }

  // ---- the close state machine ----

  /**
   * What counts as c's queue: the bytes its socket holds that the kernel has
   * not taken (writableLength), and what waits for the next flush.
   */
  #queued(c: JsConnection): number {
    return c.socket.writableLength + c.pendingBytes;
  }

  /** Checks maxSendQueueBytes before size more bytes are queued; closes a slow consumer. */
  #admit(c: JsConnection, size: number): boolean {
    if (this.#queued(c) + size <= this.#maxSendQueueBytes) return true;
    this.#beginClose(c, 'slow_consumer', 0, false);
    return false;
  }

  /**
   * Flow control: past the high-water mark, c's socket stops reading (Node
   * reads no more once its readable buffer is full, and TCP pushes back on
   * the client); written() resumes it at the low-water mark.
   */
  #checkHighWater(c: JsConnection): void {
    if (c.flowPaused || c.phase !== Phase.Open || this.#queued(c) <= this.#highWater) return;
    c.flowPaused = true;
    this.#stats.readPausesSendQueue++;
    c.socket.pause();
  }

  #append(c: JsConnection, packetId: number, body: Uint8Array, start: number, end: number, size: number): void {
    this.#queue.append(c, packetId, body, start, end, size);
    this.#markDirty(c);
    this.#checkHighWater(c);
  }

  #markDirty(c: JsConnection): void {
    if (!c.dirty) {
      c.dirty = true;
      this.#dirty.push(c);
    }
  }

  /**
   * Ends an open connection and reports it once. Graceful: what is queued,
   * then DISCONNECT_NOTIFY(code) unless code is 0, then, on a WebSocket, a
   * CLOSE frame, then FIN; the socket is destroyed when the peer has
   * finished too, or at the close deadline. Otherwise the socket is
   * destroyed now and what is queued is dropped. The CLOSE frame's code is
   * wsCode when not 0 (WS_CLOSE_WITHOUT_CODE: a CLOSE without one), else it
   * follows code; with neither (the peer's FIN) no CLOSE is sent.
   */
  #beginClose(c: JsConnection, reason: DisconnectReason, code: number, graceful: boolean, wsCode = 0): void {
    if (c.phase !== Phase.Open) return;
    this.#open--;
    this.#stats.closes[reason]++;
    this.#gone.push({ c, reason, graceful });
    if (this.#depth === 0 && this.#immediate === undefined) this.#immediate = setImmediate(this.#onImmediate);
    this.#assembler.reset(c);
    if (!graceful) {
      this.#destroy(c);
      return;
    }
    c.phase = Phase.Closing;
    if (c.flowPaused) {
      // Reading goes on, so that the peer's FIN is seen; the bytes are discarded.
      c.flowPaused = false;
      c.socket.resume();
    }
    if (code !== 0) {
      // The last packet goes out even past maxSendQueueBytes.
      this.#stats.packetsOut++;
      const body = NOTIFY_BODY[code];
      this.#append(c, PacketId.DISCONNECT_NOTIFY, body, 0, body.length, HEADER_SIZE + body.length);
    }
    this.#queue.writeOut(c);
    if (c.ws !== null) {
      if (wsCode === WS_CLOSE_WITHOUT_CODE) this.#queue.writeRaw(c, closeFrame(undefined));
      else if (wsCode !== 0 || code !== 0) this.#queue.writeRaw(c, closeFrame(wsCode !== 0 ? wsCode : wsCloseCode(code)));
    }
    // The FIN follows the queued writes; the peer's FIN (or the deadline) then ends the socket.
    c.socket.end();
    c.deadline = performance.now() + this.closeTimeoutMs;
  }

  #destroy(c: JsConnection): void {
    c.phase = Phase.Dead;
    this.#queue.clear(c);
    c.socket.destroy();
  }

  /** The idle sweep and the close deadlines. */
  #onTick(): void {
    const now = performance.now();
    // After the JS thread was blocked, timers run before the sockets are read:
    // what clients sent meanwhile is still unread, so the idle sweep waits
    // for the next tick, after those reads.
    const late = now - this.#lastTick > 2 * this.#tickMs;
    this.#lastTick = now;
    const idle = late ? 0 : this.#idleTimeoutMs;
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
    this.endBatch(false);
  }
}
