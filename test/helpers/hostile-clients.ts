import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { ensureLoadgen } from '../../bench/loadgen-build';
import { ChatPacketId } from '../../lib/index';
import { enterBody, loginBody } from './chat-client';
import { frame } from './raw-client';

export const ROOT = path.resolve(__dirname, '..', '..');

/** Runs task(0..n-1) with at most concurrency of them at once; resolves when all have settled, rejects with the first error. */
export async function runPool(n: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: Error | undefined;
  const worker = async (): Promise<void> => {
    while (next < n && failed === undefined) {
      const i = next++;
      try {
        await task(i);
      } catch (err) {
        failed ??= err instanceof Error ? err : new Error(String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  if (failed !== undefined) throw failed;
}

/** Connects a plain socket to 127.0.0.1:port; rejects on error or after timeoutMs. */
export function connectSocket(port: number, timeoutMs = 10000, options: Partial<net.NetConnectOpts> = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', ...options } as net.NetConnectOpts);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to port ${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

export interface SessionEnd {
  /** Bytes the server sent. */
  bytes: number;
  /** The server finished with a FIN (true) or the socket failed (false). */
  clean: boolean;
}

/**
 * One session cycle as a real client does it: connect, LOGIN, ROOM_ENTER,
 * ROOM_LEAVE, then FIN; resolves when the server has answered and closed
 * its side too.
 */
export async function sessionCycle(port: number, userId: string, room: number, timeoutMs = 10000): Promise<SessionEnd> {
  const socket = await connectSocket(port, timeoutMs);
  return new Promise((resolve, reject) => {
    let bytes = 0;
    let ended = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`session ${userId} did not end within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    socket.on('end', () => (ended = true));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ bytes, clean: ended });
    });
    socket.end(
      Buffer.concat([
        frame(ChatPacketId.LOGIN_REQUEST, loginBody(userId)),
        frame(ChatPacketId.ROOM_ENTER_REQUEST, enterBody(room)),
        frame(ChatPacketId.ROOM_LEAVE_REQUEST),
      ]),
    );
  });
}

/**
 * A chat client that logs in, enters room and then never reads again, in
 * python3: it sets a receive buffer of 4 KiB and an Ethernet-sized MSS
 * (1460) before it connects, which node:net cannot do. Over loopback the
 * MSS would be 64 KiB and the kernel alone would absorb several MiB for a
 * reader that never reads; with a real network's MSS a stalled reader fills
 * the server's send queue after tens of KiB, as it would in production.
 * With read set it reads and discards everything instead (a control).
 */
export class PythonChatClient {
  readonly proc: ChildProcess;
  output = '';
  readonly exited: Promise<void>;

  constructor(port: number, userId: string, room: number, read: boolean) {
    const hello = Buffer.concat([frame(ChatPacketId.LOGIN_REQUEST, loginBody(userId)), frame(ChatPacketId.ROOM_ENTER_REQUEST, enterBody(room))]);
    const script = `
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1460)
s.connect(('127.0.0.1', ${port}))
s.sendall(bytes.fromhex('${hello.toString('hex')}'))
print('sent', flush=True)
deadline = time.time() + 120
if ${read ? 'True' : 'False'}:
    s.settimeout(1)
    while time.time() < deadline:
        try:
            if not s.recv(65536):
                break
        except socket.timeout:
            pass
else:
    # Never reads; stays until killed (bounded in case the parent is gone).
    while time.time() < deadline and sys.stdin.read(1):
        pass
`;
    this.proc = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout?.setEncoding('utf8').on('data', (s: string) => (this.output += s));
    this.proc.stderr?.setEncoding('utf8').on('data', (s: string) => (this.output += s));
    this.exited = new Promise((resolve) => this.proc.on('close', () => resolve()));
    this.proc.on('error', (err) => (this.output += `spawn error: ${err.message}`));
  }

  async waitSent(timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.output.includes('sent')) {
      if (Date.now() > deadline || this.proc.exitCode !== null) throw new Error(`python3 client did not start: ${this.output}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

/** True when python3 can be run. */
export function hasPython3(): boolean {
  const r = spawnSync('python3', ['-c', 'pass'], { stdio: 'ignore' });
  return r.status === 0;
}

/** What the load generator prints (bench/loadgen/report.cpp), as far as these checks read it. */
export interface LoadgenReport {
  scenario: string;
  connections: number;
  ready: number;
  failed: number;
  duration_s: number;
  throughput: { name: string; value: number };
  requests_per_s: number;
  latency_us: { count: number; p50: number; p90: number; p99: number; p999: number; max: number };
  errors: Record<string, number>;
  disconnect_notify: Record<string, number>;
  error?: string;
}

/** The load generator binary, built on first use (bench/loadgen-build.ts). */
export function loadgenBinary(): string {
  return ensureLoadgen(ROOT, () => undefined);
}

/** Runs the load generator to its end and parses its report; rejects after timeoutMs. */
export function runLoadgen(args: string[], timeoutMs: number): Promise<LoadgenReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(loadgenBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the load generator did not finish within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(stdout) as LoadgenReport);
      } catch {
        reject(new Error(`the load generator exited with ${code} and no report\n${stdout}\n${stderr}`));
      }
    });
  });
}

/** The sum of the load generator's error counters (last_errno and last_result are not counts). */
export function loadgenErrors(r: LoadgenReport): number {
  let n = 0;
  for (const [k, v] of Object.entries(r.errors)) if (k !== 'last_errno' && k !== 'last_result') n += v;
  return n;
}

/** Calls read() every everyMs until stop(); stop() resolves with the largest value read. */
export function sampleMax(read: () => number, everyMs: number): { stop(): number } {
  let max = read();
  const timer = setInterval(() => {
    try {
      max = Math.max(max, read());
    } catch {
      // The process went away; the checks after stop() report it.
    }
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return max;
    },
  };
}
