import { describe, expect, it } from 'vitest';
import { createServer, type Connection } from '../lib/index';
import { backends, frame } from './helpers/raw-client';
import { seqBody, sleep, useEngine, waitUntil } from './helpers/engine-harness';

// Per-connection flow control, black box over real TCP on 127.0.0.1: a
// connection whose queue passes sendQueueHighWaterBytes stops being read
// until it is back at sendQueueLowWaterBytes, so a client that sends faster
// than it reads is pushed back by TCP instead of being closed. Only what
// others send to a paused connection can take it past maxSendQueueBytes.

const REQUESTS = 5000;
const REQUEST_BYTES = 1000;
const BODY = REQUEST_BYTES - 5;

/** 5,000 echo requests of 1,000 bytes (header included), numbered, in one buffer. */
function pipelinedRequests(): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const p = Buffer.alloc(REQUEST_BYTES, i & 0xff);
    p.writeUInt16LE(REQUEST_BYTES, 0);
    p.writeUInt16LE(1000, 2);
    p[4] = 0;
    p.writeUInt32LE(i, 5);
    parts.push(p);
  }
  return Buffer.concat(parts);
}

describe.each(backends())('%s backend: flow control', (backend) => {
  const engine = useEngine(backend);

  it('a client that writes 5,000 requests of 1,000 bytes before it reads any reply is paused, not closed, and gets every reply in order', async () => {
    const { server, port, log } = await engine.startEcho();
    const c = await engine.connect(port);
    // Reads nothing until the server has stopped reading from it, and for a while after.
    c.socket.pause();
    c.write(pipelinedRequests());
    await waitUntil(() => server.stats().readPausesSendQueue > 0, 10000, 'reads paused by the send queue');
    await sleep(500);
    expect(log.disconnects).toEqual([]);
    expect(server.stats().closes.slow_consumer).toBe(0);
    // Not everything has been read yet: TCP holds the rest on the client's side.
    expect(server.stats().packetsIn).toBeLessThan(REQUESTS);

    c.socket.resume();
    const got = await c.waitPackets(REQUESTS, 30000);
    expect(got).toHaveLength(REQUESTS);
    let wireBytes = 0;
    for (let i = 0; i < REQUESTS; i++) {
      const p = got[i];
      wireBytes += 5 + p.body.length;
      if (p.id !== 1000 || p.body.length !== BODY || p.body.readUInt32LE(0) !== i || p.body[BODY - 1] !== (i & 0xff)) {
        throw new Error(`reply ${i} is out of order or damaged (id ${p.id}, ${p.body.length} bytes)`);
      }
    }
    expect(wireBytes).toBe(REQUESTS * REQUEST_BYTES);
    // Served on: it reads again and answers at once.
    c.send(1001, Buffer.from('after'));
    await c.waitFor(() => c.packets.some((p) => p.id === 1001), 5000, 'an echo after the burst');
    expect(c.closed).toBe(false);
    expect(c.error).toBeUndefined();
    const s = server.stats();
    expect(s.closes.slow_consumer).toBe(0);
    expect(s.readPausesSendQueue).toBeGreaterThan(0);
    // JS kept up: none of the pauses was for maxPendingBytes.
    expect(s.readPauses).toBe(0);
    expect(s.packetsIn).toBe(REQUESTS + 1);
    expect(log.disconnects).toEqual([]);
  }, 60000);

  it('a never-reading member of a broadcast is paused, then closed as slow_consumer once the pushes take it past maxSendQueueBytes; the others get every push', async () => {
    const maxSendQueueBytes = 256 * 1024;
    const { server, port, log } = await engine.start({ maxSendQueueBytes });
    const members: Connection[] = [];
    server.on('connect', (conn) => members.push(conn));
    const stalled = await engine.connect(port);
    stalled.socket.pause();
    const readers = await Promise.all([engine.connect(port), engine.connect(port)]);
    await waitUntil(() => members.length === 3, 10000, 'three connects');
    const stalledPort = stalled.socket.localPort;
    let pushes = 0;
    // A game tick: one broadcast to every member, until the stalled one is dropped (bounded in time).
    const ticker = setInterval(() => {
      const open = members.filter((m) => m.isOpen);
      for (let i = 0; i < 8; i++) {
        const body = Buffer.alloc(2000, 3);
        body.writeUInt32LE(pushes, 0);
        server.broadcast(open, 300, body);
        pushes++;
      }
    }, 5);
    try {
      await waitUntil(() => log.disconnects.length > 0, 30000, 'the slow consumer to be closed');
    } finally {
      clearInterval(ticker);
    }
    expect(log.disconnects).toHaveLength(1);
    expect(log.disconnects[0].reason).toBe('slow_consumer');
    expect(log.disconnects[0].conn.remotePort).toBe(stalledPort);
    const s = server.stats();
    expect(s.closes.slow_consumer).toBe(1);
    // It was paused on the way (the pushes alone can take it past the bound).
    expect(s.readPausesSendQueue).toBeGreaterThan(0);
    for (const r of readers) {
      await r.waitPackets(pushes, 20000);
      expect(r.packets.map((p) => p.body.readUInt32LE(0))).toEqual(Array.from({ length: pushes }, (_, i) => i));
      expect(r.closed).toBe(false);
    }
    // What reached the stalled client's side never exceeded what was pushed, and was whole.
    stalled.socket.resume();
    await stalled.waitClosed(10000);
    expect(stalled.error).toBeUndefined();
    expect(stalled.packets.length).toBeLessThanOrEqual(pushes);
    expect(stalled.packets.every((p, i) => p.id === 300 && p.body.readUInt32LE(0) === i)).toBe(true);
  }, 60000);

  it('resumes a paused connection at the low-water mark: a client that reads in short bursts is served in full', async () => {
    const { server, port } = await engine.startEcho({ sendQueueHighWaterBytes: 32 * 1024, sendQueueLowWaterBytes: 8 * 1024 });
    const c = await engine.connect(port);
    c.socket.pause();
    const count = 2000;
    c.write(Buffer.concat(Array.from({ length: count }, (_, i) => frame(1000, seqBody(i, 995)))));
    // Reads a little, stops, reads again: every stop pauses the server's reads, every read resumes them.
    while (c.packets.length < count) {
      c.socket.resume();
      await sleep(5);
      c.socket.pause();
      await sleep(20);
      if (c.closed) break;
    }
    c.socket.resume();
    await c.waitPackets(count, 20000);
    expect(c.packets.map((p) => p.body.readUInt32LE(0))).toEqual(Array.from({ length: count }, (_, i) => i));
    const s = server.stats();
    expect(s.closes.slow_consumer).toBe(0);
    expect(s.readPausesSendQueue).toBeGreaterThan(1);
  }, 60000);
});

