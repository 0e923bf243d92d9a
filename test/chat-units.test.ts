import { describe, expect, it, vi } from 'vitest';
import {
  ChatResult,
  Field,
  LoginRequest,
  MAX_USER_LIST,
  PacketRouter,
  ProtocolError,
  RoomChatNotify,
  RoomEnterRequest,
  RoomEnterResponse,
  RoomLeaveRequest,
  RoomManager,
  TokenBucket,
  chatResultName,
  createChatServer,
  decodeUserList,
  defineStruct,
  encodeUserList,
  parseUserId,
  type Connection,
} from '../lib/index';

describe('struct codec', () => {
  const S = defineStruct('S', [Field.u16('a'), Field.i16('b'), Field.i32('c'), Field.char('name', 5), Field.u8('d')]);

  it('has the packed size of its fields', () => {
    expect(S.size).toBe(2 + 2 + 4 + 5 + 1);
    expect(LoginRequest.size).toBe(42);
    expect(RoomEnterResponse.size).toBe(23);
    expect(RoomChatNotify.size).toBe(278);
    expect(RoomLeaveRequest.size).toBe(0);
  });

  it('round-trips little-endian numbers and NUL-padded chars', () => {
    const body = S.encode({ a: 0xbeef, b: -2, c: -123456, name: 'ab', d: 7 });
    expect([...body]).toEqual([0xef, 0xbe, 0xfe, 0xff, 0xc0, 0x1d, 0xfe, 0xff, 0x61, 0x62, 0, 0, 0, 7]);
    const v = S.decode(body);
    expect(v.a).toBe(0xbeef);
    expect(v.b).toBe(-2);
    expect(v.c).toBe(-123456);
    expect(v.name.toString()).toBe('ab');
    expect(v.d).toBe(7);
  });

  it('reads a char field without NUL up to its end', () => {
    const body = S.encode({ name: 'abcde' });
    expect(S.decode(body).name.toString()).toBe('abcde');
    expect(() => S.encode({ name: 'abcdef' })).toThrow(RangeError);
  });

  it('treats a short body as zero-filled', () => {
    const full = S.encode({ a: 1, b: 2, c: 3, name: 'xyz', d: 9 });
    const v = S.decode(full.subarray(0, 10)); // a, b, c, then 'xy' of name
    expect(v.a).toBe(1);
    expect(v.c).toBe(3);
    expect(v.name.toString()).toBe('xy');
    expect(v.d).toBe(0);
    const empty = S.decode(Buffer.alloc(0));
    expect(empty.a).toBe(0);
    expect(empty.name.length).toBe(0);
    const half = RoomEnterRequest.decode(Buffer.from([0x05, 0x01]));
    expect(half.RoomNumber).toBe(0x105);
  });

  it('throws a ProtocolError for a body longer than the layout', () => {
    expect(() => S.decode(Buffer.alloc(S.size + 1))).toThrow(ProtocolError);
    expect(() => RoomLeaveRequest.decode(Buffer.alloc(1))).toThrow(ProtocolError);
    expect(() => LoginRequest.decode(Buffer.alloc(43))).toThrow(/43 bytes/);
  });

  it('rejects numbers outside their type and unknown field types', () => {
    expect(() => S.encode({ a: 0x10000 })).toThrow(RangeError);
    expect(() => S.encode({ b: 0x8000 })).toThrow(RangeError);
    expect(() => S.encode({ c: 1.5 })).toThrow(TypeError);
    expect(() => defineStruct('X', [Field.u16('a'), Field.u16('a')])).toThrow(TypeError);
    expect(() => Field.char('x', 0)).toThrow(RangeError);
  });

  it('encodes into an existing buffer at an offset', () => {
    const out = Buffer.alloc(20, 0xaa);
    expect(S.encodeInto(out, 3, { a: 5 })).toBe(3 + S.size);
    expect(out[2]).toBe(0xaa);
    expect(out.readUInt16LE(3)).toBe(5);
    expect(out[3 + S.size - 1]).toBe(0);
    expect(() => S.encodeInto(out, 10, {})).toThrow(RangeError);
  });
});

