import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ServerOptions } from '../../lib/server/types';
import { RawClient, frame, type Packet } from '../helpers/raw-client';
import { seededInt } from '../helpers/random';
import { HostClient, winHostAddress, type RemoteConnection, type RemoteServer } from './remote-server';

// Black-box checks of the IOCP engine: servers run in Windows Node under
// Wine (scripts/test/win.js starts the host), clients are Linux sockets on
// 127.0.0.1. Without IOCPNET_WIN_HOST (a plain `vitest run`) it is skipped.

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitUntil(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

function notifyCode(p: Packet | undefined): number | undefined {
  if (p === undefined || p.id !== 3 || p.body.length !== 2) return undefined;
  return p.body.readUInt16LE(0);
}

function seqBody(seq: number, size: number): Buffer {
  const b = Buffer.alloc(Math.max(4, size));
  b.writeUInt32LE(seq, 0);
  for (let i = 4; i < b.length; i++) b[i] = (seq * 31 + i) & 0xff;
  return b;
}

describe.skipIf(!winHostAddress())('IOCP engine under Wine', () => {
  let host: HostClient;
  const servers: RemoteServer[] = [];
  const clients: RawClient[] = [];

  beforeAll(async () => {
    host = await HostClient.connect();
  });
  afterAll(() => host?.close());
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function start(app: 'plain' | 'echo', options: ServerOptions = {}, mirrorPackets?: boolean): Promise<RemoteServer> {
    const s = await host.start(app, { ioThreads: 2, idleTimeoutMs: 0, ...options }, { mirrorPackets });
    servers.push(s);
    return s;
  }

  async function connect(port: number): Promise<RawClient> {
    const c = await RawClient.connect(port);
    clients.push(c);
    return c;
  }

  describe('echo and framing', () => {
    it('runs the IOCP engine and echoes packets of every size, in order, with Type 0', async () => {
      const s = await start('echo', { maxPacketSize: 65535 });
      // scripts/test/win.js --linux-host runs the suite against the libuv engine for comparison.
      expect(s.engine).toBe(process.env.IOCPNET_WIN_EXPECT_ENGINE ?? 'iocp');
      const connects: RemoteConnection[] = [];
      s.on('connect', (c) => connects.push(c));
      const c = await connect(s.port);
      const sent: Array<[number, Buffer]> = [
        [100, Buffer.alloc(0)],
        [0xffff, Buffer.from('hello')],
        [1000, seqBody(7, 8192 - 5)],
        [4242, seqBody(9, 65535 - 5)],
        [101, Buffer.from([0, 1, 2, 3, 255])],
      ];
      c.write(Buffer.concat(sent.map(([id, b]) => frame(id, b))));
      const got = await c.waitPackets(sent.length);
      expect(got.map((p) => [p.id, p.type, p.body.toString('hex')])).toEqual(sent.map(([id, b]) => [id, 0, b.toString('hex')]));
      await waitUntil(() => connects.length === 1, 5000, 'connect event');
      expect(connects[0].remoteAddress).toBe('127.0.0.1');
      expect(connects[0].remotePort).toBe(c.socket.localPort);
    });

    it('reassembles a stream written one byte at a time', async () => {
      const s = await start('echo');
      const c = await connect(s.port);
      const sent: Array<[number, Buffer]> = [
        [100, Buffer.from('a')],
        [101, Buffer.alloc(0)],
        [102, seqBody(1, 40)],
      ];
      const bytes = Buffer.concat(sent.map(([id, b]) => frame(id, b)));
      for (let i = 0; i < bytes.length; i++) {
        c.write(bytes.subarray(i, i + 1));
        await sleep(2);
      }
      const got = await c.waitPackets(sent.length);
      expect(got.map((p) => [p.id, p.body.toString('hex')])).toEqual(sent.map(([id, b]) => [id, b.toString('hex')]));
    });

    it('reassembles large packets cut at arbitrary points', async () => {
      const s = await start('echo', { maxPacketSize: 65535 });
      const c = await connect(s.port);
      const sizes = [1, 3000, 5000, 65530, 17, 9000];
      const sent: Array<[number, Buffer]> = [];
      for (let i = 0; i < 12; i++) sent.push([200 + i, seqBody(i, sizes[i % sizes.length])]);
      const bytes = Buffer.concat(sent.map(([id, b]) => frame(id, b)));
      const rand = seededInt(12345);
      let pos = 0;
      for (let writes = 0; pos < bytes.length && writes < 10000; writes++) {
        const n = 1 + rand(7000);
        c.write(bytes.subarray(pos, pos + n));
        pos += n;
        if (writes % 8 === 0) await sleep(1);
      }
      const got = await c.waitPackets(sent.length, 10000);
      expect(got.map((p) => [p.id, p.body.equals(sent[got.indexOf(p)][1])])).toEqual(sent.map(([id]) => [id, true]));
    });

    it('echoes a burst of 5000 packets sent in one write, in order, then answers the PING behind them', async () => {
      const s = await start('echo');
      const c = await connect(s.port);
      const N = 5000;
      const parts: Buffer[] = [];
      for (let i = 0; i < N; i++) parts.push(frame(1000 + (i % 50), seqBody(i, 4 + (i % 60))));
      parts.push(frame(1, Buffer.from('after-burst')));
      c.write(Buffer.concat(parts));
      const got = await c.waitPackets(N + 1, 20000);
      expect(got).toHaveLength(N + 1);
      // The engine answers the PING itself, so the PONG may overtake echoes made by the handler.
      const pongs = got.filter((p) => p.id === 2);
      expect(pongs.map((p) => p.body.toString())).toEqual(['after-burst']);
      const echoes = got.filter((p) => p.id !== 2);
      for (let i = 0; i < N; i++) {
        const p = echoes[i];
        if (p.id !== 1000 + (i % 50) || p.body.readUInt32LE(0) !== i || !p.body.equals(seqBody(i, 4 + (i % 60)))) {
          throw new Error(`packet ${i} out of order or damaged: id ${p.id}, seq ${p.body.readUInt32LE(0)}`);
        }
      }
      const stats = await s.fetchStats();
      expect(stats.packetsIn).toBe(N + 1);
      expect(stats.pings).toBe(1);
      expect(stats.bytesIn).toBe(Buffer.concat(parts).length);
    });

    it('serves many clients on several IO threads at once', async () => {
      const s = await start('echo', { ioThreads: 4 });
      const cs = await Promise.all(Array.from({ length: 16 }, () => connect(s.port)));
      const perClient = 300;
      cs.forEach((c, k) => {
        const parts: Buffer[] = [];
        for (let i = 0; i < perClient; i++) parts.push(frame(100 + k, seqBody(i, 32)));
        c.write(Buffer.concat(parts));
      });
      await Promise.all(cs.map((c) => c.waitPackets(perClient, 15000)));
      cs.forEach((c, k) => {
        expect(c.packets.every((p, i) => p.id === 100 + k && p.body.readUInt32LE(0) === i)).toBe(true);
      });
    });

    it('listens on ::1 and reports IPv6 peers', async () => {
      const s = await host.start('echo', { idleTimeoutMs: 0 }, { host: '::1' });
      servers.push(s);
      const connects: RemoteConnection[] = [];
      s.on('connect', (c) => connects.push(c));
      const c = await RawClient.connect(s.port, '::1');
      clients.push(c);
      c.send(100, Buffer.from('v6'));
      const [p] = await c.waitPackets(1);
      expect(p.body.toString()).toBe('v6');
      await waitUntil(() => connects.length === 1, 5000, 'connect event');
      expect(connects[0].remoteAddress).toBe('::1');
      expect(connects[0].remotePort).toBe(c.socket.localPort);
    });

    it('stops reading while JS is busy (maxPendingBytes) and loses nothing', async () => {
      const s = await start('echo', { maxPendingBytes: 65536, maxPacketSize: 65535, maxSendQueueBytes: 64 << 20 });
      const c = await connect(s.port);
      const N = 400;
      const parts: Buffer[] = [];
      for (let i = 0; i < N; i++) parts.push(frame(100, seqBody(i, 10000)));
      // The host's JS thread is stuck for a while: the IO threads must pause instead of buffering everything.
      const blocked = host.request({ op: 'block', ms: 700 });
      await sleep(50);
      c.write(Buffer.concat(parts));
      await blocked;
      const got = await c.waitPackets(N, 20000);
      for (let i = 0; i < N; i++) {
        if (got[i].body.readUInt32LE(0) !== i || !got[i].body.equals(seqBody(i, 10000))) throw new Error(`packet ${i} out of order or damaged`);
      }
      const stats = await s.fetchStats();
      expect(stats.readPauses).toBeGreaterThan(0);
      expect(stats.packetsIn).toBe(N);
    });
  });

  describe('JS thread blocked for 2 s', () => {
    it('answers PINGs meanwhile, pauses a talker past maxPendingBytes without closing it, and still times out a silent client', async () => {
      const s = await start('echo', { idleTimeoutMs: 1000, maxPendingBytes: 65536 });
      const pinger = await connect(s.port);
      const talker = await connect(s.port);
      const silent = await connect(s.port);
      // A pinger gets nothing but PONGs: each read it sees is one.
      const pongTimes: number[] = [];
      pinger.socket.on('data', () => pongTimes.push(Date.now()));
      const pingTimer = setInterval(() => pinger.send(1, Buffer.from('p')), 200);
      let sent = 0;
      const talkTimer = setInterval(() => talker.send(100, seqBody(sent++, 500)), 10);
      try {
        await sleep(300);
        const blockStart = Date.now();
        await host.request({ op: 'block', ms: 2000 });
        const blockEnd = Date.now();
        clearInterval(talkTimer);
        let last = blockStart;
        let gap = 0;
        for (const t of pongTimes.filter((t) => t >= blockStart && t <= blockEnd)) {
          gap = Math.max(gap, t - last);
          last = t;
        }
        gap = Math.max(gap, blockEnd - last);
        const echoes = await talker.waitPackets(sent, 20000);
        for (let i = 0; i < sent; i++) {
          if (echoes[i].id !== 100 || echoes[i].body.readUInt32LE(0) !== i) throw new Error(`echo ${i} out of order`);
        }
        await silent.waitClosed(5000);
        expect(notifyCode(silent.packets[0])).toBe(3); // IDLE_TIMEOUT
        expect(pinger.closed || talker.closed).toBe(false);
        const stats = await s.fetchStats();
        console.log(`iocp: longest PONG gap while JS was blocked ${gap} ms; ${sent} packets echoed in order; readPauses ${stats.readPauses}`);
        expect(gap).toBeLessThan(600);
        expect(stats.readPauses).toBeGreaterThan(0);
        expect(stats.closes.idle_timeout).toBe(1);
      } finally {
        clearInterval(pingTimer);
        clearInterval(talkTimer);
      }
    });
  });

  describe('system packets', () => {
    it('answers PING with PONG carrying the same body, and handlers never see ids 1..99', async () => {
      const s = await start('plain', {}, true);
      const seen: number[] = [];
      s.on('packet', (_c, id) => seen.push(id));
      const c = await connect(s.port);
      c.write(Buffer.concat([frame(1), frame(1, Buffer.alloc(64, 7)), frame(50, Buffer.from('x')), frame(99), frame(150, Buffer.from('app'))]));
      const got = await c.waitPackets(2);
      expect(got.map((p) => [p.id, p.body.toString('hex')])).toEqual([
        [2, ''],
        [2, Buffer.alloc(64, 7).toString('hex')],
      ]);
      await waitUntil(() => seen.length === 1, 5000, 'the app packet');
      expect(seen).toEqual([150]);
      const stats = await s.fetchStats();
      expect(stats.pings).toBe(2);
      expect(stats.ignoredSystemPackets).toBe(2);
    });

    it('treats a PING body longer than 64 bytes as a protocol error', async () => {
      const s = await start('plain', {}, true);
      const delivered: string[] = [];
      const reasons: string[] = [];
      s.on('packet', (_c, _id, body) => delivered.push(body.toString()));
      s.on('disconnect', (_c, r) => reasons.push(r));
      const c = await connect(s.port);
      c.write(Buffer.concat([frame(100, Buffer.from('first')), frame(1, Buffer.alloc(65)), frame(101, Buffer.from('never'))]));
      await c.waitClosed();
      expect(c.packets.map(notifyCode)).toEqual([2]);
      // The disconnect event comes after every packet delivered before it.
      await waitUntil(() => reasons.length === 1, 5000, 'disconnect event');
      expect(reasons).toEqual(['protocol_error']);
      expect(delivered).toEqual(['first']);
    });
  });

  describe('protocol errors', () => {
    const cases: Array<[string, Buffer]> = [
      ['a length below 5', frame(100, Buffer.alloc(0), { length: 4 })],
      ['a length above maxPacketSize', frame(100, Buffer.alloc(2000))],
      ['a non-zero Type', frame(100, Buffer.from('x'), { type: 1 })],
    ];
    for (const [what, bad] of cases) {
      it(`closes on ${what} with PROTOCOL_ERROR after delivering what came before, and no one else is affected`, async () => {
        const s = await start('echo', { maxPacketSize: 1024 }, true);
        const reasons: string[] = [];
        const delivered: string[] = [];
        s.on('disconnect', (_c, r) => reasons.push(r));
        s.on('packet', (_c, _id, body) => delivered.push(body.toString()));
        const other = await connect(s.port);
        const c = await connect(s.port);
        c.write(Buffer.concat([frame(100, Buffer.from('one')), frame(101, Buffer.from('two')), bad, frame(102, Buffer.from('after'))]));
        await c.waitClosed();
        // The handler's echoes of the first two may or may not beat the close; the notify is last and alone.
        expect(notifyCode(c.packets[c.packets.length - 1])).toBe(2);
        expect(c.packets.filter((p) => p.id === 3)).toHaveLength(1);
        expect(c.packets.filter((p) => p.id === 102)).toHaveLength(0);
        // The disconnect event comes after every packet delivered before it.
        await waitUntil(() => reasons.length === 1, 5000, 'disconnect event');
        expect(reasons).toEqual(['protocol_error']);
        expect(delivered).toEqual(['one', 'two']);
        other.send(102, Buffer.from('still here'));
        const [p] = await other.waitPackets(1);
        expect(p.body.toString()).toBe('still here');
      });
    }
  });

  describe('limits', () => {
    it('holds 1000 connections at once and echoes on each', async () => {
      const s = await start('echo', { maxConnections: 1100 });
      const N = 1000;
      const cs: RawClient[] = [];
      for (let i = 0; i < N; i += 100) {
        cs.push(...(await Promise.all(Array.from({ length: Math.min(100, N - i) }, () => connect(s.port)))));
      }
      cs.forEach((c, i) => c.send(100, seqBody(i, 8)));
      await Promise.all(cs.map((c) => c.waitPackets(1, 20000)));
      cs.forEach((c, i) => expect(c.packets[0].body.readUInt32LE(0)).toBe(i));
      const stats = await s.fetchStats();
      expect(stats.connections).toBe(N);
      expect(stats.accepted).toBe(N);
      for (const c of cs) c.close();
      const deadline = Date.now() + 20000;
      while ((await s.fetchStats()).connections > 0 && Date.now() < deadline) await sleep(50);
      expect(s.stats().connections).toBe(0);
      expect(s.stats().closes.closed).toBe(N);
    });

    it('sends SERVER_FULL to a connection beyond maxConnections and keeps the others', async () => {
      const s = await start('echo', { maxConnections: 3 });
      const first = await Promise.all([connect(s.port), connect(s.port), connect(s.port)]);
      for (const c of first) c.send(100, Buffer.from('in'));
      await Promise.all(first.map((c) => c.waitPackets(1)));
      const extra = await connect(s.port);
      await extra.waitClosed();
      expect(extra.packets.map(notifyCode)).toEqual([4]);
      for (const c of first) c.send(101, Buffer.from('again'));
      await Promise.all(first.map((c) => c.waitPackets(2)));
      expect((await s.fetchStats()).closes.server_full).toBe(1);
      // A freed slot takes a new connection once the old socket is gone.
      first[0].close();
      let late: RawClient | undefined;
      for (let i = 0; i < 50; i++) {
        late = await connect(s.port);
        late.send(100, Buffer.from('late'));
        await late.waitFor(() => late!.packets.length > 0 || late!.closed, 5000, 'answer or close');
        if (late.packets[0]?.id === 100) break;
        await sleep(20);
      }
      expect(late?.packets[0]?.id).toBe(100);
    });

    it('closes a slow consumer (SLOW_CONSUMER) without affecting the other connections', async () => {
      const s = await start('plain', { maxSendQueueBytes: 256 * 1024, maxPacketSize: 65535 });
      const reasons: string[] = [];
      s.on('disconnect', (_c, r) => reasons.push(r));
      const good = await connect(s.port);
      const slow = await connect(s.port);
      await waitUntil(() => s.connections.size === 2, 10000, 'two connects');
      const slowConn = [...s.connections.values()].find((c) => c.remotePort === slow.socket.localPort);
      const goodConn = [...s.connections.values()].find((c) => c.remotePort === good.socket.localPort);
      if (slowConn === undefined || goodConn === undefined) throw new Error('connections not matched to their clients');
      // Never reads: the server's pushes pile up in the kernel buffers, then in its queue, past
      // the high-water mark (its reads pause, which holds nothing back here), then past the bound.
      slow.socket.pause();
      const body = Buffer.alloc(8000, 1);
      for (let i = 0; i < 2000 && reasons.length === 0; i++) {
        for (let k = 0; k < 8; k++) slowConn.send(100, body);
        await sleep(10);
      }
      await waitUntil(() => reasons.length === 1, 20000, 'the slow consumer to be closed');
      expect(reasons).toEqual(['slow_consumer']);
      goodConn.send(100, Buffer.from('fine'));
      const [p] = await good.waitPackets(1);
      expect(p.body.toString()).toBe('fine');
      const stats = await s.fetchStats();
      expect(stats.closes.slow_consumer).toBe(1);
      expect(stats.readPausesSendQueue).toBeGreaterThan(0);
    });

    it('a client that writes 5,000 requests of 1,000 bytes before it reads any reply is paused, not closed, and gets every reply in order', async () => {
      const s = await start('echo');
      const reasons: string[] = [];
      s.on('disconnect', (_c, r) => reasons.push(r));
      const c = await connect(s.port);
      c.socket.pause();
      const N = 5000;
      c.write(Buffer.concat(Array.from({ length: N }, (_, i) => frame(100, seqBody(i, 995)))));
      const deadline = Date.now() + 20000;
      while ((await s.fetchStats()).readPausesSendQueue === 0) {
        if (Date.now() > deadline) throw new Error('the server never paused reading for the send queue');
        await sleep(20);
      }
      await sleep(500);
      expect(reasons).toEqual([]);
      c.socket.resume();
      const got = await c.waitPackets(N, 30000);
      for (let i = 0; i < N; i++) {
        if (got[i].id !== 100 || !got[i].body.equals(seqBody(i, 995))) throw new Error(`reply ${i} out of order or damaged`);
      }
      expect(c.closed).toBe(false);
      const stats = await s.fetchStats();
      expect(stats.closes.slow_consumer).toBe(0);
      expect(stats.readPauses).toBe(0);
      expect(stats.packetsIn).toBe(N);
      expect(reasons).toEqual([]);
    });

    it('a client that reads in fits and starts gets every byte, in order (partial and pending sends)', async () => {
      const s = await start('echo', { maxSendQueueBytes: 256 << 20, maxPacketSize: 65535 });
      const c = await connect(s.port);
      const N = 600;
      const parts: Buffer[] = [];
      for (let i = 0; i < N; i++) parts.push(frame(100 + (i % 7), seqBody(i, 30000 + ((i * 977) % 30000))));
      c.write(Buffer.concat(parts));
      // Stop reading now and then, so the server's socket buffer fills and its sends go pending or partial.
      for (let round = 0; round < 60 && (round < 8 || c.packets.length < N); round++) {
        c.socket.pause();
        await sleep(40);
        c.socket.resume();
        await sleep(20);
      }
      const got = await c.waitPackets(N, 30000);
      for (let i = 0; i < N; i++) {
        if (got[i].id !== 100 + (i % 7) || !got[i].body.equals(seqBody(i, 30000 + ((i * 977) % 30000)))) {
          throw new Error(`packet ${i} out of order or damaged`);
        }
      }
      expect((await s.fetchStats()).bytesOut).toBe(Buffer.concat(parts).length);
    });

    it('closes an idle connection with IDLE_TIMEOUT and keeps one that PINGs', async () => {
      const s = await start('echo', { idleTimeoutMs: 400 });
      const idle = await connect(s.port);
      const busy = await connect(s.port);
      const t0 = Date.now();
      let pings = 0;
      while (Date.now() - t0 < 1400 && !idle.closed) {
        busy.send(1);
        pings++;
        await sleep(100);
      }
      await idle.waitClosed(5000);
      expect(idle.packets.map(notifyCode)).toEqual([3]);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
      // The PINGing client outlived the idle one and is still answered.
      expect(busy.closed).toBe(false);
      busy.send(100, Buffer.from('alive'));
      await busy.waitFor(() => busy.packets.some((p) => p.id === 100), 5000, 'echo');
      expect(busy.packets.filter((p) => p.id === 2).length).toBeGreaterThan(0);
      expect(pings).toBeGreaterThan(3);
      expect((await s.fetchStats()).closes.idle_timeout).toBe(1);
    });
  });

  describe('close', () => {
    it('close() from the application sends what was queued, then KICKED, then FIN', async () => {
      const s = await start('plain', {}, true);
      const c = await connect(s.port);
      await waitUntil(() => s.connections.size === 1, 5000, 'connect');
      const conn = [...s.connections.values()][0];
      for (let i = 0; i < 10; i++) conn.send(300 + i, seqBody(i, 100));
      conn.close();
      await c.waitClosed();
      expect(c.packets.map((p) => p.id)).toEqual([300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 3]);
      expect(notifyCode(c.packets[10])).toBe(5);
      expect(c.ended).toBe(true);
    });

    it('destroy() from the application closes without a notify', async () => {
      const s = await start('plain', {}, true);
      const reasons: string[] = [];
      s.on('disconnect', (_c, r) => reasons.push(r));
      const c = await connect(s.port);
      await waitUntil(() => s.connections.size === 1, 5000, 'connect');
      [...s.connections.values()][0].destroy();
      await c.waitClosed();
      expect(c.packets).toEqual([]);
      await waitUntil(() => reasons.length === 1, 5000, 'disconnect');
      expect(reasons).toEqual(['kicked']);
    });

    it('on a client FIN, delivers what came before it, answers its PING, then closes (half-close)', async () => {
      const s = await start('plain', {}, true);
      const reasons: string[] = [];
      const delivered: string[] = [];
      s.on('disconnect', (_c, r) => reasons.push(r));
      s.on('packet', (_c, _id, body) => delivered.push(body.toString()));
      const c = await connect(s.port);
      c.socket.end(Buffer.concat([frame(100, Buffer.from('one')), frame(101, Buffer.from('two')), frame(1, Buffer.from('last ping'))]));
      await c.waitClosed();
      expect(c.packets.map((p) => [p.id, p.body.toString()])).toEqual([[2, 'last ping']]);
      expect(c.ended).toBe(true);
      await waitUntil(() => reasons.length === 1, 5000, 'disconnect');
      expect(reasons).toEqual(['closed']);
      expect(delivered).toEqual(['one', 'two']);
    });

    it('reports a client reset as reset', async () => {
      const s = await start('echo');
      const reasons: string[] = [];
      s.on('disconnect', (_c, r) => reasons.push(r));
      const c = await connect(s.port);
      c.send(100, Buffer.from('x'));
      await c.waitPackets(1);
      c.socket.resetAndDestroy();
      await waitUntil(() => reasons.length === 1, 5000, 'disconnect');
      expect(reasons).toEqual(['reset']);
    });

    it('server close() sends SERVER_SHUTDOWN to every connection and leaves none open', async () => {
      const s = await start('echo', { ioThreads: 3 });
      const cs = await Promise.all(Array.from({ length: 20 }, () => connect(s.port)));
      for (const c of cs) c.send(100, Buffer.from('hi'));
      await Promise.all(cs.map((c) => c.waitPackets(1)));
      await s.close();
      await Promise.all(cs.map((c) => c.waitClosed()));
      for (const c of cs) expect(c.packets.map(notifyCode)).toEqual([undefined, 1]);
      expect(s.stats().connections).toBe(0);
      expect(s.stats().closes.shutdown).toBe(20);
      // The port is released: a new connection is refused.
      await expect(RawClient.connect(s.port)).rejects.toThrow();
    });

    it('broadcasts one packet to every connection', async () => {
      const s = await start('plain', {}, true);
      const cs = await Promise.all(Array.from({ length: 50 }, () => connect(s.port)));
      await waitUntil(() => s.connections.size === 50, 5000, '50 connects');
      expect(s.broadcast(s.connections.values(), 500, Buffer.from('to all'))).toBe(50);
      await Promise.all(cs.map((c) => c.waitPackets(1)));
      for (const c of cs) expect([c.packets[0].id, c.packets[0].body.toString()]).toEqual([500, 'to all']);
    });
  });

  describe('lifecycle', () => {
    it('starts and stops servers repeatedly without leaking threads or ports', async () => {
      for (let i = 0; i < 8; i++) {
        const s = await host.start('echo', { ioThreads: 1 + (i % 3), idleTimeoutMs: 0 });
        const c = await RawClient.connect(s.port);
        c.send(100, Buffer.from(`round ${i}`));
        await c.waitPackets(1);
        c.destroy();
        await s.close();
      }
    });

    it('refuses reusePort with ENOTSUP: Winsock has no SO_REUSEPORT, and its SO_REUSEADDR would take the port over, not share it', async () => {
      await expect(host.start('echo', { reusePort: true })).rejects.toMatchObject({
        code: 'ENOTSUP',
        message: 'cannot listen on 127.0.0.1:0: reusePort (SO_REUSEPORT) is not available with this backend on this system (ENOTSUP)',
      });
    });

    it('refuses a port in use with EADDRINUSE', async () => {
      const s = await start('echo');
      await expect(host.start('echo', {}, { port: s.port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    });
  });
});
