import { afterEach, describe, expect, it } from 'vitest';
import { ChatPacketId, ChatResult, DisconnectCode, PacketId, type BackendName } from '../lib/index';
import { ChatTestClient, chatBody, result } from './helpers/chat-client';
import { notifyCode, seqBody, sleep, useEngine, waitUntil } from './helpers/engine-harness';
import { ECHO_REQUEST, ECHO_RESPONSE, ServerChild } from './helpers/hostile-server';
import { RawClient, backends, frame, type Packet } from './helpers/raw-client';

// Every request a server accepted before close() or SIGTERM gets its
// response before the FIN. "Accepted" is counted on the server side (a
// handler ran and its send() returned true), the responses on the client
// side, under load: the clients keep requests in flight until the server's
// DISCONNECT_NOTIFY(SERVER_SHUTDOWN) arrives.

const REQUEST = 300;
/** Requests each client writes per round, and rounds per client at most (bounds the run). */
const PER_ROUND = 16;
const MAX_ROUNDS = 2000;

/**
 * Writes PER_ROUND requests carrying seq numbers every few ms until the
 * server's shutdown notify or FIN arrives, then ends its side.
 */
function keepAsking(c: RawClient, build: (seq: number) => Buffer): Promise<number> {
  return new Promise((resolve) => {
    let seq = 0;
    let rounds = 0;
    const stop = (): boolean => c.ended || c.closed || c.packets.some((p) => p.id === PacketId.DISCONNECT_NOTIFY);
    const timer = setInterval(() => {
      if (stop() || rounds++ >= MAX_ROUNDS) {
        clearInterval(timer);
        c.close();
        resolve(seq);
        return;
      }
      const batch: Buffer[] = [];
      for (let i = 0; i < PER_ROUND; i++) batch.push(build(seq++));
      c.write(Buffer.concat(batch));
    }, 2);
  });
}

/** The responses of id in c's packets are seq 0..n-1 in order, then SERVER_SHUTDOWN is the last packet, and the end was a FIN. */
function expectPrefixThenShutdown(c: RawClient, id: number, seqOf: (p: Packet) => number): number {
  const replies = c.packets.filter((p) => p.id === id).map(seqOf);
  expect(replies).toEqual(Array.from({ length: replies.length }, (_, i) => i));
  const last = c.packets[c.packets.length - 1];
  expect(notifyCode(last)).toBe(DisconnectCode.SERVER_SHUTDOWN);
  expect(c.packets.filter((p) => p.id === PacketId.DISCONNECT_NOTIFY)).toHaveLength(1);
  expect(c.ended).toBe(true);
  expect(c.error).toBeUndefined();
  return replies.length;
}

