/**
 * The client of the lobby game (examples/lobby-game.ts), on the toolkit's
 * client side: encodePacket frames what it sends, a PacketReader frames what
 * it receives, and the lobby's struct codecs read the bodies. In an
 * application, import from 'iocpnet' instead of '../lib/index'.
 *
 *   node dist/examples/lobby-client.js NAME [port] [host]
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { DisconnectCode, PacketId, PacketReader, encodePacket, type ReceivedPacket } from '../lib/index';
import { JoinRequest, JoinResponse, JoinResult, LobbyPacketId as Id, Move, PlayerJoined, PlayerLeft, Position } from './lobby-protocol';

/** Another player as this client knows it. */
export interface KnownPlayer {
  name: string;
  x: number;
  y: number;
}

export interface LobbyClientEvents {
  joined: [playerId: number, player: KnownPlayer];
  position: [playerId: number, x: number, y: number];
  left: [playerId: number];
  /** The connection ended; code is the DISCONNECT_NOTIFY reason the server gave, if any. */
  close: [code: number | undefined];
}

function resultName(result: number): string {
  return Object.entries(JoinResult).find(([, v]) => v === result)?.[0] ?? `result ${result}`;
}

/** One connection to a lobby server. JS thread only. */
export class LobbyClient extends EventEmitter<LobbyClientEvents> {
  /** This client's player id, once joined. */
  playerId: number | undefined;
  /** The other players in the lobby, by player id. */
  readonly players = new Map<number, KnownPlayer>();
  readonly #socket: net.Socket;
  readonly #reader = new PacketReader();
  #joining: { resolve: (playerId: number) => void; reject: (err: Error) => void } | undefined;
  #notify: number | undefined;

  private constructor(socket: net.Socket) {
    super();
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      let packets: ReceivedPacket[];
      try {
        packets = this.#reader.push(chunk);
      } catch {
        return; // the stream broke earlier; the socket is being destroyed
      }
      for (const p of packets) this.#onPacket(p);
      if (this.#reader.error) socket.destroy(this.#reader.error);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.#joining?.reject(new Error('the connection closed before the join was answered'));
      this.#joining = undefined;
      this.emit('close', this.#notify);
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<LobbyClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new LobbyClient(socket));
      });
    });
  }

  /** Joins under name; resolves with this client's player id, rejects with the server's refusal. */
  join(name: string): Promise<number> {
    if (this.#joining) return Promise.reject(new Error('a join is already under way'));
    return new Promise((resolve, reject) => {
      this.#joining = { resolve, reject };
      this.#socket.write(encodePacket(Id.JOIN_REQUEST, JoinRequest.encode({ Name: name })));
    });
  }

  move(x: number, y: number): void {
    this.#socket.write(encodePacket(Id.MOVE, Move.encode({ x, y })));
  }

  close(): void {
    this.#socket.end();
  }

  #onPacket(p: ReceivedPacket): void {
    switch (p.packetId) {
      case Id.JOIN_RESPONSE: {
        const { Result, PlayerId } = JoinResponse.decode(p.body);
        const joining = this.#joining;
        this.#joining = undefined;
        if (Result !== JoinResult.OK) {
          joining?.reject(new Error(`the lobby refused the join: ${resultName(Result)}`));
          return;
        }
        this.playerId = PlayerId;
        joining?.resolve(PlayerId);
        return;
      }
      case Id.PLAYER_JOINED: {
        const { PlayerId, Name, x, y } = PlayerJoined.decode(p.body);
        const player = { name: Name.toString('utf8'), x, y };
        this.players.set(PlayerId, player);
        this.emit('joined', PlayerId, player);
        return;
      }
      case Id.POSITION: {
        const { PlayerId, x, y } = Position.decode(p.body);
        const player = this.players.get(PlayerId);
        if (player !== undefined) {
          player.x = x;
          player.y = y;
        }
        this.emit('position', PlayerId, x, y);
        return;
      }
      case Id.PLAYER_LEFT: {
        const { PlayerId } = PlayerLeft.decode(p.body);
        this.players.delete(PlayerId);
        this.emit('left', PlayerId);
        return;
      }
      case PacketId.DISCONNECT_NOTIFY:
        this.#notify = p.body.length >= 2 ? p.body.readUInt16LE(0) : undefined;
        return;
      default:
        // PONG and ids of later versions: nothing to do.
        return;
    }
  }
}

function notifyName(code: number | undefined): string {
  if (code === undefined) return 'no notice';
  return Object.entries(DisconnectCode).find(([, v]) => v === code)?.[0] ?? `code ${code}`;
}

if (require.main === module) {
  const [name = 'player', port = '12021', host = '127.0.0.1'] = process.argv.slice(2);
  void (async () => {
    const client = await LobbyClient.connect(Number(port), host);
    client.on('joined', (id, p) => console.log(`${p.name} (${id}) is at ${p.x},${p.y}`));
    client.on('position', (id, x, y) => console.log(`${client.players.get(id)?.name ?? id} moved to ${x},${y}`));
    client.on('left', (id) => console.log(`player ${id} left`));
    client.on('close', (code) => {
      console.log(`disconnected (${notifyName(code)})`);
      process.exit(0);
    });
    console.log(`joined as player ${await client.join(name)}`);
    // A random walk, one step a second.
    let x = 0;
    let y = 0;
    setInterval(() => {
      x += Math.round(Math.random() * 2 - 1);
      y += Math.round(Math.random() * 2 - 1);
      client.move(x, y);
    }, 1000);
  })().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
