import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PacketRouter, attachLogger, createChatServer, createLogger, serveMetrics, type Logger } from '../lib/index';
import { ChatFixture } from './helpers/chat-client';
import { ROOT, ensureBuilt, runCli } from './helpers/chat-cli';
import { waitUntil } from './helpers/engine-harness';
import { RawClient, backends, startServer } from './helpers/raw-client';
import { RedisServer, redisServerAvailable } from './helpers/redis';

interface Entry {
  level: 'error' | 'warn' | 'info' | 'debug';
  obj: Record<string, unknown>;
  msg: string | undefined;
}

function recorder(debug: boolean): Logger & { entries: Entry[] } {
  const entries: Entry[] = [];
  const at =
    (level: Entry['level']) =>
    (obj: object, msg?: string): void => {
      entries.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  return { entries, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), isLevelEnabled: (l) => debug || l !== 'debug' };
}

describe.each(backends())('attachLogger (%s backend)', (backend) => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  it('logs a handler error with the connection id, the packet id and the stack; connects and disconnects at debug', async () => {
    const { server, port } = await startServer(backend);
    closers.push(() => server.close());
    const log = recorder(true);
    attachLogger(server, log);
    new PacketRouter()
      .on(300, () => {
        throw new Error('boom');
      })
      .attach(server);
    const c = await RawClient.connect(port);
    c.send(300);
    await waitUntil(() => log.entries.some((e) => e.level === 'error'));
    const conn = [...server.connections.values()][0];
    const error = log.entries.find((e) => e.level === 'error');
    expect(error?.obj).toMatchObject({ connectionId: conn.id, packetId: 300 });
    expect((error?.obj.err as Error).stack).toMatch(/boom[\s\S]*logs\.test\.ts/);
    c.close();
    await waitUntil(() => log.entries.some((e) => e.msg === 'disconnect'));
    expect(log.entries.filter((e) => e.level === 'debug').map((e) => [e.msg, e.obj.connectionId])).toEqual([
      ['connect', conn.id],
      ['disconnect', conn.id],
    ]);
    await server.close();
    expect(log.entries.at(-1)).toMatchObject({ level: 'info', msg: 'closed' });
  });

  it('skips the per-connection events below debug', async () => {
    const { server, port } = await startServer(backend);
    closers.push(() => server.close());
    const log = recorder(false);
    attachLogger(server, log);
    const c = await RawClient.connect(port);
    await waitUntil(() => server.connections.size === 1);
    c.close();
    await waitUntil(() => server.connections.size === 0);
    expect(log.entries).toEqual([]);
    expect(server.listenerCount('connect')).toBe(0);
  });
});

describe.each(backends())('createChatServer({ logger }) (%s backend)', (backend) => {
  const fx = new ChatFixture();
  afterEach(() => fx.dispose());

  it('logs listening, a handler error with the connection id, the packet id and the stack, and the close', async () => {
    const log = recorder(false);
    const consoleError = vi.spyOn(console, 'error');
    try {
      const chat = await fx.start(backend, { logger: log });
      chat.router.on(300, () => {
        throw new Error('chat handler boom');
      });
      const c = await fx.client();
      await c.join('alice', 1);
      c.raw.send(300);
      await waitUntil(() => log.entries.some((e) => e.level === 'error'));
      const conn = [...chat.server.connections.values()][0];
      const error = log.entries.find((e) => e.level === 'error');
      expect(error?.obj).toMatchObject({ connectionId: conn.id, packetId: 300 });
      expect((error?.obj.err as Error).stack).toMatch(/chat handler boom[\s\S]*logs\.test\.ts/);
      // The logger took the error: nothing went to the console.
      expect(consoleError).not.toHaveBeenCalled();
      await fx.dispose();
      expect(log.entries.map((e) => [e.level, e.msg])).toEqual([
        ['info', `listening on 127.0.0.1:${fx.port}`],
        ['error', error?.msg],
        ['info', 'closed'],
      ]);
    } finally {
      consoleError.mockRestore();
    }
  });

  it('refuses a logger without the methods it needs', () => {
    // @ts-expect-error: not a logger
    expect(() => createChatServer({ backend, logger: { info() {} } })).toThrow(/logger must have a error\(\) method/);
    // @ts-expect-error: not a logger
    expect(() => createChatServer({ backend, logger: 'debug' })).toThrow(TypeError);
  });
});

