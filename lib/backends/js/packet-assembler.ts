import { HEADER_SIZE } from '../../contract';

/** A split packet's buffer larger than this is given back once the packet is complete. */
const PARTIAL_KEEP = 4096;
/** #completePartial's results other than a position: the feed is used up or stopped, or the header is bad. */
const USED_UP = -1;
const BAD_HEADER = -2;

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
 * Turns one connection's TCP byte stream into whole packets (PROTOCOL.md
 * section 1), as native/core's PacketAssembler: reads are parsed in place,
 * and only the bytes of a packet split across reads are copied and kept,
 * so an idle connection holds no buffer. JS thread only.
 */
export class PacketAssembler {
  readonly maxPacketSize: number;
  /** The start of a packet split across reads, and how many of its bytes are here. */
  #partial: Buffer | null = null;
  #fill = 0;

  constructor(maxPacketSize: number) {
    this.maxPacketSize = maxPacketSize;
  }

  /**
   * Hands each whole packet of chunk to sink, in order. Returns false at
   * the first bad header (a length below the header size or above
   * maxPacketSize, or a type other than 0); the packets before it were
   * delivered, and the assembler must be reset before it is fed again.
   */
  feed<C>(chunk: Buffer, sink: PacketSink<C>, c: C): boolean {
    const end = chunk.length;
    let pos = 0;
    if (this.#fill > 0) {
      pos = this.#completePartial(chunk, sink, c);
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
      let p = this.#partial;
      if (p === null || p.length < need) p = this.#partial = Buffer.allocUnsafe(Math.max(need, 64));
      chunk.copy(p, 0, pos, end);
      this.#fill = n;
    }
    return true;
  }

  /** Drops a split packet's bytes and buffer. */
  reset(): void {
    this.#partial = null;
    this.#fill = 0;
  }

  /** Bytes held of a packet not yet complete. */
  get partialBytes(): number {
    return this.#fill;
  }

  /**
   * Completes the packet split across reads from the start of chunk.
   * Returns where the rest of chunk starts, USED_UP when chunk is used up or
   * the connection stopped reading, or BAD_HEADER.
   */
  #completePartial<C>(chunk: Buffer, sink: PacketSink<C>, c: C): number {
    let p = this.#partial as Buffer;
    let fill = this.#fill;
    const end = chunk.length;
    let pos = 0;
    if (fill < HEADER_SIZE) {
      pos = Math.min(HEADER_SIZE - fill, end);
      chunk.copy(p, fill, 0, pos);
      fill += pos;
      if (fill < HEADER_SIZE) {
        this.#fill = fill;
        return USED_UP;
      }
      const length = p[0] | (p[1] << 8);
      if (length < HEADER_SIZE || length > this.maxPacketSize || p[4] !== 0) {
        this.#fill = 0;
        return BAD_HEADER;
      }
      if (p.length < length) {
        const bigger = Buffer.allocUnsafe(length);
        p.copy(bigger, 0, 0, HEADER_SIZE);
        this.#partial = p = bigger;
      }
    }
    const length = p[0] | (p[1] << 8);
    const take = Math.min(length - fill, end - pos);
    chunk.copy(p, fill, pos, pos + take);
    fill += take;
    pos += take;
    if (fill < length) {
      this.#fill = fill;
      return USED_UP;
    }
    this.#fill = 0;
    const open = sink.onFramed(c, p[2] | (p[3] << 8), p, HEADER_SIZE, length);
    if (p.length > PARTIAL_KEEP) this.#partial = null;
    return open ? pos : USED_UP;
  }
}
