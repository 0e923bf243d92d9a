/**
 * The packet writer of PROTOCOL.md section 1, for clients and servers
 * alike: u16 length (header included), u16 packet id, u8 type 0, body. It
 * reads nothing but the contract, so every layer may use it. Pure
 * functions; any thread.
 */
import { HEADER_SIZE } from '../contract';

/** Writes one packet (header and body) into out at offset; returns the new offset. */
export function writePacket(out: Uint8Array, offset: number, packetId: number, body: Uint8Array): number {
  const length = HEADER_SIZE + body.length;
  out[offset] = length & 0xff;
  out[offset + 1] = length >>> 8;
  out[offset + 2] = packetId & 0xff;
  out[offset + 3] = packetId >>> 8;
  out[offset + 4] = 0;
  out.set(body, offset + HEADER_SIZE);
  return offset + length;
}

/** One whole packet as a new Buffer. */
export function encodePacket(packetId: number, body: Uint8Array = new Uint8Array(0)): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + body.length);
  writePacket(out, 0, packetId, body);
  return out;
}
