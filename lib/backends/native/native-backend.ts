import * as dns from 'node:dns';
import * as net from 'node:net';
import {
  BatchLayout,
  DISCONNECT_REASONS,
  DisconnectCode,
  HEADER_SIZE,
  InboundKind,
  OutboundOp,
  STATS_FIELDS,
  THREAD_STATS_FIELDS,
  TRANSPORTS,
  type DisconnectReason,
  type StatsField,
} from '../../contract';
import { IocpnetError } from '../../server/errors';
import type { IoThreadStats, ListenAddress, ResolvedServerOptions, ServerStats } from '../../server/types';
import type { Backend, BackendSink } from '../backend';
import { appCloseReason, reportedReason } from '../close-reason';
import { loadAddon, type NativeServerHandle } from './addon';
import { OpenIds } from './open-ids';

const { RECORD_HEAD, CONNECT_FIELDS, PACKET_FIELDS, DISCONNECT_FIELDS, OP_HEAD, CLOSE_FIELDS, RELEASE_FIELDS } = BatchLayout;
const CLOSES_OFFSET = STATS_FIELDS.length;
/** Where the IO threads' blocks (THREAD_STATS_FIELDS each) begin in the stats array. */
const THREADS_OFFSET = CLOSES_OFFSET + DISCONNECT_REASONS.length;
/** The outbound batch buffer's first size; a burst doubles it as often as it needs. */
const OUT_INITIAL_BYTES = 64 * 1024;
/** Flushes in a row that fit the first size, after which a grown buffer is given back. */
const OUT_SHRINK_AFTER = 64;

/**
 * The backend on the C++ engine. IO threads frame packets and hand them over
 * in batches (one call per batch); sends are packed into one outbound batch
 * handed back in one call per flush. JS thread only.
 */
export class NativeBackend implements Backend {
  readonly name = 'native' as const;
  readonly #sink: BackendSink;
  readonly #native: NativeServerHandle;
  #out = new Uint8Array(OUT_INITIAL_BYTES);
  #outView = new DataView(this.#out.buffer);
  #outLength = 0;
  #smallFlushes = 0;
  #listening = false;
  #finished = false;
  #closeWaiters: Array<() => void> = [];
  /** The addon's inbound buffer and views over it, made again only when the addon hands over another buffer. */
  #inBuffer: ArrayBuffer | undefined;
  #inBytes = new Uint8Array(0);
  #inView = new DataView(this.#inBytes.buffer);
  /**
   * Closes application code asked for, by id, until their Disconnect record
   * arrives: the one place that decides the reason a close is reported and
   * counted under (see #dispatch).
   */
  readonly #appCloses = new Map<number, DisconnectReason>();
  /** The ids open from the JS thread's view (see Backend): what send, broadcast and closeConnection accept. */
  readonly #open: OpenIds;
  /** Calls refused here for an id that is not open; the engine never sees them, so stats() adds them to its staleRefused. */
  #refused = 0;

