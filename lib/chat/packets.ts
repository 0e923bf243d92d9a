import { MAX_BODY_SIZE } from '../contract';
import { ProtocolError } from '../toolkit/protocol-error';
import { char, charValue, defineStruct, i16, i32, u16 } from '../toolkit/struct-codec';

/**
 * The chat packets of PROTOCOL.md section 3: ids, result codes and layouts.
 * Shared by the server and by clients (the CLI client and the tests).
 */

export const ChatPacketId = {
  LOGIN_REQUEST: 201,
  LOGIN_RESPONSE: 202,
  ROOM_ENTER_REQUEST: 206,
  ROOM_ENTER_RESPONSE: 207,
  ROOM_LEAVE_REQUEST: 209,
  ROOM_LEAVE_RESPONSE: 210,
  ROOM_CHAT_REQUEST: 214,
  ROOM_CHAT_RESPONSE: 215,
  ROOM_CHAT_NOTIFY: 216,
  ROOM_USER_LIST_NOTIFY: 230,
  ROOM_NEW_USER_NOTIFY: 231,
  ROOM_LEAVE_USER_NOTIFY: 232,
} as const;

export type ChatPacketName = keyof typeof ChatPacketId;

/** The Result codes of responses. */
export const ChatResult = {
  NONE: 0,
  LOGIN_USER_ALREADY: 31,
  LOGIN_USER_USED_ALL_OBJ: 32,
  LOGIN_USER_INVALID_ID: 33,
  LOGIN_USER_INVALID_PW: 34,
  ENTER_ROOM_INVALID_USER_STATUS: 52,
  ENTER_ROOM_FULL_USER: 54,
  ROOM_INVALID_INDEX: 61,
  ROOM_TOO_MANY_PACKET: 63,
  LEAVE_ROOM_INVALID_ROOM_INDEX: 71,
  CHAT_ROOM_INVALID_ROOM_NUMBER: 81,
} as const;

export type ChatResultName = keyof typeof ChatResult;
export type ChatResultCode = (typeof ChatResult)[ChatResultName];

const RESULT_NAMES = new Map<number, ChatResultName>((Object.entries(ChatResult) as Array<[ChatResultName, number]>).map(([name, code]) => [code, name]));

/** The name of a result code, or `UNKNOWN(code)`. */
export function chatResultName(code: number): string {
  return RESULT_NAMES.get(code) ?? `UNKNOWN(${code})`;
}

/** Bytes of the char UserID[21] fields; a user id is at most one less, so a NUL always ends it. */
export const USER_ID_FIELD = 21;
export const MAX_USER_ID_BYTES = 20;
export const PASSWORD_FIELD = 21;
/** Bytes of the Message / Msg fields; a message may fill all of them. */
export const MESSAGE_FIELD = 257;

export const LoginRequest = defineStruct('LOGIN_REQUEST', [char('UserID', USER_ID_FIELD), char('UserPW', PASSWORD_FIELD)]);
export const LoginResponse = defineStruct('LOGIN_RESPONSE', [u16('Result')]);
export const RoomEnterRequest = defineStruct('ROOM_ENTER_REQUEST', [i32('RoomNumber')]);
export const RoomEnterResponse = defineStruct('ROOM_ENTER_RESPONSE', [i16('Result'), char('RivalUserID', USER_ID_FIELD)]);
export const RoomLeaveRequest = defineStruct('ROOM_LEAVE_REQUEST', []);
export const RoomLeaveResponse = defineStruct('ROOM_LEAVE_RESPONSE', [i16('Result')]);
export const RoomChatRequest = defineStruct('ROOM_CHAT_REQUEST', [char('Message', MESSAGE_FIELD)]);
export const RoomChatResponse = defineStruct('ROOM_CHAT_RESPONSE', [i16('Result')]);
export const RoomChatNotify = defineStruct('ROOM_CHAT_NOTIFY', [char('UserID', USER_ID_FIELD), char('Msg', MESSAGE_FIELD)]);
export const RoomNewUserNotify = defineStruct('ROOM_NEW_USER_NOTIFY', [char('UserID', USER_ID_FIELD)]);
export const RoomLeaveUserNotify = defineStruct('ROOM_LEAVE_USER_NOTIFY', [char('UserID', USER_ID_FIELD)]);

/** ROOM_USER_LIST_NOTIFY holds at most this many ids, so that it fits in one packet. */
export const MAX_USER_LIST = Math.floor((MAX_BODY_SIZE - 2) / USER_ID_FIELD);

/** ROOM_USER_LIST_NOTIFY: u16 Count; Count x char UserID[21]. */
export function encodeUserList(userIds: ReadonlyArray<string | Uint8Array>): Buffer {
  if (userIds.length > MAX_USER_LIST) {
    throw new RangeError(`a user list holds at most ${MAX_USER_LIST} ids, got ${userIds.length}`);
  }
  const out = Buffer.alloc(2 + USER_ID_FIELD * userIds.length);
  out.writeUInt16LE(userIds.length, 0);
  let at = 2;
  for (const id of userIds) {
    const bytes = typeof id === 'string' ? Buffer.from(id, 'utf8') : id;
    if (bytes.length > USER_ID_FIELD) throw new RangeError(`a user id holds at most ${USER_ID_FIELD} bytes, got ${bytes.length}`);
    out.set(bytes, at);
    at += USER_ID_FIELD;
  }
  return out;
}

/** Decodes ROOM_USER_LIST_NOTIFY; a body whose length does not match its Count is a ProtocolError. */
export function decodeUserList(body: Uint8Array): Buffer[] {
  if (body.length < 2) throw new ProtocolError(`ROOM_USER_LIST_NOTIFY body is ${body.length} bytes, at least 2 expected`);
  const buf = Buffer.from(body.buffer, body.byteOffset, body.length);
  const count = buf.readUInt16LE(0);
  if (body.length !== 2 + count * USER_ID_FIELD) {
    throw new ProtocolError(`ROOM_USER_LIST_NOTIFY with Count ${count} must be ${2 + count * USER_ID_FIELD} bytes, got ${body.length}`);
  }
  const ids: Buffer[] = [];
  for (let i = 0; i < count; i++) ids.push(charValue(buf.subarray(2 + i * USER_ID_FIELD, 2 + (i + 1) * USER_ID_FIELD)));
  return ids;
}

// ignoreBOM: a leading U+FEFF is part of the id, not dropped (else EF BB BF 61 would log in as "a").
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The user id that bytes spell, or undefined when they are not a valid id:
 * 1..20 bytes of well-formed UTF-8 with no control bytes (< 0x20, 0x7F).
 */
export function parseUserId(bytes: Uint8Array): string | undefined {
  if (bytes.length < 1 || bytes.length > MAX_USER_ID_BYTES) return undefined;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b < 0x20 || b === 0x7f) return undefined;
  }
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}