describe('user ids', () => {
  it('accepts 1..20 bytes of UTF-8 without control bytes', () => {
    expect(parseUserId(Buffer.from('a'))).toBe('a');
    expect(parseUserId(Buffer.from('x'.repeat(20)))).toBe('x'.repeat(20));
    expect(parseUserId(Buffer.from('유저'))).toBe('유저');
  });

  it('refuses empty, too long, control bytes and broken UTF-8', () => {
    expect(parseUserId(Buffer.alloc(0))).toBeUndefined();
    expect(parseUserId(Buffer.from('x'.repeat(21)))).toBeUndefined();
    expect(parseUserId(Buffer.from('a\x01b'))).toBeUndefined();
    expect(parseUserId(Buffer.from('a\x1fb'))).toBeUndefined();
    expect(parseUserId(Buffer.from('a\x7fb'))).toBeUndefined();
    expect(parseUserId(Buffer.from('a\tb'))).toBeUndefined();
    expect(parseUserId(Buffer.from([0x61, 0xc3]))).toBeUndefined();
    expect(parseUserId(Buffer.from([0xff]))).toBeUndefined();
  });
});

describe('user list', () => {
  it('round-trips and checks its count', () => {
    const body = encodeUserList(['alice', Buffer.from('bob')]);
    expect(body.length).toBe(2 + 2 * 21);
    expect(decodeUserList(body).map(String)).toEqual(['alice', 'bob']);
    expect(decodeUserList(encodeUserList([]))).toEqual([]);
    expect(() => decodeUserList(body.subarray(0, body.length - 1))).toThrow(ProtocolError);
    expect(() => encodeUserList(new Array<string>(MAX_USER_LIST + 1).fill('a'))).toThrow(RangeError);
  });
});

describe('result names', () => {
  it('names every code', () => {
    for (const [name, code] of Object.entries(ChatResult)) expect(chatResultName(code)).toBe(name);
    expect(chatResultName(999)).toBe('UNKNOWN(999)');
  });
});

describe('TokenBucket', () => {
  it('allows rate per second with one second of burst', () => {
    const b = new TokenBucket(3, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(200)).toBe(false); // 0.6 tokens
    expect(b.take(340)).toBe(true); // 1.02 tokens
    expect(b.take(340)).toBe(false);
    expect([b.take(10_000), b.take(10_000), b.take(10_000), b.take(10_000)]).toEqual([true, true, true, false]);
  });

  it('never limits at rate 0', () => {
    const b = new TokenBucket(0, 0);
    for (let i = 0; i < 1000; i++) expect(b.take(0)).toBe(true);
  });
});

describe('RoomManager', () => {
  it('numbers rooms from startRoom', () => {
    const rooms = new RoomManager(-2, 3, 4);
    expect(rooms.get(-3)).toBeUndefined();
    expect(rooms.get(-2)?.number).toBe(-2);
    expect(rooms.get(0)?.number).toBe(0);
    expect(rooms.get(1)).toBeUndefined();
    expect(rooms.get(0.5)).toBeUndefined();
    expect([...rooms].map((r) => r.maxUsers)).toEqual([4, 4, 4]);
  });
});

/** A stand-in Connection: the router only reads isOpen and calls close(). */
function fakeConn(id = 1): Connection & { closedWith: string[] } {
  const c = {
    id,
    isOpen: true,
    closedWith: [] as string[],
    close(reason = 'kicked') {
      c.closedWith.push(reason);
      c.isOpen = false;
      return true;
    },
  };
  return c as unknown as Connection & { closedWith: string[] };
}

