import * as net from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChatPacketId, ChatResult, DisconnectCode, PacketId } from '../lib/index';
import { ChatTestClient, chatBody } from './helpers/chat-client';
import { ensureBuilt, runCli, type Spawned } from './helpers/chat-cli';
import { backends, frame } from './helpers/raw-client';

const P = ChatPacketId;
const R = ChatResult;

beforeAll(() => ensureBuilt(), 200_000);

const spawned: Spawned[] = [];
const clients: ChatTestClient[] = [];
afterEach(async () => {
  for (const c of clients) c.destroy();
  clients.length = 0;
  for (const s of spawned) s.kill();
  await Promise.all(spawned.map((s) => s.exited));
  spawned.length = 0;
});

async function startCli(args: string[]): Promise<{ cli: Spawned; port: number }> {
  const cli = runCli(['chat-server', '--host', '127.0.0.1', '--port', '0', '--io-threads', '1', ...args]);
  spawned.push(cli);
  const m = await cli.waitOutput(/listening on 127\.0\.0\.1:(\d+)/);
  return { cli, port: Number(m[1]) };
}

async function client(port: number): Promise<ChatTestClient> {
  const c = await ChatTestClient.connect(port);
  clients.push(c);
  return c;
}

describe.each(backends())('iocpnet chat-server (%s backend)', (backend) => {
  it('prints the real port, serves chat, and on SIGTERM delivers what is queued, sends SERVER_SHUTDOWN and exits 0', async () => {
    const { cli, port } = await startCli(['--backend', backend]);
    expect(cli.stdout).toContain(`(${backend} backend)`);
    const [a, b] = [await client(port), await client(port)];
    await a.join('a', 0);
    await b.join('b', 0);
    // A burst still being answered when the signal comes: every answer is delivered, then the notify.
    const burst = 50;
    a.raw.write(Buffer.concat(Array.from({ length: burst }, (_, i) => frame(P.ROOM_CHAT_REQUEST, chatBody(`m${i}`)))));
    await a.waitFor(() => a.of(P.ROOM_CHAT_RESPONSE).length > 0);
    cli.proc.kill('SIGTERM');
    await Promise.all([a.waitClosed(), b.waitClosed()]);
    expect(await cli.waitExit()).toBe(0);
    for (const c of [a, b]) {
      const last = c.packets[c.packets.length - 1];
      expect(last.id).toBe(PacketId.DISCONNECT_NOTIFY);
      expect(last.body.readUInt16LE(0)).toBe(DisconnectCode.SERVER_SHUTDOWN);
      expect(c.of(PacketId.DISCONNECT_NOTIFY).length).toBe(1);
    }
    // The answers that came are whole and in order: m0, m1, ... with nothing skipped.
    const heard = b.notifies().map((n) => n.message.toString());
    expect(heard).toEqual(Array.from({ length: heard.length }, (_, i) => `m${i}`));
    expect(a.of(P.ROOM_CHAT_RESPONSE).length).toBe(heard.length);
    expect(cli.stdout).toMatch(/SIGTERM: shutting down/);
  });

  it('exits 0 on SIGINT too', async () => {
    const { cli, port } = await startCli(['--backend', backend]);
    const a = await client(port);
    expect(await a.login('a')).toBe(R.NONE);
    cli.proc.kill('SIGINT');
    await a.waitClosed();
    expect(a.packets[a.packets.length - 1].body.readUInt16LE(0)).toBe(DisconnectCode.SERVER_SHUTDOWN);
    expect(await cli.waitExit()).toBe(0);
  });

  it('applies its room, user, rate and idle flags', async () => {
    const { port } = await startCli([
      '--backend',
      backend,
      '--start-room',
      '5',
      '--max-rooms',
      '2',
      '--max-room-users',
      '1',
      '--max-users',
      '2',
      '--chat-rate-limit',
      '1',
      '--idle-timeout-ms',
      '1500',
    ]);
    const [a, b, c] = [await client(port), await client(port), await client(port)];
    expect(await a.login('a')).toBe(R.NONE);
    expect(await b.login('b')).toBe(R.NONE);
    expect(await c.login('c')).toBe(R.LOGIN_USER_USED_ALL_OBJ);
    expect((await a.enter(4)).result).toBe(R.ROOM_INVALID_INDEX);
    expect((await a.enter(7)).result).toBe(R.ROOM_INVALID_INDEX);
    expect((await a.enter(6)).result).toBe(R.NONE);
    expect((await b.enter(6)).result).toBe(R.ENTER_ROOM_FULL_USER);
    expect(await a.chat('one')).toBe(R.NONE);
    expect(await a.chat('two')).toBe(R.ROOM_TOO_MANY_PACKET);
    // c sends nothing more and is closed as idle; the others keep alive with PING.
    const keepAlive = setInterval(() => {
      a.send(PacketId.PING);
      b.send(PacketId.PING);
    }, 300);
    try {
      await c.waitClosed(8000);
    } finally {
      clearInterval(keepAlive);
    }
    expect(c.packets[c.packets.length - 1].body.readUInt16LE(0)).toBe(DisconnectCode.IDLE_TIMEOUT);
    expect(a.raw.closed || b.raw.closed).toBe(false);
  });

  it('exits 1 with a message when the port is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    try {
      const port = (blocker.address() as net.AddressInfo).port;
      const cli = runCli(['chat-server', '--host', '127.0.0.1', '--port', String(port), '--backend', backend, '--io-threads', '1']);
      spawned.push(cli);
      expect(await cli.waitExit()).toBe(1);
      expect(cli.stderr).toMatch(/^error: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});

describe('iocpnet usage errors', () => {
  const bad: string[][] = [
    ['chat-server', '--bogus'],
    ['chat-server', '--port', 'abc'],
    ['chat-server', '--port', '70000'],
    ['chat-server', '--port', '1.5'],
    ['chat-server', '--max-rooms', '0'],
    ['chat-server', '--max-room-users', '-3'],
    ['chat-server', '--backend', 'fast'],
    ['chat-server', '--chat-rate-limit', ''],
    ['chat-server', '--start-room', '2147483647', '--max-rooms', '5'],
    ['chat-server', 'extra'],
    ['no-such-command'],
    [],
  ];

  it.each(bad.map((args) => [args.join(' ') || '(no arguments)', args]))('%s: prints usage and exits 2', async (_name, args) => {
    const cli = runCli(args);
    spawned.push(cli);
    expect(await cli.waitExit()).toBe(2);
    expect(cli.stderr).toMatch(/Usage: iocpnet/);
    expect(cli.stdout).not.toMatch(/listening on/);
  });

  it('--help exits 0', async () => {
    const cli = runCli(['chat-server', '--help']);
    spawned.push(cli);
    expect(await cli.waitExit()).toBe(0);
    expect(cli.stdout).toMatch(/--max-room-users/);
  });
});
