import * as fs from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChatPacketId, ChatResult, type BackendName } from '../lib/index';
import { restartDelayMs } from '../lib/cli/workers';
import { ChatTestClient, chatBody, expectShutdownNotify, notifyUser } from './helpers/chat-client';
import { Spawned, ensureBuilt, plain, runCli } from './helpers/chat-cli';
import { backends } from './helpers/raw-client';
import { RedisServer, redisServerAvailable } from './helpers/redis';

// `iocpnet chat-server --workers N`: the primary, its worker processes on one
// port, a worker's death and restart, and the shutdown, from the outside
// (real processes, real sockets, a real Redis).

const R = ChatResult;
const P = ChatPacketId;
const LEASE_MS = 2000;

const available = redisServerAvailable() && process.platform === 'linux';
if (!redisServerAvailable() && process.env.CI) throw new Error('redis-server is not installed; .ci/run installs it');
if (!available) console.warn('cli-workers.test.ts skipped: needs Linux and redis-server');

let redis: RedisServer;
let runs = 0;

beforeAll(async () => {
  ensureBuilt();
  if (available) redis = await RedisServer.start();
}, 200_000);
afterAll(async () => {
  if (available) await redis.stop();
});

function procPpid(pid: number): number | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** A primary with its workers, on a key prefix of its own, and the clients of one test. */
class Workers {
  readonly prefix = `w${process.pid}-${++runs}:`;
  readonly clients: ChatTestClient[] = [];
  cli!: Spawned;
  port = 0;
  /** Every worker pid the primary reported, so that none may outlive the test. */
  readonly seen = new Set<number>();

  constructor(readonly backend: BackendName) {}

  async start(count: number): Promise<void> {
    this.cli = runCli([
      'chat-server',
      '--workers',
      String(count),
      '--backend',
      this.backend,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--io-threads',
      '1',
      '--max-room-users',
      '40',
      '--redis',
      redis.url,
      '--cluster-prefix',
      this.prefix,
      '--cluster-lease-ms',
      String(LEASE_MS),
    ]);
    const m = await this.cli.waitOutput(new RegExp(`\\(${this.backend} backend, ${count} workers\\) listening on 127\\.0\\.0\\.1:(\\d+)\\n`), 30_000);
    this.port = Number(m[1]);
    await this.cli.waitOutput(new RegExp(`worker ${count}: pid \\d+\\n`));
    for (const pid of this.pids().values()) this.seen.add(pid);
  }

  /** The current pid of each worker slot, from the primary's lines. */
  pids(): Map<number, number> {
    const out = new Map<number, number>();
    for (const m of plain(this.cli.stdout).matchAll(/^worker (\d+): pid (\d+)/gm)) out.set(Number(m[1]), Number(m[2]));
    return out;
  }

  async client(): Promise<ChatTestClient> {
    const c = await ChatTestClient.connect(this.port);
    this.clients.push(c);
    return c;
  }

  /** n clients logged in as prefix0.. and in room 0, in turn (so that each saw the ones before it enter). */
  async members(idPrefix: string, n: number): Promise<Map<string, ChatTestClient>> {
    const out = new Map<string, ChatTestClient>();
    for (let i = 0; i < n; i++) {
      const c = await this.client();
      await c.join(`${idPrefix}${i}`, 0);
      out.set(`${idPrefix}${i}`, c);
    }
    return out;
  }

  /** user id -> the pid of the worker that holds it, from the cluster's state in Redis (node ids are hostname:pid). */
  async owners(): Promise<Map<string, number>> {
    const users = await redis.admin.hgetall(`${this.prefix}users`);
    return new Map(Object.entries(users).map(([user, node]) => [user, Number(node.slice(node.lastIndexOf(':') + 1))]));
  }

  async dispose(): Promise<void> {
    for (const c of this.clients) c.destroy();
    if (this.cli?.running) {
      this.cli.proc.kill('SIGTERM');
      await this.cli.waitExit(20_000).catch(() => this.cli.kill());
    }
    // A worker the test made (its parent was the primary) must be gone with the primary.
    for (const pid of this.seen) if (procPpid(pid) === this.cli.proc.pid) process.kill(pid, 'SIGKILL');
  }
}

/** Retries a login until it succeeds or bound ms pass; a dead worker's ids are free once its lease ran out. */
async function loginSoon(c: ChatTestClient, userId: string, bound: number): Promise<number> {
  const deadline = Date.now() + bound;
  let code = await c.login(userId);
  while (code !== R.NONE && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    code = await c.login(userId);
  }
  return code;
}

describe('the worker restart backoff', () => {
  it('restarts the first death at once, then doubles from 250 ms per quick death in a row up to 10 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map(restartDelayMs)).toEqual([0, 250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
  });
});

