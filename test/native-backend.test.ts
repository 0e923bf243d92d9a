import { afterEach, describe, expect, it } from 'vitest';
import { NativeBackend } from '../lib/backends/native';
import type { Server } from '../lib/index';
import { RawClient, frame, startEchoServer, startServer } from './helpers/raw-client';

// Checks of the native engine that the shared black-box suites cannot make:
// refusals inside the engine itself, malformed batches, the addon's loader.
describe('native backend', () => {
  let server: Server | undefined;
  const clients: RawClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await server?.close();
    server = undefined;
  });

  it('echoes a packet', async () => {
    const s = await startEchoServer('native');
    server = s.server;
    const c = await RawClient.connect(s.port);
    clients.push(c);
    c.send(1000, Buffer.from('hello'));
    const [p] = await c.waitPackets(1);
    expect(p.id).toBe(1000);
    expect(p.body.toString()).toBe('hello');
  });
});
