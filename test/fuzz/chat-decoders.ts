import * as fs from 'node:fs';
import * as path from 'node:path';
import { PacketReader } from '../../lib/toolkit/packet-reader';
import * as packets from '../../lib/chat/packets';
import { ProtocolError } from '../../lib/toolkit/protocol-error';
import { StructCodec, type FieldSpec } from '../../lib/toolkit/struct-codec';
import { HEADER_SIZE, MAX_BODY_SIZE } from '../../lib/contract';

/**
 * Properties of the chat decoders that must hold for any input, shared by
 * the time-bounded fuzz loop (chat-decoders.fuzz.ts) and the corpus replay
 * in the ordinary test run (chat-decoders.test.ts).
 *
 * An input is one selector byte and the bytes to decode. The selector picks
 * a struct codec of lib/chat/packets.ts, the user-list decoder, the user-id
 * parser or the client's PacketReader (fed in pieces). checkInput throws an
 * Error naming the broken property.
 */

type AnyCodec = StructCodec<readonly FieldSpec[]>;

export const codecs: AnyCodec[] = (Object.values(packets) as unknown[]).filter((v): v is AnyCodec => v instanceof StructCodec);

/** Decoders beyond the struct codecs, after them in selector order. */
const USER_LIST = 0;
const USER_ID = 1;
const PACKET_READER = 2;
export const decoderCount = codecs.length + 3;

export function describe(input: Uint8Array): string {
  if (input.length === 0) return 'empty input';
  const k = input[0] % decoderCount;
  const name = k < codecs.length ? codecs[k].name : ['decodeUserList', 'parseUserId', 'PacketReader'][k - codecs.length];
  return `${name} on ${input.length - 1} bytes: ${Buffer.from(input.subarray(1, 65)).toString('hex')}${input.length > 65 ? '...' : ''}`;
}

function fail(property: string): never {
  throw new Error(`property broken: ${property}`);
}

function expectProtocolError(fn: () => unknown, what: string): void {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError && err.code === 'ERR_PROTOCOL') return;
    fail(`${what} threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)} instead of a ProtocolError`);
  }
  fail(`${what} accepted it`);
}

/** The bytes a char field decodes to: up to the first NUL. */
function untilNul(bytes: Uint8Array): Buffer {
  const b = Buffer.from(bytes);
  const nul = b.indexOf(0);
  return nul < 0 ? b : b.subarray(0, nul);
}

function checkStruct(codec: AnyCodec, body: Uint8Array): void {
  if (body.length > codec.size) {
    expectProtocolError(() => codec.decode(body), `${codec.name}.decode of a ${body.length}-byte body`);
    return;
  }
  const padded = Buffer.alloc(codec.size);
  padded.set(body);
  const decoded = codec.decode(body) as Record<string, number | Buffer>;
  // Independently of the codec: fields in order, packed, little-endian.
  const normal = Buffer.alloc(codec.size);
  let at = 0;
  for (const f of codec.fields) {
    const value = decoded[f.name];
    if (f.type === 'char') {
      const want = untilNul(padded.subarray(at, at + f.length));
      if (!Buffer.isBuffer(value) || !value.equals(want)) fail(`${codec.name}.${f.name} is the field's bytes up to the first NUL`);
      want.copy(normal, at);
      at += f.length;
      continue;
    }
    const read: Record<string, [number, () => number]> = {
      u8: [1, () => padded.readUInt8(at)],
      u16: [2, () => padded.readUInt16LE(at)],
      i16: [2, () => padded.readInt16LE(at)],
      u32: [4, () => padded.readUInt32LE(at)],
      i32: [4, () => padded.readInt32LE(at)],
    };
    const [size, get] = read[f.type];
    if (value !== get()) fail(`${codec.name}.${f.name} decodes as ${f.type} at offset ${at}`);
    padded.copy(normal, at, at, at + size);
    at += size;
  }
  if (at !== codec.size) fail(`${codec.name}.size is the sum of its fields`);
  // Re-encoding what was decoded gives the body back, short bodies padded
  // with zeros and char fields cut at their first NUL.
  const again = codec.encode(decoded);
  if (!again.equals(normal)) fail(`${codec.name}: encode(decode(body)) is the normalised body`);
}

function checkUserList(body: Uint8Array): void {
  const count = body.length >= 2 ? body[0] | (body[1] << 8) : -1;
  if (body.length < 2 || body.length !== 2 + count * packets.USER_ID_FIELD) {
    expectProtocolError(() => packets.decodeUserList(body), `decodeUserList of ${body.length} bytes (Count ${count})`);
    return;
  }
  const ids = packets.decodeUserList(body);
  if (ids.length !== count) fail('decodeUserList returns Count ids');
  const normal = Buffer.alloc(body.length);
  normal.set(body.subarray(0, 2));
  for (let i = 0; i < count; i++) {
    const field = body.subarray(2 + i * packets.USER_ID_FIELD, 2 + (i + 1) * packets.USER_ID_FIELD);
    const want = untilNul(field);
    if (!ids[i].equals(want)) fail('a listed id is its field up to the first NUL');
    want.copy(normal, 2 + i * packets.USER_ID_FIELD);
  }
  if (!packets.encodeUserList(ids).equals(normal)) fail('encodeUserList(decodeUserList(body)) is the normalised body');
}