describe('chat-server --workers: usage errors (exit 2, naming the flag)', () => {
  it.each([['0'], ['1.5'], ['65'], ['two'], ['-1']])('--workers %s', async (value) => {
    const cli = runCli(['chat-server', '--workers', value, '--port', '0']);
    expect(await cli.waitExit()).toBe(2);
    expect(cli.stderr).toContain(`option '--workers <n>' argument '${value}' is invalid. must be an integer between 1 and 64.`);
  });

  it('--workers 2 without --redis: the rooms would split', async () => {
    const cli = runCli(['chat-server', '--workers', '2', '--port', '0']);
    expect(await cli.waitExit()).toBe(2);
    expect(cli.stderr).toContain('error: --workers 2 needs --redis: without a cluster each worker would keep its own logins and rooms');
    expect(cli.stdout).toBe('');
  });

  it('--workers 2 with --metrics-port', async () => {
    const cli = runCli(['chat-server', '--workers', '2', '--port', '0', '--redis', 'redis://127.0.0.1:1', '--metrics-port', '0']);
    expect(await cli.waitExit()).toBe(2);
    expect(cli.stderr).toContain('error: --metrics-port serves one process: it cannot go with --workers above 1 yet');
  });

  it('--node-id too long for the -<slot> each worker adds', async () => {
    const cli = runCli(['chat-server', '--workers', '2', '--port', '0', '--redis', 'redis://127.0.0.1:1', '--node-id', 'n'.repeat(99)]);
    expect(await cli.waitExit()).toBe(2);
    expect(cli.stderr).toContain('error: --node-id with --workers 2 is at most 98 characters (each worker adds -<n>)');
  });

  it("a worker's usage error ends the primary with the same status, before anything listens", async () => {
    const cli = runCli(['chat-server', '--workers', '1', '--port', '0', '--start-room', '2147483647', '--max-rooms', '10']);
    expect(await cli.waitExit(20_000)).toBe(2);
    expect(cli.stdout).not.toMatch(/listening/);
    expect(cli.stderr).toMatch(/worker 1 \(pid \d+\) ended \(exit code 2\) before it listened: stopping/);
  });
});

