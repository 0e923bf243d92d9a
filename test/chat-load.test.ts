import { afterEach, describe, expect, it } from 'vitest';
import { ChatPacketId, ChatResult } from '../lib/index';
import { ChatFixture, chatBody, result } from './helpers/chat-client';
import { backendsAndTransports, frame } from './helpers/raw-client';

const CLIENTS = 200;
const ROOMS = 10;
const PER_ROOM = CLIENTS / ROOMS;
const MESSAGES = 10;

describe.each(backendsAndTransports())('chat under load (%s backend, %s)', (backend, transport) => {
  const fx = new ChatFixture(transport);
  afterEach(() => fx.dispose());

  it(`${CLIENTS} clients in ${ROOMS} rooms chatting lose no notify and keep each sender's order`, async () => {
    const chat = await fx.start(backend, { maxRooms: ROOMS, maxRoomUsers: PER_ROOM });
    const clients = await fx.clientsN(CLIENTS);
    await Promise.all(clients.map((c, i) => c.join(`u${i}`, i % ROOMS)));
    for (let room = 0; room < ROOMS; room++) expect(chat.rooms.get(room)?.count).toBe(PER_ROOM);
    // Every member has heard of everyone who came after it before the chat starts.
    await Promise.all(
      clients.map((c, i) => {
        const order = chat.rooms.get(i % ROOMS)?.users.map((u) => u.userId) ?? [];
        const later = PER_ROOM - 1 - order.indexOf(`u${i}`);
        return c.waitFor(() => c.of(ChatPacketId.ROOM_NEW_USER_NOTIFY).length === later, 10000, `${later} new-user notifies`);
      }),
    );

    // Each client writes its messages in one go, so the server sees bursts from everyone at once.
    for (let i = 0; i < CLIENTS; i++) {
      const packets = [];
      for (let m = 0; m < MESSAGES; m++) packets.push(frame(ChatPacketId.ROOM_CHAT_REQUEST, chatBody(`u${i}#${m}`)));
      clients[i].raw.write(Buffer.concat(packets));
    }
    const expected = PER_ROOM * MESSAGES;
    await Promise.all(clients.map((c) => c.waitFor(() => c.of(ChatPacketId.ROOM_CHAT_NOTIFY).length >= expected, 20000, `${expected} notifies`)));

    for (let i = 0; i < CLIENTS; i++) {
      const c = clients[i];
      expect(c.of(ChatPacketId.ROOM_CHAT_RESPONSE).map(result)).toEqual(new Array(MESSAGES).fill(ChatResult.NONE));
      const notifies = c.notifies();
      expect(notifies.length).toBe(expected);
      const next = new Map<string, number>();
      for (const n of notifies) {
        const [sender, seq] = n.message.toString().split('#');
        expect(n.userId).toBe(sender);
        // Only members of this client's room.
        expect(Number(sender.slice(1)) % ROOMS).toBe(i % ROOMS);
        expect(Number(seq)).toBe(next.get(sender) ?? 0);
        next.set(sender, Number(seq) + 1);
      }
      expect(next.size).toBe(PER_ROOM);
    }
    expect(chat.stats().chats).toBe(CLIENTS * MESSAGES);
    expect(chat.server.stats().closes.slow_consumer).toBe(0);
  }, 60000);
});
