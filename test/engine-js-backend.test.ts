import * as net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backends, frame } from './helpers/raw-client';
import { frames, seqBody, useEngine, waitUntil } from './helpers/engine-harness';

// Properties of the pure-JS backend that the shared black-box suites cannot
// see: it must be a well-made node:net server for the benchmark against the
// native engine to mean anything.

type Chunk = { socket: net.Socket; data: Buffer };

describe.runIf(backends().includes('js'))('js backend: writes', () => {
  const engine = useEngine('js');
  const proto = net.Socket.prototype as unknown as {
    _write: (chunk: Buffer, encoding: string, cb: () => void) => void;
    _writev: (chunks: Array<{ chunk: Buffer }>, cb: () => void) => void;
  };
  const original = { write: proto._write, writev: proto._writev };
  let writes: Chunk[][] = [];

  beforeEach(() => {
    writes = [];
    // Records each write system call's buffers, for sockets on the server side only.
    proto._write = function (this: net.Socket & { server?: unknown }, chunk, encoding, cb) {
      if (this.server) writes.push([{ socket: this, data: chunk }]);
      return original.write.call(this, chunk, encoding, cb);
    };
    proto._writev = function (this: net.Socket & { server?: unknown }, chunks, cb) {
      if (this.server) writes.push(chunks.map((c) => ({ socket: this, data: c.chunk })));
      return original.writev.call(this, chunks, cb);
    };
  });
  afterEach(() => {
    proto._write = original.write;
    proto._writev = original.writev;
  });

  it('writes everything one handler run sends to a connection in one call', async () => {
    const { server, port } = await engine.start();
    server.on('packet', (conn, id) => {
      const size = id === 100 ? 10 : 1000;
      for (let i = 0; i < 100; i++) conn.send(200, seqBody(i, size));
    });
    const c = await engine.connect(port);
    c.send(100);
    await c.waitPackets(100);
    expect(writes).toHaveLength(1);
    writes = [];
    // 100 kB outgrows one buffer: still one (vectored) write.
    c.send(101);
    await c.waitPackets(200);
    expect(writes).toHaveLength(1);
    expect(c.packets.map((p) => p.body.readUInt32LE(0))).toEqual([...Array(100).keys(), ...Array(100).keys()]);
  });

  it('answers the packets of each read with at most one write', async () => {
    const { port } = await engine.startEcho();
    // Put back below, and always called with the socket as `this`.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const push = net.Socket.prototype.push;
    let reads = 0;
    net.Socket.prototype.push = function (this: net.Socket & { server?: unknown }, chunk: unknown, encoding?: BufferEncoding) {
      if (this.server && chunk !== null) reads++;
      return push.call(this, chunk, encoding);
    };
    try {
      const c = await engine.connect(port);
      c.write(frames(Array.from({ length: 2000 }, (_, i) => [300, seqBody(i, 100)] as [number, Buffer])));
      await c.waitPackets(2000, 20000);
    } finally {
      net.Socket.prototype.push = push;
    }
    expect(reads).toBeGreaterThan(0);
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.length).toBeLessThanOrEqual(reads);
  });

  it('shares one buffer among the receivers of a large broadcast', async () => {
    const { server, port, log } = await engine.start();
    const clients = await Promise.all([0, 1, 2].map(() => engine.connect(port)));
    await waitUntil(() => log.connects.length === 3, 10000, 'three connects');
    const body = seqBody(5, 4000);
    expect(server.broadcast(log.connects, 400, body)).toBe(3);
    await Promise.all(clients.map((c) => c.waitPackets(1)));
    const chunks = writes.flat().map((w) => w.data);
    expect(chunks).toHaveLength(3);
    expect(chunks[1]).toBe(chunks[0]);
    expect(chunks[2]).toBe(chunks[0]);
    for (const c of clients) expect(c.packets[0].body.equals(body)).toBe(true);
  });

  it('never pauses reading: packets are handled inside the read that brought them', async () => {
    const { server, port } = await engine.startEcho({ maxPendingBytes: 65536 });
    const c = await engine.connect(port);
    const count = 2000;
    c.write(Buffer.concat(Array.from({ length: count }, (_, i) => frame(500, seqBody(i, 500)))));
    await c.waitPackets(count, 20000);
    expect(server.stats().readPauses).toBe(0);
  });
});
