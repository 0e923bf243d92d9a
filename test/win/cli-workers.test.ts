import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChatResult, DisconnectCode, PacketId } from '../../lib/index';
import { ChatTestClient } from '../helpers/chat-client';
import { RedisServer, redisServerAvailable } from '../helpers/redis';
import { spawnStaged } from './remote-server';

// `chat-server --workers` in Windows Node under Wine: what works on Windows.
// The js backend's workers share the port through node:cluster (on Windows
// its primary hands the listening socket to every worker, which accept on
// it themselves); the native engine has no SO_REUSEPORT there, so
// --workers above 1 with it is a usage error. The clients and Redis run on
// Linux. Without the runner's IOCPNET_WIN_HOST_COMMAND it is skipped.

const available = process.env.IOCPNET_WIN_HOST_COMMAND !== undefined && redisServerAvailable();
const LEASE_MS = 2000;

let redis: RedisServer;
let dir = '';
let runs = 0;

beforeAll(async () => {
  if (!available) return;
  redis = await RedisServer.start();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iocpnet-win-workers-'));
});
afterAll(async () => {
  if (!available) return;
  await redis.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The primary under Wine; its output (the workers' too) goes to a file. */
class Primary {
  readonly log = path.join(dir, `primary-${++runs}.log`);
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawnStaged(this.log, path.join('lib', 'cli.js'), ['chat-server', ...args]);
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  text(): string {
    return fs.existsSync(this.log) ? fs.readFileSync(this.log, 'utf8').replace(/\r/g, '') : '';
  }

  async wait(re: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.text().match(re);
      if (m) return m;
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error(`no ${re} in the primary's output:\n${this.text()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async exitCode(timeoutMs = 30_000): Promise<number | null | 'timeout'> {
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([this.exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)))]);
    clearTimeout(timer);
    return outcome;
  }
}

describe.skipIf(!available)('chat-server --workers under Wine (Windows Node)', () => {
  const clients: ChatTestClient[] = [];
  let primary: Primary | undefined;
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    if (primary && primary.child.exitCode === null) {
      primary.child.kill('SIGINT');
      if ((await primary.exitCode(20_000)) === 'timeout') primary.child.kill('SIGKILL');
    }
    primary = undefined;
  });

  it('--workers 2 with the native engine is a usage error: Windows has no SO_REUSEPORT', async () => {
    primary = new Primary(['--workers', '2', '--backend', 'native', '--port', '0', '--redis', redis.url]);
    expect(await primary.exitCode()).toBe(2);
    expect(primary.text()).toContain('error: --workers above 1 needs --backend js on Windows, which has no SO_REUSEPORT');
  });

  it('js backend: two workers share the port, log in to one cluster, a killed worker is restarted, and SIGINT (Ctrl+C) shuts all down with SERVER_SHUTDOWN, exit 0', async () => {
    const prefix = `win${process.pid}-${Date.now()}:`;
    const p = new Primary([
      ...['--workers', '2', '--backend', 'js', '--host', '127.0.0.1', '--port', '0'],
      ...['--redis', redis.url, '--cluster-prefix', prefix, '--cluster-lease-ms', String(LEASE_MS)],
    ]);
    primary = p;
    const port = Number((await p.wait(/\(js backend, 2 workers\) listening on 127\.0\.0\.1:(\d+)\n/))[1]);
    const w1 = Number((await p.wait(/worker 1: pid (\d+)\n/))[1]);
    const w2 = Number((await p.wait(/worker 2: pid (\d+)\n/))[1]);
    // Both workers joined the cluster as nodes of their own (hostname:pid, Windows pids).
    const nodes = (await redis.admin.smembers(`${prefix}nodes`)).map((n) => Number(n.slice(n.lastIndexOf(':') + 1)));
    expect(nodes.sort()).toEqual([w1, w2].sort());

    for (let i = 0; i < 8; i++) {
      const c = await ChatTestClient.connect(port);
      clients.push(c);
      await c.join(`u${i}`, 0);
    }
    const owners = Object.values(await redis.admin.hgetall(`${prefix}users`)).map((n) => Number(n.slice(n.lastIndexOf(':') + 1)));
    expect(owners).toHaveLength(8);
    // Windows leaves the spreading to the system (node:cluster's SCHED_NONE): say what it did, do not require both.
    console.log(`connections per worker under Wine: ${w1}: ${owners.filter((o) => o === w1).length}, ${w2}: ${owners.filter((o) => o === w2).length}`);
    expect(await clients[0].chat('hello')).toBe(ChatResult.NONE);
    for (const c of clients) await c.waitFor(() => c.notifies().some((n) => n.message.toString() === 'hello'), 10_000, 'the chat');

    // A worker ended from outside (TerminateProcess) is restarted.
    const wine = JSON.parse(process.env.IOCPNET_WIN_HOST_COMMAND as string) as { command: string; env: Record<string, string | null> };
    const kill = spawnSync(wine.command, ['taskkill', '/F', '/PID', String(w2)], {
      env: { ...process.env, ...Object.fromEntries(Object.entries(wine.env).filter((e): e is [string, string] => e[1] !== null)) },
      timeout: 30_000,
    });
    expect(kill.status).toBe(0);
    // Windows taskkill /F ends it with exit code 1, Wine's with 0; either way it did not ask to go.
    await p.wait(new RegExp(`worker 2 \\(pid ${w2}\\) ended \\(exit code \\d+\\); restarting in 0 ms\\n`), 20_000);
    await p.wait(/worker 2: pid \d+ \(restarted\)\n/, 60_000);

    const live = clients.filter((c) => !c.raw.closed);
    expect(live.length).toBeGreaterThan(0);
    p.child.kill('SIGINT');
    expect(await p.exitCode()).toBe(0);
    for (const c of live) {
      await c.waitClosed(10_000);
      const last = c.packets[c.packets.length - 1];
      expect(last.id).toBe(PacketId.DISCONNECT_NOTIFY);
      expect(last.body.readUInt16LE(0)).toBe(DisconnectCode.SERVER_SHUTDOWN);
    }
    expect(p.text()).toContain('SIGINT: shutting down 2 workers\n');
    expect(p.text().endsWith('closed\n')).toBe(true);
  }, 240_000);
});
