// A small game server on the installed package: players join, move and
// leave, and every move reaches the other players. It uses createServer,
// PacketRouter, the struct codecs and ProtocolError.
//
//   node server.js [native|js]
//
// Prints "game listening on HOST:PORT"; on SIGTERM or SIGINT it closes and
// prints one JSON line with its figures.
import { PacketRouter, ProtocolError, createServer, type Connection } from 'iocpnet';
import { GameId, Join, Move, PlayerJoined, PlayerLeft, Position, Welcome } from './protocol.js';

interface Player {
  readonly id: number;
  readonly name: string;
  x: number;
  y: number;
}

const backend = process.argv[2] === 'js' ? 'js' : 'native';
const server = createServer({ backend, maxConnections: 64 });
const router = new PacketRouter();
const players = new Map<Connection, Player>();
let nextPlayerId = 1;
let joins = 0;
let leaves = 0;

function othersThan(conn: Connection): Connection[] {
  return [...players.keys()].filter((c) => c !== conn);
}

function leave(conn: Connection): void {
  const player = players.get(conn);
  if (player === undefined) return;
  players.delete(conn);
  leaves++;
  server.broadcast(players.keys(), GameId.PLAYER_LEFT, PlayerLeft.encode({ playerId: player.id }));
}

router.on(GameId.JOIN, (conn, _id, body) => {
  if (players.has(conn)) throw new ProtocolError('JOIN from a player who has joined');
  const { name } = Join.decode(body);
  if (name.length === 0) throw new ProtocolError('JOIN without a name');
  const player: Player = { id: nextPlayerId++, name: name.toString('utf8'), x: 0, y: 0 };
  conn.send(GameId.WELCOME, Welcome.encode({ playerId: player.id, players: players.size }));
  for (const p of players.values()) conn.send(GameId.PLAYER_JOINED, PlayerJoined.encode({ playerId: p.id, name: p.name, x: p.x, y: p.y }));
  server.broadcast(players.keys(), GameId.PLAYER_JOINED, PlayerJoined.encode({ playerId: player.id, name: player.name, x: 0, y: 0 }));
  players.set(conn, player);
  joins++;
});

router.on(GameId.MOVE, (conn, _id, body) => {
  const player = players.get(conn);
  if (player === undefined) throw new ProtocolError('MOVE before JOIN');
  const { x, y } = Move.decode(body);
  player.x = x;
  player.y = y;
  server.broadcast(othersThan(conn), GameId.POSITION, Position.encode({ playerId: player.id, x, y }));
});

router.on(GameId.LEAVE, (conn) => leave(conn));

router.attach(server);
server.on('disconnect', (conn) => leave(conn));
server.on('error', (err) => console.error(err));

const { address, port } = await server.listen(0, '127.0.0.1');
console.log(`game listening on ${address}:${port}`);

let closing = false;
const stop = (): void => {
  if (closing) return;
  closing = true;
  void server.close().then(() => {
    console.log(JSON.stringify({ backend, joins, leaves, playersLeft: players.size, router: router.stats() }));
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
