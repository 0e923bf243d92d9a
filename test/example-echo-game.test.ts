import { afterEach, describe, expect, it } from 'vitest';
import { createEchoGame, GamePacketId } from '../examples/echo-game';
import { DisconnectCode, PacketId, type Server } from '../lib/index';
import { RawClient, backends } from './helpers/raw-client';
import { notifyCode, waitUntil } from './helpers/engine-harness';

describe.each(backends())('examples/echo-game (%s backend)', (backend) => {
  let server: Server | undefined;
  const clients: RawClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await server?.close();
    server = undefined;
  });

  it('echoes, tells every player of a move, and closes a connection whose MOVE is too long', async () => {
    server = createEchoGame({ backend, ioThreads: 2 });
    const { port } = await server.listen(0, '127.0.0.1');
    const [a, b] = [await RawClient.connect(port), await RawClient.connect(port)];
    clients.push(a, b);
    await waitUntil(() => server!.connections.size === 2, 10000, 'two connections');
    a.send(GamePacketId.ECHO, Buffer.from('ping?'));
    const [echo] = await a.waitPackets(1);
    expect([echo.id, echo.body.toString()]).toEqual([GamePacketId.ECHO_REPLY, 'ping?']);

    const move = Buffer.alloc(8);
    move.writeInt32LE(-5, 0);
    move.writeInt32LE(7, 4);
    a.send(GamePacketId.MOVE, move);
    const [notify] = await b.waitPackets(1);
    const aId = [...server.connections.values()].find((c) => c.remotePort === a.socket.localPort)!.id;
    expect(notify.id).toBe(GamePacketId.MOVE_NOTIFY);
    expect([notify.body.readUInt32LE(0), notify.body.readInt32LE(4), notify.body.readInt32LE(8)]).toEqual([aId, -5, 7]);
    await a.waitPackets(2);

    a.send(GamePacketId.MOVE, Buffer.alloc(9));
    await a.waitClosed();
    const last = a.packets[a.packets.length - 1];
    expect([last.id, notifyCode(last)]).toEqual([PacketId.DISCONNECT_NOTIFY, DisconnectCode.PROTOCOL_ERROR]);
    expect(b.closed).toBe(false);
  });
});
