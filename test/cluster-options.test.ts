import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createChatServer } from '../lib/index';
import { CLI, ROOT, ensureBuilt } from './helpers/chat-cli';

const redis = 'redis://127.0.0.1:6379';

describe('cluster options', () => {
  beforeAll(() => ensureBuilt(), 200_000);

  it('does not load the cluster adapter or ioredis for a server without cluster', () => {
    const script = `
      const { createChatServer } = require(${JSON.stringify(path.join(ROOT, 'dist', 'lib', 'index.js'))});
      const chat = createChatServer({ backend: 'js' });
      chat.listen(0, '127.0.0.1').then(async () => {
        const loaded = Object.keys(require.cache).filter((f) => /[\\\\/](ioredis|redis-chat-adapter)[\\\\/.]/.test(f));
        await chat.close();
        console.log(JSON.stringify(loaded));
      });`;
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(JSON.parse(out.trim())).toEqual([]);
  });

  it('loads them for a server in a cluster', () => {
    const script = `
      const { createChatServer } = require(${JSON.stringify(path.join(ROOT, 'dist', 'lib', 'index.js'))});
      const chat = createChatServer({ backend: 'js', cluster: { redis: 'redis://127.0.0.1:1', leaseMs: 1000 } });
      chat.server.on('error', () => {});
      chat.listen(0, '127.0.0.1').catch((err) => {
        const loaded = Object.keys(require.cache).some((f) => /[\\\\/]ioredis[\\\\/]/.test(f));
        console.log(JSON.stringify({ loaded, code: err.code, message: err.message }));
      });`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 }).trim()) as Record<string, unknown>;
    expect(out).toMatchObject({ loaded: true, code: 'ECLUSTERJOIN' });
    expect(out.message).toMatch(/cannot join the cluster: Redis at 127\.0\.0\.1:1: .*ECONNREFUSED/);
  });

  it('refuses bad values with a TypeError or RangeError naming the option', () => {
    const bad: Array<[unknown, ErrorConstructor, RegExp]> = [
      ['redis://x', TypeError, /^cluster must be an object/],
      [{}, TypeError, /cluster\.redis must be a redis:\/\/ URL string/],
      [{ redis: 'http://x' }, RangeError, /cluster\.redis/],
      [{ redis: 'redis://h:1/x' }, RangeError, /cluster\.redis: the database/],
      [{ redis, leaseMs: 999 }, RangeError, /cluster\.leaseMs must be between 1000 and 600000/],
      [{ redis, leaseMs: 1.5 }, TypeError, /cluster\.leaseMs must be an integer/],
      [{ redis, maxBufferBytes: 10 }, RangeError, /cluster\.maxBufferBytes/],
      [{ redis, prefix: '' }, RangeError, /cluster\.prefix/],
      [{ redis, prefix: 'a b' }, RangeError, /cluster\.prefix/],
      [{ redis, nodeId: 'a/b' }, RangeError, /cluster\.nodeId/],
      [{ redis, nodeId: 7 }, TypeError, /cluster\.nodeId must be a string/],
      [{ redis, leases: 1 }, TypeError, /unknown cluster option 'leases'/],
    ];
    for (const [cluster, type, message] of bad) {
      // @ts-expect-error: bad values on purpose
      expect(() => createChatServer({ backend: 'js', cluster })).toThrow(type);
      // @ts-expect-error: bad values on purpose
      expect(() => createChatServer({ backend: 'js', cluster })).toThrow(message);
    }
  });

  it('makes bad cluster flags a usage error (exit 2) in the CLI', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--redis', 'nope'], /cluster\.redis/],
      [['--redis', redis, '--cluster-lease-ms', '10'], /cluster\.leaseMs/],
      [['--redis', redis, '--cluster-lease-ms', 'x'], /--cluster-lease-ms/],
      [['--redis', redis, '--node-id', 'a b'], /cluster\.nodeId/],
      [['--node-id', 'n1'], /--node-id needs --redis/],
      [['--cluster-buffer-bytes', '100000'], /--cluster-buffer-bytes needs --redis/],
    ];
    for (const [args, message] of cases) {
      const r = spawnSync(process.execPath, [CLI, 'chat-server', '--port', '0', ...args], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });

  it('exits with 1 and one line when Redis cannot be reached', () => {
    const r = spawnSync(process.execPath, [CLI, 'chat-server', '--port', '0', '--redis', 'redis://127.0.0.1:1', '--cluster-lease-ms', '1000'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe('error: cannot join the cluster: Redis at 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1');
  });
});
