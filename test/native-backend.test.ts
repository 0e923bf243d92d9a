import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { loadedAddonPath } from '../lib/backends/native/addon';
import { NativeBackend } from '../lib/backends/native/native-backend';
import type { Connection } from '../lib/server/connection';
import { Server } from '../lib/server/server';
import type { ServerOptions } from '../lib/server/types';
import { RawClient } from './helpers/raw-client';

// Checks of the native engine that the shared black-box suites cannot make:
// refusals inside the engine itself, malformed batches, inbound flow
// control, and process / worker teardown with a live server.

// The binary the loader picks (build/Release, a prebuild, or IOCPNET_NATIVE_PATH),
// so that the child processes load the same one.
const addonPath = (): string => loadedAddonPath();

async function startNative(options: ServerOptions = {}): Promise<{ server: Server; backend: NativeBackend; port: number }> {
  let backend: NativeBackend | undefined;
  const server = new Server({ ioThreads: 2, ...options, backend: 'native' }, (o, sink) => (backend = new NativeBackend(o, sink)));
  const { port } = await server.listen(0, '127.0.0.1');
  if (!backend) throw new Error('backend not created');
  return { server, backend, port };
}

function sendRecord(id: number, packetId: number, body: Buffer): Buffer {
  const out = Buffer.alloc(1 + 4 + 5 + body.length);
  out[0] = 1;
  out.writeUInt32LE(id, 1);
  out.writeUInt16LE(5 + body.length, 5);
  out.writeUInt16LE(packetId, 7);
  body.copy(out, 10);
  return out;
}

describe('native backend', () => {
  let server: Server | undefined;
  const clients: RawClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await server?.close();
    server = undefined;
  });

  it('refuses a stale connection id inside the engine after its slot is reused', async () => {
    const s = await startNative({ maxConnections: 1 });
    server = s.server;
    const connected: Connection[] = [];
    const gone: number[] = [];
    server.on('connect', (c) => connected.push(c));
    server.on('disconnect', (c) => gone.push(c.id));

    const a = await RawClient.connect(s.port);
    clients.push(a);
    await a.waitFor(() => connected.length === 1, 5000, 'first connect');
    const oldId = connected[0].id;
    a.destroy();
    await a.waitFor(() => gone.length === 1, 5000, 'first disconnect');

    // The only slot is free again once the socket is closed; retry briefly.
    let b: RawClient | undefined;
    for (let i = 0; i < 50 && connected.length < 2; i++) {
      b = await RawClient.connect(s.port);
      clients.push(b);
      await b.waitFor(() => connected.length === 2 || b!.closed, 2000, 'second connect');
    }
    expect(connected.length).toBe(2);
    const newId = connected[1].id;
    expect(newId).not.toBe(oldId);
    expect(newId % 1).toBe(0);

    const before = server.stats().staleRefused;
    s.backend._submitRaw(sendRecord(oldId, 1000, Buffer.from('stale')));
    s.backend._submitRaw(sendRecord(newId, 1001, Buffer.from('fresh')));
    const [p] = await b!.waitPackets(1);
    expect(p.id).toBe(1001);
    expect(p.body.toString()).toBe('fresh');
    expect(server.stats().staleRefused).toBe(before + 1);
    // The old Connection object refuses too, without reaching the engine.
    expect(connected[0].send(1000, Buffer.from('x'))).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(b!.packets.length).toBe(1);
  });

  it('throws a TypeError for a malformed outbound batch and acts on none of it', async () => {
    const s = await startNative();
    server = s.server;
    const good = sendRecord(12345, 1000, Buffer.from('abc'));
    expect(() => s.backend._submitRaw(good.subarray(0, good.length - 1))).toThrow(TypeError);
    expect(() => s.backend._submitRaw(Buffer.from([9, 0, 0, 0, 0]))).toThrow(/unknown record kind/);
    const badType = Buffer.from(good);
    badType[9] = 1;
    expect(() => s.backend._submitRaw(badType)).toThrow(/type/);
    expect(server.stats().staleRefused).toBe(0);
  });

  it('stops reading while JS falls behind and loses nothing (maxPendingBytes)', async () => {
    const s = await startNative({ maxPendingBytes: 65536, ioThreads: 1 });
    server = s.server;
    const seen: number[] = [];
    let blocked = 0;
    server.on('packet', (_c, id, body) => {
      // The first packets hold the JS thread, as a slow handler would.
      if (blocked < 20) {
        blocked++;
        const until = Date.now() + 10;
        while (Date.now() < until);
      }
      seen.push(new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(0, true));
      expect(id).toBe(2000);
    });
    const c = await RawClient.connect(s.port);
    clients.push(c);
    const count = 4000;
    const body = Buffer.alloc(1000);
    const parts: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const b = Buffer.from(body);
      b.writeUInt32LE(i, 0);
      parts.push(Buffer.concat([Buffer.from([1005 & 0xff, 1005 >> 8, 2000 & 0xff, 2000 >> 8, 0]), b]));
    }
    c.write(Buffer.concat(parts));
    await c.waitFor(() => seen.length === count, 20000, `${count} packets at the server`);
    expect(seen).toEqual(Array.from({ length: count }, (_, i) => i));
    expect(server.stats().readPauses).toBeGreaterThan(0);
  });
});

