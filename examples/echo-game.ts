/**
 * A minimal game server: the chat of docs/PROTOCOL.md section 3 plus packets
 * of its own, registered with the same router. In an application, import
 * from 'iocpnet' instead of '../lib/index'.
 *
 *   node dist/examples/echo-game.js [port] [native|js]
 */
import { Field, createChatServer, defineStruct, type ChatServer, type ChatServerOptions } from '../lib/index';

/** The game's own ids, outside the chat's 100..1000. */
export const GamePacketId = { ECHO: 2001, ECHO_REPLY: 2002, MOVE: 2003, MOVE_NOTIFY: 2004 } as const;

const Move = defineStruct('MOVE', [Field.i32('x'), Field.i32('y')]);
const MoveNotify = defineStruct('MOVE_NOTIFY', [Field.char('UserID', 21), Field.i32('x'), Field.i32('y')]);

export function createEchoGame(options: ChatServerOptions = {}): ChatServer {
  const game = createChatServer(options);
  // The body is only valid during the call; send() copies it.
  game.router.on(GamePacketId.ECHO, (conn, body) => void conn.send(GamePacketId.ECHO_REPLY, body));
  game.router.on(GamePacketId.MOVE, (conn, body) => {
    const user = game.userOf(conn);
    if (user?.room === undefined) return; // only players in a room move
    const { x, y } = Move.decode(body); // a body longer than 8 bytes closes the connection (PROTOCOL_ERROR)
    game.server.broadcast(user.room.connections, GamePacketId.MOVE_NOTIFY, MoveNotify.encode({ UserID: user.idBytes, x, y }));
  });
  return game;
}

if (require.main === module) {
  const game = createEchoGame({ backend: process.argv[3] === 'js' ? 'js' : 'native' });
  game.listen(Number(process.argv[2] ?? 12021)).then((a) => console.log(`echo game listening on ${a.address}:${a.port}`));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void game.close().then(() => process.exit(0)));
}
