import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PacketId } from '../lib/index';
import { ChatTestClient, expectShutdownNotify } from './helpers/chat-client';
import { CLI, Spawned, ensureBuilt, plain } from './helpers/chat-cli';
import { backends } from './helpers/raw-client';

// The chat server started through a parent that then dies. Process state is
// read from /proc; a keeper above that parent makes itself the subreaper
// (prctl PR_SET_CHILD_SUBREAPER) and reaps nothing until the test ends, so
// the orphaned server is reparented to it and, once it exits, stays a zombie
// whose exit status /proc/<pid>/stat still shows.

/** How long an orphaned server may take to notice (it looks once a second) and shut down. */
const ORPHAN_EXIT_BOUND_MS = 10_000;

const KEEPER = `
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    sys.exit('prctl(PR_SET_CHILD_SUBREAPER) failed: errno %d' % ctypes.get_errno())
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
print('keeper %d child %d' % (os.getpid(), pid), flush=True)
sys.stdin.read()
`;

/** A parent that starts the server with its own pipes for output and relays them, so they break when it dies. */
const PIPING_PARENT = `
const child = require('node:child_process').spawn(process.execPath, process.argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
child.stdout.pipe(process.stdout);
child.stderr.pipe(process.stderr);
`;

interface ProcStat {
  state: string;
  ppid: number;
  /** The status waitpid() would report (field 52); meaningful once state is Z. */
  exitStatus: number;
}

function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after "pid (comm) ": rest[k] is field k + 3 of proc(5).
  const rest = text
    .slice(text.lastIndexOf(')') + 2)
    .trim()
    .split(' ');
  return { state: rest[0], ppid: Number(rest[1]), exitStatus: Number(rest[49]) };
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (/^\d+$/.test(entry) && procStat(Number(entry))?.ppid === pid) out.push(Number(entry));
  }
  return out;
}

async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Follows single children down from pid to the process running the CLI's chat-server. */
function findServer(pid: number): number | undefined {
  for (let p = pid, depth = 0; depth < 6; depth++) {
    const cmdline = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
    if (cmdline[2] === 'chat-server' && /(\/lib\/cli\.js|\/\.bin\/iocpnet)$/.test(cmdline[1] ?? '')) return p;
    const kids = childrenOf(p);
    if (kids.length !== 1) return undefined;
    p = kids[0];
  }
  return undefined;
}

interface Started {
  keeper: Spawned;
  keeperPid: number;
  /** The keeper's child: the parent that the test kills (or npx). */
  parentPid: number;
  serverPid: number;
  /** The server's parent before anything is killed. */
  serverParent: number;
  port: number;
}

const keepers: Spawned[] = [];
const servers: Array<{ pid: number; keeperPid: number }> = [];
const clients: ChatTestClient[] = [];

afterEach(async () => {
  for (const c of clients) c.destroy();
  clients.length = 0;
  // Only a server that is still our keeper's live child is killed, never a pid that may have been reused.
  for (const s of servers) {
    const st = procStat(s.pid);
    if (st && st.state !== 'Z' && st.ppid === s.keeperPid) process.kill(s.pid, 'SIGKILL');
  }
  servers.length = 0;
  for (const k of keepers) {
    k.proc.stdin?.end();
    k.kill();
  }
  await Promise.all(keepers.map((k) => k.exited));
  keepers.length = 0;
});

/** Starts command under the keeper; waits for the server's listening line and finds its pid in /proc. */
async function start(command: string[], env: NodeJS.ProcessEnv = process.env, startMs = 20_000): Promise<Started> {
  const keeper = new Spawned('python3', ['-c', KEEPER, ...command], env);
  keepers.push(keeper);
  const k = await keeper.waitOutput(/keeper (\d+) child (\d+)/);
  const [keeperPid, parentPid] = [Number(k[1]), Number(k[2])];
  const port = Number((await keeper.waitOutput(/listening on 127\.0\.0\.1:(\d+)/, startMs))[1]);
  const serverPid = await until('the server process', 5000, () => findServer(parentPid));
  servers.push({ pid: serverPid, keeperPid });
  const serverParent = procStat(serverPid)?.ppid ?? -1;
  return { keeper, keeperPid, parentPid, serverPid, serverParent, port };
}

function serverArgs(backend: string, extra: string[] = []): string[] {
  return ['chat-server', '--host', '127.0.0.1', '--port', '0', '--io-threads', '1', '--backend', backend, ...extra];
}

