import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChatPacketId as P, ChatResult as R } from '../../lib/chat/packets';
import type { ServerOptions } from '../../lib/server/types';
import { ChatTestClient, decodeChatNotify, enterBody, loginBody, notifyUser, result, userList } from '../helpers/chat-client';
import { frame } from '../helpers/raw-client';
import type { HostChatOptions } from './host-protocol';
import { HostClient, winHostAddress, type RemoteServer } from './remote-server';

// Chat conformance (PROTOCOL.md section 3) over raw TCP from Linux clients
// to the chat server running on Windows Node under Wine (the IOCP engine).

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe.skipIf(!winHostAddress())('chat over the IOCP engine under Wine', () => {
  let host: HostClient;
  const servers: RemoteServer[] = [];
  const clients: ChatTestClient[] = [];
  let port = 0;

  beforeAll(async () => {
    host = await HostClient.connect();
  });
  afterAll(() => host?.close());
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function start(chat: HostChatOptions = {}, options: ServerOptions = {}): Promise<RemoteServer> {
    const s = await host.start('chat', { ioThreads: 2, idleTimeoutMs: 0, ...options }, { chat });
    servers.push(s);
    port = s.port;
    return s;
  }

  async function client(): Promise<ChatTestClient> {
    const c = await ChatTestClient.connect(port);
    clients.push(c);
    return c;
  }

  async function clientsN(n: number): Promise<ChatTestClient[]> {
    const out: ChatTestClient[] = [];
    for (let i = 0; i < n; i++) out.push(await client());
    return out;
  }

  describe('login', () => {
    it('accepts a valid id and refuses a second login of the same id or on the same connection', async () => {
      await start();
      const [a, b] = await clientsN(2);
      expect(await a.login('alice', 'pw')).toBe(R.NONE);
      expect(await a.login('alice2')).toBe(R.LOGIN_USER_ALREADY);
      expect(await b.login('alice')).toBe(R.LOGIN_USER_ALREADY);
      expect(await b.login('bob')).toBe(R.NONE);
    });

    it('refuses empty, too long and control-character ids, and the connection may try again', async () => {
      await start();
      const a = await client();
      expect(await a.login('')).toBe(R.LOGIN_USER_INVALID_ID);
      expect(await a.login(Buffer.alloc(21, 0x61))).toBe(R.LOGIN_USER_INVALID_ID);
      expect(await a.login('a\x01b')).toBe(R.LOGIN_USER_INVALID_ID);
      expect(await a.login('a\x7fb')).toBe(R.LOGIN_USER_INVALID_ID);
      expect(await a.login('x'.repeat(20))).toBe(R.NONE);
    });

    it('refuses a wrong password and accepts the right one', async () => {
      await start({ password: 'secret' });
      const a = await client();
      expect(await a.login('carol', 'wrong')).toBe(R.LOGIN_USER_INVALID_PW);
      expect(await a.login('carol', 'secret')).toBe(R.NONE);
    });

    it('refuses logins past maxUsers and frees the place on disconnect', async () => {
      await start({ maxUsers: 2 });
      const [a, b, c] = await clientsN(3);
      expect(await a.login('a')).toBe(R.NONE);
      expect(await b.login('b')).toBe(R.NONE);
      expect(await c.login('c')).toBe(R.LOGIN_USER_USED_ALL_OBJ);
      a.destroy();
      let r = -1;
      for (let i = 0; i < 100 && r !== R.NONE; i++) {
        r = await c.login('c');
        if (r !== R.NONE) await sleep(20);
      }
      expect(r).toBe(R.NONE);
    });

    it('accepts a compact body (missing bytes are zero) and closes on a body longer than its layout', async () => {
      await start();
      const [a, b] = await clientsN(2);
      // The id alone, no password field.
      const from = a.packets.length;
      a.send(P.LOGIN_REQUEST, Buffer.from('dave'));
      expect(result(await a.next(P.LOGIN_RESPONSE, from))).toBe(R.NONE);
      b.send(P.LOGIN_REQUEST, Buffer.concat([loginBody('eve'), Buffer.from([0])]));
      await b.waitClosed();
      expect(b.packets.map((p) => [p.id, p.body.readUInt16LE(0)])).toEqual([[3, 2]]);
    });

    it('ignores unknown packet ids and keeps the connection', async () => {
      const s = await start();
      const a = await client();
      a.send(555, Buffer.from('?'));
      a.send(150);
      expect(await a.login('frank')).toBe(R.NONE);
      expect(a.raw.closed).toBe(false);
      expect((await s.chatStats()).router.unknown).toBe(2);
    });
  });

  describe('rooms', () => {
    it('refuses to enter before login, outside the room range, or twice', async () => {
      await start({ startRoom: 100, maxRooms: 3 });
      const a = await client();
      expect((await a.enter(100)).result).toBe(R.ENTER_ROOM_INVALID_USER_STATUS);
      await a.login('a');
      for (const room of [99, 103, 0, -1, -0x80000000, 0x7fffffff]) expect((await a.enter(room)).result).toBe(R.ROOM_INVALID_INDEX);
      expect((await a.enter(102)).result).toBe(R.NONE);
      expect((await a.enter(101)).result).toBe(R.ENTER_ROOM_INVALID_USER_STATUS);
    });

    it('answers the first member as rival, lists everyone to the newcomer and tells the others', async () => {
      await start();
      const [a, b, c] = await clientsN(3);
      await a.login('a');
      expect(await a.enter(5)).toEqual({ result: R.NONE, rival: '' });
      await b.login('b');
      expect(await b.enter(5)).toEqual({ result: R.NONE, rival: 'a' });
      await c.login('c');
      expect(await c.enter(5)).toEqual({ result: R.NONE, rival: 'a' });
      expect(userList(a.of(P.ROOM_USER_LIST_NOTIFY)[0])).toEqual(['a']);
      expect(userList(b.of(P.ROOM_USER_LIST_NOTIFY)[0])).toEqual(['a', 'b']);
      expect(userList(c.of(P.ROOM_USER_LIST_NOTIFY)[0])).toEqual(['a', 'b', 'c']);
      await a.waitFor(() => a.of(P.ROOM_NEW_USER_NOTIFY).length === 2, 5000, 'two new-user notifies');
      expect(a.of(P.ROOM_NEW_USER_NOTIFY).map(notifyUser)).toEqual(['b', 'c']);
      await b.waitFor(() => b.of(P.ROOM_NEW_USER_NOTIFY).length === 1, 5000, 'new-user notify');
      expect(b.of(P.ROOM_NEW_USER_NOTIFY).map(notifyUser)).toEqual(['c']);
    });

    it('refuses a full room, and a leave makes room again', async () => {
      await start({ maxRoomUsers: 2 });
      const [a, b, c] = await clientsN(3);
      await a.join('a', 1);
      await b.join('b', 1);
      await c.login('c');
      expect((await c.enter(1)).result).toBe(R.ENTER_ROOM_FULL_USER);
      expect(await b.leave()).toBe(R.NONE);
      await a.waitFor(() => a.of(P.ROOM_LEAVE_USER_NOTIFY).length === 1, 5000, 'leave notify');
      expect(a.of(P.ROOM_LEAVE_USER_NOTIFY).map(notifyUser)).toEqual(['b']);
      expect(await c.enter(1)).toEqual({ result: R.NONE, rival: 'a' });
      // b is back in state LOGIN and may enter again.
      expect((await b.enter(2)).result).toBe(R.NONE);
    });

    it('refuses a leave outside a room', async () => {
      await start();
      const a = await client();
      await a.login('a');
      expect(await a.leave()).toBe(R.LEAVE_ROOM_INVALID_ROOM_INDEX);
    });

    it('takes a compact ROOM_ENTER body', async () => {
      await start();
      const a = await client();
      await a.login('a');
      const from = a.packets.length;
      a.send(P.ROOM_ENTER_REQUEST, enterBody(7).subarray(0, 1));
      expect(result(await a.next(P.ROOM_ENTER_RESPONSE, from))).toBe(R.NONE);
      await a.next(P.ROOM_USER_LIST_NOTIFY, from);
    });

    it('on disconnect, the room is told and the id may log in again at once', async () => {
      await start();
      const [a, b] = await clientsN(2);
      await a.join('a', 3);
      await b.join('b', 3);
      b.destroy();
      await a.waitFor(() => a.of(P.ROOM_LEAVE_USER_NOTIFY).length === 1, 5000, 'leave notify');
      expect(a.of(P.ROOM_LEAVE_USER_NOTIFY).map(notifyUser)).toEqual(['b']);
      const again = await client();
      expect(await again.login('b')).toBe(R.NONE);
      expect(await again.enter(3)).toEqual({ result: R.NONE, rival: 'a' });
    });
  });

  describe('chat', () => {
    it('refuses chat outside a room', async () => {
      await start();
      const a = await client();
      await a.login('a');
      expect(await a.chat('hello')).toBe(R.CHAT_ROOM_INVALID_ROOM_NUMBER);
    });

    it('answers the sender first, then relays the bytes unchanged to every member, the sender included', async () => {
      await start();
      const [a, b, other] = await clientsN(3);
      await a.join('a', 4);
      await b.join('b', 4);
      await other.join('other', 5);
      const message = Buffer.from([0x68, 0x69, 0xff, 0x80, 0x20, 0xe2, 0x82, 0xac]);
      const from = a.packets.length;
      expect(await a.chat(message)).toBe(R.NONE);
      const notifyAt = a.packets.findIndex((p, i) => i >= from && p.id === P.ROOM_CHAT_NOTIFY);
      const responseAt = a.packets.findIndex((p, i) => i >= from && p.id === P.ROOM_CHAT_RESPONSE);
      await a.waitFor(() => a.notifies().length === 1, 5000, 'own notify');
      expect(responseAt).toBeGreaterThanOrEqual(0);
      expect(notifyAt === -1 || notifyAt > responseAt).toBe(true);
      await b.waitFor(() => b.notifies().length === 1, 5000, 'notify');
      for (const c of [a, b]) {
        const n = c.notifies()[0];
        expect(n.userId).toBe('a');
        expect(n.message.equals(message)).toBe(true);
      }
      await sleep(50);
      expect(other.notifies()).toEqual([]);
    });

    it('limits chat to chatRateLimit messages a second', async () => {
      const s = await start({ chatRateLimit: 5 });
      const a = await client();
      await a.join('a', 0);
      const from = a.packets.length;
      for (let i = 0; i < 20; i++) a.send(P.ROOM_CHAT_REQUEST, Buffer.from(`m${i}`));
      await a.waitFor(() => a.packets.slice(from).filter((p) => p.id === P.ROOM_CHAT_RESPONSE).length === 20, 5000, '20 responses');
      const results = a.packets
        .slice(from)
        .filter((p) => p.id === P.ROOM_CHAT_RESPONSE)
        .map(result);
      const limited = results.filter((r) => r === R.ROOM_TOO_MANY_PACKET).length;
      expect(results.filter((r) => r === R.NONE).length + limited).toBe(20);
      expect(limited).toBeGreaterThan(0);
      const stats = await s.chatStats();
      expect(stats.rateLimited).toBe(limited);
      expect(stats.chats).toBe(20 - limited);
    });

    it('relays every message of 10 rooms of 8 users, in order per sender', async () => {
      const s = await start({ maxRooms: 10, maxRoomUsers: 8 }, { ioThreads: 3 });
      const ROOMS = 10;
      const PER_ROOM = 8;
      const MESSAGES = 10;
      const all = await clientsN(ROOMS * PER_ROOM);
      await Promise.all(all.map((c, i) => c.login(`u${i}`)));
      for (let i = 0; i < all.length; i++) expect((await all[i].enter(i % ROOMS)).result).toBe(R.NONE);
      for (let m = 0; m < MESSAGES; m++) all.forEach((c, i) => c.send(P.ROOM_CHAT_REQUEST, Buffer.from(`u${i}:${m}`)));
      await Promise.all(all.map((c) => c.waitFor(() => c.notifies().length === PER_ROOM * MESSAGES, 20000, 'every notify')));
      all.forEach((c, i) => {
        const bySender = new Map<string, string[]>();
        for (const n of c.notifies()) bySender.set(n.userId, [...(bySender.get(n.userId) ?? []), n.message.toString()]);
        const members = all.map((_, j) => j).filter((j) => j % ROOMS === i % ROOMS);
        expect([...bySender.keys()].sort()).toEqual(members.map((j) => `u${j}`).sort());
        for (const j of members) expect(bySender.get(`u${j}`)).toEqual(Array.from({ length: MESSAGES }, (_, m) => `u${j}:${m}`));
      });
      const stats = await s.chatStats();
      expect(stats.chats).toBe(ROOMS * PER_ROOM * MESSAGES);
      expect((await s.fetchStats()).closes.slow_consumer).toBe(0);
    });

    it('a chat request longer than its layout is a protocol error for that connection only', async () => {
      await start();
      const [a, b] = await clientsN(2);
      await a.join('a', 2);
      await b.join('b', 2);
      a.raw.write(frame(P.ROOM_CHAT_REQUEST, Buffer.alloc(258, 0x41)));
      await a.waitClosed();
      expect(a.packets[a.packets.length - 1].id).toBe(3);
      expect(a.packets[a.packets.length - 1].body.readUInt16LE(0)).toBe(2);
      await b.waitFor(() => b.of(P.ROOM_LEAVE_USER_NOTIFY).length === 1, 5000, 'leave notify');
      expect(await b.chat('still here')).toBe(R.NONE);
      await b.waitFor(() => b.notifies().length === 1, 5000, 'notify');
      expect(decodeChatNotify(b.of(P.ROOM_CHAT_NOTIFY)[0]).message.toString()).toBe('still here');
    });
  });
});
