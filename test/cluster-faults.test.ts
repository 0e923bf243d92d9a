import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ChatPacketId, ChatResult, DisconnectCode, PacketId, type BackendName, type ChatServer } from '../lib/index';
import { ChatTestClient, loginBody, notifyUser, startChat } from './helpers/chat-client';
import { ensureBuilt, runCli, type Spawned } from './helpers/chat-cli';
import { backends } from './helpers/raw-client';
import { RedisServer, redisServerAvailable } from './helpers/redis';

const R = ChatResult;
const P = ChatPacketId;
const LEASE_MS = 2000;

const available = redisServerAvailable();
if (!available && process.env.CI) throw new Error('redis-server is not installed; .ci/run installs it');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One Redis, in-process nodes and CLI nodes, clients: all released by dispose(). */
class Fixture {
  redis: RedisServer | undefined;
  readonly nodes: ChatServer[] = [];
  readonly children: Spawned[] = [];
  readonly clients: ChatTestClient[] = [];

  async start(): Promise<RedisServer> {
    this.redis = await RedisServer.start();
    return this.redis;
  }

  async node(backend: BackendName, nodeId: string, leaseMs = LEASE_MS): Promise<number> {
    const { chat, port } = await startChat(backend, {
      maxRoomUsers: 20,
      cluster: { redis: (this.redis as RedisServer).url, nodeId, leaseMs },
    });
    chat.server.on('error', () => {});
    this.nodes.push(chat);
    return port;
  }

  async cliNode(backend: BackendName, nodeId: string): Promise<{ port: number; child: Spawned }> {
    const url = (this.redis as RedisServer).url;
    const real = runCli([
      'chat-server',
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--backend',
      backend,
      '--max-room-users',
      '20',
      '--redis',
      url,
      '--node-id',
      nodeId,
      '--cluster-lease-ms',
      String(LEASE_MS),
    ]);
    this.children.push(real);
    const m = await real.waitOutput(/listening on [^\s]+:(\d+)/);
    return { port: Number(m[1]), child: real };
  }

  async member(port: number, userId: string, room: number): Promise<ChatTestClient> {
    const c = await ChatTestClient.connect(port);
    this.clients.push(c);
    await c.join(userId, room);
    return c;
  }

  async dispose(): Promise<void> {
    for (const c of this.clients) c.destroy();
    this.clients.length = 0;
    for (const child of this.children) child.kill();
    await Promise.all(this.children.map((c) => c.waitExit()));
    this.children.length = 0;
    await Promise.all(this.nodes.map((n) => n.close()));
    this.nodes.length = 0;
    await this.redis?.stop();
    this.redis = undefined;
  }
}

/** Checks that every member got every accepted chat of every sender once, in the order sent. */
function expectAllOnce(members: Array<{ id: string; c: ChatTestClient }>, accepted: Map<string, string[]>): void {
  const total = [...accepted.values()].reduce((n, list) => n + list.length, 0);
  for (const m of members) {
    const got = m.c.notifies();
    expect(got.length, `notifies at ${m.id}`).toBe(total);
    for (const [sender, sent] of accepted) {
      expect(
        got.filter((n) => n.userId === sender).map((n) => n.message.toString()),
        `${sender}'s chats at ${m.id}`,
      ).toEqual(sent);
    }
  }
}

/** Sends count chats from each member, spaced by gapMs, calling during() once halfway; returns the accepted ones per sender. */
async function chatAround(
  members: Array<{ id: string; c: ChatTestClient }>,
  count: number,
  gapMs: number,
  during: () => Promise<void>,
): Promise<Map<string, string[]>> {
  const sent = new Map<string, string[]>(members.map((m) => [m.id, []]));
  let fault: Promise<void> | undefined;
  for (let k = 0; k < count; k++) {
    if (k === Math.floor(count / 2)) fault = during();
    for (const m of members) {
      const text = `${m.id}:${k}`;
      m.c.send(P.ROOM_CHAT_REQUEST, Buffer.from(text));
      sent.get(m.id)?.push(text);
    }
    await sleep(gapMs);
  }
  await fault;
  // Responses come in order on each connection; only the chats answered NONE count as accepted.
  const accepted = new Map<string, string[]>();
  for (const m of members) {
    await m.c.waitFor(() => m.c.of(P.ROOM_CHAT_RESPONSE).length >= count, 10_000, `${count} chat responses at ${m.id}`);
    const codes = m.c.of(P.ROOM_CHAT_RESPONSE).map((p) => p.body.readInt16LE(0));
    accepted.set(
      m.id,
      (sent.get(m.id) ?? []).filter((_, i) => codes[i] === R.NONE),
    );
  }
  return accepted;
}

