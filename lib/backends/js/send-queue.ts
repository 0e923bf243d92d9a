import type * as net from 'node:net';
import { HEADER_SIZE } from '../../contract';

/** First size of a connection's outbound buffer; it doubles while one flush fills it, up to OUT_MAX. */
const OUT_MIN = 1024;
const OUT_MAX = 64 * 1024;

/**
 * One connection's outbound bytes, as native/core's SendQueue: packets are
 * copied into one growing buffer, a broadcast's shared packet is queued by
 * reference, and writeTo() hands everything queued to the socket in one
 * write, or one corked writev for several pieces. JS thread only; the
 * buffers belong to the queue until the socket has written them.
 */
export class SendQueue {
  /** Bytes queued and not yet handed to the socket. */
  pendingBytes = 0;
  /**
   * Outbound bytes not yet handed to the socket: full earlier pieces in
   * segments, then out[outStart, outEnd). Bytes before outStart belong to
   * writes in flight and are not touched until they complete.
   */
  #out: Buffer | null = null;
  #outStart = 0;
  #outEnd = 0;
  #segments: Buffer[] | null = null;
  /** Sizes of the writes in flight, oldest first; their callbacks complete in order. */
  readonly #writeSizes: number[] = [];
  readonly #onWritten: (err?: Error | null) => void;

  /** counters.bytesOut counts what the socket has written. */
  constructor(counters: { bytesOut: number }) {
    this.#onWritten = (err) => {
      const n = this.#writeSizes.shift() ?? 0;
      if (err) return;
      counters.bytesOut += n;
      // Once nothing is in flight or pending the buffer is free again from its start.
      if (this.#writeSizes.length === 0 && this.pendingBytes === 0) this.#outStart = this.#outEnd = 0;
    };
  }

  /** Copies one packet (size bytes: the header, then body[start, end)) into the queue. */
  append(packetId: number, body: Uint8Array, start: number, end: number, size: number): void {
    let out = this.#out;
    let at = this.#outEnd;
    if (out === null || out.length - at < size) {
      out = this.#grow(size);
      at = 0;
    }
    out[at] = size & 0xff;
    out[at + 1] = size >>> 8;
    out[at + 2] = packetId & 0xff;
    out[at + 3] = packetId >>> 8;
    out[at + 4] = 0;
    if (end > start) out.set(start === 0 && end === body.length ? body : body.subarray(start, end), at + HEADER_SIZE);
    this.#outEnd = at + size;
    this.pendingBytes += size;
  }

  /** Queues an encoded packet that other connections share; it is written as is, never copied. */
  appendShared(packet: Buffer): void {
    const segments = this.#segments ?? (this.#segments = []);
    if (this.#out !== null && this.#outEnd > this.#outStart) {
      segments.push(this.#out.subarray(this.#outStart, this.#outEnd));
      this.#outStart = this.#outEnd;
    }
    segments.push(packet);
    this.pendingBytes += packet.length;
  }

  /** Hands the pending bytes to socket: one write, or one corked writev for several pieces. */
  writeTo(socket: net.Socket): void {
    if (this.pendingBytes === 0) return;
    const segments = this.#segments;
    let tail: Buffer | null = null;
    if (this.#out !== null && this.#outEnd > this.#outStart) {
      tail = this.#out.subarray(this.#outStart, this.#outEnd);
      this.#outStart = this.#outEnd;
    }
    this.pendingBytes = 0;
    if (segments === null) {
      if (tail === null) return;
      this.#writeSizes.push(tail.length);
      socket.write(tail, this.#onWritten);
      return;
    }
    this.#segments = null;
    socket.cork();
    for (let i = 0; i < segments.length; i++) {
      this.#writeSizes.push(segments[i].length);
      socket.write(segments[i], this.#onWritten);
    }
    if (tail !== null) {
      this.#writeSizes.push(tail.length);
      socket.write(tail, this.#onWritten);
    }
    socket.uncork();
  }

  /** Drops what is pending and lets go of the buffers; writes in flight finish on their own. */
  clear(): void {
    this.#out = null;
    this.#segments = null;
    this.pendingBytes = 0;
  }

  /** Gives the queue a new outbound buffer with room for size bytes; returns it. */
  #grow(size: number): Buffer {
    const old = this.#out;
    let capacity = OUT_MIN;
    if (old !== null) {
      if (this.#outEnd > this.#outStart) (this.#segments ?? (this.#segments = [])).push(old.subarray(this.#outStart, this.#outEnd));
      // Grow only when a single flush's packets filled the whole buffer.
      capacity = this.#outStart === 0 ? Math.min(OUT_MAX, old.length * 2) : old.length;
    }
    const out = Buffer.allocUnsafe(Math.max(capacity, size));
    this.#out = out;
    this.#outStart = this.#outEnd = 0;
    return out;
  }
}
