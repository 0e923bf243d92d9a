import { afterEach, describe, expect, it } from 'vitest';
import { ChatPacketId, ChatResult, DisconnectCode, PacketId } from '../lib/index';
import { ChatFixture, chatBody, decodeChatNotify, notifyUser, result, userList } from './helpers/chat-client';
import { backendsAndTransports, frame } from './helpers/raw-client';

const R = ChatResult;
const P = ChatPacketId;

describe.each(backendsAndTransports())('chat rooms (%s backend, %s)', (backend, transport) => {
  const fx = new ChatFixture(transport);
  afterEach(() => fx.dispose());

  it('refuses to enter before login', async () => {
    await fx.start(backend);
    const a = await fx.client();
    expect((await a.enter(0)).result).toBe(R.ENTER_ROOM_INVALID_USER_STATUS);
  });

  it('refuses room numbers outside [startRoom, startRoom + maxRooms)', async () => {
    const chat = await fx.start(backend, { startRoom: 100, maxRooms: 3 });
    const a = await fx.client();
    expect(await a.login('a')).toBe(R.NONE);
    for (const room of [99, 103, 0, -1, -0x80000000, 0x7fffffff]) expect((await a.enter(room)).result).toBe(R.ROOM_INVALID_INDEX);
    expect(chat.userOf([...chat.server.connections.values()][0])?.state).toBe('login');
    expect((await a.enter(102)).result).toBe(R.NONE);
  });

  it('answers the first member as rival, lists everyone to the newcomer and tells the others', async () => {
    const chat = await fx.start(backend);
    const [a, b, c, other] = await fx.clientsN(4);
    await a.login('a');
    expect(await a.enter(5)).toEqual({ result: R.NONE, rival: '' });
    await b.login('b');
    expect(await b.enter(5)).toEqual({ result: R.NONE, rival: 'a' });
    await c.login('c');
    expect(await c.enter(5)).toEqual({ result: R.NONE, rival: 'a' });
    await other.join('other', 6);

    expect(userList(a.of(P.ROOM_USER_LIST_NOTIFY)[0])).toEqual(['a']);
    expect(userList(b.of(P.ROOM_USER_LIST_NOTIFY)[0])).toEqual(['a', 'b']);
    expect(userList(c.of(P.ROOM_USER_LIST_NOTIFY)[0])).toEqual(['a', 'b', 'c']);
    await a.waitFor(() => a.of(P.ROOM_NEW_USER_NOTIFY).length === 2);
    await b.waitFor(() => b.of(P.ROOM_NEW_USER_NOTIFY).length === 1);
    expect(a.of(P.ROOM_NEW_USER_NOTIFY).map(notifyUser)).toEqual(['b', 'c']);
    expect(b.of(P.ROOM_NEW_USER_NOTIFY).map(notifyUser)).toEqual(['c']);
    // The newcomer's own sequence: response first, then the list; never a NEW_USER about itself.
    expect(c.packets.map((p) => p.id)).toEqual([P.LOGIN_RESPONSE, P.ROOM_ENTER_RESPONSE, P.ROOM_USER_LIST_NOTIFY]);
    expect(other.packets.map((p) => p.id)).toEqual([P.LOGIN_RESPONSE, P.ROOM_ENTER_RESPONSE, P.ROOM_USER_LIST_NOTIFY]);
    expect(chat.rooms.get(5)?.count).toBe(3);
  });

  it('refuses a full room and a second room', async () => {
    await fx.start(backend, { maxRoomUsers: 2 });
    const [a, b, c] = await fx.clientsN(3);
    await a.join('a', 1);
    await b.join('b', 1);
    await c.login('c');
    expect((await c.enter(1)).result).toBe(R.ENTER_ROOM_FULL_USER);
    expect((await a.enter(2)).result).toBe(R.ENTER_ROOM_INVALID_USER_STATUS);
    expect((await a.enter(1)).result).toBe(R.ENTER_ROOM_INVALID_USER_STATUS);
    expect((await c.enter(2)).result).toBe(R.NONE);
  });

  it('leaves: response, notify to those who remain, count down, state back to login', async () => {
    const chat = await fx.start(backend, { maxRoomUsers: 2 });
    const [a, b, c] = await fx.clientsN(3);
    await a.join('a', 3);
    await b.join('b', 3);
    await c.login('c');
    expect((await c.enter(3)).result).toBe(R.ENTER_ROOM_FULL_USER);
    const before = b.packets.length;
    expect(await a.leave()).toBe(R.NONE);
    await b.waitFor(() => b.of(P.ROOM_LEAVE_USER_NOTIFY).length === 1);
    expect(b.packets.slice(before).map((p) => [p.id, notifyUser(p)])).toEqual([[P.ROOM_LEAVE_USER_NOTIFY, 'a']]);
    expect(a.of(P.ROOM_LEAVE_USER_NOTIFY)).toEqual([]);
    expect(chat.rooms.get(3)?.count).toBe(1);
    expect(chat.users.get('a')?.state).toBe('login');
    expect((await c.enter(3)).result).toBe(R.NONE);
    expect((await a.enter(4)).result).toBe(R.NONE);
  });

  it('refuses to leave twice or before entering', async () => {
    await fx.start(backend);
    const [a, b] = await fx.clientsN(2);
    expect(await b.leave()).toBe(R.LEAVE_ROOM_INVALID_ROOM_INDEX);
    await a.join('a', 0);
    expect(await a.leave()).toBe(R.NONE);
    expect(await a.leave()).toBe(R.LEAVE_ROOM_INVALID_ROOM_INDEX);
    await b.login('b');
    expect(await b.leave()).toBe(R.LEAVE_ROOM_INVALID_ROOM_INDEX);
  });

  it('refuses chat outside a room', async () => {
    const chat = await fx.start(backend);
    const [a, b] = await fx.clientsN(2);
    expect(await a.chat('hello?')).toBe(R.CHAT_ROOM_INVALID_ROOM_NUMBER);
    await a.login('a');
    expect(await a.chat('hello?')).toBe(R.CHAT_ROOM_INVALID_ROOM_NUMBER);
    await b.join('b', 0);
    await a.enter(0);
    expect(await a.chat('now')).toBe(R.NONE);
    await a.leave();
    expect(await a.chat('gone')).toBe(R.CHAT_ROOM_INVALID_ROOM_NUMBER);
    await b.waitFor(() => b.of(P.ROOM_LEAVE_USER_NOTIFY).length === 1);
    expect(b.notifies().map((n) => n.message.toString())).toEqual(['now']);
    expect(chat.stats().chats).toBe(1);
  });

  it('relays chat: the sender gets its response first, every member the notify, other rooms nothing', async () => {
    await fx.start(backend);
    const [a, b, c, x] = await fx.clientsN(4);
    await a.join('a', 7);
    await b.join('b', 7);
    await c.join('c', 7);
    await x.join('x', 8);
    await a.waitFor(() => a.of(P.ROOM_NEW_USER_NOTIFY).length === 2);
    await b.waitFor(() => b.of(P.ROOM_NEW_USER_NOTIFY).length === 1);
    const marks = [a, b, c, x].map((cl) => cl.packets.length);
    const binary = Buffer.from([0x68, 0x69, 0xff, 0xfe, 0x01, 0x7f]); // not UTF-8, with control bytes
    b.send(P.ROOM_CHAT_REQUEST, chatBody(binary));
    await Promise.all([a, b, c].map((cl) => cl.waitFor(() => cl.of(P.ROOM_CHAT_NOTIFY).length === 1)));
    const got = [a, b, c].map((cl, i) => cl.packets.slice(marks[i]));
    expect(got[1].map((p) => p.id)).toEqual([P.ROOM_CHAT_RESPONSE, P.ROOM_CHAT_NOTIFY]);
    expect(result(got[1][0])).toBe(R.NONE);
    for (const packets of [got[0], got[2]]) expect(packets.map((p) => p.id)).toEqual([P.ROOM_CHAT_NOTIFY]);
    for (const packets of got) {
      const n = decodeChatNotify(packets[packets.length - 1]);
      expect(n.userId).toBe('b');
      expect(n.message.equals(binary)).toBe(true);
      expect(packets[packets.length - 1].body.length).toBe(278);
    }
    // Room 8 hears nothing: a chat there comes back alone.
    expect(await x.chat('only me')).toBe(R.NONE);
    await x.waitFor(() => x.of(P.ROOM_CHAT_NOTIFY).length === 1);
    expect(x.packets.slice(marks[3]).map((p) => p.id)).toEqual([P.ROOM_CHAT_RESPONSE, P.ROOM_CHAT_NOTIFY]);
    expect(a.of(P.ROOM_CHAT_NOTIFY).length).toBe(1);
  });

  it('relays a message that fills all 257 bytes, and a short body as zero-filled', async () => {
    await fx.start(backend);
    const [a, b] = await fx.clientsN(2);
    await a.join('a', 0);
    await b.join('b', 0);
    const full = Buffer.alloc(257, 0x41);
    expect(await a.chat(full)).toBe(R.NONE);
    expect(result(await a.request(P.ROOM_CHAT_REQUEST, Buffer.from('hi'), P.ROOM_CHAT_RESPONSE))).toBe(R.NONE);
    await b.waitFor(() => b.of(P.ROOM_CHAT_NOTIFY).length === 2);
    expect(b.notifies().map((n) => n.message.toString())).toEqual(['A'.repeat(257), 'hi']);
  });

  it('closes only the sender of an over-long room request, each request kind', async () => {
    const chat = await fx.start(backend);
    const [watcher] = await fx.clientsN(1);
    await watcher.join('watcher', 9);
    const cases: Array<[number, Buffer]> = [
      [P.ROOM_ENTER_REQUEST, Buffer.alloc(5)],
      [P.ROOM_LEAVE_REQUEST, Buffer.alloc(1)],
      [P.ROOM_CHAT_REQUEST, Buffer.alloc(258, 0x42)],
    ];
    let n = 0;
    for (const [id, body] of cases) {
      const c = await fx.client();
      await c.join(`bad${n++}`, 9);
      c.raw.write(Buffer.concat([frame(P.ROOM_CHAT_REQUEST, chatBody('before')), frame(id, body)]));
      await c.waitClosed();
      const tail = c.packets.slice(-3).map((p) => p.id);
      expect(tail).toEqual([P.ROOM_CHAT_RESPONSE, P.ROOM_CHAT_NOTIFY, PacketId.DISCONNECT_NOTIFY]);
      expect(c.packets[c.packets.length - 1].body.readUInt16LE(0)).toBe(DisconnectCode.PROTOCOL_ERROR);
    }
    await watcher.waitFor(() => watcher.of(P.ROOM_LEAVE_USER_NOTIFY).length === 3, 5000, 'three leave notifies');
    expect(watcher.notifies().map((x) => x.message.toString())).toEqual(['before', 'before', 'before']);
    expect(chat.rooms.get(9)?.users.map((u) => u.userId)).toEqual(['watcher']);
    expect(chat.server.stats().closes.protocol_error).toBe(3);
    expect(await watcher.chat('still here')).toBe(R.NONE);
  });

  it('short enter and leave bodies are accepted', async () => {
    await fx.start(backend);
    const a = await fx.client();
    await a.login('a');
    // Two of the four RoomNumber bytes: 0x0102 low half, the rest zero.
    expect(result(await a.request(P.ROOM_ENTER_REQUEST, Buffer.from([0x02, 0x00]), P.ROOM_ENTER_RESPONSE))).toBe(R.NONE);
    expect(result(await a.request(P.ROOM_LEAVE_REQUEST, Buffer.alloc(0), P.ROOM_LEAVE_RESPONSE))).toBe(R.NONE);
    expect(result(await a.request(P.ROOM_ENTER_REQUEST, Buffer.alloc(0), P.ROOM_ENTER_RESPONSE))).toBe(R.NONE);
    expect(userList(a.of(P.ROOM_USER_LIST_NOTIFY)[1])).toEqual(['a']);
  });

  it('a disconnect in a room notifies the members and frees the place', async () => {
    const chat = await fx.start(backend, { maxRoomUsers: 2 });
    const [a, b, c] = await fx.clientsN(3);
    await a.join('a', 2);
    await b.join('b', 2);
    a.destroy();
    await b.waitFor(() => b.of(P.ROOM_LEAVE_USER_NOTIFY).length === 1, 5000, 'leave notify');
    expect(notifyUser(b.of(P.ROOM_LEAVE_USER_NOTIFY)[0])).toBe('a');
    expect(chat.users.get('a')).toBeUndefined();
    expect(chat.rooms.get(2)?.count).toBe(1);
    await c.join('c', 2);
    expect(await b.chat('hi c')).toBe(R.NONE);
    await c.waitFor(() => c.notifies().length === 1);
  });

  it('limits chat per user with chatRateLimit', async () => {
    const rate = 3;
    const chat = await fx.start(backend, { chatRateLimit: rate });
    const [a, b] = await fx.clientsN(2);
    await a.join('a', 0);
    await b.join('b', 0);
    const total = 20;
    const mark = a.packets.length;
    const started = performance.now();
    a.raw.write(Buffer.concat(Array.from({ length: total }, (_, i) => frame(P.ROOM_CHAT_REQUEST, chatBody(`m${i}`)))));
    await a.waitFor(() => a.of(P.ROOM_CHAT_RESPONSE).length === total, 5000, 'all chat responses');
    const elapsedSec = (performance.now() - started) / 1000;
    const results = a.of(P.ROOM_CHAT_RESPONSE).map(result);
    const ok = results.filter((r) => r === R.NONE).length;
    expect(results.filter((r) => r !== R.NONE && r !== R.ROOM_TOO_MANY_PACKET)).toEqual([]);
    // A full bucket, plus whatever refilled while the burst was handled.
    expect(ok).toBeGreaterThanOrEqual(rate);
    expect(ok).toBeLessThanOrEqual(rate + Math.ceil(elapsedSec * rate));
    expect(ok).toBeLessThan(total);
    expect(results.slice(0, rate)).toEqual(new Array(rate).fill(R.NONE));
    // Only the accepted ones were relayed, in order.
    await b.waitFor(() => b.notifies().length === ok);
    await a.waitFor(() => a.packets.slice(mark).filter((p) => p.id === P.ROOM_CHAT_NOTIFY).length === ok);
    expect(b.notifies().map((n) => n.message.toString())).toEqual(
      results.map((r, i) => (r === R.NONE ? `m${i}` : undefined)).filter((m): m is string => m !== undefined),
    );
    expect(chat.stats().rateLimited).toBe(total - ok);
    // The other user has a bucket of its own; the limited one refills with time.
    expect(await b.chat('mine')).toBe(R.NONE);
    await new Promise((r) => setTimeout(r, 1100));
    expect(await a.chat('later')).toBe(R.NONE);
  });

  it('does not limit chat with chatRateLimit 0', async () => {
    await fx.start(backend, { chatRateLimit: 0 });
    const a = await fx.client();
    await a.join('a', 0);
    const total = 300;
    a.raw.write(Buffer.concat(Array.from({ length: total }, (_, i) => frame(P.ROOM_CHAT_REQUEST, chatBody(`m${i}`)))));
    await a.waitFor(() => a.notifies().length === total, 10000, 'all notifies');
    expect(a.of(P.ROOM_CHAT_RESPONSE).map(result)).toEqual(new Array(total).fill(R.NONE));
    expect(a.notifies().map((n) => n.message.toString())).toEqual(Array.from({ length: total }, (_, i) => `m${i}`));
  });

  it('sends SERVER_SHUTDOWN after the responses already queued when the server closes', async () => {
    const chat = await fx.start(backend);
    const [a, b] = await fx.clientsN(2);
    await a.join('a', 1);
    await b.join('b', 1);
    let handled = false;
    chat.router.off(P.ROOM_CHAT_REQUEST);
    chat.router.on(P.ROOM_CHAT_REQUEST, (conn) => {
      conn.send(P.ROOM_CHAT_RESPONSE, Buffer.from([0, 0]));
      handled = true;
      void chat.close();
    });
    a.send(P.ROOM_CHAT_REQUEST, chatBody('bye'));
    await a.waitClosed();
    await b.waitClosed();
    expect(handled).toBe(true);
    expect(a.packets.slice(-2).map((p) => p.id)).toEqual([P.ROOM_CHAT_RESPONSE, PacketId.DISCONNECT_NOTIFY]);
    expect(a.packets[a.packets.length - 1].body.readUInt16LE(0)).toBe(DisconnectCode.SERVER_SHUTDOWN);
    expect(b.packets[b.packets.length - 1].body.readUInt16LE(0)).toBe(DisconnectCode.SERVER_SHUTDOWN);
    // Nobody is told who left while everyone is being closed.
    expect([...a.of(P.ROOM_LEAVE_USER_NOTIFY), ...b.of(P.ROOM_LEAVE_USER_NOTIFY)]).toEqual([]);
    expect(chat.users.count).toBe(0);
    expect(chat.rooms.get(1)?.count).toBe(0);
  });
});

describe.each(backendsAndTransports())('application packet ids beside chat (%s backend, %s)', (backend, transport) => {
  const fx = new ChatFixture(transport);
  afterEach(() => fx.dispose());

  it('routes ids the application registers, with the chat user at hand', async () => {
    const chat = await fx.start(backend);
    chat.router.on(2001, (conn, _id, body) => {
      const user = chat.userOf(conn);
      conn.send(2002, Buffer.concat([Buffer.from(user ? `${user.userId}:` : 'anon:'), body]));
    });
    const a = await fx.client();
    const before = await a.request(2001, Buffer.from('x'), 2002);
    await a.login('ann');
    const after = await a.request(2001, Buffer.from('y'), 2002);
    expect([before.body.toString(), after.body.toString()]).toEqual(['anon:x', 'ann:y']);
  });
});
