import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { LobbyClient, type KnownPlayer } from '../examples/lobby-client';
import { LobbyGame } from '../examples/lobby-game';
import { DisconnectCode } from '../lib/index';
import { waitUntil } from './helpers/engine-harness';
import { backends } from './helpers/raw-client';

describe.each(backends())('examples/lobby-game with examples/lobby-client (%s backend)', (backend) => {
  let game: LobbyGame | undefined;
  const clients: LobbyClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await game?.close();
    game = undefined;
  });

  async function start(options: ConstructorParameters<typeof LobbyGame>[0] = {}): Promise<number> {
    game = new LobbyGame({ backend, ioThreads: 2, ...options });
    return (await game.listen(0, '127.0.0.1')).port;
  }

  async function client(port: number): Promise<LobbyClient> {
    const c = await LobbyClient.connect(port);
    clients.push(c);
    return c;
  }

  it('shows each player the others, their moves and their leaving', async () => {
    const port = await start();
    const ann = await client(port);
    const annId = await ann.join('ann');
    ann.move(3, 4);
    await once(ann, 'position');

    const bob = await client(port);
    const annSeen = once(ann, 'joined');
    const bobId = await bob.join('bob');
    expect(bobId).not.toBe(annId);
    // Bob learns where Ann already is; Ann learns of Bob.
    await waitUntil(() => bob.players.has(annId), 5000, 'ann in bob’s lobby');
    expect(bob.players.get(annId)).toEqual({ name: 'ann', x: 3, y: 4 });
    const [joinedId, joined] = (await annSeen) as [number, KnownPlayer];
    expect([joinedId, joined]).toEqual([bobId, { name: 'bob', x: 0, y: 0 }]);

    bob.move(-1, 2);
    await waitUntil(() => ann.players.get(bobId)?.x === -1, 5000, 'bob’s move at ann');
    expect(ann.players.get(bobId)).toEqual({ name: 'bob', x: -1, y: 2 });

    const left = once(ann, 'left');
    bob.close();
    expect(await left).toEqual([bobId]);
    expect(ann.players.size).toBe(0);
    expect(game!.playerCount).toBe(1);
  });

  it('refuses a second join, a full lobby and an empty name', async () => {
    const port = await start({ maxPlayers: 1 });
    const ann = await client(port);
    await ann.join('ann');
    await expect(ann.join('again')).rejects.toThrow(/ALREADY_JOINED/);
    const bob = await client(port);
    await expect(bob.join('bob')).rejects.toThrow(/LOBBY_FULL/);
    await expect(bob.join('')).rejects.toThrow(/BAD_NAME/);
  });

  it('drops moves past movesPerSecond', async () => {
    const port = await start({ movesPerSecond: 2 });
    const ann = await client(port);
    await ann.join('ann');
    const seen: number[] = [];
    ann.on('position', (_id, x) => seen.push(x));
    for (let i = 1; i <= 5; i++) ann.move(i, 0);
    ann.move(100, 0);
    await waitUntil(() => seen.length >= 2, 5000, 'two positions');
    await new Promise((r) => setTimeout(r, 100));
    // A burst of one second's worth: the first two moves pass.
    expect(seen).toEqual([1, 2]);
  });

  it('closes a connection that moves before it joined (ProtocolError)', async () => {
    const port = await start();
    const ann = await client(port);
    const closed = once(ann, 'close');
    ann.move(1, 1);
    expect(await closed).toEqual([DisconnectCode.PROTOCOL_ERROR]);
    expect(game!.playerCount).toBe(0);
  });
});
