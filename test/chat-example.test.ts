import { afterEach, describe, expect, it } from 'vitest';
import { createEchoGame, GamePacketId } from '../examples/echo-game';
import { ChatPacketId, DisconnectCode, PacketId, type ChatServer } from '../lib/index';
import { ChatTestClient } from './helpers/chat-client';
import { backends } from './helpers/raw-client';

describe.each(backends())('examples/echo-game (%s backend)', (backend) => {
  let game: ChatServer | undefined;
  const clients: ChatTestClient[] = [];
  afterEach(async () => {
    for (const c of clients) c.destroy();
    clients.length = 0;
    await game?.close();
    game = undefined;
  });

  it('serves its own packet ids beside the chat', async () => {
    game = createEchoGame({ backend, ioThreads: 2 });
    const { port } = await game.listen(0, '127.0.0.1');
    const [a, b] = [await ChatTestClient.connect(port), await ChatTestClient.connect(port)];
    clients.push(a, b);
    expect((await a.request(GamePacketId.ECHO, Buffer.from('ping?'), GamePacketId.ECHO_REPLY)).body.toString()).toBe('ping?');
    await a.join('a', 1);
    await b.join('b', 1);
    const move = Buffer.alloc(8);
    move.writeInt32LE(-5, 0);
    move.writeInt32LE(7, 4);
    a.send(GamePacketId.MOVE, move);
    const notify = await b.next(GamePacketId.MOVE_NOTIFY, 0);
    expect(notify.body.subarray(0, 1).toString()).toBe('a');
    expect([notify.body.readInt32LE(21), notify.body.readInt32LE(25)]).toEqual([-5, 7]);
    await a.next(GamePacketId.MOVE_NOTIFY, 0);
    a.send(GamePacketId.MOVE, Buffer.alloc(9));
    await a.waitClosed();
    expect(a.packets[a.packets.length - 1].id).toBe(PacketId.DISCONNECT_NOTIFY);
    expect(a.packets[a.packets.length - 1].body.readUInt16LE(0)).toBe(DisconnectCode.PROTOCOL_ERROR);
    await b.waitFor(() => b.of(ChatPacketId.ROOM_LEAVE_USER_NOTIFY).length === 1);
  });
});
