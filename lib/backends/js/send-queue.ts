import type * as net from 'node:net';
import { HEADER_SIZE } from '../../contract';
import { binaryHeader } from './websocket';

/** First size of a connection's outbound buffer; it doubles while one flush fills it, up to OUT_MAX. */
const OUT_MIN = 1024;
const OUT_MAX = 64 * 1024;

/**
 * A connection's share of the send-queue state. Outbound bytes not yet
 * handed to the socket are the full earlier pieces in segments, then
 * out[outStart, outEnd); bytes before outStart belong to writes in flight
 * and are not touched until they complete.
 */
export interface QueuedBytes {
  readonly socket: net.Socket;
  out: Buffer | null;
  outStart: number;
  outEnd: number;
  segments: Buffer[] | null;
  /** Bytes queued and not yet handed to the socket. */
  pendingBytes: number;
  /** Sizes of the writes in flight, oldest first; their callbacks complete in order. */
  readonly writeSizes: number[];
  /** The callback of every write to the socket; it calls SendQueue.written(). */
  onWritten: (err?: Error | null) => void;
  /** A WebSocket connection: each piece written goes out as one binary message (whole packets, as queued). */
  readonly framed: boolean;
}

/**
 * The send queues of a server's connections, as native/core's SendQueue:
 * packets are copied into each connection's growing buffer, a broadcast's
 * shared packet is queued by reference, and writeOut() hands everything a
 * connection has queued to its socket in one write, or one corked writev
 * for several pieces. The state of each queue is its connection's
 * QueuedBytes fields, so a connection costs no object of its own here. JS
 * thread only; the buffers belong to the queue until the socket has written
 * them.
 */
export class SendQueue<Q extends QueuedBytes> {
  /** counters.bytesOut counts what the sockets have written. */
  readonly #counters: { bytesOut: number };

  constructor(counters: { bytesOut: number }) {
    this.#counters = counters;
  }

  /** One of q's writes completed (q.onWritten). */
  written(q: Q, err: Error | null | undefined): void {
    const n = q.writeSizes.shift() ?? 0;
    if (err) return;
    this.#counters.bytesOut += n;
    // Once nothing is in flight or pending the buffer is free again from its start.
    if (q.writeSizes.length === 0 && q.pendingBytes === 0) q.outStart = q.outEnd = 0;
  }

  /** Copies one packet (size bytes: the header, then body[start, end)) into q. */
  append(q: Q, packetId: number, body: Uint8Array, start: number, end: number, size: number): void {
    let out = q.out;
    let at = q.outEnd;
    if (out === null || out.length - at < size) {
      out = this.#grow(q, size);
      at = 0;
    }
    out[at] = size & 0xff;
    out[at + 1] = size >>> 8;
    out[at + 2] = packetId & 0xff;
    out[at + 3] = packetId >>> 8;
    out[at + 4] = 0;
    if (end > start) out.set(start === 0 && end === body.length ? body : body.subarray(start, end), at + HEADER_SIZE);
    q.outEnd = at + size;
    q.pendingBytes += size;
  }

  /** Queues an encoded packet that other connections share; it is written as is, never copied. */
  appendShared(q: Q, packet: Buffer): void {
    const segments = q.segments ?? (q.segments = []);
    if (q.out !== null && q.outEnd > q.outStart) {
      segments.push(q.out.subarray(q.outStart, q.outEnd));
      q.outStart = q.outEnd;
    }
    segments.push(packet);
    q.pendingBytes += packet.length;
  }

  /** Writes bytes that are not packets (an HTTP response, a WebSocket control frame) to q's socket now, after what it was handed before. */
  writeRaw(q: Q, bytes: Buffer): void {
    q.writeSizes.push(bytes.length);
    q.socket.write(bytes, q.onWritten);
  }

  /** Hands q's pending bytes to its socket: one write, or one corked writev for several pieces. */
  writeOut(q: Q): void {
    if (q.pendingBytes === 0) return;
    const socket = q.socket;
    const segments = q.segments;
    let tail: Buffer | null = null;
    if (q.out !== null && q.outEnd > q.outStart) {
      tail = q.out.subarray(q.outStart, q.outEnd);
      q.outStart = q.outEnd;
    }
    q.pendingBytes = 0;
    if (q.framed) {
      this.#writeMessages(q, segments, tail);
      return;
    }
    if (segments === null) {
      if (tail === null) return;
      q.writeSizes.push(tail.length);
      socket.write(tail, q.onWritten);
      return;
    }
    q.segments = null;
    socket.cork();
    for (let i = 0; i < segments.length; i++) {
      q.writeSizes.push(segments[i].length);
      socket.write(segments[i], q.onWritten);
    }
    if (tail !== null) {
      q.writeSizes.push(tail.length);
      socket.write(tail, q.onWritten);
    }
    socket.uncork();
  }

  /**
   * writeOut on a WebSocket: each piece (whole packets) becomes one binary
   * message, its frame header written before it. A shared broadcast packet
   * stays shared: the header is the only per-receiver copy.
   */
  #writeMessages(q: Q, segments: Buffer[] | null, tail: Buffer | null): void {
    q.segments = null;
    const socket = q.socket;
    socket.cork();
    if (segments !== null) for (let i = 0; i < segments.length; i++) this.#writeMessage(q, segments[i]);
    if (tail !== null) this.#writeMessage(q, tail);
    socket.uncork();
  }

  #writeMessage(q: Q, payload: Buffer): void {
    const header = binaryHeader(payload.length);
    q.writeSizes.push(header.length, payload.length);
    q.socket.write(header, q.onWritten);
    q.socket.write(payload, q.onWritten);
  }

  /** Drops what q has pending and lets go of its buffers; writes in flight finish on their own. */
  clear(q: Q): void {
    q.out = null;
    q.segments = null;
    q.pendingBytes = 0;
  }

  /** Gives q a new outbound buffer with room for size bytes; returns it. */
  #grow(q: Q, size: number): Buffer {
    const old = q.out;
    let capacity = OUT_MIN;
    if (old !== null) {
      if (q.outEnd > q.outStart) (q.segments ?? (q.segments = [])).push(old.subarray(q.outStart, q.outEnd));
      // Grow only when a single flush's packets filled the whole buffer.
      capacity = q.outStart === 0 ? Math.min(OUT_MAX, old.length * 2) : old.length;
    }
    const out = Buffer.allocUnsafe(Math.max(capacity, size));
    q.out = out;
    q.outStart = q.outEnd = 0;
    return out;
  }
}
