/**
 * The chats of one flush packed into one stream entry (docs/CLUSTER.md,
 * "Stream entries"): per chat i32 room, u8 id length, id, u16 message
 * length, message. Pure functions; any thread.
 */

export interface BatchedChat {
  room: number;
  userId: Uint8Array;
  message: Uint8Array;
}

/** Bytes one chat takes in a batch. */
export function batchedSize(userId: Uint8Array, message: Uint8Array): number {
  return 4 + 1 + userId.length + 2 + message.length;
}

/** Packs chats into one buffer. */
export function encodeChatBatch(chats: readonly BatchedChat[]): Buffer {
  let size = 0;
  for (const c of chats) size += batchedSize(c.userId, c.message);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const c of chats) {
    at = out.writeInt32LE(c.room, at);
    at = out.writeUInt8(c.userId.length, at);
    out.set(c.userId, at);
    at += c.userId.length;
    at = out.writeUInt16LE(c.message.length, at);
    out.set(c.message, at);
    at += c.message.length;
  }
  return out;
}

/** Unpacks a batch; a malformed one throws a RangeError (it came from Redis, not from a client). */
export function decodeChatBatch(data: Buffer): BatchedChat[] {
  const chats: BatchedChat[] = [];
  let at = 0;
  while (at < data.length) {
    if (at + 5 > data.length) throw new RangeError('chat batch: truncated header');
    const room = data.readInt32LE(at);
    const idLen = data.readUInt8(at + 4);
    at += 5;
    if (at + idLen + 2 > data.length) throw new RangeError('chat batch: truncated user id');
    const userId = data.subarray(at, at + idLen);
    at += idLen;
    const msgLen = data.readUInt16LE(at);
    at += 2;
    if (at + msgLen > data.length) throw new RangeError('chat batch: truncated message');
    chats.push({ room, userId, message: data.subarray(at, at + msgLen) });
    at += msgLen;
  }
  return chats;
}
