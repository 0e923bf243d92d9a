/**
 * Engine-level wire constants (docs/PROTOCOL.md sections 1 and 2), read from
 * the contract, and the packet writer.
 */
import { HEADER_SIZE } from './contract';

export {
  DisconnectCode,
  FIRST_APP_PACKET_ID,
  HEADER_SIZE,
  MAX_BODY_SIZE,
  MAX_PING_BODY,
  MAX_WIRE_PACKET,
  PacketId,
} from './contract';

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
