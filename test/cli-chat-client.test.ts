import { execFileSync } from 'node:child_process';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChatPacketId, ChatResult } from '../lib/index';
import { ChatFixture } from './helpers/chat-client';
import { ensureBuilt, plain, runCli, runCliInTerminal, type Spawned } from './helpers/chat-cli';
import { backends } from './helpers/raw-client';

const P = ChatPacketId;
const R = ChatResult;

function hasScript(): boolean {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

beforeAll(() => ensureBuilt(), 200_000);

describe.runIf(hasScript()).each(backends())('iocpnet chat-client at a terminal (%s backend)', (backend) => {
  const fx = new ChatFixture();
  const spawned: Spawned[] = [];
  afterEach(async () => {
    for (const s of spawned) s.kill();
    await Promise.all(spawned.map((s) => s.exited));
    spawned.length = 0;
    await fx.dispose();
  });

  function terminal(args: string[]): Spawned {
    const t = runCliInTerminal(['chat-client', '--host', '127.0.0.1', '--port', String(fx.port), ...args]);
    spawned.push(t);
    return t;
  }

  it('joins, shows notifies, sends typed lines, reports errors by name, and quits with 0', async () => {
    const chat = await fx.start(backend, { maxRoomUsers: 2 });
    const [bob, carl, dave] = await fx.clientsN(3);
    await bob.join('bob', 3);
    await carl.join('carl', 4);
    await dave.join('dave', 4);

    const t = terminal(['--user', 'alice', '--room', '3']);
    await t.waitOutput(/joined room 3/);
    await t.waitOutput(/\[3\] in the room: bob, alice/);
    await bob.waitFor(() => bob.of(P.ROOM_NEW_USER_NOTIFY).length === 1);

    expect(await bob.chat('hi alice')).toBe(R.NONE);
    await t.waitOutput(/\[3\] bob: hi alice/);

    t.type('hello bob');
    await bob.waitFor(() => bob.notifies().some((n) => n.userId === 'alice'), 5000, "alice's chat");
    expect(bob.notifies().map((n) => `${n.userId}: ${n.message.toString('utf8')}`)).toEqual(['bob: hi alice', 'alice: hello bob']);
    await t.waitOutput(/\[3\] alice: hello bob/);

    // Room 4 is full: the client left room 3 to move, shows the refusal by name and goes back.
    t.type('/join 4');
    await t.waitOutput(/error: ENTER_ROOM_FULL_USER[\s\S]*back in room 3/);
    await bob.waitFor(() => bob.of(P.ROOM_NEW_USER_NOTIFY).length === 2, 5000, 'alice back in room 3');
    expect(bob.of(P.ROOM_LEAVE_USER_NOTIFY)).toHaveLength(1);
    t.type('/join 999');
    await t.waitOutput(/back in room 3[\s\S]*error: ROOM_INVALID_INDEX[\s\S]*back in room 3/);
    t.type('/leave');
    await t.waitOutput(/left room 3/);
    t.type('/leave');
    await t.waitOutput(/error: LEAVE_ROOM_INVALID_ROOM_INDEX/);
    t.type('outside');
    await t.waitOutput(/error: CHAT_ROOM_INVALID_ROOM_NUMBER/);

    t.type('/quit');
    expect(await t.waitExit()).toBe(0);
    await bob.waitFor(() => chat.users.get('alice') === undefined, 5000, 'logout of alice');
    expect(chat.server.stats().closes.closed).toBeGreaterThanOrEqual(1);
  });

  it('keeps the connection alive with PING below the idle timeout', async () => {
    const chat = await fx.start(backend, { idleTimeoutMs: 600 });
    const idle = await fx.client();
    const t = terminal(['--user', 'pinger', '--room', '0', '--ping-interval-ms', '150']);
    await t.waitOutput(/joined room 0/);
    // The silent raw client is closed by the idle timeout; the terminal client outlives it by far.
    await idle.waitClosed(5000);
    await new Promise((r) => setTimeout(r, 1200));
    expect(chat.users.get('pinger')?.state).toBe('room');
    expect(chat.server.stats().closes.idle_timeout).toBe(1);
    expect(chat.server.stats().pings).toBeGreaterThan(3);
    t.type('/quit');
    expect(await t.waitExit()).toBe(0);
  });

  it('exits 1 with the error name when the login is refused', async () => {
    await fx.start(backend);
    const taken = await fx.client();
    expect(await taken.login('alice')).toBe(R.NONE);
    const t = terminal(['--user', 'alice']);
    await t.waitOutput(/error: LOGIN_USER_ALREADY/);
    expect(await t.waitExit()).toBe(1);
  });

  it('shows the server shutdown and exits', async () => {
    const chat = await fx.start(backend);
    const t = terminal(['--user', 'stay', '--room', '1']);
    await t.waitOutput(/joined room 1/);
    await chat.close();
    await t.waitOutput(/disconnected by the server: SERVER_SHUTDOWN/);
    expect(await t.waitExit()).toBe(1);
  });

  it('does not let a peer drive the terminal with control bytes', async () => {
    await fx.start(backend);
    const evil = await fx.client();
    await evil.join('evil', 2);
    const t = terminal(['--user', 'victim', '--room', '2']);
    await t.waitOutput(/joined room 2/);
    expect(await evil.chat(Buffer.from('\u001b[2Jgotcha\u0007'))).toBe(R.NONE);
    await t.waitOutput(/\[2\] evil: \?\[2Jgotcha\?/);
    expect(t.stdout).not.toContain('\u001b[2J');
    t.type('/quit');
    expect(await t.waitExit()).toBe(0);
  });
});

describe.each(backends())('iocpnet chat-client with piped input (%s backend)', (backend) => {
  const fx = new ChatFixture();
  const spawned: Spawned[] = [];
  afterEach(async () => {
    for (const s of spawned) s.kill();
    await Promise.all(spawned.map((s) => s.exited));
    spawned.length = 0;
    await fx.dispose();
  });

  /** Starts the client with every line already written and its input ended, as `printf ... | iocpnet chat-client` does. */
  function piped(args: string[], lines: string[]): Spawned {
    const cli = runCli(['chat-client', '--host', '127.0.0.1', '--port', String(fx.port), ...args]);
    spawned.push(cli);
    for (const line of lines) cli.type(line);
    cli.proc.stdin?.end();
    return cli;
  }

  it('acts on each line after the login and the room entry, in order, then exits 0', async () => {
    await fx.start(backend);
    const bob = await fx.client();
    await bob.join('bob', 3);
    const cli = piped(['--user', 'alice', '--room', '3'], ['first', '/join 999', 'second']);
    expect(await cli.waitExit()).toBe(0);
    // A refused move goes back to room 3, so both lines reach it.
    expect(plain(cli.stdout)).toMatch(/joined room 3[\s\S]*error: ROOM_INVALID_INDEX[\s\S]*back in room 3/);
    await bob.waitFor(() => bob.notifies().filter((n) => n.userId === 'alice').length === 2, 5000, "alice's chats");
    expect(bob.notifies().map((n) => `${n.userId}: ${n.message.toString('utf8')}`)).toEqual(['alice: first', 'alice: second']);
  });

  it('exits 1 when the login is refused, as at a terminal', async () => {
    await fx.start(backend);
    const taken = await fx.client();
    expect(await taken.login('alice')).toBe(R.NONE);
    const cli = piped(['--user', 'alice'], ['hello']);
    expect(await cli.waitExit()).toBe(1);
    expect(plain(cli.stdout)).toMatch(/error: LOGIN_USER_ALREADY/);
  });
});

describe('iocpnet chat-client usage errors', () => {
  it.each([
    [['chat-client', '--port', '1']],
    [['chat-client', '--user', 'x'.repeat(21)]],
    [['chat-client', '--user', 'ok', '--port', '0']],
    [['chat-client', '--user', 'ok', '--room', 'one']],
  ])('%j exits 2 with usage', async (args) => {
    const cli = runCli(args);
    expect(await cli.waitExit()).toBe(2);
    expect(cli.stderr).toMatch(/Usage: iocpnet chat-client/);
  });

  it('exits 1 when nothing listens', async () => {
    const cli = runCli(['chat-client', '--port', '1', '--user', 'x']);
    expect(await cli.waitExit()).toBe(1);
    expect(plain(cli.stdout + cli.stderr)).toMatch(/error: connect ECONNREFUSED/);
  });
});