  constructor(options: ResolvedServerOptions, sink: BackendSink) {
    this.#sink = sink;
    this.#open = new OpenIds(options.maxConnections);
    const addon = loadAddon();
    this.#native = new addon.NativeServer(
      {
        ioThreads: options.ioThreads,
        maxConnections: options.maxConnections,
        maxPacketSize: options.maxPacketSize,
        idleTimeoutMs: options.idleTimeoutMs,
        maxSendQueueBytes: options.maxSendQueueBytes,
        sendQueueHighWaterBytes: options.sendQueueHighWaterBytes,
        sendQueueLowWaterBytes: options.sendQueueLowWaterBytes,
        maxPendingBytes: options.maxPendingBytes,
        closeTimeoutMs: options.closeTimeoutMs,
        reusePort: options.reusePort,
        webSocket: options.webSocket,
        maxUpgradeRequestBytes: options.maxUpgradeRequestBytes,
        upgradeTimeoutMs: options.upgradeTimeoutMs,
        transportDetectMs: options.transportDetectMs,
        webSocketOrigins: options.webSocketOrigins,
      },
      (batch, finished, length) => this.#onEvents(batch, finished, length),
    );
  }

  async listen(port: number, host: string): Promise<ListenAddress> {
    const ip = net.isIP(host) ? host : (await dns.promises.lookup(host)).address;
    const bound = this.#native.listen(ip, port);
    this.#listening = true;
    return { address: ip, port: bound };
  }

  send(id: number, packetId: number, body: Uint8Array): boolean {
    if (!this.#open.has(id)) {
      this.#refused++;
      return false;
    }
    const p = this.#reserve(OP_HEAD + HEADER_SIZE + body.length);
    this.#out[p] = OutboundOp.Send;
    this.#outView.setUint32(p + 1, id, true);
    this.#writePacket(p + OP_HEAD, packetId, body);
    return true;
  }

  broadcast(ids: readonly number[], packetId: number, body: Uint8Array): number {
    const n = ids.length;
    if (n === 0) return 0;
    const p = this.#reserve(OP_HEAD + 4 * n + HEADER_SIZE + body.length);
    const v = this.#outView;
    const open = this.#open;
    // Only the open ids go into the record; its size shrinks by the others.
    let q = p + OP_HEAD;
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      if (!open.has(id)) continue;
      v.setUint32(q, id, true);
      q += 4;
    }
    const count = (q - p - OP_HEAD) / 4;
    this.#refused += n - count;
    if (count === 0) {
      this.#outLength = p;
      return 0;
    }
    this.#out[p] = OutboundOp.Broadcast;
    v.setUint32(p + 1, count, true);
    this.#writePacket(q, packetId, body);
    this.#outLength = q + HEADER_SIZE + body.length;
    return count;
  }

  closeConnection(id: number, mode: 'close' | 'destroy', code: number = DisconnectCode.KICKED): boolean {
    if (!this.#open.delete(id)) {
      this.#refused++;
      return false;
    }
    this.#appCloses.set(id, appCloseReason(mode, code));
    if (mode === 'destroy') {
      const p = this.#reserve(OP_HEAD);
      this.#out[p] = OutboundOp.Destroy;
      this.#outView.setUint32(p + 1, id, true);
    } else {
      const p = this.#reserve(OP_HEAD + CLOSE_FIELDS);
      this.#out[p] = OutboundOp.Close;
      this.#outView.setUint32(p + 1, id, true);
      this.#outView.setUint16(p + OP_HEAD, code, true);
    }
    return true;
  }

  flush(): void {
    if (this.#outLength === 0) return;
    const length = this.#outLength;
    this.#outLength = 0;
    this.#native.submit(this.#out, length);
    if (this.#out.length === OUT_INITIAL_BYTES) return;
    // A buffer grown by a burst is not kept for good once flushes are small again.
    this.#smallFlushes = length <= OUT_INITIAL_BYTES ? this.#smallFlushes + 1 : 0;
    if (this.#smallFlushes >= OUT_SHRINK_AFTER) {
      this.#smallFlushes = 0;
      this.#out = new Uint8Array(OUT_INITIAL_BYTES);
      this.#outView = new DataView(this.#out.buffer);
    }
  }

  stats(): ServerStats {
    const s = this.#native.stats();
    const counters = {} as Record<StatsField, number>;
    STATS_FIELDS.forEach((field, i) => {
      counters[field] = s[i];
    });
    const closes = {} as ServerStats['closes'];
    DISCONNECT_REASONS.forEach((reason, i) => {
      closes[reason] = s[CLOSES_OFFSET + i];
    });
    counters.staleRefused += this.#refused;
    const threads: IoThreadStats[] = [];
    for (let at = THREADS_OFFSET; at + THREAD_STATS_FIELDS.length <= s.length; at += THREAD_STATS_FIELDS.length) {
      const t = {} as IoThreadStats;
      THREAD_STATS_FIELDS.forEach((field, i) => {
        t[field] = s[at + i];
      });
      threads.push(t);
    }
    return { ...counters, closes, threads };
  }

  close(): Promise<void> {
    if (!this.#listening || this.#finished) return Promise.resolve();
    return new Promise((resolve) => {
      this.#closeWaiters.push(resolve);
      this.flush();
      this.#native.shutdown();
    });
  }

  /** @internal Submits a raw outbound batch; for tests of the engine's own checks. */
  _submitRaw(batch: Uint8Array): void {
    this.flush();
    this.#native.submit(batch, batch.length);
  }

  #reserve(n: number): number {
    const at = this.#outLength;
    if (at + n > this.#out.length) {
      let size = this.#out.length * 2;
      while (size < at + n) size *= 2;
      const bigger = new Uint8Array(size);
      bigger.set(this.#out.subarray(0, at));
      this.#out = bigger;
      this.#outView = new DataView(bigger.buffer);
    }
    this.#outLength = at + n;
    return at;
  }

  #writePacket(p: number, packetId: number, body: Uint8Array): void {
    const v = this.#outView;
    v.setUint16(p, HEADER_SIZE + body.length, true);
    v.setUint16(p + 2, packetId, true);
    this.#out[p + 4] = 0;
    this.#out.set(body, p + HEADER_SIZE);
  }

  #onEvents(batch: ArrayBuffer | undefined, finished: boolean, length: number): void {
    if (batch !== undefined) this.#dispatch(batch, length);
    if (finished) {
      this.#finished = true;
      const waiters = this.#closeWaiters;
      this.#closeWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** The records are the first `end` bytes of batch, a buffer the addon reuses (so bodies are views valid during the handler call). */
  #dispatch(batch: ArrayBuffer, end: number): void {
    if (batch !== this.#inBuffer) {
      this.#inBuffer = batch;
      this.#inBytes = new Uint8Array(batch);
      this.#inView = new DataView(batch);
    }
    const bytes = this.#inBytes;
    const v = this.#inView;
    const sink = this.#sink;
    let p = 0;
    while (p + RECORD_HEAD <= end) {
      const kind = bytes[p];
      const id = v.getUint32(p + 1, true);
      p += RECORD_HEAD;
      if (kind === InboundKind.Packet) {
        const packetId = v.getUint16(p, true);
        const len = v.getUint16(p + 2, true);
        p += PACKET_FIELDS;
        sink.onPacket(id, packetId, bytes.subarray(p, p + len));
        p += len;
      } else if (kind === InboundKind.Connect) {
        const port = v.getUint16(p, true);
        const transport = TRANSPORTS[bytes[p + 2]];
        if (transport === undefined) {
          throw new IocpnetError('ERR_NATIVE_BATCH', `unknown transport ${bytes[p + 2]} from the native engine`);
        }
        const addrLen = bytes[p + 3];
        p += CONNECT_FIELDS;
        const address = String.fromCharCode(...bytes.subarray(p, p + addrLen));
        p += addrLen;
        this.#open.add(id);
        sink.onConnect(id, address, port, transport);
      } else if (kind === InboundKind.Disconnect) {
        const engineReason: DisconnectReason | undefined = DISCONNECT_REASONS[bytes[p]];
        if (engineReason === undefined) {
          throw new IocpnetError('ERR_NATIVE_BATCH', `unknown close reason ${bytes[p]} from the native engine`);
        }
        // The engine waits for a Release exactly when its close is graceful;
        // the Release then tells it the reason reported, for its counts.
        const awaitsRelease = bytes[p + 1] === 1;
        p += DISCONNECT_FIELDS;
        const reason = reportedReason(engineReason, awaitsRelease, this.#appCloses.get(id));
        this.#appCloses.delete(id);
        this.#open.delete(id);
        sink.onDisconnect(id, reason);
        if (awaitsRelease) {
          // After the replies handlers queued for this connection: the engine
          // sends them, then goes on with the close it began.
          const q = this.#reserve(OP_HEAD + RELEASE_FIELDS);
          this.#out[q] = OutboundOp.Release;
          this.#outView.setUint32(q + 1, id, true);
          this.#out[q + OP_HEAD] = DISCONNECT_REASONS.indexOf(reason);
        }
      } else {
        // The engine wrote something this code does not know: a build mismatch.
        throw new IocpnetError('ERR_NATIVE_BATCH', `unknown event record kind ${kind} from the native engine`);
      }
    }
    sink.onBatchEnd();
  }
}