describe('native lifecycle', () => {
  const child = (code: string) =>
    spawnSync(process.execPath, ['-e', code], {
      env: { ...process.env, ADDON: addonPath() },
      encoding: 'utf8',
      timeout: 20000,
    });

  const prelude = `
    const net = require('node:net');
    const { NativeServer } = require(process.env.ADDON);
    const opts = { ioThreads: 2, maxConnections: 64, maxPacketSize: 8192, idleTimeoutMs: 0,
      maxSendQueueBytes: 1 << 20, sendQueueHighWaterBytes: 256 << 10, sendQueueLowWaterBytes: 64 << 10,
      maxPendingBytes: 1 << 20, closeTimeoutMs: 2000, reusePort: false };
  `;

  it('a process that shuts its server down exits on its own', () => {
    const r = child(`${prelude}
      let finished = false;
      const s = new NativeServer(opts, (batch, done) => { if (done) finished = true; });
      const port = s.listen('127.0.0.1', 0);
      const sock = net.connect(port, '127.0.0.1', () => { setTimeout(() => s.shutdown(), 100); });
      sock.on('error', () => {});
      process.on('exit', () => console.log('exit finished=' + finished));
    `);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('exit finished=true');
  });

  it('process.exit() with a live server and open connections does not crash', () => {
    const r = child(`${prelude}
      const s = new NativeServer(opts, () => {});
      const port = s.listen('127.0.0.1', 0);
      const socks = [];
      for (let i = 0; i < 20; i++) { const k = net.connect(port, '127.0.0.1'); k.on('error', () => {}); socks.push(k); }
      setTimeout(() => { socks.forEach((k) => k.write(Buffer.from([6, 0, 0xe8, 3, 0, 7]))); }, 100);
      setTimeout(() => process.exit(0), 300);
    `);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
  });

  it('a worker thread terminated with a live server does not crash the process', () => {
    const r = child(`${prelude}
      const { Worker } = require('node:worker_threads');
      let runs = 0;
      const once = () => new Promise((resolve) => {
        const w = new Worker(\`
          const { parentPort } = require('node:worker_threads');
          const { NativeServer } = require(process.env.ADDON);
          const s = new NativeServer(\${JSON.stringify(opts)}, () => {});
          parentPort.postMessage(s.listen('127.0.0.1', 0));
        \`, { eval: true });
        w.on('message', (port) => {
          const k = net.connect(port, '127.0.0.1', () => setTimeout(() => w.terminate(), 50));
          k.on('error', () => {});
        });
        w.on('exit', () => { runs++; resolve(); });
      });
      (async () => { for (let i = 0; i < 3; i++) await once(); console.log('runs=' + runs); })();
    `);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('runs=3');
  });
});
