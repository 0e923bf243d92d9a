import { describe, expect, it } from 'vitest';
import type { Connection } from '../lib/index';
import { RawClient, backendsAndTransports } from './helpers/raw-client';
import { notifyCode, seqBody, sleep, useEngine, waitUntil } from './helpers/engine-harness';

// Connection count, send queue and idle limits, black box over real TCP on
// 127.0.0.1, raw and as WebSocket messages.

describe.each(backendsAndTransports())('%s backend over %s: limits', (backend, transport) => {
  const engine = useEngine(backend, transport);

  it('serves 1000 concurrent connections, each echoing', async () => {
    const { server, port } = await engine.startEcho({ maxConnections: 1100 });
    const clients: RawClient[] = [];
    // Connect in waves so the accept backlog never overflows.
    for (let wave = 0; wave < 10; wave++) {
      clients.push(...(await Promise.all(Array.from({ length: 100 }, () => engine.connect(port)))));
    }
    await waitUntil(() => server.stats().connections === 1000, 20000, '1000 connections');
    clients.forEach((c, i) => c.send(1000 + (i % 100), seqBody(i, 16)));
    await Promise.all(clients.map((c) => c.waitPackets(1, 20000)));
    clients.forEach((c, i) => {
      expect(c.packets).toHaveLength(1);
      expect(c.packets[0].id).toBe(1000 + (i % 100));
      expect(c.packets[0].body.readUInt32LE(0)).toBe(i);
    });
    const s = server.stats();
    expect(s.accepted).toBe(1000);
    expect(s.packetsIn).toBe(1000);
    expect(server.connections.size).toBe(1000);
    for (const c of clients) c.destroy();
    await waitUntil(() => server.stats().connections === 0, 20000, 'all disconnected');
  });

  it('closes a client that sends a burst larger than maxSendQueueBytes at once as a slow consumer', async () => {
    const { server, port, log } = await engine.start({ maxSendQueueBytes: 64 * 1024 });
    const flood = await engine.connect(port);
    const other = await engine.connect(port);
    const body = Buffer.alloc(1000, 7);
    server.on('packet', (conn, id, b) => {
      if (id === 200) {
        for (let i = 0; i < 500; i++) conn.send(300, body);
      } else {
        conn.send(id, b);
      }
    });
    const floodPort = flood.socket.localPort;
    flood.send(200);
    await waitUntil(() => log.disconnects.length === 1, 10000, 'slow consumer disconnect');
    expect(log.disconnects[0].reason).toBe('slow_consumer');
    expect(log.disconnects[0].conn.remotePort).toBe(floodPort);
    await flood.waitClosed(10000);
    // Nothing past the limit was queued for it.
    expect(flood.packets.length * 1005).toBeLessThanOrEqual(64 * 1024);
    expect(server.stats().closes.slow_consumer).toBe(1);
    other.send(400, Buffer.from('fine'));
    const [p] = await other.waitPackets(1);
    expect(p.body.toString()).toBe('fine');
    expect(other.closed).toBe(false);
  });

  it('closes a client that stops reading as a slow consumer while others keep being served', async () => {
    const { server, port, log } = await engine.start({ maxSendQueueBytes: 256 * 1024 });
    const stalled = await engine.connect(port);
    const reader = await engine.connect(port);
    await waitUntil(() => log.connects.length === 2, 10000, 'two connects');
    const stalledPort = stalled.socket.localPort;
    stalled.socket.pause();
    const body = Buffer.alloc(2000, 1);
    const [first, second] = log.connects;
    const stalledConn = first.remotePort === stalledPort ? first : second;
    const readerConn = stalledConn === first ? second : first;
    let rounds = 0;
    // Server-side pushes, as a game tick would, until the stalled client is dropped (bounded in time).
    // The reader gets a modest stream, so that a busy test process still keeps up with it.
    const ticker = setInterval(() => {
      rounds++;
      for (let i = 0; i < 32; i++) stalledConn.send(300, body);
      readerConn.send(300, body);
    }, 5);
    try {
      await waitUntil(() => log.disconnects.length > 0, 25000, 'slow consumer disconnect');
    } finally {
      clearInterval(ticker);
    }
    expect(log.disconnects).toHaveLength(1);
    expect(log.disconnects[0].reason).toBe('slow_consumer');
    expect(log.disconnects[0].conn.remotePort).toBe(stalledPort);
    expect(server.stats().closes.slow_consumer).toBe(1);
    // The reader got every packet sent to it, and is still served.
    const sentToReader = rounds;
    await reader.waitPackets(sentToReader, 20000);
    expect(reader.packets.every((p) => p.id === 300 && p.body.length === 2000)).toBe(true);
    server.on('packet', (conn, id, b) => conn.send(id, b));
    reader.send(401, Buffer.from('after'));
    await reader.waitFor(() => reader.packets.some((p) => p.id === 401), 10000, 'echo after');
    expect(reader.closed).toBe(false);
    stalled.socket.resume();
    await stalled.waitClosed(10000);
  });

  it('closes a silent connection after idleTimeoutMs with IDLE_TIMEOUT; PING and packets keep others alive', async () => {
    const idleTimeoutMs = 300;
    const { server, port, log } = await engine.startEcho({ idleTimeoutMs });
    // Taken before the server can see the connection, so the measured idle time is never too long.
    const start = Date.now();
    const silent = await engine.connect(port);
    const pinger = await engine.connect(port);
    const talker = await engine.connect(port);
    const silentPort = silent.socket.localPort;
    let closedAfter = -1;
    void silent.waitClosed(10000).then(
      () => (closedAfter = Date.now() - start),
      () => undefined,
    );
    // Keep-alives at a fifth of the timeout leave room for a late timer on a busy machine.
    for (let i = 0; i < 12; i++) {
      pinger.send(1, Buffer.from([i]));
      talker.send(100, Buffer.from([i]));
      await sleep(idleTimeoutMs / 5);
    }
    await waitUntil(() => closedAfter >= 0, 10000, 'silent client closed');
    // Not before the timeout (a little slack for clock rounding), however late a busy machine makes it.
    expect(closedAfter).toBeGreaterThanOrEqual(idleTimeoutMs - 30);
    expect(silent.packets.map(notifyCode)).toEqual([3]);
    expect(log.disconnects.map((d) => [d.conn.remotePort, d.reason])).toEqual([[silentPort, 'idle_timeout']]);
    expect(pinger.closed).toBe(false);
    expect(talker.closed).toBe(false);
    await pinger.waitPackets(12);
    expect(pinger.packets.every((p) => p.id === 2)).toBe(true);
    // Once quiet, they time out too.
    await Promise.all([pinger.waitClosed(10000), talker.waitClosed(10000)]);
    expect(notifyCode(pinger.packets[pinger.packets.length - 1])).toBe(3);
    await waitUntil(() => log.disconnects.length === 3, 10000, 'three disconnects');
    expect(log.disconnects.every((d) => d.reason === 'idle_timeout')).toBe(true);
    expect(server.stats().closes.idle_timeout).toBe(3);
  });

  it('refuses a connection past maxConnections with SERVER_FULL and never reports it', async () => {
    const { server, port, log } = await engine.startEcho({ maxConnections: 2 });
    const a = await engine.connect(port);
    const b = await engine.connect(port);
    await waitUntil(() => log.connects.length === 2, 10000, 'two connects');
    if (transport === 'tcp') {
      const c = await engine.connect(port);
      await c.waitClosed(10000);
      expect(c.packets.map(notifyCode)).toEqual([4]);
    } else {
      // Refused at accept, before its upgrade request is read: the handshake fails.
      await expect(engine.connect(port)).rejects.toThrow();
    }
    expect(log.connects).toHaveLength(2);
    expect(log.disconnects).toHaveLength(0);
    const s = server.stats();
    expect(s.closes.server_full).toBe(1);
    expect(s.connections).toBe(2);
    expect(s.accepted).toBe(2);
    for (const x of [a, b]) x.send(100, Buffer.from('ok'));
    await Promise.all([a.waitPackets(1), b.waitPackets(1)]);
    expect([a.closed, b.closed]).toEqual([false, false]);

    // A freed slot takes a new connection (once the old socket is fully closed).
    a.close();
    await waitUntil(() => log.disconnects.length === 1, 10000, 'a disconnect');
    let d: RawClient | undefined;
    for (let i = 0; i < 50 && log.connects.length < 3; i++) {
      // A WebSocket client refused while the slot is still held fails its handshake.
      const next = await engine.connect(port).catch(() => undefined);
      if (next === undefined) continue;
      d = next;
      await d.waitFor(() => log.connects.length === 3 || next.closed, 5000, 'third connect or refusal');
    }
    expect(log.connects).toHaveLength(3);
    d!.send(100, Buffer.from('new'));
    const [p] = await d!.waitPackets(1);
    expect(p.body.toString()).toBe('new');
  });

  it('sends one broadcast to every open receiver and counts each', async () => {
    const { server, port, log } = await engine.start();
    const clients = await Promise.all(Array.from({ length: 5 }, () => engine.connect(port)));
    await waitUntil(() => log.connects.length === 5, 10000, 'five connects');
    const conns: Connection[] = [...log.connects];
    const small = Buffer.from('small');
    const large = seqBody(3, 3000);
    expect(server.broadcast(conns, 700, small)).toBe(5);
    expect(server.broadcast(conns, 701, large)).toBe(5);
    conns[0].send(702, Buffer.from('after'));
    await Promise.all(clients.map((c) => c.waitPackets(2)));
    for (const c of clients) {
      expect(c.packets[0].id).toBe(700);
      expect(c.packets[0].body.equals(small)).toBe(true);
      expect(c.packets[1].id).toBe(701);
      expect(c.packets[1].body.equals(large)).toBe(true);
    }
    const first = clients.find((c) => c.socket.localPort === conns[0].remotePort)!;
    await first.waitPackets(3);
    expect(first.packets[2].id).toBe(702);
    expect(server.stats().packetsOut).toBe(11);
    conns[1].destroy();
    expect(server.broadcast(conns, 703, small)).toBe(4);
  });
});
