import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureReference } from '../bench/loadgen-build';
import { ChatPacketId, PacketId, createChatServer, type ChatServer } from '../lib/index';
import { RawClient } from './helpers/raw-client';
import { loadgenErrors, runLoadgen } from './helpers/hostile-clients';

const ROOT = path.resolve(__dirname, '..');
const P = ChatPacketId;

/** Starts the benchmark's reference server (bench/reference) and resolves with its port. */
function startReference(args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const binary = ensureReference(ROOT, () => undefined);
  const child = spawn(binary, ['--port', '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the reference server exited with ${code}`)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /listening on [\d.]+:(\d+)/.exec(line);
      if (m) resolve({ child, port: Number(m[1]) });
    });
  });
}

function idBody(id: string, pw = 'pw'): Buffer {
  const b = Buffer.alloc(42);
  b.write(id, 0);
  b.write(pw, 21);
  return b;
}

function i32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
}

/** Sends one request and waits for the response with the next id (every request of the script gets one). */
async function request(c: RawClient, id: number, body: Uint8Array = Buffer.alloc(0)): Promise<void> {
  const before = c.packets.filter((p) => p.id === id + 1).length;
  c.send(id, body);
  await c.waitFor(() => c.packets.filter((p) => p.id === id + 1).length > before, 5000, `response to ${id}`);
}

/**
 * A script of logins, refused logins, enters, chats, a leave and a PING by
 * three clients; resolves with every packet each client received.
 */
async function script(port: number): Promise<Array<Array<{ id: number; body: string }>>> {
  const [a, b, c] = await Promise.all([RawClient.connect(port), RawClient.connect(port), RawClient.connect(port)]);
  try {
    await request(a, P.ROOM_ENTER_REQUEST, i32(1)); // before login
    await request(a, P.LOGIN_REQUEST, idBody('alice'));
    await request(b, P.LOGIN_REQUEST, idBody('alice')); // taken
    await request(b, P.LOGIN_REQUEST, Buffer.from('bob')); // compact body
    await request(c, P.LOGIN_REQUEST, Buffer.alloc(42)); // empty id
    await request(c, P.LOGIN_REQUEST, idBody('carol'));
    await request(a, P.LOGIN_REQUEST, idBody('again')); // already logged in
    await request(a, P.ROOM_ENTER_REQUEST, i32(99)); // no such room
    await request(a, P.ROOM_CHAT_REQUEST, Buffer.from('not in a room\0'));
    await request(a, P.ROOM_ENTER_REQUEST, i32(2));
    await request(b, P.ROOM_ENTER_REQUEST, i32(2));
    await request(c, P.ROOM_ENTER_REQUEST, i32(2));
    await request(a, P.ROOM_ENTER_REQUEST, i32(2)); // already in a room
    await request(b, P.ROOM_CHAT_REQUEST, Buffer.from('hello\0'));
    await request(a, P.ROOM_CHAT_REQUEST, Buffer.alloc(257, 'x')); // a full field, no NUL
    await request(c, P.ROOM_LEAVE_REQUEST);
    await request(c, P.ROOM_LEAVE_REQUEST); // not in a room
    await request(a, P.ROOM_CHAT_REQUEST, Buffer.from('after the leave'));
    c.send(PacketId.PING, Buffer.from('12345678'));
    await c.waitFor(() => c.packets.some((p) => p.id === PacketId.PONG), 5000, 'PONG');
    // The notifies of the last chat reach b after a's response.
    await b.waitFor(() => b.packets.filter((p) => p.id === P.ROOM_CHAT_NOTIFY).length === 3, 5000, 'the last notify');
    return [a, b, c].map((x) => x.packets.map((p) => ({ id: p.id, body: p.body.toString('hex') })));
  } finally {
    for (const x of [a, b, c]) x.socket.destroy();
  }
}

// The reference server is a Linux epoll program.
describe.skipIf(process.platform !== 'linux')('the benchmark reference server', () => {
  let child: ChildProcess | undefined;
  let chat: ChatServer | undefined;
  afterEach(async () => {
    child?.kill('SIGTERM');
    child = undefined;
    await chat?.close();
    chat = undefined;
  });

  it('answers a script of chat requests with the bytes the chat server sends', async () => {
    chat = createChatServer({ backend: 'native', maxRooms: 10 });
    const address = await chat.listen(0, '127.0.0.1');
    const expected = await script(address.port);
    const ref = await startReference(['--mode', 'chat', '--max-rooms', '10', '--max-room-users', '10']);
    child = ref.child;
    const got = await script(ref.port);
    expect(got).toEqual(expected);
    // The script covers what the benchmark needs: every response and notify kind.
    const ids = new Set(expected.flat().map((p) => p.id));
    for (const id of [P.LOGIN_RESPONSE, P.ROOM_ENTER_RESPONSE, P.ROOM_USER_LIST_NOTIFY, P.ROOM_NEW_USER_NOTIFY, P.ROOM_CHAT_RESPONSE, P.ROOM_CHAT_NOTIFY]) {
      expect(ids.has(id)).toBe(true);
    }
    expect(ids.has(P.ROOM_LEAVE_USER_NOTIFY)).toBe(true);
    expect(ids.has(PacketId.PONG)).toBe(true);
  });

  it('serves the load generator chat, echo and ping scenarios without errors', async () => {
    const runs: Array<{ mode: string; args: string[] }> = [
      { mode: 'chat', args: ['--scenario', 'chat', '--connections', '40', '--room-users', '10'] },
      { mode: 'echo', args: ['--scenario', 'echo', '--connections', '10', '--inflight', '2'] },
      { mode: 'echo', args: ['--scenario', 'echo', '--ping', '1', '--connections', '10', '--inflight', '2'] },
    ];
    for (const run of runs) {
      const ref = await startReference(['--mode', run.mode, '--max-rooms', '10', '--max-room-users', '10']);
      child = ref.child;
      const r = await runLoadgen([...run.args, '--port', String(ref.port), '--warmup', '0.1', '--duration', '0.3'], 30000);
      expect(r.failed).toBe(0);
      expect(loadgenErrors(r)).toBe(0);
      expect(r.throughput.value).toBeGreaterThan(0);
      expect(r.latency_us.count).toBeGreaterThan(0);
      child.kill('SIGTERM');
      child = undefined;
    }
  });
});
