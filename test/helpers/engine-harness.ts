import * as path from 'node:path';
import { afterEach } from 'vitest';
import type { BackendName, Connection, DisconnectReason, Server, ServerOptions, Transport } from '../../lib/index';
import { RawClient, frame, startEchoServer, startServer, type Packet } from './raw-client';

/** Resolves after ms. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls pred every few ms; rejects after timeoutMs naming what was awaited. */
export async function waitUntil(pred: () => boolean, timeoutMs = 10000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** The reason code of a DISCONNECT_NOTIFY packet, or undefined for any other packet. */
export function notifyCode(p: Packet | undefined): number | undefined {
  if (p === undefined || p.id !== 3 || p.body.length !== 2) return undefined;
  return p.body.readUInt16LE(0);
}

/** A body whose first four bytes hold seq, padded to size bytes with a pattern derived from seq. */
export function seqBody(seq: number, size = 8): Buffer {
  const b = Buffer.alloc(Math.max(4, size));
  b.writeUInt32LE(seq, 0);
  for (let i = 4; i < b.length; i++) b[i] = (seq + i) & 0xff;
  return b;
}

export function frames(list: Array<[number, Uint8Array]>): Buffer {
  return Buffer.concat(list.map(([id, body]) => frame(id, body)));
}

export interface ServerEventLog {
  connects: Connection[];
  packets: Array<{ conn: Connection; id: number; body: Buffer }>;
  disconnects: Array<{ conn: Connection; reason: DisconnectReason }>;
  errors: Error[];
  /** Disconnect reasons by connection id, to check each connection ends once. */
  reasonsById: Map<number, DisconnectReason[]>;
}

/** Records every server event; bodies are copied since they are valid only during the handler. */
export function logEvents(server: Server): ServerEventLog {
  const log: ServerEventLog = { connects: [], packets: [], disconnects: [], errors: [], reasonsById: new Map() };
  server.on('connect', (conn) => log.connects.push(conn));
  server.on('packet', (conn, id, body) => log.packets.push({ conn, id, body: Buffer.from(body) }));
  server.on('disconnect', (conn, reason) => {
    log.disconnects.push({ conn, reason });
    const list = log.reasonsById.get(conn.id) ?? [];
    list.push(reason);
    log.reasonsById.set(conn.id, list);
  });
  server.on('error', (err) => log.errors.push(err));
  return log;
}

/**
 * Per-test servers and clients for one backend, torn down after each test
 * (clients destroyed first, then servers closed). connect() reaches the
 * server over transport.
 */
export function useEngine(backend: BackendName, transport: Transport = 'tcp') {
  const servers: Server[] = [];
  const clients: RawClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  return {
    backend,
    transport,
    /** A server with no handlers; options default to a long idle timeout. */
    async start(options: ServerOptions = {}): Promise<{ server: Server; port: number; log: ServerEventLog }> {
      const s = await startServer(backend, options);
      servers.push(s.server);
      return { ...s, log: logEvents(s.server) };
    },
    /** A server that sends every packet back to its sender. */
    async startEcho(options: ServerOptions = {}): Promise<{ server: Server; port: number; log: ServerEventLog }> {
      const s = await startEchoServer(backend, options);
      servers.push(s.server);
      return { ...s, log: logEvents(s.server) };
    },
    /** Adds a server created elsewhere to the teardown. */
    own<T>(server: Server<T>): Server<T> {
      servers.push(server);
      return server;
    },
    async connect(port: number): Promise<RawClient> {
      const c = await RawClient.connect(port, '127.0.0.1', transport);
      clients.push(c);
      return c;
    },
  };
}

/**
 * Node code that loads lib/index.ts in a child process, compiling the
 * TypeScript on the fly with the typescript package.
 */
export function childPrelude(): string {
  const index = path.resolve(__dirname, '..', '..', 'lib', 'index.ts');
  return `
    const fs = require('node:fs');
    const ts = require('typescript');
    require.extensions['.ts'] = (m, file) => {
      const out = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
        fileName: file,
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      });
      m._compile(out.outputText, file);
    };
    const iocpnet = require(${JSON.stringify(index)});
  `;
}
