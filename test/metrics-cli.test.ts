import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runCli } from './helpers/chat-cli';

describe('chat-server --metrics-port', () => {
  beforeAll(() => ensureBuilt(), 180_000);

  it('serves /metrics and the dashboard, and closes them on SIGTERM', async () => {
    const cli = runCli(['chat-server', '--port', '0', '--host', '127.0.0.1', '--backend', 'js', '--metrics-port', '0', '--metrics-host', '127.0.0.1']);
    try {
      const m = await cli.waitOutput(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/);
      const base = `http://127.0.0.1:${m[1]}`;
      const text = await (await fetch(`${base}/metrics`)).text();
      expect(text).toMatch(/^iocpnet_connections 0$/m);
      expect(text).toMatch(/^iocpnet_chat_users 0$/m);
      expect((await fetch(`${base}/`)).headers.get('content-type')).toMatch(/^text\/html/);
      cli.proc.kill('SIGTERM');
      expect(await cli.waitExit()).toBe(0);
      await expect(fetch(`${base}/metrics`)).rejects.toThrow();
    } finally {
      cli.kill();
    }
  });

  it('serves nothing over HTTP without the flag', async () => {
    const cli = runCli(['chat-server', '--port', '0', '--host', '127.0.0.1', '--backend', 'js']);
    try {
      await cli.waitOutput(/listening on/);
      expect(cli.stdout).not.toMatch(/metrics/);
    } finally {
      cli.kill();
    }
  });

  it('reports a busy metrics port and exits 1', async () => {
    const first = runCli(['chat-server', '--port', '0', '--host', '127.0.0.1', '--backend', 'js', '--metrics-port', '0']);
    try {
      const port = (await first.waitOutput(/metrics on http:\/\/127\.0\.0\.1:(\d+)/))[1];
      const second = runCli(['chat-server', '--port', '0', '--host', '127.0.0.1', '--backend', 'js', '--metrics-port', port]);
      expect(await second.waitExit()).toBe(1);
      expect(second.stderr).toMatch(new RegExp(`cannot serve metrics on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
    } finally {
      first.kill();
    }
  });
});
