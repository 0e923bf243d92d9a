import { execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChatPacketId, ChatResult, DisconnectCode, PacketId, WsCloseCode, type ServerOptions } from '../lib/index';
import { resolveServerOptions } from '../lib/server/options';
import { childPrelude, frames, notifyCode, seqBody, sleep, useEngine, waitUntil } from './helpers/engine-harness';
import { RawClient, backends, frame } from './helpers/raw-client';
import { ChatFixture } from './helpers/chat-client';
import { Op, RFC_ACCEPT, WsFrameClient, clientClose, clientFrame, upgradeRequest } from './helpers/ws-frames';

// The WebSocket transport beside the raw framing on one port (PROTOCOL.md
// "WebSocket"), black box over real TCP on 127.0.0.1, with a hand-written
// frame client for what client libraries never send.

describe.each(backends())('%s backend: WebSocket transport', (backend) => {
  const engine = useEngine(backend);
  const open: WsFrameClient[] = [];
  async function ws(port: number, extra: Record<string, string | null> = {}): Promise<WsFrameClient> {
    const c = await WsFrameClient.open(port, extra);
    open.push(c);
    return c;
  }
  // Registered after useEngine's teardown, so it runs before it (hooks run in reverse): sockets first, then servers.
  afterEach(() => {
    for (const c of open.splice(0)) c.destroy();
  });

  it('serves raw TCP and WebSocket clients on one port, tells them apart in conn.transport, and answers with the RFC example accept key', async () => {
    const { port, log } = await engine.startEcho();
    const tcp = await RawClient.connect(port);
    tcp.send(100, Buffer.from('raw'));
    const w = await ws(port);
    expect(w.status).toBe(101);
    expect(w.header('sec-websocket-accept')).toBe(RFC_ACCEPT);
    expect(w.header('upgrade')?.toLowerCase()).toBe('websocket');
    w.sendBinary(frame(101, Buffer.from('ws')));
    await tcp.waitPackets(1);
    await w.waitFor(() => w.packets.length === 1, 5000, 'echo over WebSocket');
    expect(w.packets[0].body.toString()).toBe('ws');
    expect(tcp.packets[0].body.toString()).toBe('raw');
    await waitUntil(() => log.connects.length === 2, 5000, 'two connects');
    const byPort = new Map(log.connects.map((c) => [c.remotePort, c.transport]));
    expect(byPort.get(tcp.localPort as number)).toBe('tcp');
    expect(byPort.get(w.socket.localPort as number)).toBe('websocket');
    // Server frames: unmasked, final, binary.
    expect(w.frames.every((f) => !f.masked && f.fin && f.opcode === Op.BINARY)).toBe(true);
    tcp.destroy();
  });

  it('reads several packets in one message, a packet cut across messages and across fragments, with PINGs between fragments', async () => {
    const { port, log } = await engine.startEcho();
    const w = await ws(port);
    const sent: Array<[number, Buffer]> = Array.from({ length: 6 }, (_, i) => [200 + i, seqBody(i, 10 + 300 * i)]);
    const bytes = frames(sent);
    const cut1 = 7; // inside the first packet's body
    const cut2 = 2000; // inside a later packet
    w.sendBinary(bytes.subarray(0, cut1));
    // The second message in three fragments, a PING between the first two.
    const mid = bytes.subarray(cut1, cut2);
    w.write(clientFrame(Op.BINARY, mid.subarray(0, 3), { fin: false }));
    w.write(clientFrame(Op.PING, Buffer.from('between')));
    w.write(clientFrame(Op.CONT, mid.subarray(3, 500), { fin: false }));
    w.write(clientFrame(Op.CONT, mid.subarray(500), { fin: true }));
    w.sendBinary(bytes.subarray(cut2));
    await w.waitFor(() => w.packets.length === sent.length, 5000, 'every packet echoed');
    expect(w.packets.map((p) => [p.id, p.body.toString('hex')])).toEqual(sent.map(([id, b]) => [id, b.toString('hex')]));
    const pong = w.frames.find((f) => f.opcode === Op.PONG);
    expect(pong?.payload.toString()).toBe('between');
    expect(log.packets).toHaveLength(sent.length);
  });

  it('answers a system PING packet inside a message with a PONG packet, as on TCP', async () => {
    const { server, port } = await engine.start();
    const w = await ws(port);
    w.sendBinary(frames([[PacketId.PING, Buffer.from('abc')]]));
    await w.waitFor(() => w.packets.length === 1, 5000, 'PONG');
    expect(w.packets[0].id).toBe(PacketId.PONG);
    expect(w.packets[0].body.toString()).toBe('abc');
    expect(server.stats().pings).toBe(1);
  });

  const refusals: Array<[string, number, Record<string, string | null>]> = [
    ['a wrong version', 426, { 'Sec-WebSocket-Version': '8' }],
    ['no Upgrade header', 426, { Upgrade: null }],
    ['no Connection: upgrade', 400, { Connection: 'keep-alive' }],
    ['no Host', 400, { Host: null }],
    ['no key', 400, { 'Sec-WebSocket-Key': null }],
    ['a malformed key', 400, { 'Sec-WebSocket-Key': 'short' }],
  ];

  it.each(refusals)('answers an upgrade request with %s with HTTP %i and a close, and never reports it', async (_name, status, extra) => {
    const { server, port, log } = await engine.start();
    const c = await ws(port, extra);
    expect(c.status).toBe(status);
    expect(c.header('connection')?.toLowerCase()).toBe('close');
    if (_name === 'a wrong version') expect(c.header('sec-websocket-version')).toBe('13');
    await c.waitClosed();
    expect(c.ended).toBe(true);
    await sleep(50);
    expect(log.connects).toHaveLength(0);
    expect(server.stats().closes.upgrade_refused).toBe(1);
    expect(server.stats().accepted).toBe(0);
  });

  it('answers a plain HTTP GET with a short HTTP error', async () => {
    const { server, port, log } = await engine.start();
    const c = await WsFrameClient.connect(port);
    open.push(c);
    c.write(Buffer.from('GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n'));
    await c.waitClosed();
    expect(c.status).toBeGreaterThanOrEqual(400);
    expect(c.status).toBeLessThan(500);
    expect(log.connects).toHaveLength(0);
    expect(server.stats().closes.upgrade_refused).toBe(1);
  });

  it('answers an HTTP/1.0 upgrade request with 426, and a handshake under way at shutdown with 503', async () => {
    const { server, port, log } = await engine.start();
    const old = await WsFrameClient.connect(port);
    open.push(old);
    old.write(Buffer.from(upgradeRequest().toString('latin1').replace('HTTP/1.1', 'HTTP/1.0'), 'latin1'));
    await old.waitClosed();
    expect(old.status).toBe(426);
    const half = await WsFrameClient.connect(port);
    open.push(half);
    half.write(upgradeRequest().subarray(0, 30));
    await waitUntil(() => server.stats().bytesIn > upgradeRequest().length + 30 - 1, 5000, 'the half request read');
    await server.close();
    await half.waitClosed();
    expect(half.status).toBe(503);
    expect(log.connects).toHaveLength(0);
  });

  it('checks Origin against webSocketOrigins: 403 for another, in for a listed one or none', async () => {
    const { server, port, log } = await engine.startEcho({ webSocketOrigins: ['https://game.example'] });
    const other = await ws(port, { Origin: 'https://evil.example' });
    expect(other.status).toBe(403);
    const listed = await ws(port, { Origin: 'https://game.example' });
    expect(listed.status).toBe(101);
    const none = await ws(port);
    expect(none.status).toBe(101);
    await waitUntil(() => log.connects.length === 2, 5000, 'two connects');
    expect(server.stats().closes.upgrade_refused).toBe(1);
  });

  it('refuses an upgrade request longer than maxUpgradeRequestBytes with 431, and one that never ends with 408 after upgradeTimeoutMs', async () => {
    const { server, port, log } = await engine.start({ maxUpgradeRequestBytes: 512, upgradeTimeoutMs: 300 });
    const long = await ws(port, { 'X-Padding': 'p'.repeat(600) });
    expect(long.status).toBe(431);
    await long.waitClosed();
    // Just within the limit: served.
    const request = upgradeRequest();
    const fits = await ws(port, { 'X-Padding': 'p'.repeat(512 - request.length - 'X-Padding: \r\n'.length) });
    expect(fits.status).toBe(101);
    const slow = await WsFrameClient.connect(port);
    open.push(slow);
    const started = Date.now();
    slow.write(upgradeRequest().subarray(0, 40));
    await slow.waitClosed(5000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(slow.status).toBe(408);
    const s = server.stats();
    expect(s.closes.upgrade_refused).toBe(1);
    expect(s.closes.upgrade_timeout).toBe(1);
    expect(log.connects).toHaveLength(1);
  });

  it('closes a text message with DISCONNECT_NOTIFY(PROTOCOL_ERROR) and CLOSE 1003', async () => {
    const { port, log } = await engine.startEcho();
    const w = await ws(port);
    w.sendBinary(frame(100, Buffer.from('first')));
    w.write(clientFrame(Op.TEXT, Buffer.from('hello')));
    await w.waitClosed();
    expect(w.packets.map((p) => p.id)).toEqual([100, PacketId.DISCONNECT_NOTIFY]);
    expect(notifyCode(w.packets[1])).toBe(DisconnectCode.PROTOCOL_ERROR);
    expect(w.closeCode).toBe(WsCloseCode.UNSUPPORTED_DATA);
    await waitUntil(() => log.disconnects.length === 1, 5000, 'disconnect');
    expect(log.disconnects[0].reason).toBe('protocol_error');
  });

  const frameErrors: Array<[string, () => Buffer, number]> = [
    ['an unmasked frame', () => clientFrame(Op.BINARY, frame(100), { mask: false }), WsCloseCode.PROTOCOL_ERROR],
    ['opcode 3', () => clientFrame(0x3, Buffer.from('x')), WsCloseCode.PROTOCOL_ERROR],
    ['opcode 0xb', () => clientFrame(0xb), WsCloseCode.PROTOCOL_ERROR],
    ['RSV1 without an extension', () => clientFrame(Op.BINARY, frame(100), { rsv: 4 }), WsCloseCode.PROTOCOL_ERROR],
    ['a continuation with no message begun', () => clientFrame(Op.CONT, frame(100)), WsCloseCode.PROTOCOL_ERROR],
    ['a fragmented PING', () => clientFrame(Op.PING, Buffer.from('x'), { fin: false }), WsCloseCode.PROTOCOL_ERROR],
    ['a PING of 126 bytes', () => clientFrame(Op.PING, Buffer.alloc(126)), WsCloseCode.PROTOCOL_ERROR],
    ['a message over maxPacketSize', () => clientFrame(Op.BINARY, Buffer.alloc(1025)), WsCloseCode.MESSAGE_TOO_BIG],
    ['a 64-bit length of 2^62', () => clientFrame(Op.BINARY, Buffer.alloc(0), { length: 1n << 62n }), WsCloseCode.MESSAGE_TOO_BIG],
    ['a bad packet header inside a message', () => clientFrame(Op.BINARY, frame(100, Buffer.alloc(0), { length: 3 })), WsCloseCode.PROTOCOL_ERROR],
  ];

  it.each(frameErrors)('closes on %s with DISCONNECT_NOTIFY(PROTOCOL_ERROR) and its CLOSE code, after the packets before it', async (_name, bad, code) => {
    const { server, port, log } = await engine.startEcho({ maxPacketSize: 1024 });
    const w = await ws(port);
    w.write(Buffer.concat([clientFrame(Op.BINARY, frame(100, Buffer.from('before'))), bad()]));
    await w.waitClosed();
    expect(w.packets.map((p) => p.id)).toEqual([100, PacketId.DISCONNECT_NOTIFY]);
    expect(notifyCode(w.packets[1])).toBe(DisconnectCode.PROTOCOL_ERROR);
    expect(w.closeCode).toBe(code);
    await waitUntil(() => log.disconnects.length === 1, 5000, 'disconnect');
    expect(log.disconnects[0].reason).toBe('protocol_error');
    expect(server.stats().closes.protocol_error).toBe(1);
  });

  it('echoes the code of a client CLOSE, and a CLOSE without a code with one without, after the replies queued before it', async () => {
    const { server, port, log } = await engine.startEcho();
    const a = await ws(port);
    a.write(Buffer.concat([clientFrame(Op.BINARY, frame(100, Buffer.from('last'))), clientClose(4001, 'bye')]));
    const b = await ws(port);
    b.write(clientClose());
    await Promise.all([a.waitClosed(), b.waitClosed()]);
    expect(a.packets.map((p) => p.body.toString())).toEqual(['last']);
    expect(a.closeCode).toBe(4001);
    expect(b.closeCode).toBeNull();
    // A CLOSE frame is the last frame the server sends.
    expect(a.frames[a.frames.length - 1].opcode).toBe(Op.CLOSE);
    await waitUntil(() => log.disconnects.length === 2, 5000, 'two disconnects');
    expect(log.disconnects.map((d) => d.reason)).toEqual(['closed', 'closed']);
    expect(server.stats().closes.closed).toBe(2);
  });

  it('sends KICKED then CLOSE 1000 for close(), IDLE_TIMEOUT then 1001 when idle, SERVER_SHUTDOWN then 1001 at shutdown', async () => {
    const { server, port, log } = await engine.start({ idleTimeoutMs: 400 });
    const kicked = await ws(port);
    const idle = await ws(port);
    const talker = await ws(port);
    await waitUntil(() => log.connects.length === 3, 5000, 'three connects');
    const conn = log.connects.find((c) => c.remotePort === kicked.socket.localPort);
    conn?.close();
    const keepAlive = setInterval(() => talker.sendBinary(frame(100)), 50);
    try {
      await Promise.all([kicked.waitClosed(), idle.waitClosed(5000)]);
    } finally {
      clearInterval(keepAlive);
    }
    expect(kicked.packets.map(notifyCode)).toEqual([DisconnectCode.KICKED]);
    expect(kicked.closeCode).toBe(WsCloseCode.NORMAL);
    expect(idle.packets.map(notifyCode)).toEqual([DisconnectCode.IDLE_TIMEOUT]);
    expect(idle.closeCode).toBe(WsCloseCode.GOING_AWAY);
    expect(talker.closed).toBe(false);
    await server.close();
    await talker.waitClosed();
    expect(notifyCode(talker.packets[talker.packets.length - 1])).toBe(DisconnectCode.SERVER_SHUTDOWN);
    expect(talker.closeCode).toBe(WsCloseCode.GOING_AWAY);
    expect(log.disconnects.map((d) => d.reason).sort()).toEqual(['idle_timeout', 'kicked', 'shutdown']);
  });

  it('holds a client that sends PING frames and never reads to the send queue limits, as any other reply', async () => {
    const { server, port } = await engine.startEcho({ maxSendQueueBytes: 64 * 1024 });
    const flooder = await ws(port);
    flooder.socket.pause();
    // 160,000 PINGs of 125 bytes ask for 20 MB of PONGs: more than the kernel's socket buffers of both ends hold.
    const ping = clientFrame(Op.PING, Buffer.alloc(125, 1));
    for (let i = 0; i < 160; i++) flooder.write(Buffer.concat(new Array(1000).fill(ping)));
    await waitUntil(() => server.stats().readPausesSendQueue > 0 || server.stats().closes.slow_consumer > 0, 20000, 'the flooder paused or closed');
    // Others are served meanwhile.
    const other = await ws(port);
    other.sendBinary(frame(100, Buffer.from('fine')));
    await other.waitFor(() => other.packets.length === 1, 5000, 'echo to another client');
    flooder.destroy();
  });

  it('opens a raw client that sends nothing as tcp after transportDetectMs, and one that sends at once without waiting', async () => {
    const { port, log } = await engine.start({ transportDetectMs: 300 });
    const started = Date.now();
    const silent = await RawClient.connect(port);
    await waitUntil(() => log.connects.length === 1, 5000, 'the silent client opens');
    const silentAfter = Date.now() - started;
    expect(log.connects[0].transport).toBe('tcp');
    expect(silentAfter).toBeGreaterThanOrEqual(250);
    const eager = await RawClient.connect(port);
    eager.send(100, Buffer.from('x'));
    await waitUntil(() => log.packets.length === 1, 5000, 'the eager packet');
    // 'G' alone waits for more bytes: it may be the start of GET.
    const g = await RawClient.connect(port);
    g.write(Buffer.from([0x47]));
    await sleep(50);
    g.write(Buffer.from([0x00, 100, 0, 0]));
    await sleep(50);
    // A length of 0x0047 with id 100: a raw packet that waits for its body, on a connection opened as tcp.
    await waitUntil(() => log.connects.length === 3, 5000, 'the G client opens');
    expect(log.connects.map((c) => c.transport)).toEqual(['tcp', 'tcp', 'tcp']);
    for (const c of [silent, eager, g]) c.destroy();
  });

  it('with webSocket off, GET is raw bytes: a protocol error, and connections open at accept', async () => {
    const { port, log } = await engine.start({ webSocket: false, transportDetectMs: 60000 });
    const c = await RawClient.connect(port);
    await waitUntil(() => log.connects.length === 1, 5000, 'connect at accept');
    c.write(upgradeRequest());
    await c.waitClosed();
    expect(c.packets.map(notifyCode)).toEqual([DisconnectCode.PROTOCOL_ERROR]);
    expect(log.connects[0].transport).toBe('tcp');
  });

  it('serves a whole chat session to Python websockets, an independent client', async () => {
    const fx = new ChatFixture('websocket');
    try {
      await fx.start(backend);
      const peer = await fx.client();
      await peer.join('peer', 3);
      const script = path.join(__dirname, 'helpers', 'ws_chat_client.py');
      const python = runPython(script, [String(fx.port), 'py', '3', 'hello from python']);
      // Once the Python client is in the room, the peer chats to it.
      await peer.waitFor(() => peer.of(ChatPacketId.ROOM_NEW_USER_NOTIFY).length > 0, 15000, 'the python client entering');
      expect(await peer.chat('hello from node')).toBe(ChatResult.NONE);
      const out = await python;
      // The Python client saw its own login and room entry, the peer in the room list, and its own chat.
      expect(out).toMatchObject({ login: 0, enter: 0, chat: 0 });
      expect(out.users.sort()).toEqual(['peer', 'py']);
      expect(out.notifies).toContainEqual(['py', 'hello from python']);
      expect(out.peerChat).toEqual(['peer', 'hello from node']);
      await peer.waitFor(() => peer.notifies().some((n) => n.userId === 'py'), 5000, 'the python chat at the peer');
      expect(
        peer
          .notifies()
          .find((n) => n.userId === 'py')
          ?.message.toString(),
      ).toBe('hello from python');
    } finally {
      await fx.dispose();
    }
  });
});

interface PythonOutcome {
  login: number;
  enter: number;
  users: string[];
  chat: number;
  notifies: Array<[string, string]>;
  peerChat: [string, string];
}

/** Runs the Python websockets client (Debian python3-websockets, under /usr/bin/python3); resolves with its JSON report. */
function runPython(script: string, args: string[]): Promise<PythonOutcome> {
  return new Promise((resolve, reject) => {
    const proc = spawn('/usr/bin/python3', [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20000);
    proc.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`python client exited with ${code}: ${err}`));
      else resolve(JSON.parse(out) as PythonOutcome);
    });
  });
}