describe.skipIf(!available).each(backends())('chat cluster faults (%s backend)', (backend) => {
  const fx = new Fixture();
  beforeAll(() => ensureBuilt(), 200_000);
  beforeEach(() => fx.start());
  afterEach(() => fx.dispose());

  it('lets the users of a SIGKILLed node leave within the lease, and their ids log in elsewhere', async () => {
    const alive = await fx.node(backend, 'alive');
    const doomed = await fx.cliNode(backend, 'doomed');
    const a = await fx.member(alive, 'a', 0);
    await fx.member(doomed.port, 'k1', 0);
    await fx.member(doomed.port, 'k2', 0);
    await a.waitFor(() => a.of(P.ROOM_NEW_USER_NOTIFY).length === 2, 3000, 'new-user notifies');
    const killedAt = Date.now();
    doomed.child.kill();
    await a.waitFor(() => a.of(P.ROOM_LEAVE_USER_NOTIFY).length === 2, LEASE_MS + 1000, 'leave notifies of the dead node');
    const elapsed = Date.now() - killedAt;
    expect(elapsed).toBeLessThanOrEqual(LEASE_MS + 300);
    expect(a.of(P.ROOM_LEAVE_USER_NOTIFY).map(notifyUser).sort()).toEqual(['k1', 'k2']);
    const k1 = await ChatTestClient.connect(alive);
    fx.clients.push(k1);
    expect(await k1.login('k1')).toBe(R.NONE);
    expect(await k1.enter(0)).toEqual({ result: R.NONE, rival: 'a' });
  });

  it('kicks the users of a node that was cut off past its lease (SIGSTOP), and lets them log in again', async () => {
    const alive = await fx.node(backend, 'alive');
    const frozen = await fx.cliNode(backend, 'frozen');
    const a = await fx.member(alive, 'a', 0);
    const f = await fx.member(frozen.port, 'f', 0);
    await a.waitFor(() => a.of(P.ROOM_NEW_USER_NOTIFY).length === 1, 3000, 'the new-user notify');
    frozen.child.proc.kill('SIGSTOP');
    try {
      await a.waitFor(() => a.of(P.ROOM_LEAVE_USER_NOTIFY).length === 1, LEASE_MS + 1000, 'the leave notify of the frozen node');
      const f2 = await ChatTestClient.connect(alive);
      fx.clients.push(f2);
      expect(await f2.login('f')).toBe(R.NONE);
      f2.destroy();
    } finally {
      frozen.child.proc.kill('SIGCONT');
    }
    // Back, the node finds itself removed: the cluster told everyone f left, so f is kicked.
    await f.waitClosed(LEASE_MS + 2000);
    const notify = f.of(PacketId.DISCONNECT_NOTIFY);
    expect(notify.map((p) => p.body.readUInt16LE(0))).toEqual([DisconnectCode.KICKED]);
    const again = await ChatTestClient.connect(frozen.port);
    fx.clients.push(again);
    const deadline = Date.now() + 2 * LEASE_MS;
    let code = await again.login('f');
    while (code !== R.NONE && Date.now() < deadline) {
      await sleep(100);
      code = await again.login('f');
    }
    expect(code).toBe(R.NONE);
    expect(await again.enter(0)).toEqual({ result: R.NONE, rival: 'a' });
  });

  it('loses and duplicates no accepted chat when Redis kills the nodes connections (CLIENT KILL TYPE normal)', async () => {
    const ports = [await fx.node(backend, 'n0'), await fx.node(backend, 'n1')];
    const members = [];
    for (let i = 0; i < 4; i++) members.push({ id: `m${i}`, c: await fx.member(ports[i % 2], `m${i}`, 1) });
    const redis = fx.redis as RedisServer;
    const killed: number[] = [];
    const accepted = await chatAround(members, 60, 10, async () => {
      for (let i = 0; i < 5; i++) {
        killed.push(Number(await redis.admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')));
        await sleep(100);
      }
    });
    // The first kill cut both connections of both nodes.
    expect(killed[0]).toBe(4);
    const total = [...accepted.values()].reduce((n, l) => n + l.length, 0);
    expect(total).toBe(60 * members.length);
    for (const m of members) await m.c.waitFor(() => m.c.of(P.ROOM_CHAT_NOTIFY).length >= total, 10_000, `notifies at ${m.id}`);
    await sleep(300);
    expectAllOnce(members, accepted);
    for (const n of fx.nodes) expect(n.stats().cluster?.reconnects).toBeGreaterThanOrEqual(2);
  });

  it('delivers every accepted chat once Redis resumes after CLIENT PAUSE 3000 ALL', async () => {
    // The default lease: a pause longer than 4/5 of the lease is every node's death. A server
    // on the sanitizer build runs several times slower, so its renewals need the margin of a longer lease.
    const lease = process.env.IOCPNET_SANITIZER ? 10_000 : 5000;
    const ports = [await fx.node(backend, 'n0', lease), await fx.node(backend, 'n1', lease)];
    const members = [];
    for (let i = 0; i < 4; i++) members.push({ id: `m${i}`, c: await fx.member(ports[i % 2], `m${i}`, 1) });
    const redis = fx.redis as RedisServer;
    let pausedAt = 0;
    const accepted = await chatAround(members, 40, 25, async () => {
      pausedAt = Date.now();
      await redis.admin.call('CLIENT', 'PAUSE', '3000', 'ALL');
    });
    // While Redis was paused the members of the sender's node got the chats at once.
    expect(Date.now() - pausedAt).toBeLessThan(3000);
    const total = [...accepted.values()].reduce((n, l) => n + l.length, 0);
    expect(total).toBe(40 * members.length);
    for (const m of members) await m.c.waitFor(() => m.c.of(P.ROOM_CHAT_NOTIFY).length >= total, 10_000, `notifies at ${m.id}`);
    await sleep(300);
    expectAllOnce(members, accepted);
    for (const n of fx.nodes) expect(n.stats().cluster?.leasesLost).toBe(0);
  });

  it('bounds what waits for a paused Redis by maxBufferBytes: chats past it are refused, every accepted one arrives once', async () => {
    const url = (fx.redis as RedisServer).url;
    const nodes = [];
    for (const nodeId of ['n0', 'n1']) {
      const { chat, port } = await startChat(backend, { maxRoomUsers: 20, cluster: { redis: url, nodeId, maxBufferBytes: 64 * 1024 } });
      chat.server.on('error', () => {});
      fx.nodes.push(chat);
      nodes.push(port);
    }
    const sender = await fx.member(nodes[0], 'sender', 4);
    const near = await fx.member(nodes[0], 'near', 4);
    const far = await fx.member(nodes[1], 'far', 4);
    await (fx.redis as RedisServer).admin.call('CLIENT', 'PAUSE', '2000', 'ALL');
    const COUNT = 2500;
    const texts = Array.from({ length: COUNT }, (_, k) => `chat number ${String(k).padStart(6, '0')} of the sender`);
    for (const t of texts) sender.send(P.ROOM_CHAT_REQUEST, Buffer.from(t));
    await sender.waitFor(() => sender.of(P.ROOM_CHAT_RESPONSE).length >= COUNT, 10_000, 'all chat responses');
    const codes = sender.of(P.ROOM_CHAT_RESPONSE).map((p) => p.body.readInt16LE(0));
    const accepted = texts.filter((_, i) => codes[i] === R.NONE);
    const refused = codes.filter((c) => c === R.ROOM_TOO_MANY_PACKET).length;
    expect(accepted.length + refused).toBe(COUNT);
    // About 64 KiB of ~45-byte chats fit; the rest waited for nothing and was refused.
    expect(refused).toBeGreaterThan(0);
    expect(accepted.length).toBeGreaterThan(1000);
    expect(fx.nodes[0].stats().cluster?.chatsRefused).toBe(refused);
    for (const c of [sender, near, far]) {
      await c.waitFor(() => c.of(P.ROOM_CHAT_NOTIFY).length >= accepted.length, 10_000, 'the accepted chats');
    }
    await sleep(300);
    for (const c of [sender, near, far]) expect(c.notifies().map((n) => n.message.toString())).toEqual(accepted);
  });

  it('admits no login while Redis is unreachable, keeps local chat flowing, and relays what was accepted once Redis is back', async () => {
    const ports = [await fx.node(backend, 'n0'), await fx.node(backend, 'n1')];
    const a = await fx.member(ports[0], 'a', 2);
    const near = await fx.member(ports[0], 'near', 2);
    const far = await fx.member(ports[1], 'far', 2);
    const redis = fx.redis as RedisServer;
    await redis.crash();
    const x = await ChatTestClient.connect(ports[0]);
    fx.clients.push(x);
    const askedAt = Date.now();
    const from = x.packets.length;
    x.send(P.LOGIN_REQUEST, loginBody('x'));
    const answer = await x.next(P.LOGIN_RESPONSE, from, LEASE_MS + 2000);
    // No answer from Redis within the lease: refused as "try later", never admitted.
    expect(answer.body.readUInt16LE(0)).toBe(R.LOGIN_USER_USED_ALL_OBJ);
    expect(Date.now() - askedAt).toBeGreaterThanOrEqual(LEASE_MS - 100);
    expect(await a.chat('during the outage')).toBe(R.NONE);
    await near.waitFor(() => near.notifies().some((n) => n.message.toString() === 'during the outage'), 2000, 'the local chat');
    await redis.revive();
    await far.waitFor(() => far.notifies().some((n) => n.message.toString() === 'during the outage'), 2 * LEASE_MS, 'the chat at the far node');
    expect(far.notifies().filter((n) => n.message.toString() === 'during the outage')).toHaveLength(1);
    // The claim that timed out did not leave the id taken.
    const x2 = await ChatTestClient.connect(ports[1]);
    fx.clients.push(x2);
    const deadline = Date.now() + 2 * LEASE_MS;
    let code = await x2.login('x');
    while (code !== R.NONE && Date.now() < deadline) {
      await sleep(100);
      code = await x2.login('x');
    }
    expect(code).toBe(R.NONE);
  });

  it('shuts a CLI node down gracefully on SIGTERM, with exit 0, also while Redis is away', async () => {
    const node = await fx.cliNode(backend, 'leaving');
    const c = await fx.member(node.port, 'c', 1);
    await (fx.redis as RedisServer).crash();
    const t0 = Date.now();
    node.child.proc.kill('SIGTERM');
    expect(await node.child.waitExit(10_000)).toBe(0);
    // The server's drain plus at most half a lease for Redis.
    expect(Date.now() - t0).toBeLessThan(LEASE_MS / 2 + 3000);
    await c.waitClosed(2000);
    expect(c.of(PacketId.DISCONNECT_NOTIFY).map((p) => p.body.readUInt16LE(0))).toEqual([DisconnectCode.SERVER_SHUTDOWN]);
  });

  it('counts and logs the chats that a Redis restarted empty lost before another node read them', async () => {
    const sender = await fx.node(backend, 'sender');
    const reader = await fx.cliNode(backend, 'reader');
    const s = await fx.member(sender, 's', 1);
    const r = await fx.member(reader.port, 'r', 1);
    expect(await s.chat('before')).toBe(R.NONE);
    await r.waitFor(() => r.notifies().length === 1, 3000, 'the first chat');
    reader.child.proc.kill('SIGSTOP');
    try {
      await sleep(100);
      for (let i = 0; i < 3; i++) {
        expect(await s.chat(`lost ${i}`)).toBe(R.NONE);
        // Apart, so that Redis answers the frozen reader's blocked XREAD with the first alone.
        await sleep(50);
      }
      await (fx.redis as RedisServer).restartEmpty();
    } finally {
      reader.child.proc.kill('SIGCONT');
    }
    await sleep(LEASE_MS / 2);
    expect(await s.chat('after')).toBe(R.NONE);
    await r.waitFor(() => r.notifies().some((n) => n.message.toString() === 'after'), 2 * LEASE_MS, 'the chat after the restart');
    // The first chat after the freeze answered the reader's blocked XREAD at once, so it sat in the frozen node's socket.
    expect(r.notifies().map((n) => n.message.toString())).toEqual(['before', 'lost 0', 'after']);
    expect(s.notifies()).toHaveLength(5);
    const deadline = Date.now() + 2000;
    while (!reader.child.stderr.includes('chats of node sender are missing') && Date.now() < deadline) await sleep(50);
    expect(reader.child.stderr).toContain('cluster: 2 chats of node sender are missing from the stream');
  });

  it('rebuilds logins and rooms from the nodes within twice the lease after Redis restarts empty', async () => {
    const ports = [await fx.node(backend, 'n0'), await fx.node(backend, 'n1')];
    const a = await fx.member(ports[0], 'a', 2);
    const b = await fx.member(ports[1], 'b', 2);
    const redis = fx.redis as RedisServer;
    await redis.restartEmpty();
    const restartedAt = Date.now();
    const deadline = restartedAt + 2 * LEASE_MS;
    // The login claims are back: 'a' is refused on the other node.
    const probe = await ChatTestClient.connect(ports[1]);
    fx.clients.push(probe);
    const codes = [await probe.login('a')];
    while (codes[codes.length - 1] !== R.LOGIN_USER_ALREADY && Date.now() < deadline && codes.length < 100) {
      await sleep(100);
      codes.push(await probe.login('a'));
    }
    // Refused with USED_ALL_OBJ while the node is not back in Redis, then with ALREADY; never admitted.
    expect(codes).not.toContain(R.NONE);
    expect(codes[codes.length - 1]).toBe(R.LOGIN_USER_ALREADY);
    expect(Date.now()).toBeLessThanOrEqual(deadline);
    // The room's order is back: a newcomer sees a as rival and the list a, b, newcomer.
    const c = await ChatTestClient.connect(ports[1]);
    fx.clients.push(c);
    expect(await c.login('c')).toBe(R.NONE);
    expect(await c.enter(2)).toEqual({ result: R.NONE, rival: 'a' });
    // Cross-node chat flows again.
    expect(await b.chat('after restart')).toBe(R.NONE);
    await a.waitFor(() => a.notifies().some((n) => n.message.toString() === 'after restart'), 3000, 'the chat at a');
    expect(fx.nodes.every((n) => (n.stats().cluster?.rebuilds ?? 0) >= 1)).toBe(true);
  });
});
