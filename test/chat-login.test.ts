import { afterEach, describe, expect, it } from 'vitest';
import { ChatPacketId, ChatResult, DisconnectCode, PacketId, type Authenticate, type HandlerError } from '../lib/index';
import { ChatFixture, chatBody, enterBody, loginBody, result } from './helpers/chat-client';
import { backendsAndTransports, frame } from './helpers/raw-client';

const R = ChatResult;
const P = ChatPacketId;

/** A promise and its resolve function, for hooks the test settles by hand. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe.each(backendsAndTransports())('chat login (%s backend, %s)', (backend, transport) => {
  const fx = new ChatFixture(transport);
  afterEach(() => fx.dispose());

  it('logs in, refuses a second login on the same connection and the same id elsewhere', async () => {
    const chat = await fx.start(backend);
    const [a, b] = await fx.clientsN(2);
    expect(await a.login('alice')).toBe(R.NONE);
    expect(chat.users.get('alice')?.state).toBe('login');
    expect(await a.login('alice2')).toBe(R.LOGIN_USER_ALREADY);
    expect(await b.login('alice')).toBe(R.LOGIN_USER_ALREADY);
    expect(await b.login('bob')).toBe(R.NONE);
    expect(chat.users.count).toBe(2);
    expect(chat.stats()).toMatchObject({ logins: 2, loginsRefused: 2 });
  });

  it('refuses invalid ids and keeps the connection for another try', async () => {
    const chat = await fx.start(backend);
    const a = await fx.client();
    expect(await a.login('')).toBe(R.LOGIN_USER_INVALID_ID);
    expect(await a.login(Buffer.from('x'.repeat(21)))).toBe(R.LOGIN_USER_INVALID_ID);
    expect(await a.login(Buffer.from('bad\x01id'))).toBe(R.LOGIN_USER_INVALID_ID);
    expect(await a.login(Buffer.from('tab\tid'))).toBe(R.LOGIN_USER_INVALID_ID);
    expect(await a.login(Buffer.from('del\x7fid'))).toBe(R.LOGIN_USER_INVALID_ID);
    expect(await a.login(Buffer.from([0x61, 0xe0, 0x80]))).toBe(R.LOGIN_USER_INVALID_ID);
    expect(chat.users.count).toBe(0);
    expect(a.raw.closed).toBe(false);
    expect(await a.login('x'.repeat(20))).toBe(R.NONE);
    expect(chat.users.get('x'.repeat(20))).toBeDefined();
  });

  it('accepts multi-byte UTF-8 ids and writes them back unchanged', async () => {
    await fx.start(backend);
    const [a, b] = await fx.clientsN(2);
    expect(await a.login('플레이어')).toBe(R.NONE);
    expect((await a.enter(1)).result).toBe(R.NONE);
    expect(await b.login('b')).toBe(R.NONE);
    expect((await b.enter(1)).rival).toBe('플레이어');
  });

  it('accepts a short body as zero-filled', async () => {
    const chat = await fx.start(backend);
    const a = await fx.client();
    // 'bob' and no NUL: the rest of UserID and all of UserPW are missing.
    expect(result(await a.request(P.LOGIN_REQUEST, Buffer.from('bob'), P.LOGIN_RESPONSE))).toBe(R.NONE);
    expect(chat.users.get('bob')).toBeDefined();
    const b = await fx.client();
    expect(result(await b.request(P.LOGIN_REQUEST, Buffer.alloc(0), P.LOGIN_RESPONSE))).toBe(R.LOGIN_USER_INVALID_ID);
    expect(b.raw.closed).toBe(false);
  });

  it('closes only the connection that sent a body longer than the layout, after answering what came before', async () => {
    const chat = await fx.start(backend);
    const [a, b] = await fx.clientsN(2);
    expect(await b.login('bystander')).toBe(R.NONE);
    a.raw.write(Buffer.concat([frame(P.LOGIN_REQUEST, loginBody('first')), frame(P.LOGIN_REQUEST, Buffer.alloc(43))]));
    await a.waitClosed();
    expect(a.packets.map((p) => p.id)).toEqual([P.LOGIN_RESPONSE, PacketId.DISCONNECT_NOTIFY]);
    expect(result(a.packets[0])).toBe(R.NONE);
    expect(a.packets[1].body.readUInt16LE(0)).toBe(DisconnectCode.PROTOCOL_ERROR);
    await b.waitFor(() => chat.users.get('first') === undefined, 5000, 'logout of first');
    expect(chat.server.stats().closes.protocol_error).toBe(1);
    expect(chat.stats().router.protocolErrors).toBe(1);
    expect(await b.login('again')).toBe(R.LOGIN_USER_ALREADY);
    expect(b.raw.closed).toBe(false);
  });

  it('refuses logins past maxUsers and accepts one again once a user left', async () => {
    const chat = await fx.start(backend, { maxUsers: 2 });
    const [a, b, c] = await fx.clientsN(3);
    expect(await a.login('a')).toBe(R.NONE);
    expect(await b.login('b')).toBe(R.NONE);
    expect(await c.login('c')).toBe(R.LOGIN_USER_USED_ALL_OBJ);
    a.destroy();
    await c.waitFor(() => chat.users.count === 1, 5000, 'logout of a');
    expect(await c.login('c')).toBe(R.NONE);
  });

  it('frees the id of a closed connection at once', async () => {
    const chat = await fx.start(backend);
    const [a, b, c] = await fx.clientsN(3);
    expect(await a.login('same')).toBe(R.NONE);
    expect((await a.enter(4)).result).toBe(R.NONE);
    expect(await c.login('watcher')).toBe(R.NONE);
    expect((await c.enter(4)).result).toBe(R.NONE);
    let gone = false;
    chat.server.once('disconnect', () => {
      gone = true;
    });
    a.close();
    await b.waitFor(() => gone, 5000, 'disconnect of a');
    expect(await b.login('same')).toBe(R.NONE);
    expect((await b.enter(4)).result).toBe(R.NONE);
    expect(chat.rooms.get(4)?.users.map((u) => u.userId)).toEqual(['watcher', 'same']);
    await c.waitFor(() => c.of(P.ROOM_NEW_USER_NOTIFY).length === 1);
    expect(c.of(P.ROOM_LEAVE_USER_NOTIFY).length).toBe(1);
  });

  it('ignores unknown packet ids and keeps the connection', async () => {
    const chat = await fx.start(backend);
    const a = await fx.client();
    a.send(999, Buffer.from('??'));
    a.send(P.LOGIN_RESPONSE, Buffer.alloc(2));
    expect(await a.login('after')).toBe(R.NONE);
    expect(chat.stats().router.unknown).toBe(2);
    expect(a.raw.closed).toBe(false);
  });
});

describe.each(backendsAndTransports())('chat authenticate hook (%s backend, %s)', (backend, transport) => {
  const fx = new ChatFixture(transport);
  afterEach(() => fx.dispose());

  it('refuses with LOGIN_USER_INVALID_PW when a sync hook says no, and the user may retry', async () => {
    const calls: Array<[string, string]> = [];
    const authenticate: Authenticate = (user, pw) => {
      calls.push([user, pw]);
      return pw === `${user}-secret`;
    };
    const chat = await fx.start(backend, { authenticate });
    const a = await fx.client();
    expect(await a.login('ann', 'wrong')).toBe(R.LOGIN_USER_INVALID_PW);
    expect(chat.users.count).toBe(0);
    expect(await a.login('ann', 'ann-secret')).toBe(R.NONE);
    expect(calls).toEqual([
      ['ann', 'wrong'],
      ['ann', 'ann-secret'],
    ]);
  });

  it('handles packets pipelined behind a pending async login after it, in order', async () => {
    const pending = new Map<string, ReturnType<typeof deferred<boolean>>>();
    const authenticate: Authenticate = (user) => {
      const d = deferred<boolean>();
      pending.set(user, d);
      return d.promise;
    };
    const chat = await fx.start(backend, { authenticate });
    const [a, b] = await fx.clientsN(2);
    a.raw.write(
      Buffer.concat([
        frame(P.LOGIN_REQUEST, loginBody('slow')),
        frame(P.ROOM_ENTER_REQUEST, enterBody(2)),
        frame(PacketId.PING, Buffer.from('p')),
        frame(P.ROOM_CHAT_REQUEST, chatBody('first words')),
      ]),
    );
    await a.waitFor(() => pending.has('slow'), 5000, 'authenticate call');
    // Another connection is not held up by the pending one.
    b.send(P.LOGIN_REQUEST, loginBody('quick'));
    await b.waitFor(() => pending.has('quick'), 5000, 'second authenticate call');
    pending.get('quick')?.resolve(true);
    await b.next(P.LOGIN_RESPONSE, 0);
    // The engine answered PING at once; the chat packets wait for the login.
    await a.waitFor(() => a.packets.length >= 1);
    expect(a.packets.map((p) => p.id)).toEqual([PacketId.PONG]);
    const pendingConn = [...chat.server.connections.values()].find((c) => chat.userOf(c) === undefined);
    if (pendingConn === undefined) throw new Error('the connection whose login is pending is gone');
    expect(chat.router.isBusy(pendingConn)).toBe(true);
    pending.get('slow')?.resolve(true);
    await a.waitFor(() => a.of(P.ROOM_CHAT_NOTIFY).length === 1, 5000, 'chat notify');
    expect(a.packets.map((p) => p.id)).toEqual([
      PacketId.PONG,
      P.LOGIN_RESPONSE,
      P.ROOM_ENTER_RESPONSE,
      P.ROOM_USER_LIST_NOTIFY,
      P.ROOM_CHAT_RESPONSE,
      P.ROOM_CHAT_NOTIFY,
    ]);
    expect(
      a.packets
        .slice(1)
        .filter((p) => p.id !== P.ROOM_USER_LIST_NOTIFY && p.id !== P.ROOM_CHAT_NOTIFY)
        .map(result),
    ).toEqual([0, 0, 0]);
    expect(chat.users.get('slow')?.state).toBe('room');
  });

  it('refuses with an async no, and later packets see a connection that is not logged in', async () => {
    const chat = await fx.start(backend, { authenticate: () => new Promise((r) => setTimeout(() => r(false), 50)) });
    const a = await fx.client();
    a.raw.write(Buffer.concat([frame(P.LOGIN_REQUEST, loginBody('nope')), frame(P.ROOM_ENTER_REQUEST, enterBody(1))]));
    await a.waitFor(() => a.packets.length >= 2);
    expect(a.packets.map((p) => [p.id, result(p)])).toEqual([
      [P.LOGIN_RESPONSE, R.LOGIN_USER_INVALID_PW],
      [P.ROOM_ENTER_RESPONSE, R.ENTER_ROOM_INVALID_USER_STATUS],
    ]);
    expect(chat.users.count).toBe(0);
  });

  it('sends nothing and logs nobody in when the connection closes while the hook is pending', async () => {
    const pending: Array<ReturnType<typeof deferred<boolean>>> = [];
    const chat = await fx.start(backend, {
      authenticate: (user) => {
        if (user === 'later') return true;
        const d = deferred<boolean>();
        pending.push(d);
        return d.promise;
      },
    });
    const [a, b] = await fx.clientsN(2);
    a.send(P.LOGIN_REQUEST, loginBody('ghost'));
    await a.waitFor(() => pending.length === 1, 5000, 'authenticate call');
    let gone = false;
    chat.server.once('disconnect', () => {
      gone = true;
    });
    a.destroy();
    await b.waitFor(() => gone, 5000, 'disconnect');
    pending[0].resolve(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(chat.users.get('ghost')).toBeUndefined();
    expect(chat.users.count).toBe(0);
    // The id was never taken.
    b.send(P.LOGIN_REQUEST, loginBody('ghost'));
    await b.waitFor(() => pending.length === 2);
    pending[1].resolve(true);
    expect(result(await b.next(P.LOGIN_RESPONSE, 0))).toBe(R.NONE);
  });

  it('gives the id to the first login to finish when two race for it', async () => {
    const pending: Array<ReturnType<typeof deferred<boolean>>> = [];
    const chat = await fx.start(backend, {
      authenticate: () => {
        const d = deferred<boolean>();
        pending.push(d);
        return d.promise;
      },
    });
    const [a, b] = await fx.clientsN(2);
    a.send(P.LOGIN_REQUEST, loginBody('race'));
    await a.waitFor(() => pending.length === 1);
    b.send(P.LOGIN_REQUEST, loginBody('race'));
    await b.waitFor(() => pending.length === 2);
    pending[1].resolve(true);
    expect(result(await b.next(P.LOGIN_RESPONSE, 0))).toBe(R.NONE);
    pending[0].resolve(true);
    expect(result(await a.next(P.LOGIN_RESPONSE, 0))).toBe(R.LOGIN_USER_ALREADY);
    expect(chat.users.get('race')?.conn).toBe([...chat.server.connections.values()].find((c) => chat.userOf(c)?.userId === 'race'));
  });

  it('refuses and reports when the hook throws or rejects', async () => {
    const chat = await fx.start(backend, {
      authenticate: (user) => {
        if (user === 'throws') throw new Error('db down');
        return Promise.reject(new Error('db gone'));
      },
    });
    const errors: HandlerError[] = [];
    chat.server.on('error', (e) => void errors.push(e as HandlerError));
    const a = await fx.client();
    expect(await a.login('throws')).toBe(R.LOGIN_USER_INVALID_PW);
    expect(await a.login('rejects')).toBe(R.LOGIN_USER_INVALID_PW);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/db down/), expect.stringMatching(/db gone/)]);
    expect(chat.users.count).toBe(0);
    expect(a.raw.closed).toBe(false);
  });

  it('checks the cheap refusals before calling the hook', async () => {
    let calls = 0;
    await fx.start(backend, {
      maxUsers: 1,
      authenticate: () => {
        calls++;
        return true;
      },
    });
    const [a, b] = await fx.clientsN(2);
    expect(await a.login('one')).toBe(R.NONE);
    expect(await b.login('')).toBe(R.LOGIN_USER_INVALID_ID);
    expect(await b.login('one')).toBe(R.LOGIN_USER_ALREADY);
    expect(await b.login('two')).toBe(R.LOGIN_USER_USED_ALL_OBJ);
    expect(await a.login('other')).toBe(R.LOGIN_USER_ALREADY);
    expect(calls).toBe(1);
  });
});
