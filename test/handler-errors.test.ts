import { describe, expect, it } from 'vitest';
import { HandlerError, createServer, type Connection } from '../lib/index';
import { backends, frame } from './helpers/raw-client';
import { sleep, useEngine, waitUntil } from './helpers/engine-harness';

// What a listener's failure does: a synchronous throw and a rejected promise
// are reported the same way, as a HandlerError on 'error', and the server goes on.

type Failure = 'throw' | 'reject' | 'thenable';

/** A listener body that fails as `how` says. */
function fail(how: Failure, message: string): unknown {
  const err = new Error(message);
  if (how === 'throw') throw err;
  if (how === 'reject') return Promise.reject(err);
  // Any thenable, not only a native promise.
  return { then: (_ok: unknown, ko: (e: unknown) => void) => setImmediate(() => ko(err)) };
}

describe.each(backends())('%s backend: failing listeners', (backend) => {
  const engine = useEngine(backend);

  it.each(['throw', 'reject', 'thenable'] as const)(
    "a listener that fails by '%s' on connect, packet and disconnect is reported as a HandlerError, and the server goes on",
    async (how) => {
      const { server, port, log } = await engine.start();
      server.on('connect', (conn) => (conn.id >= 0 ? fail(how, 'connect failed') : undefined));
      server.on('packet', (conn, id, body) => {
        if (id === 666) return fail(how, 'packet failed');
        conn.send(id, body);
        return undefined;
      });
      server.on('disconnect', () => fail(how, 'disconnect failed'));
      const c = await engine.connect(port);
      c.write(Buffer.concat([frame(100, Buffer.from('a')), frame(666), frame(101, Buffer.from('b'))]));
      await c.waitPackets(2);
      expect(c.packets.map((p) => p.id)).toEqual([100, 101]);
      c.close();
      await c.waitClosed(10000);
      await waitUntil(() => log.errors.length === 3, 10000, 'three errors');
      await sleep(50);
      const id = log.connects[0].id;
      expect(log.errors.map((e) => (e instanceof HandlerError ? [e.event, e.connectionId, e.code, (e.cause as Error).message] : e))).toEqual([
        ['connect', id, 'EHANDLER', 'connect failed'],
        ['packet', id, 'EHANDLER', 'packet failed'],
        ['disconnect', id, 'EHANDLER', 'disconnect failed'],
      ]);
      expect(log.errors.map((e) => e.message)).toEqual([
        "a 'connect' handler threw: connect failed",
        "a 'packet' handler threw: packet failed",
        "a 'disconnect' handler threw: disconnect failed",
      ]);
      // Still serving.
      const d = await engine.connect(port);
      d.send(102, Buffer.from('c'));
      await d.waitPackets(1);
    },
  );

  it("a throwing or rejected 'listening' or 'close' listener is reported with connectionId -1; one without 'error' listeners is printed, not fatal", async () => {
    const server = createServer({ backend, ioThreads: 1 });
    const errors: HandlerError[] = [];
    server.on('error', (err) => errors.push(err as HandlerError));
    // Async listeners where the type says void are what this test is about.

    server.on('listening', async () => {
      await sleep(1);
      throw new Error('listening failed');
    });

    server.on('close', () => Promise.reject(new Error('close failed')));
    // A synchronous throw from the server's own events is reported the same way.
    server.on('listening', () => {
      throw new Error('listening threw');
    });
    server.on('close', () => {
      throw new Error('close threw');
    });
    await server.listen(0, '127.0.0.1');
    await server.close();
    await waitUntil(() => errors.length === 4, 5000, 'four errors');
    expect(errors.map((e) => [e.event, e.connectionId, (e.cause as Error).message]).sort()).toEqual([
      ['close', -1, 'close failed'],
      ['close', -1, 'close threw'],
      ['listening', -1, 'listening failed'],
      ['listening', -1, 'listening threw'],
    ]);
    // No 'error' listener: printed, and the process lives on.
    const quiet = createServer({ backend, ioThreads: 1 });
    const printed: unknown[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => printed.push(args[0]);
    try {
      // A rejected promise without an await, on purpose.
      // eslint-disable-next-line @typescript-eslint/require-await
      quiet.on('connect', async (conn: Connection) => {
        conn.destroy();
        throw new Error('nobody listens');
      });
      const { port } = await quiet.listen(0, '127.0.0.1');
      const c = await engine.connect(port);
      await c.waitClosed(10000);
      await waitUntil(() => printed.length === 1, 5000, 'the printed error');
    } finally {
      console.error = original;
      await quiet.close();
    }
    expect(printed[0]).toBeInstanceOf(HandlerError);
  });
});

describe.each(backends())('%s backend: reserved packet ids', (backend) => {
  const engine = useEngine(backend);

  it.each([0, 1, 2, 3, 99])('send(%i) and broadcast to it throw a RangeError naming the range, and nothing reaches the client', async (id) => {
    const { server, port, log } = await engine.start();
    const c = await engine.connect(port);
    await waitUntil(() => log.connects.length === 1, 10000, 'connect');
    const conn = log.connects[0];
    const message = `packetId must be between 100 and 65535 (ids 0..99 are reserved for the engine), got ${id}`;
    expect(() => conn.send(id, Buffer.from([9, 0]))).toThrow(new RangeError(message));
    expect(() => server.broadcast([conn], id, Buffer.from([9, 0]))).toThrow(new RangeError(message));
    expect(conn.send(100, Buffer.from('ok'))).toBe(true);
    const [p] = await c.waitPackets(1);
    expect(p.id).toBe(100);
    await sleep(50);
    expect(c.packets).toHaveLength(1);
    expect(c.closed).toBe(false);
  });
});
