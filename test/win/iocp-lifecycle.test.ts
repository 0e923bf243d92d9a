import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RawClient } from '../helpers/raw-client';
import { spawnHost, winHostAddress } from './remote-server';

// Process teardown with live servers, on a host process of its own: exiting
// with servers open must stop their IO threads (the addon's cleanup hook
// forces a shutdown and joins them), or the process would hang.

describe.skipIf(!winHostAddress())('IOCP engine under Wine: process teardown', () => {
  it('a process that exits with busy servers still open stops them and exits', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iocpnet-win-'));
    const host = await spawnHost(path.join(dir, 'host.log'));
    const clients: RawClient[] = [];
    try {
      const servers = await Promise.all([
        host.client.start('echo', { ioThreads: 3, idleTimeoutMs: 0 }),
        host.client.start('echo', { ioThreads: 1, idleTimeoutMs: 0 }),
      ]);
      for (const s of servers) {
        for (let i = 0; i < 10; i++) clients.push(await RawClient.connect(s.port));
      }
      for (const c of clients) c.send(100, Buffer.from('before exit'));
      await Promise.all(clients.map((c) => c.waitPackets(1)));
      // Keep traffic flowing while the process goes away.
      for (const c of clients) for (let i = 0; i < 20; i++) c.send(101, Buffer.alloc(1000, i));
      await host.client.request({ op: 'exit', force: true });
      const code = await Promise.race([host.exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 20000))]);
      expect(code).toBe(0);
      await Promise.all(clients.map((c) => c.waitClosed(10000)));
    } finally {
      for (const c of clients) c.destroy();
      host.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
