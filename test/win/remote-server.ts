/**
 * The Linux side of the Wine-hosted servers: a client of test/win/host.ts
 * and RemoteServer, a stand-in for Server whose events, connections and
 * stats mirror a server running on Windows Node (the IOCP engine). The
 * runner (scripts/test/win.js) starts the host and passes its control
 * address in IOCPNET_WIN_HOST ("127.0.0.1:<port>").
 */
import * as childProcess from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { emptyStats } from '../../lib/backends/stats';
import type { ChatStats } from '../../lib/chat/chat-server';
import type { DisconnectReason, Transport } from '../../lib/contract';
import type { ServerOptions, ServerStats } from '../../lib/server/types';
import type { HostApp, HostChatOptions, HostEvent, HostOp, HostReply, HostRequest } from './host-protocol';

/** The control address of the Wine host, or undefined when not running under test:win. */
export function winHostAddress(): { host: string; port: number } | undefined {
  const v = process.env.IOCPNET_WIN_HOST;
  if (!v) return undefined;
  const m = /^([^:]+):(\d+)$/.exec(v);
  if (!m) throw new Error(`IOCPNET_WIN_HOST must be host:port, got ${v}`);
  return { host: m[1], port: Number(m[2]) };
}

type Pending = { resolve: (r: Extract<HostReply, { ok: true }>) => void; reject: (e: Error) => void };
type DistributeRequest<T> = T extends unknown ? Omit<T, 'req'> : never;
type DistributeOp<T> = T extends unknown ? Omit<T, 'body'> : never;

/** One control connection to the host. Servers started on it are stopped when it closes. */
export class HostClient {
  readonly #sock: net.Socket;
  readonly #pending = new Map<number, Pending>();
  readonly #servers = new Map<number, RemoteServer>();
  readonly #address: { host: string; port: number };
  #nextReq = 1;
  #buf = '';
  #closed = false;
  #ops: HostOp[] = [];
  #bodies: string[] = [];
  #bodyIndex = new Map<Uint8Array, number>();
  #syncStats: SyncStats | undefined;

  private constructor(sock: net.Socket, address: { host: string; port: number }) {
    this.#sock = sock;
    this.#address = address;
    sock.setNoDelay(true);
    sock.on('data', (chunk: Buffer) => this.#onData(chunk));
    const fail = (err: Error) => {
      this.#closed = true;
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('the Wine host closed the control connection')));
  }

  static connect(address = winHostAddress()): Promise<HostClient> {
    if (!address) return Promise.reject(new Error('IOCPNET_WIN_HOST is not set (run npm run test:win)'));
    return new Promise((resolve, reject) => {
      const sock = net.connect(address.port, address.host);
      sock.once('error', reject);
      sock.once('connect', () => {
        sock.off('error', reject);
        resolve(new HostClient(sock, address));
      });
    });
  }

