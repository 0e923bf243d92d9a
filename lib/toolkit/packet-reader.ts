import { HEADER_SIZE } from '../contract';

export interface ReceivedPacket {
  packetId: number;
  type: number;
  /** A copy; it stays valid. */
  body: Buffer;
}

/**
 * Client-side framing (PROTOCOL.md section 1): feed it what a socket reads,
 * in any pieces, and it returns the whole packets. JS thread only.
 */
export class PacketReader {
  #buf: Buffer = Buffer.alloc(0);
  /** Set once the stream held a length below the header size; the stream is unusable after it. */
  error: RangeError | undefined;

  /**
   * Returns the packets completed by chunk, those before a bad length
   * included; a bad length sets `error`, and a push after that throws it.
   */
  push(chunk: Buffer): ReceivedPacket[] {
    if (this.error) throw this.error;
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: ReceivedPacket[] = [];
    let pos = 0;
    while (this.#buf.length - pos >= HEADER_SIZE) {
      const length = this.#buf.readUInt16LE(pos);
      if (length < HEADER_SIZE) {
        this.error = new RangeError(`packet length ${length} is below the ${HEADER_SIZE}-byte header`);
        this.#buf = Buffer.alloc(0);
        return out;
      }
      if (this.#buf.length - pos < length) break;
      out.push({
        packetId: this.#buf.readUInt16LE(pos + 2),
        type: this.#buf.readUInt8(pos + 4),
        body: Buffer.from(this.#buf.subarray(pos + HEADER_SIZE, pos + length)),
      });
      pos += length;
    }
    this.#buf = pos === this.#buf.length ? Buffer.alloc(0) : Buffer.from(this.#buf.subarray(pos));
    return out;
  }
}
