/**
 * A minimal game server: a Server and a PacketRouter, no chat. ECHO comes
 * back as ECHO_REPLY; a MOVE goes to every connected player as MOVE_NOTIFY.
 * examples/lobby-game.ts is a fuller game in the same style. In an
 * application, import from 'iocpnet' instead of '../lib/index'.
 *
 *   node dist/examples/echo-game.js [port] [native|js]
 */
import { Field, PacketRouter, createServer, defineStruct, type Server, type ServerOptions } from '../lib/index';

/** The game's packet ids (ids 1..99 belong to the engine). */
export const GamePacketId = { ECHO: 2001, ECHO_REPLY: 2002, MOVE: 2003, MOVE_NOTIFY: 2004 } as const;

const Move = defineStruct('MOVE', [Field.i32('x'), Field.i32('y')]);
const MoveNotify = defineStruct('MOVE_NOTIFY', [Field.u32('PlayerId'), Field.i32('x'), Field.i32('y')]);

export function createEchoGame(options: ServerOptions = {}): Server {
  const server = createServer(options);
  const router = new PacketRouter().attach(server);
  // The body is only valid during the call; send() copies it.
  router.on(GamePacketId.ECHO, (conn, _id, body) => void conn.send(GamePacketId.ECHO_REPLY, body));
  router.on(GamePacketId.MOVE, (conn, _id, body) => {
    const { x, y } = Move.decode(body); // a body longer than 8 bytes closes the connection (PROTOCOL_ERROR)
    server.broadcast(server.connections.values(), GamePacketId.MOVE_NOTIFY, MoveNotify.encode({ PlayerId: conn.id, x, y }));
  });
  return server;
}

if (require.main === module) {
  const server = createEchoGame({ backend: process.argv[3] === 'js' ? 'js' : 'native' });
  server.listen(Number(process.argv[2] ?? 12021)).then(
    (a) => console.log(`echo game listening on ${a.address}:${a.port}`),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void server.close().then(() => process.exit(0)));
}
