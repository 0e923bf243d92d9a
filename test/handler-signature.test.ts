import { describe, expect, it } from 'vitest';
import { PacketRouter, createServer, type Connection, type PacketHandler } from '../lib/index';
import { backends, frame } from './helpers/raw-client';
import { useEngine, waitUntil } from './helpers/engine-harness';

// One handler signature for the 'packet' event and the router, and typed
// per-connection state (checked by `npm run typecheck` as well as at run time).

interface Player {
  name: string;
  moves: number;
}

describe.each(backends())('%s backend: one handler signature, typed conn.data', (backend) => {
  const engine = useEngine(backend);

  it("the same function serves as a 'packet' listener and as a router handler, with conn.data typed", async () => {
    const server = engine.own(createServer<Player>({ backend, ioThreads: 1 }));
    const { port } = await server.listen(0, '127.0.0.1');
    const seen: Array<[string, number, string]> = [];
    // A PacketHandler<Player> is also a valid 'packet' listener.
    const record: PacketHandler<Player> = (conn, packetId, body) => {
      const player = conn.data;
      if (player === undefined) return;
      player.moves++;
      seen.push([player.name, packetId, Buffer.from(body).toString()]);
    };
    server.on('connect', (conn) => {
      conn.data = { name: `p${conn.remotePort}`, moves: 0 };
      // @ts-expect-error: data is a Player, not a string.
      const wrong: string = conn.data;
      void wrong;
    });
    server.on('packet', record);
    const router = new PacketRouter<Player>().attach(server);
    router.on(100, record);
    router.on(101, async (conn, packetId, body) => {
      await Promise.resolve();
      record(conn, packetId, body);
    });

    const c = await engine.connect(port);
    c.write(Buffer.concat([frame(100, Buffer.from('a')), frame(101, Buffer.from('b'))]));
    await waitUntil(() => seen.length === 4, 10000, 'four calls');
    const name = `p${c.socket.localPort}`;
    // The event and the router each saw both packets, with the same arguments.
    expect(seen.slice().sort()).toEqual(
      [
        [name, 100, 'a'],
        [name, 100, 'a'],
        [name, 101, 'b'],
        [name, 101, 'b'],
      ].sort(),
    );
    const conn: Connection<Player> | undefined = [...server.connections.values()][0];
    expect(conn?.data?.moves).toBe(4);
  });
});