describe.each(backends())('no data lost at shutdown (%s backend)', (backend: BackendName) => {
  const engine = useEngine(backend);

  it('close() under load: every request a handler accepted is answered before the FIN', async () => {
    const { server, port } = await engine.start({ closeTimeoutMs: 10000 });
    const accepted = new Map<number, number>();
    server.on('packet', (conn, id, body) => {
      if (id === REQUEST && conn.send(REQUEST, body)) accepted.set(conn.remotePort, (accepted.get(conn.remotePort) ?? 0) + 1);
    });
    const clients = await Promise.all(Array.from({ length: 40 }, () => engine.connect(port)));
    // Read now: a closed socket no longer knows its port.
    const ports = clients.map((c) => c.socket.localPort as number);
    await waitUntil(() => server.connections.size === clients.length, 10000, 'all connected');
    const asking = clients.map((c) => keepAsking(c, (seq) => frame(REQUEST, seqBody(seq))));
    // Under load before the close: every client has had answers, and requests are still in flight.
    await Promise.all(clients.map((c) => c.waitPackets(4 * PER_ROUND, 10000)));
    await sleep(100);
    await server.close();
    const written = await Promise.all(asking);
    await Promise.all(clients.map((c) => c.waitClosed(15000)));

    let answered = 0;
    let acceptedTotal = 0;
    clients.forEach((c, i) => {
      const n = expectPrefixThenShutdown(c, REQUEST, (p) => p.body.readUInt32LE(0));
      expect(n, `client ${i}`).toBe(accepted.get(ports[i]) ?? 0);
      expect(n).toBeLessThanOrEqual(written[i]);
      answered += n;
      acceptedTotal += accepted.get(ports[i]) ?? 0;
    });
    expect(answered).toBe(acceptedTotal);
    expect(server.stats().closes.shutdown).toBe(clients.length);
    console.log(`${backend} close(): ${acceptedTotal} requests accepted, ${answered} answered before the FIN, ${written.reduce((a, b) => a + b, 0)} written`);
  }, 60000);

  describe('SIGTERM to a chat server child', () => {
    let child: ServerChild | undefined;
    const clients: ChatTestClient[] = [];
    afterEach(async () => {
      for (const c of clients.splice(0)) c.destroy();
      child?.kill();
      await child?.exited;
      child = undefined;
    });

    it('every chat and request the server accepted before SIGTERM reaches every receiver before the FIN', async () => {
      const rooms = 3;
      const perRoom = 10;
      child = await ServerChild.start(backend, { ioThreads: 2, maxRooms: rooms, maxRoomUsers: perRoom });
      const port = child.port;
      for (let i = 0; i < rooms * perRoom; i++) clients.push(await ChatTestClient.connect(port));
      await Promise.all(clients.map((c, i) => c.join(`u${i}`, i % rooms)));
      // Each round: one chat and one application request, both numbered.
      const asking = clients.map((c, i) =>
        keepAsking(c.raw, (seq) =>
          seq % 2 === 0 ? frame(ChatPacketId.ROOM_CHAT_REQUEST, chatBody(`u${i}#${seq / 2}`)) : frame(ECHO_REQUEST, seqBody((seq - 1) / 2)),
        ),
      );
      await Promise.all(clients.map((c) => c.waitFor(() => c.of(ChatPacketId.ROOM_CHAT_NOTIFY).length >= 4 * PER_ROUND, 10000, 'load')));
      await sleep(200);
      expect(await child.terminate()).toBe(0);
      await Promise.all(asking);
      await Promise.all(clients.map((c) => c.waitClosed(15000)));
      const final = child.final;
      expect(final).toBeDefined();
      if (final === undefined) return;

      let echoes = 0;
      let chats = 0;
      const acceptedByRoom = new Array<number>(rooms).fill(0);
      clients.forEach((c, i) => {
        echoes += expectPrefixThenShutdown(c.raw, ECHO_RESPONSE, (p) => p.body.readUInt32LE(0));
        const responses = c.of(ChatPacketId.ROOM_CHAT_RESPONSE).map(result);
        expect(responses.every((r) => r === ChatResult.NONE)).toBe(true);
        chats += responses.length;
        acceptedByRoom[i % rooms] += responses.length;
      });
      // Every member heard every chat its room accepted, in each sender's order.
      clients.forEach((c, i) => {
        const notifies = c.notifies();
        expect(notifies.length, `u${i}`).toBe(acceptedByRoom[i % rooms]);
        const next = new Map<string, number>();
        for (const n of notifies) {
          const [sender, seq] = n.message.toString().split('#');
          expect(Number(seq)).toBe(next.get(sender) ?? 0);
          next.set(sender, Number(seq) + 1);
        }
      });
      expect(echoes).toBe(final.echoed);
      expect(chats).toBe(final.chat.chats);
      expect(final.server.closes.shutdown).toBe(clients.length);
      console.log(`${backend} SIGTERM: ${final.echoed} requests and ${final.chat.chats} chats accepted, all answered; ${chats * perRoom} notifies delivered`);
    }, 60000);
  });
});