describe.skipIf(!available).each(backends())('chat-server --workers 2 (%s backend)', (backend) => {
  let w: Workers;
  afterEach(() => w.dispose(), 30_000);

  it('shares one port: logins land on both workers, and members on different workers chat in one room', async () => {
    w = new Workers(backend);
    await w.start(2);
    const pids = w.pids();
    expect([...pids.keys()]).toEqual([1, 2]);
    for (const pid of pids.values()) expect(procPpid(pid)).toBe(w.cli.proc.pid);
    // The primary printed the address once.
    expect(plain(w.cli.stdout).match(/listening on/g)).toHaveLength(1);

    const members = await w.members('u', 16);
    const owners = await w.owners();
    expect(owners.size).toBe(16);
    expect(new Set(owners.values())).toEqual(new Set(pids.values()));

    const onFirst = [...owners].filter(([, pid]) => pid === pids.get(1)).map(([u]) => u);
    const onSecond = [...owners].filter(([, pid]) => pid === pids.get(2)).map(([u]) => u);
    const a = members.get(onFirst[0]) as ChatTestClient;
    const b = members.get(onSecond[0]) as ChatTestClient;
    expect(await a.chat('from the first worker')).toBe(R.NONE);
    expect(await b.chat('from the second worker')).toBe(R.NONE);
    // Every member, on either worker, gets each chat exactly once.
    for (const c of members.values()) {
      await c.waitFor(() => c.notifies().length >= 2, 5000, 'both chats');
      const got = c.notifies().map((n) => `${n.userId}: ${n.message.toString()}`);
      expect(got.sort()).toEqual([`${onFirst[0]}: from the first worker`, `${onSecond[0]}: from the second worker`].sort());
    }
  });

  it('restarts a SIGKILLed worker (with a growing pause when it dies again at once); its users leave cluster-wide and new logins work', async () => {
    w = new Workers(backend);
    await w.start(2);
    const before = w.pids();
    const members = await w.members('m', 12);
    const owners = await w.owners();
    const victims = [...owners].filter(([, pid]) => pid === before.get(1)).map(([u]) => u);
    const survivors = [...owners].filter(([, pid]) => pid === before.get(2)).map(([u]) => u);
    expect(victims.length).toBeGreaterThan(0);
    expect(survivors.length).toBeGreaterThan(0);
    const watcher = members.get(survivors[0]) as ChatTestClient;
    const leavesBefore = watcher.of(P.ROOM_LEAVE_USER_NOTIFY).length;

    const killedAt = Date.now();
    process.kill(before.get(1) as number, 'SIGKILL');
    await w.cli.waitErrorOutput(new RegExp(`worker 1 \\(pid ${before.get(1)}\\) ended \\(signal SIGKILL\\); restarting in 0 ms\\n`), 5000);
    const restarted = Number((await w.cli.waitOutput(/worker 1: pid (\d+) \(restarted\)\n/, 30_000))[1]);
    w.seen.add(restarted);
    expect(restarted).not.toBe(before.get(1));
    expect(procPpid(restarted)).toBe(w.cli.proc.pid);
    for (const v of victims) await (members.get(v) as ChatTestClient).waitClosed(5000);

    // The dead worker's users leave the room for every member that is left, within the lease.
    await watcher.waitFor(() => watcher.of(P.ROOM_LEAVE_USER_NOTIFY).length - leavesBefore >= victims.length, LEASE_MS + 3000, 'leave notifies');
    expect(Date.now() - killedAt).toBeLessThan(LEASE_MS + 3000);
    expect(watcher.of(P.ROOM_LEAVE_USER_NOTIFY).slice(leavesBefore).map(notifyUser).sort()).toEqual([...victims].sort());
    for (const s of survivors) {
      const c = members.get(s) as ChatTestClient;
      await c.waitFor(() => c.of(P.ROOM_LEAVE_USER_NOTIFY).length >= victims.length, 5000, 'leave notifies');
    }

    // Their ids log in again (on either worker), and the restarted worker takes connections.
    const again: ChatTestClient[] = [];
    for (const v of victims) {
      const c = await w.client();
      expect(await loginSoon(c, v, LEASE_MS + 3000)).toBe(R.NONE);
      expect((await c.enter(0)).result).toBe(R.NONE);
      again.push(c);
    }
    for (let i = 0; i < 16; i++) expect(await (await w.client()).login(`n${i}`)).toBe(R.NONE);
    const after = await w.owners();
    expect([...after.values()]).toContain(restarted);
    expect([...after.values()]).not.toContain(before.get(1));
    const sender = again[0];
    expect(await sender.chat('back')).toBe(R.NONE);
    await watcher.waitFor(() => watcher.notifies().some((n) => n.message.toString() === 'back'), 5000, 'the chat of a user that logged in again');
    expect(watcher.notifies().filter((n) => n.message.toString() === 'back')).toHaveLength(1);

    // Killed again at once: a crash in a row waits before its restart.
    process.kill(restarted, 'SIGKILL');
    await w.cli.waitErrorOutput(new RegExp(`worker 1 \\(pid ${restarted}\\) ended \\(signal SIGKILL\\); restarting in 250 ms\\n`), 5000);
    const third = Number((await w.cli.waitOutput(new RegExp(`worker 1: pid (?!${restarted}\\b)(\\d+) \\(restarted\\)\\n`), 30_000))[1]);
    w.seen.add(third);
    expect(procPpid(third)).toBe(w.cli.proc.pid);
  });

  it('SIGTERM to the primary: every client on every worker gets SERVER_SHUTDOWN after what was queued, exit 0, no worker left', async () => {
    w = new Workers(backend);
    await w.start(2);
    const pids = [...w.pids().values()];
    const members = await w.members('s', 10);
    const owners = await w.owners();
    expect(new Set(owners.values())).toEqual(new Set(pids));
    // Every member chats, and the primary gets SIGTERM as soon as each chat was answered: the
    // notifies to the members on the sender's worker were queued by then and go out before
    // the shutdown notify (those for the other worker cross Redis and may be cut off).
    for (const c of members.values()) c.send(P.ROOM_CHAT_REQUEST, chatBody('bye'));
    for (const c of members.values()) await c.waitFor(() => c.of(P.ROOM_CHAT_RESPONSE).length === 1, 5000, 'the chat response');
    w.cli.proc.kill('SIGTERM');
    expect(await w.cli.waitExit(20_000)).toBe(0);
    for (const [user, c] of members) {
      await c.waitClosed(5000);
      expectShutdownNotify(c);
      const from = c.notifies().map((n) => n.userId);
      const local = [...owners].filter(([, pid]) => pid === owners.get(user)).map(([u]) => u);
      for (const sender of local)
        expect(
          from.filter((u) => u === sender),
          `${user} got ${sender}'s chat once`,
        ).toHaveLength(1);
      expect(new Set(from).size).toBe(from.length);
    }
    const out = plain(w.cli.stdout);
    expect(out).toContain('SIGTERM: shutting down 2 workers\n');
    expect(out).toMatch(/worker 1: closed\n/);
    expect(out).toMatch(/worker 2: closed\n/);
    expect(out.endsWith('closed\n')).toBe(true);
    for (const pid of pids) expect(fs.existsSync(`/proc/${pid}`), `worker ${pid} still exists`).toBe(false);
    // Their nodes left the cluster: Redis holds no login of theirs.
    expect((await w.owners()).size).toBe(0);
  });
});