describe('PacketRouter', () => {
  it('routes by id and counts unknown ids', () => {
    const r = new PacketRouter();
    const seen: string[] = [];
    r.on(300, (_c, _id, body) => void seen.push(`300:${Buffer.from(body).toString()}`));
    r.on(301, (_c, id) => void seen.push(`id ${id}`));
    const c = fakeConn();
    r.dispatch(c, 300, Buffer.from('x'));
    r.dispatch(c, 999, Buffer.alloc(0));
    r.dispatch(c, 301, Buffer.alloc(0));
    expect(seen).toEqual(['300:x', 'id 301']);
    expect(r.stats()).toMatchObject({ handled: 2, unknown: 1 });
    expect(r.packetIds()).toEqual([300, 301]);
  });

  it('refuses engine ids, duplicates and non-functions', () => {
    const r = new PacketRouter();
    expect(() => r.on(99, () => undefined)).toThrow(RangeError);
    expect(() => r.on(65536, () => undefined)).toThrow(RangeError);
    r.on(100, () => undefined);
    expect(() => r.on(100, () => undefined)).toThrow(/already has a handler/);
    expect(r.off(100)).toBe(true);
    expect(r.off(100)).toBe(false);
    expect(() => r.on(100, 'x' as unknown as () => void)).toThrow(TypeError);
  });

  it('closes the connection with protocol_error when a handler throws a ProtocolError', () => {
    const r = new PacketRouter({ onError: () => undefined });
    r.on(300, () => {
      throw new ProtocolError('bad');
    });
    const c = fakeConn();
    r.dispatch(c, 300, Buffer.alloc(0));
    expect(c.closedWith).toEqual(['protocol_error']);
    expect(r.stats().protocolErrors).toBe(1);
  });

  it('reports other throws and keeps the connection', () => {
    const errors: Error[] = [];
    const r = new PacketRouter({ onError: (e) => void errors.push(e) });
    r.on(300, () => {
      throw new Error('boom');
    });
    const c = fakeConn();
    r.dispatch(c, 300, Buffer.alloc(0));
    expect(c.isOpen).toBe(true);
    expect(errors[0].message).toMatch(/boom/);
    expect(r.stats().handlerErrors).toBe(1);
  });

  it('holds a connection’s later packets behind an async handler, in order, with copied bodies', async () => {
    const r = new PacketRouter();
    const order: string[] = [];
    let release: () => void = () => undefined;
    r.on(300, () => new Promise<void>((resolve) => (release = resolve)).then(() => void order.push('slow done')));
    r.on(301, (_c, _id, body) => void order.push(`fast ${Buffer.from(body).toString()}`));
    const a = fakeConn(1);
    const b = fakeConn(2);
    r.dispatch(a, 300, Buffer.alloc(0));
    const reused = Buffer.from('1');
    r.dispatch(a, 301, reused);
    reused.write('X'); // the engine reuses its buffers once dispatch returns
    r.dispatch(a, 301, Buffer.from('2'));
    r.dispatch(b, 301, Buffer.from('other'));
    expect(order).toEqual(['fast other']);
    expect(r.isBusy(a)).toBe(true);
    release();
    await vi.waitFor(() => expect(r.isBusy(a)).toBe(false));
    expect(order).toEqual(['fast other', 'slow done', 'fast 1', 'fast 2']);
    expect(r.stats().queued).toBe(2);
  });

  it('drops what waited when the connection closed meanwhile', async () => {
    const r = new PacketRouter();
    const seen: number[] = [];
    let release: () => void = () => undefined;
    r.on(300, () => new Promise<void>((resolve) => (release = resolve)));
    r.on(301, () => void seen.push(301));
    const a = fakeConn();
    r.dispatch(a, 300, Buffer.alloc(0));
    r.dispatch(a, 301, Buffer.alloc(0));
    (a as { isOpen: boolean }).isOpen = false;
    release();
    await vi.waitFor(() => expect(r.isBusy(a)).toBe(false));
    expect(seen).toEqual([]);
  });

  it('kicks a connection that queues more than maxQueuedBytes', () => {
    const r = new PacketRouter({ maxQueuedBytes: 10 });
    r.on(300, () => new Promise<void>(() => undefined));
    r.on(301, () => undefined);
    const a = fakeConn();
    r.dispatch(a, 300, Buffer.alloc(0));
    r.dispatch(a, 301, Buffer.alloc(6));
    expect(a.closedWith).toEqual([]);
    r.dispatch(a, 301, Buffer.alloc(6));
    expect(a.closedWith).toEqual(['kicked']);
    expect(r.stats().queueOverflows).toBe(1);
  });
});

describe('chat options', () => {
  it('rejects bad values before a server exists', () => {
    expect(() => createChatServer({ backend: 'js', maxRooms: 0 })).toThrow(RangeError);
    expect(() => createChatServer({ backend: 'js', maxRoomUsers: MAX_USER_LIST + 1 })).toThrow(RangeError);
    expect(() => createChatServer({ backend: 'js', startRoom: 0x7fffffff, maxRooms: 2 })).toThrow(RangeError);
    expect(() => createChatServer({ backend: 'js', chatRateLimit: -1 })).toThrow(RangeError);
    expect(() => createChatServer({ backend: 'js', chatRateLimit: 1.5 })).toThrow(TypeError);
    expect(() => createChatServer({ backend: 'js', authenticate: 'yes' as unknown as () => boolean })).toThrow(TypeError);
    expect(() => createChatServer({ backend: 'js', maxConections: 5 } as never)).toThrow(/unknown option 'maxConections'/);
  });

  it('defaults maxUsers to maxConnections', () => {
    const chat = createChatServer({ backend: 'js', maxConnections: 77 });
    expect(chat.options).toMatchObject({ startRoom: 0, maxRooms: 10, maxRoomUsers: 10, maxUsers: 77, chatRateLimit: 0 });
    expect(chat.users.maxUsers).toBe(77);
  });
});
