import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { BackendName } from '../lib/index';
import { childPrelude, waitUntil } from './helpers/engine-harness';
import { backends } from './helpers/raw-client';

// What a server process holds for the packets one flush queues: 2,000
// broadcasts of a 32-byte body to the same 200 connections in one tick,
// 400,000 packets queued at once. A receiver's share should be a few tens
// of bytes: its copy of the packet (js) or its slice of the one shared
// chunk (native). The peak RSS the flush adds is read from the child's
// /proc/self/status, after a write to clear_refs set its peak to the
// current RSS.

const CONNECTIONS = 200;
const BROADCASTS = 2000;
const BODY = 32;
const PACKET = 5 + BODY;
/**
 * The peak RSS one queued packet may add, in bytes. Measured here: native
 * 2-34 (one or two IO threads; a slice is 16 bytes), js under 7 (the
 * child's V8 heap has room left from the TypeScript transpiler); a native
 * command per receiver (80 bytes each, in vectors that double) came to
 * 117-164.
 */
const MAX_BYTES_PER_RECEIVER = 64;

const CHILD_SOURCE = `${childPrelude()}
  const { backend, ioThreads, connections, broadcasts, body } = JSON.parse(process.argv[1]);
  const status = (name) => Number(new RegExp('^' + name + ':\\\\s+(\\\\d+) kB', 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
  const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
  const server = iocpnet.createServer({ backend, ioThreads, idleTimeoutMs: 0 });
  const conns = [];
  server.on('connect', (conn) => {
    conns.push(conn);
    if (conns.length === connections) say({ connected: conns.length });
  });
  server.on('error', (err) => say({ error: String(err) }));
  server.listen(0, '127.0.0.1').then(({ port }) => say({ port }));
  let input = '';
  process.stdin.setEncoding('utf8').on('data', (s) => {
    input += s;
    for (let i = input.indexOf('\\n'); i >= 0; i = input.indexOf('\\n')) {
      const command = input.slice(0, i);
      input = input.slice(i + 1);
      if (command === 'burst') {
        global.gc();
        fs.writeFileSync('/proc/self/clear_refs', '5');
        const rssKiB = status('VmRSS');
        const packet = new Uint8Array(body);
        for (let k = 0; k < broadcasts; k++) server.broadcast(conns, 200, packet);
        say({ rssKiB });
      } else if (command === 'peak') {
        say({ peakKiB: status('VmHWM') });
      }
    }
  });
  process.stdin.on('end', () => server.close().then(() => process.exit(0)));
`;

/** The server child and its lines of JSON on stdout. */
class ServerChild {
  readonly #lines: Array<Record<string, number | string>> = [];
  readonly exited: Promise<void>;
  stderr = '';

  constructor(readonly proc: ChildProcess) {
    let buf = '';
    proc.stdout?.setEncoding('utf8').on('data', (s: string) => {
      buf += s;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        this.#lines.push(JSON.parse(buf.slice(0, i)) as Record<string, number | string>);
        buf = buf.slice(i + 1);
      }
    });
    proc.stderr?.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.exited = new Promise((resolve) => proc.on('exit', () => resolve()));
  }

  /** The next line that has key, waiting up to timeoutMs. */
  async next(key: string, timeoutMs = 20000): Promise<number> {
    await waitUntil(() => this.#lines.length > 0 || this.proc.exitCode !== null, timeoutMs, `'${key}' from the server child`);
    const line = this.#lines.shift();
    if (line === undefined) throw new Error(`the server child exited: ${this.stderr}`);
    if (!(key in line)) throw new Error(`expected '${key}' from the server child, got ${JSON.stringify(line)}`);
    return Number(line[key]);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.stdin?.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(timer);
  }
}

let child: ServerChild | undefined;
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await child?.stop();
  child = undefined;
});

/** The peak RSS, in bytes, that the burst added per packet queued. */
async function bytesPerReceiver(backend: BackendName, ioThreads: number): Promise<number> {
  const options = { backend, ioThreads, connections: CONNECTIONS, broadcasts: BROADCASTS, body: BODY };
  child = new ServerChild(spawn(process.execPath, ['--expose-gc', '-e', CHILD_SOURCE, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'pipe'] }));
  const port = await child.next('port');
  const expected = BROADCASTS * PACKET;
  const received: number[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const s = net.connect({ port, host: '127.0.0.1' });
    received.push(0);
    s.on('data', (chunk: Buffer) => (received[i] += chunk.length));
    s.on('error', () => {});
    sockets.push(s);
  }
  await child.next('connected');
  child.proc.stdin?.write('burst\n');
  const rssKiB = await child.next('rssKiB');
  await waitUntil(() => received.every((n) => n >= expected), 30000, 'every client to receive every broadcast');
  expect(received.every((n) => n === expected)).toBe(true);
  child.proc.stdin?.write('peak\n');
  const peakKiB = await child.next('peakKiB');
  return ((peakKiB - rssKiB) * 1024) / (CONNECTIONS * BROADCASTS);
}

describe.skipIf(process.platform !== 'linux')('memory of queued broadcasts', () => {
  for (const backend of backends()) {
    const threads = backend === 'native' ? [1, 2] : [1];
    for (const ioThreads of threads) {
      const label = backend === 'native' ? `${backend} (${ioThreads} IO thread${ioThreads > 1 ? 's' : ''})` : backend;
      it(`${label}: a packet queued to ${CONNECTIONS * BROADCASTS} receivers in one flush adds at most ${MAX_BYTES_PER_RECEIVER} bytes each to peak RSS`, async () => {
        const perReceiver = await bytesPerReceiver(backend, ioThreads);
        expect(perReceiver).toBeLessThanOrEqual(MAX_BYTES_PER_RECEIVER);
      }, 60000);
    }
  }
});