describe('the ws package', () => {
  it('is loaded by the js backend only when the first WebSocket client arrives', () => {
    const script = `${childPrelude()}
      const net = require('node:net');
      const loaded = () => Object.keys(require.cache).some((k) => k.includes('/node_modules/ws/'));
      const request = ${JSON.stringify(upgradeRequest().toString('latin1'))};
      const answered = (socket) => new Promise((resolve) => socket.once('data', resolve));
      (async () => {
        const server = iocpnet.createServer({ backend: 'js' });
        const { port } = await server.listen(0, '127.0.0.1');
        const atListen = loaded();
        const tcp = net.connect(port, '127.0.0.1');
        tcp.write(Buffer.from([5, 0, 1, 0, 0])); // PING
        await answered(tcp);
        const afterTcp = loaded();
        const ws = net.connect(port, '127.0.0.1');
        ws.write(request);
        await answered(ws);
        console.log(JSON.stringify({ atListen, afterTcp, afterWebSocket: loaded() }));
        tcp.destroy();
        ws.destroy();
        await server.close();
      })();`;
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
    expect(JSON.parse(out)).toEqual({ atListen: false, afterTcp: false, afterWebSocket: true });
  });
});

describe('WebSocket options', () => {
  it('defaults: WebSocket on, any origin, 4096-byte requests, 5 s to finish one, 250 ms to tell a silent client', () => {
    const o = resolveServerOptions({});
    expect(o).toMatchObject({ webSocket: true, webSocketOrigins: [], maxUpgradeRequestBytes: 4096, upgradeTimeoutMs: 5000, transportDetectMs: 250 });
  });

  it.each<[string, ServerOptions, ErrorConstructor, RegExp]>([
    ['webSocket not a boolean', { webSocket: 1 as never }, TypeError, /webSocket must be a boolean, got 1/],
    ['webSocketOrigins not an array', { webSocketOrigins: 'https://a.example' as never }, TypeError, /webSocketOrigins must be an array of strings/],
    ['an origin not a string', { webSocketOrigins: ['https://a.example', 7 as never] }, TypeError, /webSocketOrigins\[1\] must be a string, got 7/],
    ['an empty origin', { webSocketOrigins: [''] }, RangeError, /webSocketOrigins\[0\] must be 1 to 256 characters long/],
    ['an origin of 257 characters', { webSocketOrigins: ['h'.repeat(257)] }, RangeError, /webSocketOrigins\[0\] must be 1 to 256/],
    ['an origin with a space', { webSocketOrigins: ['https://a b'] }, RangeError, /webSocketOrigins\[0\] must be printable ASCII/],
    ['an origin with a newline', { webSocketOrigins: ['https://a\r\nX: y'] }, RangeError, /webSocketOrigins\[0\] must be printable ASCII/],
    ['65 origins', { webSocketOrigins: Array.from({ length: 65 }, (_, i) => `https://o${i}.example`) }, RangeError, /at most 64 origins, got 65/],
    ['maxUpgradeRequestBytes 255', { maxUpgradeRequestBytes: 255 }, RangeError, /maxUpgradeRequestBytes must be between 256 and 65536, got 255/],
    ['maxUpgradeRequestBytes 1.5', { maxUpgradeRequestBytes: 1.5 }, TypeError, /maxUpgradeRequestBytes must be an integer/],
    ['upgradeTimeoutMs 0', { upgradeTimeoutMs: 0 }, RangeError, /upgradeTimeoutMs must be between 1 and 600000, got 0/],
    ['transportDetectMs 60001', { transportDetectMs: 60001 }, RangeError, /transportDetectMs must be between 1 and 60000/],
  ])('refuses %s, naming the option', (_name, options, type, message) => {
    expect(() => resolveServerOptions(options)).toThrow(type);
    expect(() => resolveServerOptions(options)).toThrow(message);
  });

  it('copies and freezes the origins', () => {
    const origins = ['https://a.example'];
    const o = resolveServerOptions({ webSocketOrigins: origins });
    origins.push('https://b.example');
    expect(o.webSocketOrigins).toEqual(['https://a.example']);
    expect(Object.isFrozen(o.webSocketOrigins)).toBe(true);
  });
});