describe.skipIf(!redisServerAvailable())('cluster logs', () => {
  it('logs joining, the nodes that come and go, a Redis outage at warn and its end, and leaving', async () => {
    const redis = await RedisServer.start();
    const fx = new ChatFixture();
    const fy = new ChatFixture();
    const log = recorder(false);
    try {
      const cluster = { redis: redis.url, prefix: 'logs-test:', leaseMs: 1000 };
      await fx.start('js', { cluster: { ...cluster, nodeId: 'node-a' }, logger: log });
      const msgs = (): Array<string | undefined> => log.entries.map((e) => e.msg);
      await waitUntil(() => msgs().includes('cluster: 1 nodes'));
      expect(log.entries[0]).toMatchObject({ level: 'info', msg: 'cluster: joined as node-a', obj: { nodeId: 'node-a', prefix: 'logs-test:' } });
      await fy.start('js', { cluster: { ...cluster, nodeId: 'node-b' } });
      await waitUntil(() => msgs().includes('cluster: node node-b joined'));
      await fy.dispose();
      await waitUntil(() => msgs().includes('cluster: node node-b left'));
      await redis.crash();
      await waitUntil(() => log.entries.some((e) => e.level === 'warn'));
      const warn = log.entries.find((e) => e.level === 'warn');
      expect(warn?.obj).toMatchObject({ code: 'ECLUSTERREDIS' });
      expect(log.entries.filter((e) => e.level === 'error')).toEqual([]);
      await redis.revive();
      await waitUntil(() => msgs().includes('cluster: Redis is back'));
      await fx.dispose();
      expect(msgs().slice(-2)).toEqual(['closed', 'cluster: left']);
    } finally {
      await fy.dispose();
      await fx.dispose();
      await redis.stop();
    }
  });
});

describe('logs', () => {
  it('the library writes nothing when it is handed no logger', async () => {
    const fx = new ChatFixture();
    const spies = [
      vi.spyOn(console, 'log'),
      vi.spyOn(console, 'info'),
      vi.spyOn(console, 'warn'),
      vi.spyOn(console, 'error'),
      vi.spyOn(process.stdout, 'write'),
    ];
    try {
      const chat = await fx.start('js');
      const metrics = await serveMetrics(chat, { port: 0, defaultMetrics: false });
      const [a, b] = await fx.clientsN(2);
      await a.join('a', 1);
      await b.join('b', 1);
      await a.chat('hi');
      await fetch(`http://127.0.0.1:${metrics.address().port}/metrics`);
      await metrics.close();
      await fx.dispose();
      for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });

  it('createLogger writes JSON lines or pretty lines', () => {
    const lines: string[] = [];
    const destination = { write: (line: string) => lines.push(line) };
    createLogger({ format: 'json', destination }).info({ port: 1 }, 'listening');
    createLogger({ format: 'pretty', level: 'debug', destination }).debug({ connectionId: 7 }, 'connect');
    createLogger({ format: 'pretty', level: 'info', destination }).debug({ connectionId: 8 }, 'hidden');
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0])).toMatchObject({ level: 30, msg: 'listening', port: 1, pid: process.pid });
    expect(lines[1]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} DEBUG connect connectionId=7\n$/);
  });

  it('require("iocpnet") loads neither pino nor prom-client', () => {
    ensureBuilt();
    const script = `
      require(${JSON.stringify(require.resolve('../dist/lib/index.js'))});
      const loaded = (name) => Object.keys(require.cache).some((k) => k.includes('/node_modules/' + name + '/'));
      console.log(JSON.stringify({ pino: loaded('pino'), prom: loaded('prom-client') }));`;
    expect(JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 20000 }))).toEqual({ pino: false, prom: false });
  });

  it('chat-server --log-format json --log-level debug logs listening, connections and shutdown as JSON', async () => {
    ensureBuilt();
    const cli = runCli(['chat-server', '--port', '0', '--host', '127.0.0.1', '--backend', 'js', '--log-format', 'json', '--log-level', 'debug']);
    try {
      const port = Number((await cli.waitOutput(/"msg":"listening on 127\.0\.0\.1:(\d+)"/))[1]);
      const c = await RawClient.connect(port);
      await cli.waitOutput(/"msg":"connect"/);
      c.close();
      await cli.waitOutput(/"msg":"disconnect"/);
      cli.proc.kill('SIGTERM');
      expect(await cli.waitExit()).toBe(0);
      const records = cli.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { level: number; msg: string; reason?: string });
      expect(records.map((r) => r.msg)).toEqual([`listening on 127.0.0.1:${port}`, 'connect', 'disconnect', 'SIGTERM: shutting down', 'closed']);
      expect(records[2]).toMatchObject({ level: 20, reason: 'closed' });
    } finally {
      cli.kill();
    }
  });
});
