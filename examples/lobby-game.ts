/**
 * A lobby game on the toolkit alone, without the chat server: players join
 * with a name, move, and every player sees everyone's positions. A Server,
 * a PacketRouter for the ids, struct codecs for the bodies and a token
 * bucket against move floods; examples/lobby-client.ts is its client. In an
 * application, import from 'iocpnet' instead of '../lib/index'.
 *
 *   node dist/examples/lobby-game.js [port] [native|js]
 */
import { performance } from 'node:perf_hooks';
import { PacketRouter, ProtocolError, TokenBucket, createServer, type Connection, type ListenAddress, type Server, type ServerOptions } from '../lib/index';
import { JoinRequest, JoinResponse, JoinResult, LobbyPacketId as Id, Move, PlayerJoined, PlayerLeft, Position } from './lobby-protocol';

export interface LobbyOptions extends ServerOptions {
  /** Players in the lobby at most. Default 64. */
  maxPlayers?: number;
  /** Moves a player may make per second (one second of burst); the rest are dropped. Default 30. */
  movesPerSecond?: number;
}

/** A player in the lobby, kept in its Connection's data. */
class Player {
  x = 0;
  y = 0;
  constructor(
    readonly conn: Connection,
    readonly name: Buffer,
    readonly moves: TokenBucket,
  ) {}
}

/** The lobby on its own Server. JS thread only. */
export class LobbyGame {
  readonly server: Server;
  readonly router: PacketRouter;
  readonly maxPlayers: number;
  readonly #movesPerSecond: number;
  /** The players' connections: what the lobby's broadcasts go to. */
  readonly #joined = new Set<Connection>();

  constructor(options: LobbyOptions = {}) {
    const { maxPlayers = 64, movesPerSecond = 30, ...serverOptions } = options;
    this.maxPlayers = maxPlayers;
    this.#movesPerSecond = movesPerSecond;
    this.server = createServer(serverOptions);
    // Handler errors go to the server's 'error' event; a ProtocolError closes that connection.
    this.router = new PacketRouter().attach(this.server);
    this.router.on(Id.JOIN_REQUEST, (conn, _id, body) => this.#onJoin(conn, body));
    this.router.on(Id.MOVE, (conn, _id, body) => this.#onMove(conn, body));
    this.server.on('disconnect', (conn) => this.#onLeave(conn));
  }

  get playerCount(): number {
    return this.#joined.size;
  }

  listen(port = 12021, host = '0.0.0.0'): Promise<ListenAddress> {
    return this.server.listen(port, host);
  }

  close(): Promise<void> {
    return this.server.close();
  }

  #onJoin(conn: Connection, body: Uint8Array): void {
    // Name is a view into body, which is valid only during this call: the player keeps a copy.
    const { Name } = JoinRequest.decode(body);
    const result =
      conn.data instanceof Player
        ? JoinResult.ALREADY_JOINED
        : Name.length === 0
          ? JoinResult.BAD_NAME
          : this.#joined.size >= this.maxPlayers
            ? JoinResult.LOBBY_FULL
            : JoinResult.OK;
    conn.send(Id.JOIN_RESPONSE, JoinResponse.encode({ Result: result, PlayerId: result === JoinResult.OK ? conn.id : 0 }));
    if (result !== JoinResult.OK) return;
    const player = new Player(conn, Buffer.from(Name), new TokenBucket(this.#movesPerSecond, performance.now()));
    // The newcomer learns who is there; they learn of the newcomer, in one shared broadcast.
    for (const other of this.#joined) conn.send(Id.PLAYER_JOINED, joinedBody(other.data as Player));
    this.server.broadcast(this.#joined, Id.PLAYER_JOINED, joinedBody(player));
    conn.data = player;
    this.#joined.add(conn);
  }

  #onMove(conn: Connection, body: Uint8Array): void {
    const player = conn.data;
    if (!(player instanceof Player)) throw new ProtocolError('MOVE before JOIN_REQUEST');
    const { x, y } = Move.decode(body);
    if (!player.moves.take(performance.now())) return;
    player.x = x;
    player.y = y;
    this.server.broadcast(this.#joined, Id.POSITION, Position.encode({ PlayerId: conn.id, x, y }));
  }

  #onLeave(conn: Connection): void {
    if (!this.#joined.delete(conn)) return;
    conn.data = undefined;
    this.server.broadcast(this.#joined, Id.PLAYER_LEFT, PlayerLeft.encode({ PlayerId: conn.id }));
  }
}

function joinedBody(p: Player): Buffer {
  return PlayerJoined.encode({ PlayerId: p.conn.id, Name: p.name, x: p.x, y: p.y });
}

if (require.main === module) {
  const game = new LobbyGame({ backend: process.argv[3] === 'js' ? 'js' : 'native' });
  game.listen(Number(process.argv[2] ?? 12021)).then(
    (a) => console.log(`lobby game listening on ${a.address}:${a.port}`),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void game.close().then(() => process.exit(0)));
}
