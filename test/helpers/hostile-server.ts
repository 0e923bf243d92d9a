import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import type { BackendName, ChatServerOptions, ChatStats, ServerStats } from '../../lib/index';
import { childPrelude } from './engine-harness';

/** An application request the child answers with ECHO_RESPONSE carrying the same body. */
export const ECHO_REQUEST = 900;
export const ECHO_RESPONSE = 901;

export interface ChildStats {
  server: ServerStats;
  chat: ChatStats;
  /** ECHO_REQUESTs whose answer was queued (send() returned true). */
  echoed: number;
  /** 'error' events the server emitted (handler errors). */
  errors: number;
  /** 'disconnect' events by reason, as application code saw them. */
  disconnects: Record<string, number>;
  /** The child's process.memoryUsage(): heapUsed after collectGarbage() shows a JS leak far below RSS noise. */
  memory: NodeJS.MemoryUsage;
}

/**
 * The chat server of lib/chat in a child process, so that its resident
 * memory and open descriptors can be read from /proc without the test's own
 * sockets and heap in the figures. It also answers ECHO_REQUEST, and reports
 * its counters over IPC; on SIGTERM it closes as the CLI does and reports
 * its last counters before it exits.
 */
export class ServerChild {
  readonly proc: ChildProcess;
  readonly pid: number;
  port = 0;
  stderr = '';
  /** The counters sent after close() resolved, once the child got SIGTERM. */
  final: ChildStats | undefined;
  readonly exited: Promise<number | null>;
  #nextId = 1;
  readonly #pending = new Map<number, (s: ChildStats) => void>();

  private constructor(proc: ChildProcess) {
    this.proc = proc;
    if (proc.pid === undefined) throw new Error('could not start the server child');
    this.pid = proc.pid;
    proc.stderr?.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    proc.stdout?.resume();
    this.exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
    proc.on('message', (m: { type: string; id?: number; stats?: ChildStats }) => {
      if (m.type === 'stats' && m.id !== undefined && m.stats) {
        this.#pending.get(m.id)?.(m.stats);
        this.#pending.delete(m.id);
      } else if (m.type === 'final' && m.stats) {
        this.final = m.stats;
      }
    });
  }

  /** Starts the child on 127.0.0.1:0 and resolves once it listens. */
  static async start(backend: BackendName, options: ChatServerOptions = {}, timeoutMs = 20000): Promise<ServerChild> {
    const proc = spawn(process.execPath, ['-e', CHILD_SOURCE, JSON.stringify({ backend, options })], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const child = new ServerChild(proc);
    child.port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`the server child did not listen within ${timeoutMs} ms\n${child.stderr}`));
      }, timeoutMs);
      proc.on('message', (m: { type: string; port?: number }) => {
        if (m.type !== 'listening' || m.port === undefined) return;
        clearTimeout(timer);
        resolve(m.port);
      });
      proc.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the server child exited (${signal ?? code}) before listening\n${child.stderr}`));
      });
    });
    return child;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The child's counters now. */
  stats(timeoutMs = 10000): Promise<ChildStats> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`no stats from the server child within ${timeoutMs} ms (running=${this.running})\n${this.stderr}`));
      }, timeoutMs);
      this.#pending.set(id, (s) => {
        clearTimeout(timer);
        resolve(s);
      });
      this.proc.send({ type: 'stats', id });
    });
  }

  /** Runs a full garbage collection in the child, so that heap left for a later collection is not counted as growth. */
  async collectGarbage(): Promise<void> {
    this.proc.send({ type: 'gc' });
    await this.stats();
  }

  /** Resident set size in KiB (VmRSS). */
  rssKiB(): number {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${this.pid}/status`, 'utf8'));
    if (!m) throw new Error(`no VmRSS for ${this.pid}`);
    return Number(m[1]);
  }

  /**
   * Time the child's threads have run on a CPU, and have waited on a run
   * queue for one, in ms (the sum of /proc/PID/task/TID/schedstat). CPU time
   * measures the server's work whatever else the machine runs; the wait is
   * what other processes (and the server's own threads) add to its latency.
   */
  schedMs(): { run: number; wait: number } {
    let run = 0;
    let wait = 0;
    for (const tid of fs.readdirSync(`/proc/${this.pid}/task`)) {
      try {
        const [r, w] = fs.readFileSync(`/proc/${this.pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
        run += r / 1e6;
        wait += w / 1e6;
      } catch {
        // A thread that ended meanwhile.
      }
    }
    return { run, wait };
  }

  /** Open file descriptors (sockets, pipes, epoll and event fds). */
  fds(): number {
    return fs.readdirSync(`/proc/${this.pid}/fd`).length;
  }

  /** Sends SIGTERM and waits for the exit; resolves with the exit code. */
  async terminate(timeoutMs = 20000): Promise<number | null> {
    if (this.running) this.proc.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
    const outcome = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      this.kill();
      throw new Error(`the server child did not exit within ${timeoutMs} ms of SIGTERM\n${this.stderr}`);
    }
    return outcome;
  }

  kill(): void {
    if (this.running) this.proc.kill('SIGKILL');
  }
}

// Runs in the child. The counters go out over IPC; the exit waits until the
// last message is written.
const CHILD_SOURCE = `
  let iocpnet;
  {
    ${childPrelude().replace('const iocpnet =', 'iocpnet =')}
  }
  // The compiler was needed only to load lib/; dropping every reference to it keeps its memory out of the figures.
  delete require.extensions['.ts'];
  for (const key of Object.keys(require.cache)) if (key.includes('/node_modules/typescript/')) delete require.cache[key];
  const v8 = require('node:v8');
  const vm = require('node:vm');
  const { backend, options } = JSON.parse(process.argv[1]);
  const chat = iocpnet.createChatServer({ ...options, backend });
  const server = chat.server;
  let echoed = 0;
  let errors = 0;
  chat.router.on(${ECHO_REQUEST}, (conn, _id, body) => {
    if (conn.send(${ECHO_RESPONSE}, body)) echoed++;
  });
  const disconnects = {};
  server.on('disconnect', (conn, reason) => {
    disconnects[reason] = (disconnects[reason] ?? 0) + 1;
  });
  server.on('error', (err) => {
    errors++;
    console.error('error: ' + err.message);
  });
  const stats = () => ({ server: server.stats(), chat: chat.stats(), echoed, errors, disconnects, memory: process.memoryUsage() });
  let gc;
  process.on('message', (m) => {
    if (m.type === 'gc') {
      if (gc === undefined) {
        v8.setFlagsFromString('--expose-gc');
        gc = vm.runInNewContext('gc');
      }
      gc();
    } else if (m.type === 'stats') {
      process.send({ type: 'stats', id: m.id, stats: stats() });
    }
  });
  // The test process is gone: do not outlive it.
  process.on('disconnect', () => process.exit(1));
  let closing = false;
  process.on('SIGTERM', () => {
    if (closing) return;
    closing = true;
    chat.close().then(() => process.send({ type: 'final', stats: stats() }, () => process.exit(0)));
  });
  chat.listen(0, '127.0.0.1').then(
    (a) => process.send({ type: 'listening', port: a.port }),
    (err) => { console.error(err); process.exit(1); },
  );
`;
