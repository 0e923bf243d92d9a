// Players of the game in server.ts, on the client toolkit of the installed
// package: encodePacket frames what they send, a PacketReader splits what
// they receive. Two players join, move and see each other's positions, one
// leaves; a third connection that moves without joining is closed with
// DISCONNECT_NOTIFY(PROTOCOL_ERROR).
//
//   node client.js PORT
//
// Prints one JSON line with what the players saw and exits 0, or names the
// step that failed and exits 1. Every wait is bounded.
import * as net from 'node:net';
import { DisconnectCode, PacketId, PacketReader, encodePacket, type ReceivedPacket } from 'iocpnet';
import { GameId, Join, Move, PlayerJoined, PlayerLeft, Position, Welcome } from './protocol.js';

const STEP_TIMEOUT_MS = 5000;

class PlayerClient {
  readonly #socket: net.Socket;
  readonly #reader = new PacketReader();
  readonly #inbox: ReceivedPacket[] = [];
  readonly #wake = new Set<() => void>();
  /** Every packet received, taken or not. */
  readonly seen: ReceivedPacket[] = [];
  readonly closed: Promise<void>;
  #ended = false;

  private constructor(
    readonly name: string,
    socket: net.Socket,
  ) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      for (const p of this.#reader.push(chunk)) {
        this.seen.push(p);
        this.#inbox.push(p);
      }
      if (this.#reader.error) socket.destroy(this.#reader.error);
      this.#notify();
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#ended = true;
        this.#notify();
        resolve();
      }),
    );
    socket.on('error', () => {});
  }

  static connect(name: string, port: number): Promise<PlayerClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new PlayerClient(name, socket));
      });
    });
  }

  send(packetId: number, body?: Uint8Array): void {
    this.#socket.write(encodePacket(packetId, body));
  }

  /** Writes several packets in one write, as a client that batches does. */
  sendAll(packets: [number, Uint8Array][]): void {
    this.#socket.write(Buffer.concat(packets.map(([id, body]) => encodePacket(id, body))));
  }

  end(): void {
    this.#socket.end();
  }

  #notify(): void {
    for (const wake of this.#wake) wake();
  }

  /** The first packet with packetId not taken yet, removed from the inbox. */
  async take(packetId: number, what: string): Promise<Buffer> {
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    for (;;) {
      const i = this.#inbox.findIndex((p) => p.packetId === packetId);
      if (i >= 0) return this.#inbox.splice(i, 1)[0].body;
      if (this.#ended) throw new Error(`${this.name}: the connection closed before ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: no ${what} within ${STEP_TIMEOUT_MS} ms`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.#wake.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.#wake.add(wake);
      });
    }
  }

  async waitClosed(what: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name}: ${what} within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function expectEqual<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

async function join(name: string, port: number): Promise<{ client: PlayerClient; playerId: number; players: number }> {
  const client = await PlayerClient.connect(name, port);
  client.send(GameId.JOIN, Join.encode({ name }));
  const { playerId, players } = Welcome.decode(await client.take(GameId.WELCOME, 'WELCOME'));
  return { client, playerId, players };
}

async function main(): Promise<void> {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port <= 0) throw new Error('usage: node client.js PORT');

  const alice = await join('alice', port);
  expectEqual(alice.players, 0, 'players in the game when alice joins');
  const bob = await join('bob', port);
  expectEqual(bob.players, 1, 'players in the game when bob joins');

  const existing = PlayerJoined.decode(await bob.client.take(GameId.PLAYER_JOINED, 'PLAYER_JOINED(alice)'));
  expectEqual([existing.playerId, existing.name.toString()], [alice.playerId, 'alice'], 'bob is told of alice');
  const newcomer = PlayerJoined.decode(await alice.client.take(GameId.PLAYER_JOINED, 'PLAYER_JOINED(bob)'));
  expectEqual([newcomer.playerId, newcomer.name.toString()], [bob.playerId, 'bob'], 'alice is told of bob');

  bob.client.send(GameId.MOVE, Move.encode({ x: 5, y: -7 }));
  const bobAt = Position.decode(await alice.client.take(GameId.POSITION, "bob's POSITION"));
  expectEqual(bobAt, { playerId: bob.playerId, x: 5, y: -7 }, "the position alice sees for bob's move");

  // Twenty moves in one write: the server frames them, bob's reader gets them in pieces or whole.
  const moves = Array.from({ length: 20 }, (_, i) => ({ x: i * 100, y: -i }));
  alice.client.sendAll(moves.map((m): [number, Uint8Array] => [GameId.MOVE, Move.encode(m)]));
  const aliceAt: ReturnType<typeof Position.decode>[] = [];
  for (let i = 0; i < moves.length; i++) aliceAt.push(Position.decode(await bob.client.take(GameId.POSITION, `alice's POSITION ${i + 1}`)));
  expectEqual(
    aliceAt,
    moves.map((m) => ({ playerId: alice.playerId, ...m })),
    'the positions bob sees for alice, in order',
  );

  bob.client.send(GameId.LEAVE);
  const left = PlayerLeft.decode(await alice.client.take(GameId.PLAYER_LEFT, 'PLAYER_LEFT(bob)'));
  expectEqual(left.playerId, bob.playerId, 'the player alice sees leave');
  bob.client.end();
  await bob.client.waitClosed('bob closed after LEAVE');

  const cheater = await PlayerClient.connect('cheater', port);
  cheater.send(GameId.MOVE, Move.encode({ x: 1, y: 1 }));
  const notify = await cheater.take(PacketId.DISCONNECT_NOTIFY, 'DISCONNECT_NOTIFY');
  expectEqual(notify.readUInt16LE(0), DisconnectCode.PROTOCOL_ERROR, 'the reason a MOVE before JOIN is closed with');
  cheater.end();
  await cheater.waitClosed('the cheater closed after its DISCONNECT_NOTIFY');

  const ownEcho = alice.client.seen.filter((p) => p.packetId === GameId.POSITION && Position.decode(p.body).playerId === alice.playerId);
  expectEqual(ownEcho.length, 0, 'positions alice got for her own moves');
  alice.client.end();
  await alice.client.waitClosed('alice closed');

  console.log(
    JSON.stringify({
      aliceSawPositions: alice.client.seen.filter((p) => p.packetId === GameId.POSITION).length,
      bobSawPositions: bob.client.seen.filter((p) => p.packetId === GameId.POSITION).length,
      packetsReceived: alice.client.seen.length + bob.client.seen.length + cheater.seen.length,
      cheater: 'PROTOCOL_ERROR',
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
