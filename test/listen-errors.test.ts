import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListenError, createServer } from '../lib/index';
import { ensureBuilt, runCli } from './helpers/chat-cli';
import { backends } from './helpers/raw-client';

// A busy port, as each backend and the CLI report it: the same words, the address once.

let blocker: net.Server;
let port = 0;

beforeAll(async () => {
  ensureBuilt();
  blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  port = (blocker.address() as net.AddressInfo).port;
}, 200_000);

afterAll(async () => {
  await new Promise((resolve) => blocker.close(resolve));
});

describe.each(backends())('%s backend: listen on a busy port', (backend) => {
  it('rejects with a ListenError in the words every backend uses', async () => {
    const server = createServer({ backend, ioThreads: 1 });
    const err = await server.listen(port, '127.0.0.1').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ListenError);
    const e = err as ListenError;
    expect([e.code, e.syscall, e.address, e.port]).toEqual(['EADDRINUSE', 'listen', '127.0.0.1', port]);
    expect(e.message).toBe(`cannot listen on 127.0.0.1:${port}: address already in use (EADDRINUSE)`);
    expect((e.cause as { code?: unknown }).code).toBe('EADDRINUSE');
    await server.close();
  });

  it('makes the chat server print one line that names the address once, and exit 1', async () => {
    const cli = runCli(['chat-server', '--host', '127.0.0.1', '--port', String(port), '--backend', backend, '--io-threads', '1']);
    expect(await cli.waitExit()).toBe(1);
    expect(cli.stderr).toBe(`error: cannot listen on 127.0.0.1:${port}: address already in use (EADDRINUSE)\n`);
  });
});
