/**
 * A redis-server of one's own for the tests, the soaks and the benchmark:
 * Debian's redis-server (.ci/run installs it) on 127.0.0.1, a free port, a
 * temporary directory, no persistence, a child process in the foreground,
 * never a system service. Also what is measured of it: its CPU from /proc
 * and its per-command call counts from INFO commandstats.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { cpuSeconds } from './proc-stats';

/** True when redis-server is on PATH (.ci/run installs it; a developer may lack it). */
export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A redis-server of the test's own: 127.0.0.1, a free port, a temporary
 * directory, no persistence, in the foreground as a child of the test
 * process (never a system service). stop() ends it and removes the folder.
 */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  #child: ChildProcess | undefined;
  #admin: Redis | undefined;

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), mkdtempSync(path.join(tmpdir(), 'iocpnet-redis-')));
    await server.#spawn();
    return server;
  }

  /** The running server's pid, for /proc. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** CPU seconds (user + system) the running server used so far, from /proc; undefined when it is gone or not on Linux. */
  cpuSeconds(): number | undefined {
    const pid = this.pid;
    return pid === undefined ? undefined : cpuSeconds(pid);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** A client for the test's own commands (CLIENT KILL, CLIENT PAUSE, INFO); not of type normal's victims: it skips itself. */
  get admin(): Redis {
    this.#admin ??= new Redis(this.url, { protocol: 2, maxRetriesPerRequest: 3, connectionName: 'test-admin', lazyConnect: false });
    return this.#admin;
  }

  /** Kills the server (SIGKILL) and starts an empty one on the same port. */
  async restartEmpty(): Promise<void> {
    await this.crash();
    await this.revive();
  }

  /** Kills the server (SIGKILL); revive() starts an empty one on the same port. */
  crash(): Promise<void> {
    this.#admin?.disconnect();
    this.#admin = undefined;
    return this.#kill('SIGKILL');
  }

  revive(): Promise<void> {
    return this.#spawn();
  }

  /**
   * Per-command call counts of INFO commandstats, e.g. { xadd: 12, eval: 40 }.
   * The calls that scripts make count too (EVAL is one, each redis.call in it one more).
   */
  async commandCalls(): Promise<Record<string, number>> {
    const info = await this.admin.info('commandstats');
    const out: Record<string, number> = {};
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]] = Number(m[2]);
    return out;
  }

  async stop(): Promise<void> {
    this.#admin?.disconnect();
    this.#admin = undefined;
    await this.#kill('SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #spawn(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s:\n${output}`)), 10_000);
      const check = setInterval(() => {
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          clearInterval(check);
          resolve();
        }
      }, 20);
      child.once('exit', (code) => {
        clearTimeout(timer);
        clearInterval(check);
        reject(new Error(`redis-server exited with ${code}:\n${output}`));
      });
    });
  }

  #kill(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill(signal);
    });
  }
}