async function client(port: number): Promise<ChatTestClient> {
  const c = await ChatTestClient.connect(port);
  clients.push(c);
  return c;
}

/** Waits for pid to become a zombie; returns it and how long that took. */
async function waitZombie(pid: number, timeoutMs: number): Promise<{ stat: ProcStat; ms: number }> {
  const t0 = Date.now();
  const stat = await until(`process ${pid} to exit`, timeoutMs, () => {
    const st = procStat(pid);
    return st?.state === 'Z' ? st : undefined;
  });
  return { stat, ms: Date.now() - t0 };
}

/** Logs a client in, sends `signal` to the server's parent, and checks that the orphaned server shut down: exit 0, SERVER_SHUTDOWN, EOF. */
async function killParentAndExpectShutdown(s: Started, signal: NodeJS.Signals): Promise<void> {
  const a = await client(s.port);
  expect(await a.login('a')).toBe(0);
  process.kill(s.parentPid, signal);
  const { stat } = await waitZombie(s.serverPid, ORPHAN_EXIT_BOUND_MS);
  expect(stat.ppid).toBe(s.keeperPid);
  expect(stat.exitStatus).toBe(0);
  await a.waitClosed();
  expectShutdownNotify(a);
}

describe.skipIf(process.platform !== 'linux')('iocpnet chat-server whose parent exits', () => {
  beforeAll(() => ensureBuilt(), 200_000);

  describe.each(backends())('%s backend', (backend) => {
    it('shuts down as on SIGTERM when its parent shell is killed: SERVER_SHUTDOWN, EOF, exit 0', async () => {
      const s = await start(['sh', '-c', '"$@" & wait', 'sh', process.execPath, CLI, ...serverArgs(backend)]);
      expect(s.serverParent).toBe(s.parentPid);
      await killParentAndExpectShutdown(s, 'SIGKILL');
      const out = plain(s.keeper.stdout);
      expect(out).toContain(`parent process ${s.parentPid} exited (parent is now ${s.keeperPid}): shutting down\n`);
      expect(out).toMatch(/shutting down\nclosed\n/);
    });

    it('also when the dead parent held its output pipes', async () => {
      const s = await start([process.execPath, '-e', PIPING_PARENT, CLI, ...serverArgs(backend)]);
      expect(s.serverParent).toBe(s.parentPid);
      await killParentAndExpectShutdown(s, 'SIGKILL');
    });

    it('keeps serving with --no-exit-with-parent, and still shuts down on SIGTERM', async () => {
      const s = await start(['sh', '-c', '"$@" & wait', 'sh', process.execPath, CLI, ...serverArgs(backend, ['--no-exit-with-parent'])]);
      const a = await client(s.port);
      expect(await a.login('a')).toBe(0);
      process.kill(s.parentPid, 'SIGKILL');
      await until('the server to be reparented', 5000, () => (procStat(s.serverPid)?.ppid === s.keeperPid ? true : undefined));
      await new Promise((r) => setTimeout(r, ORPHAN_EXIT_BOUND_MS));
      const st = procStat(s.serverPid);
      expect(st?.state).not.toBe('Z');
      expect(st?.ppid).toBe(s.keeperPid);
      expect(a.raw.closed).toBe(false);
      const pong = await a.request(PacketId.PING, undefined, PacketId.PONG);
      expect(pong.id).toBe(PacketId.PONG);
      expect(plain(s.keeper.stdout)).not.toMatch(/shutting down/);
      process.kill(s.serverPid, 'SIGTERM');
      expect((await waitZombie(s.serverPid, ORPHAN_EXIT_BOUND_MS)).stat.exitStatus).toBe(0);
      await a.waitClosed();
      expectShutdownNotify(a);
      expect(plain(s.keeper.stdout)).toMatch(/SIGTERM: shutting down\nclosed\n/);
    });
  });

  describe.each(backends())('with --workers (%s backend)', (backend) => {
    // One worker needs no Redis; the primary and its worker run the same command line.
    const workerArgs = (extra: string[] = []) => serverArgs(backend, ['--workers', '1', ...extra]);

    /** The primary's one worker, from its line. */
    async function workerOf(s: Started): Promise<number> {
      const pid = Number((await s.keeper.waitOutput(/worker 1: pid (\d+)\n/))[1]);
      expect(procStat(pid)?.ppid).toBe(s.serverPid);
      servers.push({ pid, keeperPid: s.keeperPid });
      return pid;
    }

    it('the primary and its worker shut down when the parent shell is killed: SERVER_SHUTDOWN, exit 0, nothing left', async () => {
      const s = await start(['sh', '-c', '"$@" & wait', 'sh', process.execPath, CLI, ...workerArgs()]);
      const worker = await workerOf(s);
      const a = await client(s.port);
      expect(await a.login('a')).toBe(0);
      process.kill(s.parentPid, 'SIGKILL');
      const { stat } = await waitZombie(s.serverPid, ORPHAN_EXIT_BOUND_MS);
      expect(stat.exitStatus).toBe(0);
      // The primary reaped its worker before it exited.
      expect(procStat(worker)).toBeUndefined();
      await a.waitClosed();
      expectShutdownNotify(a);
      const out = plain(s.keeper.stdout);
      const reason = `parent process ${s.parentPid} exited (parent is now ${s.keeperPid})`;
      // The primary tells its worker why.
      expect(out).toContain(`${reason}: shutting down 1 worker\nworker 1: ${reason}: shutting down\nworker 1: closed\nclosed\n`);
    });

    it('a worker whose primary is SIGKILLed shuts down as on SIGTERM (SERVER_SHUTDOWN, exit 0), also with --no-exit-with-parent', async () => {
      const s = await start(['sh', '-c', '"$@" & wait', 'sh', process.execPath, CLI, ...workerArgs(['--no-exit-with-parent'])]);
      const worker = await workerOf(s);
      const a = await client(s.port);
      expect(await a.login('a')).toBe(0);
      process.kill(s.serverPid, 'SIGKILL');
      const { stat } = await waitZombie(worker, ORPHAN_EXIT_BOUND_MS);
      expect(stat.ppid).toBe(s.keeperPid);
      expect(stat.exitStatus).toBe(0);
      await a.waitClosed();
      expectShutdownNotify(a);
      expect(plain(s.keeper.stdout)).toMatch(new RegExp(`worker 1: primary process ${s.serverPid} is gone: shutting down\nworker 1: closed\n`));
    });

    it('--no-exit-with-parent keeps the primary and its worker serving when the parent shell is killed', async () => {
      const s = await start(['sh', '-c', '"$@" & wait', 'sh', process.execPath, CLI, ...workerArgs(['--no-exit-with-parent'])]);
      const worker = await workerOf(s);
      const a = await client(s.port);
      expect(await a.login('a')).toBe(0);
      process.kill(s.parentPid, 'SIGKILL');
      await until('the primary to be reparented', 5000, () => (procStat(s.serverPid)?.ppid === s.keeperPid ? true : undefined));
      await new Promise((r) => setTimeout(r, 3000));
      expect(procStat(s.serverPid)?.state).not.toBe('Z');
      expect(procStat(worker)?.ppid).toBe(s.serverPid);
      expect((await a.request(PacketId.PING, undefined, PacketId.PONG)).id).toBe(PacketId.PONG);
      process.kill(s.serverPid, 'SIGTERM');
      expect((await waitZombie(s.serverPid, ORPHAN_EXIT_BOUND_MS)).stat.exitStatus).toBe(0);
      await a.waitClosed();
      expectShutdownNotify(a);
    });
  });

  describe('through npx', () => {
    // npx resolves the checkout's own bin (it links the package into its cache, here a fresh one); --offline keeps npm off the network.
    let cache = '';
    beforeAll(() => {
      cache = fs.mkdtempSync(path.join(os.tmpdir(), 'iocpnet-npx-cache-'));
    });
    afterAll(() => fs.rmSync(cache, { recursive: true, force: true }));

    it.each(backends())(
      'SIGTERM to npx: npm passes it to its shell only, and the orphaned server (%s) shuts down, exit 0',
      async (backend) => {
        const env = { ...process.env, npm_config_cache: cache, npm_config_update_notifier: 'false' };
        const s = await start(['npx', '--offline', '--no-install', 'iocpnet', ...serverArgs(backend)], env, 60_000);
        // npm exec -> sh -c 'iocpnet' ... -> node .../.bin/iocpnet chat-server
        expect(s.serverParent).not.toBe(s.parentPid);
        expect(procStat(s.serverParent)?.ppid).toBe(s.parentPid);
        await killParentAndExpectShutdown(s, 'SIGTERM');
        // The server saw no SIGTERM of its own: it went because its parent, the shell, was gone.
        const out = plain(s.keeper.stdout);
        expect(out).toContain(`parent process ${s.serverParent} exited (parent is now ${s.keeperPid}): shutting down\n`);
        expect(out).not.toMatch(/SIGTERM: shutting down/);
      },
      90_000,
    );
  });
});