describe('flow-control options', () => {
  it('defaults to a quarter of maxSendQueueBytes and a quarter of that: 256 KiB and 64 KiB at its default', () => {
    const defaults = createServer({ backend: 'js' }).options;
    expect([defaults.sendQueueHighWaterBytes, defaults.sendQueueLowWaterBytes]).toEqual([256 * 1024, 64 * 1024]);
    const small = createServer({ backend: 'js', maxSendQueueBytes: 64 * 1024 }).options;
    expect([small.sendQueueHighWaterBytes, small.sendQueueLowWaterBytes]).toEqual([16 * 1024, 4 * 1024]);
    const large = createServer({ backend: 'js', maxSendQueueBytes: 4 << 20 }).options;
    expect([large.sendQueueHighWaterBytes, large.sendQueueLowWaterBytes]).toEqual([1 << 20, 256 * 1024]);
    const high = createServer({ backend: 'js', sendQueueHighWaterBytes: 100_000 }).options;
    expect([high.sendQueueHighWaterBytes, high.sendQueueLowWaterBytes]).toEqual([100_000, 25_000]);
  });

  it('refuses marks that are not below maxSendQueueBytes and each other, naming the option', () => {
    expect(() => createServer({ maxSendQueueBytes: 65536, sendQueueHighWaterBytes: 65536 })).toThrow(RangeError);
    expect(() => createServer({ maxSendQueueBytes: 65536, sendQueueHighWaterBytes: 65536 })).toThrow(/sendQueueHighWaterBytes must be below maxSendQueueBytes/);
    expect(() => createServer({ sendQueueLowWaterBytes: 256 * 1024 })).toThrow(/sendQueueLowWaterBytes must be below sendQueueHighWaterBytes/);
    expect(() => createServer({ sendQueueHighWaterBytes: 0 })).toThrow(RangeError);
    expect(() => createServer({ sendQueueLowWaterBytes: 1.5 })).toThrow(TypeError);
  });
});
