import { spawnSync } from 'node:child_process';
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { HandlerError, createServer, type Connection } from '../lib/index';
import { RawClient, backends, frame } from './helpers/raw-client';
import { childPrelude, notifyCode, sleep, useEngine, waitUntil } from './helpers/engine-harness';

// Closing connections and servers, id reuse, handler errors, bad arguments
// and process exit, black box over real TCP on 127.0.0.1.

describe.each(backends())('%s backend: lifecycle', (backend) => {
  const engine = useEngine(backend);

  it('server close sends what is queued, then SERVER_SHUTDOWN, then FIN, and resolves', async () => {
    const { server, port, log } = await engine.start({ closeTimeoutMs: 5000 });
    const a = await engine.connect(port);
    const b = await engine.connect(port);
    await waitUntil(() => log.connects.length === 2, 10000, 'two connects');
    let closed: Promise<void> | undefined;
    server.on('packet', (conn, id) => {
      if (id !== 100) return;
      for (let i = 0; i < 50; i++) conn.send(500 + i, Buffer.alloc(100 + i, i));
      closed = server.close();
    });
    let closeEvents = 0;
    server.on('close', () => closeEvents++);
    a.send(100);
    await waitUntil(() => closed !== undefined, 10000, 'close() called');
    await closed;
    expect(closeEvents).toBe(1);
    await Promise.all([a.waitClosed(10000), b.waitClosed(10000)]);
    expect(a.packets.map((p) => p.id)).toEqual([...Array.from({ length: 50 }, (_, i) => 500 + i), 3]);
    a.packets.slice(0, 50).forEach((p, i) => expect(p.body.equals(Buffer.alloc(100 + i, i))).toBe(true));
    expect(notifyCode(a.packets[50])).toBe(1);
    expect(b.packets.map(notifyCode)).toEqual([1]);
    // A FIN, not a reset.
    expect([a.ended, b.ended]).toEqual([true, true]);
    expect(a.error).toBeUndefined();
    expect(log.disconnects.map((d) => d.reason)).toEqual(['shutdown', 'shutdown']);
    expect(server.stats().closes.shutdown).toBe(2);
    expect(server.connections.size).toBe(0);
    expect(log.connects.every((c) => !c.isOpen && !c.send(100))).toBe(true);
    await expect(RawClient.connect(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    // close() again is the same finished close.
    await server.close();
    expect(closeEvents).toBe(1);
  });

  it('server close finishes within closeTimeoutMs when a peer never closes its side', async () => {
    const closeTimeoutMs = 300;
    const { server, port, log } = await engine.start({ closeTimeoutMs });
    // A peer that stays half-open and never answers the server's FIN.
    const stubborn = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let gotEnd = false;
    stubborn.on('end', () => (gotEnd = true));
    stubborn.on('error', () => undefined);
    stubborn.on('data', () => undefined);
    try {
      await waitUntil(() => log.connects.length === 1, 10000, 'connect');
      const t0 = Date.now();
      await server.close();
      const took = Date.now() - t0;
      expect(took).toBeLessThan(closeTimeoutMs + 10000);
      // It saw the FIN; being half-open on purpose, it never closes by itself.
      await waitUntil(() => gotEnd, 10000, 'peer sees the FIN');
      expect(server.stats().connections).toBe(0);
      expect(log.disconnects.map((d) => d.reason)).toEqual(['shutdown']);
    } finally {
      stubborn.destroy();
    }
  });

  it("close() sends what is queued, then KICKED, then FIN; reports 'kicked' once and refuses sends after", async () => {
    const { server, port, log } = await engine.start();
    const c = await engine.connect(port);
    const other = await engine.connect(port);
    let results: boolean[] = [];
    server.on('packet', (conn, id, body) => {
      if (id === 100) {
        conn.send(200, Buffer.from('bye'));
        results = [conn.close(), conn.isOpen, conn.send(201, Buffer.from('late')), conn.close(), conn.destroy()];
      } else {
        conn.send(id, body);
      }
    });
    c.send(100);
    await c.waitClosed(10000);
    expect(results).toEqual([true, false, false, false, false]);
    expect(c.packets.map((p) => p.id)).toEqual([200, 3]);
    expect(notifyCode(c.packets[1])).toBe(5);
    expect(c.ended).toBe(true);
    await waitUntil(() => log.disconnects.length === 1, 10000, 'disconnect');
    await sleep(50);
    expect(log.disconnects.map((d) => d.reason)).toEqual(['kicked']);
    expect(server.stats().closes.kicked).toBe(1);
    other.send(300, Buffer.from('x'));
    await other.waitPackets(1);
    expect(other.closed).toBe(false);
  });

  it.each([
    ['close()', 'kicked', 5],
    ["close('protocol_error')", 'protocol_error', 2],
    ['destroy()', 'kicked', undefined],
  ] as const)('%s on a connection whose FIN came with the request reports and counts the application reason, once', async (how, reason, notify) => {
    const { server, port, log } = await engine.start();
    server.on('packet', (conn, id) => {
      if (id !== 100) return;
      conn.send(200, Buffer.from('bye'));
      if (how === 'destroy()') conn.destroy();
      else conn.close(how === 'close()' ? 'kicked' : 'protocol_error');
    });
    // The request and the FIN in one write: the engine may see the FIN
    // before JS has run the handler that closes the connection.
    const clients = await Promise.all(Array.from({ length: 20 }, () => engine.connect(port)));
    await waitUntil(() => log.connects.length === clients.length, 10000, 'connects');
    for (const c of clients) {
      c.write(frame(100));
      c.close();
    }
    await Promise.all(clients.map((c) => c.waitClosed(10000)));
    await waitUntil(() => log.disconnects.length === clients.length, 10000, 'disconnects');
    await sleep(50);
    expect(log.disconnects.map((d) => d.reason)).toEqual(clients.map(() => reason));
    const closes = server.stats().closes;
    expect(closes[reason]).toBe(clients.length);
    expect(closes.closed).toBe(0);
    if (notify !== undefined) {
      for (const c of clients) {
        expect(c.packets.map((p) => p.id)).toEqual([200, 3]);
        expect(notifyCode(c.packets[1])).toBe(notify);
      }
    }
  });

  it("destroy() drops what is queued, closes at once, and reports 'kicked' once", async () => {
    const { server, port, log } = await engine.start();
    const c = await engine.connect(port);
    await waitUntil(() => log.connects.length === 1, 10000, 'connect');
    const conn = log.connects[0];
    // From outside any handler, as a timer in application code would.
    expect(conn.send(200, Buffer.from('dropped'))).toBe(true);
    expect(conn.destroy()).toBe(true);
    expect(conn.send(201)).toBe(false);
    expect(conn.close()).toBe(false);
    await c.waitClosed(10000);
    await waitUntil(() => log.disconnects.length === 1, 10000, 'disconnect');
    await sleep(50);
    expect(c.packets).toHaveLength(0);
    expect(log.disconnects.map((d) => d.reason)).toEqual(['kicked']);
    expect(log.reasonsById.get(conn.id)).toEqual(['kicked']);
    expect(server.stats().closes.kicked).toBe(1);
    await waitUntil(() => server.stats().connections === 0, 10000, 'no connections');
  });

  it("never emits 'disconnect' from inside close() or destroy(), and flushes sends made in 'connect' and 'disconnect' handlers", async () => {
    const { server, port, log } = await engine.start();
    const order: string[] = [];
    server.on('connect', (conn) => conn.send(150, Buffer.from('welcome')));
    server.on('disconnect', (conn) => {
      order.push(`disconnect ${conn.id}`);
      for (const other of server.connections.values()) other.send(151, Buffer.from('left'));
    });
    server.on('packet', (conn, id) => {
      if (id !== 100) return;
      order.push('close');
      conn.close();
      order.push('closed');
    });
    const a = await engine.connect(port);
    const b = await engine.connect(port);
    // Taken now: a closed socket no longer knows its port.
    const aPort = a.socket.localPort;
    const bPort = b.socket.localPort;
    await Promise.all([a.waitPackets(1), b.waitPackets(1)]);
    expect(a.packets[0].body.toString()).toBe('welcome');
    a.send(100);
    await b.waitPackets(2);
    expect(b.packets[1].id).toBe(151);
    // With several IO threads the two connect events may come in either order.
    const aConn = log.connects.find((c) => c.remotePort === aPort);
    const bConn = log.connects.find((c) => c.remotePort === bPort);
    expect(aConn).toBeDefined();
    expect(bConn).toBeDefined();
    expect(order).toEqual(['close', 'closed', `disconnect ${aConn?.id}`]);

    order.length = 0;
    const conn = bConn!;
    order.push('destroy');
    conn.destroy();
    order.push('destroyed');
    await waitUntil(() => order.length === 3, 10000, 'disconnect');
    expect(order).toEqual(['destroy', 'destroyed', `disconnect ${conn.id}`]);
  });

  it('refuses a stale connection id after its slot is reused', async () => {
    const { server, port, log } = await engine.startEcho({ maxConnections: 1 });
    const a = await engine.connect(port);
    await waitUntil(() => log.connects.length === 1, 10000, 'first connect');
    const old = log.connects[0];
    a.destroy();
    await waitUntil(() => log.disconnects.length === 1, 10000, 'first disconnect');

    // The only slot is free again once the old socket is fully closed; retry until then.
    let b: RawClient | undefined;
    for (let i = 0; i < 50 && log.connects.length < 2; i++) {
      b = await engine.connect(port);
      await b.waitFor(() => log.connects.length === 2 || b!.closed, 5000, 'second connect or refusal');
    }
    expect(log.connects).toHaveLength(2);
    const fresh = log.connects[1];
    expect(fresh.id).not.toBe(old.id);
    expect(Number.isInteger(fresh.id)).toBe(true);

    // The kept Connection refuses without reaching the engine.
    expect(old.isOpen).toBe(false);
    expect(old.send(1000, Buffer.from('stale'))).toBe(false);
    expect(old.close()).toBe(false);
    expect(old.destroy()).toBe(false);
    expect(server.broadcast([old], 1000, Buffer.from('stale'))).toBe(0);

    // The engine refuses the old id itself.
    const before = server.stats().staleRefused;
    server._send(old.id, 1001, Buffer.from('stale'));
    server._closeConnection(old.id, 'destroy');
    await waitUntil(() => server.stats().staleRefused === before + 2, 10000, 'two refusals');
    expect(fresh.send(1002, Buffer.from('fresh'))).toBe(true);
    const [p] = await b!.waitPackets(1);
    expect([p.id, p.body.toString()]).toEqual([1002, 'fresh']);
    await sleep(50);
    expect(b!.packets).toHaveLength(1);
    expect(fresh.isOpen).toBe(true);
    expect(b!.closed).toBe(false);
  });

  it("reports a throwing handler as a HandlerError 'error' event and goes on", async () => {
    const { server, port, log } = await engine.start();
    let thrown = 0;
    server.on('connect', () => {
      if (thrown++ === 0) throw new Error('connect boom');
    });
    server.on('packet', (conn, id, body) => {
      if (id === 666) throw new Error('packet boom');
      conn.send(id, body);
    });
    const c = await engine.connect(port);
    c.write(Buffer.concat([frame(100, Buffer.from('a')), frame(666), frame(101, Buffer.from('b'))]));
    await c.waitPackets(2);
    expect(c.packets.map((p) => p.id)).toEqual([100, 101]);
    expect(log.errors).toHaveLength(2);
    for (const err of log.errors) {
      expect(err).toBeInstanceOf(HandlerError);
      expect((err as HandlerError).code).toBe('EHANDLER');
      expect((err as HandlerError).connectionId).toBe(log.connects[0].id);
    }
    expect(log.errors.map((e) => (e as HandlerError).event)).toEqual(['connect', 'packet']);
    expect(((log.errors[1] as HandlerError).cause as Error).message).toBe('packet boom');
    c.send(102, Buffer.from('c'));
    await c.waitPackets(3);
    expect(c.closed).toBe(false);
  });

  it('rejects listen on a busy port with EADDRINUSE and can be closed after', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as net.AddressInfo).port;
      const server = engine.own(createServer({ backend }));
      await expect(server.listen(port, '127.0.0.1')).rejects.toMatchObject({ code: 'EADDRINUSE' });
      await server.close();
      const { port: own } = await engine.start();
      const second = engine.own(createServer({ backend }));
      await expect(second.listen(own, '127.0.0.1')).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  it('throws TypeError or RangeError naming a bad option', () => {
    const bad: Array<[Record<string, unknown>, ErrorConstructor, RegExp]> = [
      [{ maxPacketSize: 3 }, RangeError, /maxPacketSize/],
      [{ maxPacketSize: 70000 }, RangeError, /maxPacketSize/],
      [{ maxConnections: 0 }, RangeError, /maxConnections/],
      [{ idleTimeoutMs: -1 }, RangeError, /idleTimeoutMs/],
      [{ maxSendQueueBytes: 1.5 }, TypeError, /maxSendQueueBytes/],
      [{ closeTimeoutMs: '5' }, TypeError, /closeTimeoutMs/],
      [{ reusePort: 1 }, TypeError, /reusePort/],
      [{ backend: 'fast' }, TypeError, /backend/],
      [{ bogus: 1 }, TypeError, /bogus/],
    ];
    for (const [options, type, name] of bad) {
      expect(() => createServer({ backend, ...options })).toThrow(type);
      expect(() => createServer({ backend, ...options })).toThrow(name);
    }
  });

  it('throws on bad listen and send arguments', async () => {
    const server = engine.own(createServer({ backend }));
    await expect(server.listen(70000)).rejects.toThrow(RangeError);
    await expect(server.listen(0, '')).rejects.toThrow(TypeError);
    const { port, log } = await engine.start();
    const c = await engine.connect(port);
    await waitUntil(() => log.connects.length === 1, 10000, 'connect');
    const conn: Connection = log.connects[0];
    expect(() => conn.send(-1)).toThrow(RangeError);
    expect(() => conn.send(65536)).toThrow(RangeError);
    expect(() => conn.send(1.5)).toThrow(TypeError);
    expect(() => conn.send('100' as never)).toThrow(TypeError);
    expect(() => conn.send(100, 'text' as never)).toThrow(TypeError);
    expect(() => conn.send(100, new Uint8Array(65531))).toThrow(RangeError);
    expect(() => (conn as unknown as { send: (id: unknown) => void }).send(undefined)).toThrow(TypeError);
    const { server: other } = await engine.start();
    expect(() => other.broadcast([conn, {} as never], 100)).toThrow(TypeError);
    expect(() => other.broadcast(42 as never, 100)).toThrow(TypeError);
    expect(() => other.broadcast([conn], 100, [1, 2] as never)).toThrow(TypeError);
    // Nothing bad was sent; the connection still works.
    expect(conn.send(100, new Uint8Array(65530))).toBe(true);
    const [p] = await c.waitPackets(1);
    expect(p.body.length).toBe(65530);
  });

  it('lets a process exit on its own once its server is closed', () => {
    const code = `${childPrelude()}
      (async () => {
        const server = iocpnet.createServer({ backend: ${JSON.stringify(backend)}, idleTimeoutMs: 1000, ioThreads: 2 });
        server.on('packet', (conn, id, body) => conn.send(id, body));
        const { port } = await server.listen(0, '127.0.0.1');
        const net = require('node:net');
        const sock = net.connect(port, '127.0.0.1');
        await new Promise((r) => sock.once('connect', r));
        sock.on('data', () => {});
        sock.write(Buffer.from([7, 0, 100, 0, 0, 104, 105]));
        await new Promise((r) => setTimeout(r, 50));
        await server.close();
        console.log('closed');
      })().catch((err) => { console.error(err); process.exit(2); });
    `;
    const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 20000 });
    expect(r.error).toBeUndefined();
    expect(r.signal).toBeNull();
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('closed');
    expect(r.status).toBe(0);
  });
});
