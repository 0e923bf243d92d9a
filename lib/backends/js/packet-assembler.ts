import { HEADER_SIZE } from '../../contract';

/** A split packet's buffer larger than this is given back once the packet is complete. */
const PARTIAL_KEEP = 4096;
/** #completePartial's results other than a position: the feed is used up or stopped, or the header is bad. */
const USED_UP = -1;
const BAD_HEADER = -2;

/** A connection's share of the framing state: the bytes of a packet split across reads. */
export interface SplitPacket {
  /** The start of a packet split across reads, or null... */
  partial: Buffer | null;
  /** ...and how many of its bytes are there. */
  partialFill: number;
}

/** Where an assembler hands the whole packets of a connection C. */
export interface PacketSink<C> {
  /**
   * One whole packet: its body is buf[start, end), valid only during the
   * call. Returns false when the connection stopped reading; the rest of
   * the feed is dropped then.
   */
  onFramed(c: C, packetId: number, buf: Buffer, start: number, end: number): boolean;
}

/**
 * Turns each connection's TCP byte stream into whole packets (PROTOCOL.md
 * section 1), as native/core's PacketAssembler: reads are parsed in place,
 * and only the bytes of a packet split across reads are copied and kept, in
 * the connection's SplitPacket fields, so an idle connection holds no
 * buffer. One assembler serves every connection of a server. JS thread only.
 */
export class PacketAssembler<C extends SplitPacket> {
  readonly maxPacketSize: number;
  readonly #sink: PacketSink<C>;

  constructor(maxPacketSize: number, sink: PacketSink<C>) {
    this.maxPacketSize = maxPacketSize;
    this.#sink = sink;
  }

  /**
   * Hands each whole packet of chunk to sink, in order. Returns false at
   * the first bad header (a length below the header size or above
   * maxPacketSize, or a type other than 0); the packets before it were
   * delivered, and the assembler must be reset before it is fed again.
   */
  feed(c: C, chunk: Buffer): boolean {
    const sink = this.#sink;
    const end = chunk.length;
    let pos = 0;
    if (c.partialFill > 0) {
      pos = this.#completePartial(c, chunk);
      if (pos < 0) return pos !== BAD_HEADER;
    }
    const max = this.maxPacketSize;
    while (end - pos >= HEADER_SIZE) {
      const length = chunk[pos] | (chunk[pos + 1] << 8);
      if (length < HEADER_SIZE || length > max || chunk[pos + 4] !== 0) return false;
      if (end - pos < length) break;
      if (!sink.onFramed(c, chunk[pos + 2] | (chunk[pos + 3] << 8), chunk, pos + HEADER_SIZE, pos + length)) return true;
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
    return true;
  }

  /** Drops c's split packet, bytes and buffer. */
  reset(c: C): void {
    c.partial = null;
    c.partialFill = 0;
  }

  /**
   * Completes the packet split across reads from the start of chunk.
   * Returns where the rest of chunk starts, USED_UP when chunk is used up or
   * the connection stopped reading, or BAD_HEADER.
   */
  #completePartial(c: C, chunk: Buffer): number {
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
        return USED_UP;
      }
      const length = p[0] | (p[1] << 8);
      if (length < HEADER_SIZE || length > this.maxPacketSize || p[4] !== 0) {
        c.partialFill = 0;
        return BAD_HEADER;
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
      return USED_UP;
    }
    c.partialFill = 0;
    const open = this.#sink.onFramed(c, p[2] | (p[3] << 8), p, HEADER_SIZE, length);
    if (p.length > PARTIAL_KEEP) c.partial = null;
    return open ? pos : USED_UP;
  }
}