  request(r: DistributeRequest<HostRequest>): Promise<Extract<HostReply, { ok: true }>> {
    if (this.#closed) return Promise.reject(new Error('the control connection is closed'));
    const req = this.#nextReq++;
    return new Promise((resolve, reject) => {
      this.#pending.set(req, { resolve, reject });
      this.#sock.write(`${JSON.stringify({ ...r, req })}\n`);
    });
  }

  /** Starts a server in the host on 127.0.0.1:0. */
  async start(
    app: HostApp,
    options: ServerOptions = {},
    opts: { mirrorPackets?: boolean; port?: number; host?: string; chat?: HostChatOptions } = {},
  ): Promise<RemoteServer> {
    const mirrorPackets = opts.mirrorPackets ?? app === 'plain';
    const r = await this.request({
      op: 'start',
      app,
      options,
      mirrorPackets,
      ...(opts.chat !== undefined ? { chat: opts.chat } : {}),
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      ...(opts.host !== undefined ? { host: opts.host } : {}),
    });
    if (r.srv === undefined || r.port === undefined) throw new Error('malformed start reply');
    const server = new RemoteServer(this, r.srv, r.port, r.engine ?? '?');
    this.#servers.set(r.srv, server);
    return server;
  }

  /** Resolves once the host has handled everything sent before, and its events have arrived. */
  async sync(): Promise<void> {
    await this.request({ op: 'sync' });
  }

  close(): void {
    this.#flush();
    this.#syncStats?.close();
    this.#sock.end();
  }

  /**
   * Queues an action; the actions of one turn go to the host as one batch
   * at the end of the turn, as the Server flushes its sends in-process.
   */
  queue(op: DistributeOp<HostOp>, body?: Uint8Array): void {
    if (this.#ops.length === 0) queueMicrotask(() => this.#flush());
    if (body === undefined) {
      this.#ops.push(op as HostOp);
      return;
    }
    let index = this.#bodyIndex.get(body);
    if (index === undefined) {
      index = this.#bodies.push(Buffer.from(body.buffer, body.byteOffset, body.length).toString('base64')) - 1;
      this.#bodyIndex.set(body, index);
    }
    this.#ops.push({ ...op, body: index } as HostOp);
  }

  /** A server's stats fetched now, blocking this thread for the round trip; undefined if the host cannot tell. */
  statsNow(srv: number): ServerStats | undefined {
    this.#syncStats ??= new SyncStats(this.#address);
    return this.#syncStats.fetch(srv);
  }

  #flush(): void {
    if (this.#ops.length === 0 || this.#closed) return;
    const ops = this.#ops;
    const bodies = this.#bodies;
    this.#ops = [];
    this.#bodies = [];
    this.#bodyIndex = new Map();
    this.request({ op: 'batch', bodies, ops }).catch(() => undefined);
  }

  /** @internal */
  _forget(srv: number): void {
    this.#servers.delete(srv);
  }

  #onData(chunk: Buffer): void {
    this.#buf += chunk.toString('utf8');
    let nl: number;
    while ((nl = this.#buf.indexOf('\n')) >= 0) {
      const line = this.#buf.slice(0, nl);
      this.#buf = this.#buf.slice(nl + 1);
      const msg = JSON.parse(line) as HostReply | HostEvent;
      if ('ev' in msg) {
        this.#servers.get(msg.srv)?._event(msg);
        continue;
      }
      const p = this.#pending.get(msg.re);
      if (!p) continue;
      this.#pending.delete(msg.re);
      if (msg.ok) p.resolve(msg);
      else p.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
    }
  }
}

/** A connection of a RemoteServer; the calls are forwarded to the host. */
export class RemoteConnection {
  data: unknown = undefined;
  #open = true;

  constructor(
    readonly server: RemoteServer,
    readonly id: number,
    readonly remoteAddress: string,
    readonly remotePort: number,
    readonly transport: Transport,
  ) {}

  get isOpen(): boolean {
    return this.#open;
  }

  send(packetId: number, body: Uint8Array = new Uint8Array(0)): boolean {
    if (!this.#open) return false;
    this.server.client.queue({ kind: 'send', srv: this.server.srv, conn: this.id, packetId }, body);
    return true;
  }

  close(): boolean {
    if (!this.#open) return false;
    this.#open = false;
    this.server.client.queue({ kind: 'close', srv: this.server.srv, conn: this.id });
    return true;
  }

  destroy(): boolean {
    if (!this.#open) return false;
    this.#open = false;
    this.server.client.queue({ kind: 'destroy', srv: this.server.srv, conn: this.id });
    return true;
  }

  /** @internal */
  _markClosed(): void {
    this.#open = false;
  }
}

export interface RemoteServerEvents {
  connect: [conn: RemoteConnection];
  packet: [conn: RemoteConnection, packetId: number, body: Buffer];
  disconnect: [conn: RemoteConnection, reason: DisconnectReason];
  error: [err: Error];
}

/**
 * A server running in the Wine host. Events arrive as the host emits them.
 * stats() is fetched from the host synchronously (as Server.stats() reads
 * the engine's counters), or is the final snapshot once closed.
 */
export class RemoteServer extends EventEmitter {
  readonly connections = new Map<number, RemoteConnection>();
  #stats: ServerStats = emptyStats();
  #closed: Promise<void> | undefined;

  constructor(
    readonly client: HostClient,
    readonly srv: number,
    readonly port: number,
    readonly engine: string,
  ) {
    super();
  }

  override on<E extends keyof RemoteServerEvents>(event: E, listener: (...args: RemoteServerEvents[E]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  stats(): ServerStats {
    if (this.#closed === undefined) {
      const now = this.client.statsNow(this.srv);
      if (now) this.#stats = now;
    }
    return this.#stats;
  }

  /** The chat server's counters (app 'chat' only). */
  async chatStats(): Promise<ChatStats> {
    const r = await this.client.request({ op: 'chatStats', srv: this.srv });
    if (!r.chatStats) throw new Error('no chat stats in the reply');
    return r.chatStats;
  }

  async fetchStats(): Promise<ServerStats> {
    const r = await this.client.request({ op: 'stats', srv: this.srv });
    if (r.stats) this.#stats = r.stats;
    return this.#stats;
  }

  broadcast(conns: Iterable<RemoteConnection>, packetId: number, body: Uint8Array): number {
    const ids = [...conns].filter((c) => c.isOpen).map((c) => c.id);
    if (ids.length === 0) return 0;
    this.client.queue({ kind: 'broadcast', srv: this.srv, conns: ids, packetId }, body);
    return ids.length;
  }

  /** Closes the server in the host; resolves with its final stats in stats(). */
  close(): Promise<void> {
    this.#closed ??= this.client.request({ op: 'stop', srv: this.srv }).then(
      (r) => {
        if (r.stats) this.#stats = r.stats;
        for (const c of this.connections.values()) c._markClosed();
        this.connections.clear();
        this.client._forget(this.srv);
      },
      (err: Error) => {
        // The host is gone: nothing is left to close.
        if (!/closed/.test(err.message)) throw err;
      },
    );
    return this.#closed;
  }

  /** @internal */
  _event(e: HostEvent): void {
    switch (e.ev) {
      case 'connect': {
        const conn = new RemoteConnection(this, e.conn, e.remoteAddress, e.remotePort, e.transport);
        this.connections.set(e.conn, conn);
        this.emit('connect', conn);
        break;
      }
      case 'packet': {
        const conn = this.connections.get(e.conn);
        if (conn) this.emit('packet', conn, e.packetId, Buffer.from(e.body, 'base64'));
        break;
      }
      case 'disconnect': {
        const conn = this.connections.get(e.conn);
        if (!conn) break;
        this.connections.delete(e.conn);
        conn._markClosed();
        this.emit('disconnect', conn, e.reason);
        break;
      }
      case 'error':
        if (this.listenerCount('error') > 0) this.emit('error', new Error(e.message));
        break;
      case 'stats':
        this.#stats = e.stats;
        break;
    }
  }
}

/** A host process of its own, started the way the runner started the shared one. */
export interface SpawnedHost {
  client: HostClient;
  exited: Promise<number | null>;
  kill(): void;
}

/**
 * Starts a script of the stage the way the runner started the shared host
 * (IOCPNET_WIN_HOST_COMMAND: the host script is its last argument but
 * args); stdout and stderr go to logFile.
 */
export function spawnStaged(logFile: string, script: string | undefined, args: string[] = []): childProcess.ChildProcess {
  const spec = process.env.IOCPNET_WIN_HOST_COMMAND;
  if (!spec) throw new Error('IOCPNET_WIN_HOST_COMMAND is not set (run npm run test:win)');
  const cmd = JSON.parse(spec) as { command: string; args: string[]; cwd: string; env: Record<string, string | null> };
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(cmd.env)) {
    if (v === null) delete env[k];
    else env[k] = v;
  }
  const argv = script === undefined ? cmd.args : [...cmd.args.slice(0, -1), path.join(cmd.cwd, script), ...args];
  // Under Wine, Node's stdout must be a file, not a pipe.
  const fd = fs.openSync(logFile, 'w');
  const child = childProcess.spawn(cmd.command, argv, { cwd: cmd.cwd, env, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  return child;
}

/** Starts another host (IOCPNET_WIN_HOST_COMMAND from the runner); stdout goes to logFile. */
export async function spawnHost(logFile: string, timeoutMs = 60000): Promise<SpawnedHost> {
  const child = spawnStaged(logFile, undefined);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = /IOCPNET_HOST port=(\d+)/.exec(fs.readFileSync(logFile, 'utf8'));
    if (m) {
      const client = await HostClient.connect({ host: '127.0.0.1', port: Number(m[1]) });
      return { client, exited, kill: () => child.kill('SIGKILL') };
    }
    if (done || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the host did not start: ${fs.readFileSync(logFile, 'utf8')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Synchronous stats requests: a worker thread keeps its own control
 * connection and answers through shared memory while this thread waits,
 * so RemoteServer.stats() can be synchronous like Server.stats().
 */
class SyncStats {
  readonly #worker: Worker;
  readonly #flag: Int32Array;
  readonly #data: Uint8Array;

  constructor(address: { host: string; port: number }) {
    const shared = new SharedArrayBuffer(8 + 64 * 1024);
    this.#flag = new Int32Array(shared, 0, 2);
    this.#data = new Uint8Array(shared, 8);
    this.#worker = new Worker(SYNC_STATS_WORKER, { eval: true, workerData: { shared, address } });
    this.#worker.unref();
  }

  fetch(srv: number): ServerStats | undefined {
    Atomics.store(this.#flag, 0, 0);
    this.#worker.postMessage(srv);
    if (Atomics.wait(this.#flag, 0, 0, 10000) === 'timed-out') return undefined;
    if (Atomics.load(this.#flag, 0) !== 1) return undefined;
    const length = Atomics.load(this.#flag, 1);
    return JSON.parse(Buffer.from(this.#data.subarray(0, length)).toString('utf8')) as ServerStats;
  }

  close(): void {
    void this.#worker.terminate();
  }
}

// Flag 0: 0 waiting, 1 stats in data (length in flag 1), 2 no answer.
const SYNC_STATS_WORKER = `
const net = require('node:net');
const { parentPort, workerData } = require('node:worker_threads');
const flag = new Int32Array(workerData.shared, 0, 2);
const data = new Uint8Array(workerData.shared, 8);
const sock = net.connect(workerData.address.port, workerData.address.host);
sock.setNoDelay(true);
let buf = '';
let req = 0;
const answer = (stats) => {
  if (stats) {
    const bytes = Buffer.from(JSON.stringify(stats));
    if (bytes.length <= data.length) {
      data.set(bytes);
      Atomics.store(flag, 1, bytes.length);
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
      return;
    }
  }
  Atomics.store(flag, 0, 2);
  Atomics.notify(flag, 0);
};
sock.on('data', (chunk) => {
  buf += chunk.toString('utf8');
  let nl;
  while ((nl = buf.indexOf('\\n')) >= 0) {
    const msg = JSON.parse(buf.slice(0, nl));
    buf = buf.slice(nl + 1);
    if (msg.re === req) answer(msg.ok ? msg.stats : undefined);
  }
});
sock.on('error', () => answer(undefined));
parentPort.on('message', (srv) => {
  req++;
  sock.write(JSON.stringify({ req, op: 'stats', srv }) + '\\n');
});
`;
