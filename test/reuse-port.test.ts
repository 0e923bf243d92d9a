import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ListenError, createServer, type Server } from '../lib/index';
import { backends } from './helpers/raw-client';

// reusePort: several servers listen on one port (SO_REUSEPORT) and the kernel
// spreads the connections over them; docs/CLUSTER.md, "Worker processes".

const [major, minor] = process.versions.node.split('.').map(Number);
const jsHasReusePort = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers.length = 0;
});

function server(backend: 'native' | 'js', reusePort: boolean): Server {
  const s = createServer({ backend, ioThreads: 1, reusePort });
  servers.push(s);
  return s;
}

/** Opens n connections to port and waits until each got its server's accept (a PING answered). */
async function connectMany(port: number, n: number): Promise<void> {
  const ping = Buffer.from([5, 0, 1, 0, 0]);
  const sockets = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => s.write(ping));
          s.once('data', () => resolve(s));
          s.once('error', reject);
          setTimeout(() => reject(new Error('no PONG within 10 s')), 10_000).unref();
        }),
    ),
  );
  for (const s of sockets) s.destroy();
}

describe.each(backends())('%s backend: reusePort', (backend) => {
  const supported = process.platform === 'linux' && (backend === 'native' || jsHasReusePort);

  it.runIf(supported)('two servers share one port and both get connections; a server without it still gets EADDRINUSE', async () => {
    const a = server(backend, true);
    const { port } = await a.listen(0, '127.0.0.1');
    const b = server(backend, true);
    expect((await b.listen(port, '127.0.0.1')).port).toBe(port);
    await connectMany(port, 40);
    // The kernel hashes each connection's addresses and ports: 40 all on one of two would be chance 2^-39.
    expect(a.stats().accepted + b.stats().accepted).toBe(40);
    expect(a.stats().accepted).toBeGreaterThan(0);
    expect(b.stats().accepted).toBeGreaterThan(0);
    await expect(server(backend, false).listen(port, '127.0.0.1')).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  it.runIf(supported)('a port held without reusePort is not shared', async () => {
    const a = server(backend, false);
    const { port } = await a.listen(0, '127.0.0.1');
    await expect(server(backend, true).listen(port, '127.0.0.1')).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  it.runIf(!supported)('where it is not available, listen rejects with ENOTSUP in a ListenError', async () => {
    const err = await server(backend, true)
      .listen(0, '127.0.0.1')
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ListenError);
    expect((err as ListenError).code).toBe('ENOTSUP');
    expect((err as ListenError).message).toBe(
      'cannot listen on 127.0.0.1:0: reusePort (SO_REUSEPORT) is not available with this backend on this system (ENOTSUP)',
    );
  });

  it('is validated as a boolean', () => {
    expect(() => createServer({ backend, reusePort: 'yes' as unknown as boolean })).toThrow(TypeError);
    expect(() => createServer({ backend, reusePort: 'yes' as unknown as boolean })).toThrow(/reusePort must be a boolean, got "yes"/);
  });
});
