/**
 * Engine-level wire constants (PROTOCOL.md sections 1 and 2).
 */

/** Bytes of the packet header: u16 length (header included), u16 id, u8 type. */
export const HEADER_SIZE = 5;
/** The largest packet the u16 length field can describe. */
export const MAX_WIRE_PACKET = 0xffff;
/** The largest body a server may send. */
export const MAX_BODY_SIZE = MAX_WIRE_PACKET - HEADER_SIZE;

export const PacketId = {
  PING: 1,
  PONG: 2,
  DISCONNECT_NOTIFY: 3,
} as const;

/** Ids 1..99 are handled by the engine and never reach handlers. */
export const FIRST_APP_PACKET_ID = 100;
/** The largest PING body the engine echoes. */
export const MAX_PING_BODY = 64;

/** DISCONNECT_NOTIFY reason codes on the wire. */
export const DisconnectCode = {
  SERVER_SHUTDOWN: 1,
  PROTOCOL_ERROR: 2,
  IDLE_TIMEOUT: 3,
  SERVER_FULL: 4,
  KICKED: 5,
  SLOW_CONSUMER: 6,
} as const;

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