function checkUserId(bytes: Uint8Array): void {
  const id = packets.parseUserId(bytes);
  const b = Buffer.from(bytes);
  // PROTOCOL.md: 1..20 bytes of UTF-8, no bytes < 0x20 or 0x7F. Valid UTF-8
  // is exactly what survives a decode / encode round trip unchanged.
  const valid =
    b.length >= 1 && b.length <= packets.MAX_USER_ID_BYTES && !b.some((x) => x < 0x20 || x === 0x7f) && Buffer.from(b.toString('utf8'), 'utf8').equals(b);
  if (!valid) {
    if (id !== undefined) fail(`parseUserId accepted invalid id bytes as ${JSON.stringify(id)}`);
    return;
  }
  if (id === undefined) fail('parseUserId refused a valid id');
  // One id, one spelling: the string names exactly these bytes.
  if (!Buffer.from(id, 'utf8').equals(b)) fail(`parseUserId maps these bytes to ${JSON.stringify(id)}, which encodes differently`);
}

function checkPacketReader(data: Uint8Array): void {
  if (data.length < 1) return;
  // First byte: piece size; the rest is the stream.
  const piece = 1 + (data[0] % 64);
  const stream = Buffer.from(data.subarray(1));
  // Reference: whole packets of the stream, stopping at a length below the header.
  const want: Array<{ id: number; type: number; body: Buffer }> = [];
  let wantError = false;
  for (let pos = 0; stream.length - pos >= HEADER_SIZE;) {
    const length = stream.readUInt16LE(pos);
    if (length < HEADER_SIZE) {
      wantError = true;
      break;
    }
    if (stream.length - pos < length) break;
    want.push({ id: stream.readUInt16LE(pos + 2), type: stream[pos + 4], body: stream.subarray(pos + HEADER_SIZE, pos + length) });
    pos += length;
  }
  const reader = new PacketReader();
  const got: Array<{ id: number; type: number; body: Buffer }> = [];
  let gotError = false;
  for (let pos = 0; pos < stream.length && !gotError; pos += piece) {
    try {
      for (const p of reader.push(Buffer.from(stream.subarray(pos, pos + piece)))) got.push({ id: p.packetId, type: p.type, body: p.body });
    } catch (err) {
      if (!(err instanceof RangeError)) fail(`PacketReader threw ${String(err)} instead of a RangeError`);
      gotError = true;
    }
    if (reader.error) gotError = true;
  }
  if (gotError !== wantError) fail(`PacketReader ${gotError ? 'refused' : 'accepted'} the stream`);
  if (got.length !== want.length) fail(`PacketReader returned ${got.length} packets, the stream holds ${want.length}`);
  for (let i = 0; i < got.length; i++) {
    if (got[i].id !== want[i].id || got[i].type !== want[i].type || !got[i].body.equals(want[i].body)) {
      fail(`PacketReader packet ${i} differs from the stream's`);
    }
  }
}

/** Checks one input; throws on a broken property. */
export function checkInput(input: Uint8Array): void {
  if (input.length === 0) return;
  const k = input[0] % decoderCount;
  const data = input.subarray(1, 1 + MAX_BODY_SIZE);
  if (k < codecs.length) checkStruct(codecs[k], data);
  else if (k - codecs.length === USER_LIST) checkUserList(data);
  else if (k - codecs.length === USER_ID) checkUserId(data);
  else if (k - codecs.length === PACKET_READER) checkPacketReader(data);
}

/** Byte strings worth splicing into inputs: BOMs, overlong forms, surrogates, NULs, control bytes. */
export const dictionary: Uint8Array[] = [
  [0xef, 0xbb, 0xbf],
  [0xfe, 0xff],
  [0xc0, 0x80],
  [0xe0, 0x80, 0x80],
  [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xc3, 0xa9],
  [0xe2, 0x82, 0xac],
  [0xf0, 0x9f, 0x98, 0x80],
  [0x00],
  [0x1f],
  [0x7f],
  [0xff, 0xff],
  [0x00, 0x80],
  [0x15, 0x00],
].map((a) => Uint8Array.from(a));

/** Valid inputs to start from: one of each struct, a user list, ids, a packet stream. */
export function seeds(): Uint8Array[] {
  const out: Uint8Array[] = [];
  const withSelector = (k: number, body: Uint8Array) => Uint8Array.from([k, ...body]);
  codecs.forEach((c, k) => {
    const values: Record<string, number | string> = {};
    for (const f of c.fields) values[f.name] = f.type === 'char' ? 'alice' : 7;
    out.push(withSelector(k, c.encode(values)));
    out.push(withSelector(k, new Uint8Array(0)));
  });
  out.push(withSelector(codecs.length + USER_LIST, packets.encodeUserList(['alice', 'bob', 'carol'])));
  for (const id of ['alice', 'é', '12345678901234567890', 'a b']) out.push(withSelector(codecs.length + USER_ID, Buffer.from(id)));
  const stream = Buffer.concat([Buffer.from([7, 0, 202, 0, 0, 0, 0]), Buffer.from([5, 0, 209, 0, 0]), Buffer.from([8, 0, 1, 0, 0, 1, 2, 3])]);
  out.push(withSelector(codecs.length + PACKET_READER, Buffer.concat([Buffer.from([3]), stream])));
  return out;
}

/** A broken property without its numbers and quoted values: one per kind of failure. */
export function keyOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/"[^"]*"/g, '""').replace(/\d+/g, 'N');
}

/**
 * Corpus inputs that still break a property, with the reason: bugs found
 * and reported but not fixed yet. Their replay is expected to fail.
 */
export function readKnownFailures(corpusDir: string): Record<string, string> {
  const file = path.join(corpusDir, 'known-failures.json');
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string>) : {};
}
