/**
 * The server host that the Windows tests run in Windows Node under Wine:
 * it starts iocpnet servers (the IOCP engine) on request and mirrors their
 * events to the Linux-side tests over a control connection
 * (host-protocol.ts). Clients reach the servers over real TCP on 127.0.0.1.
 *
 *   node.exe test/win/host.js
 *
 * Prints "IOCPNET_HOST port=<control port> engine=<engine> node=<version>"
 * once ready. Under Wine, stdout must be a file: the runner redirects it.
 */
import * as net from 'node:net';
import { loadAddon } from '../../lib/backends/native/addon';
import type { ChatServer } from '../../lib/chat/chat-server';
import { createChatServer } from '../../lib/chat/create-chat-server';
import { createServer, type Connection, type Server, type ServerStats } from '../../lib/index';
import { READY_PREFIX, type HostEvent, type HostOp, type HostReply, type HostRequest } from './host-protocol';

interface Hosted {
  server: Server;
  chat: ChatServer | undefined;
  owner: net.Socket;
  conns: Map<number, Connection>;
  statsScheduled: boolean;
}

const hosted = new Map<number, Hosted>();
let nextServer = 1;

function write(sock: net.Socket, msg: HostReply | HostEvent): void {
  if (!sock.destroyed) sock.write(`${JSON.stringify(msg)}\n`);
}

function scheduleStats(srv: number, h: Hosted): void {
  if (h.statsScheduled) return;
  h.statsScheduled = true;
  // One snapshot after each run of events, so a test that saw an event sees the counters that go with it.
  setImmediate(() => {
    h.statsScheduled = false;
    if (hosted.get(srv) === h) write(h.owner, { ev: 'stats', srv, stats: h.server.stats() });
  });
}

async function start(owner: net.Socket, r: Extract<HostRequest, { op: 'start' }>): Promise<HostReply> {
  let chat: ChatServer | undefined;
  if (r.app === 'chat') {
    const { password, ...chatOptions } = r.chat ?? {};
    chat = createChatServer({
      ...r.options,
      ...chatOptions,
      backend: 'native',
      ...(password !== undefined ? { authenticate: (_id: string, pw: string) => pw === password } : {}),
    });
  }
  const server = chat ? chat.server : createServer({ ...r.options, backend: 'native' });
  const srv = nextServer++;
  const h: Hosted = { server, chat, owner, conns: new Map(), statsScheduled: false };
  server.on('connect', (conn) => {
    h.conns.set(conn.id, conn);
    write(owner, { ev: 'connect', srv, conn: conn.id, remoteAddress: conn.remoteAddress, remotePort: conn.remotePort, transport: conn.transport });
    scheduleStats(srv, h);
  });
  server.on('packet', (conn, packetId, body) => {
    // Mirrored before the echo is queued, so a test rarely sees an echo before its event.
    if (r.mirrorPackets) {
      write(owner, { ev: 'packet', srv, conn: conn.id, packetId, body: Buffer.from(body.buffer, body.byteOffset, body.length).toString('base64') });
    }
    if (r.app === 'echo') conn.send(packetId, body);
    scheduleStats(srv, h);
  });
  server.on('disconnect', (conn, reason) => {
    h.conns.delete(conn.id);
    write(owner, { ev: 'disconnect', srv, conn: conn.id, reason });
    scheduleStats(srv, h);
  });
  server.on('error', (err) => write(owner, { ev: 'error', srv, message: err.message }));
  const address = await server.listen(r.port ?? 0, r.host ?? '127.0.0.1');
  hosted.set(srv, h);
  return { re: r.req, ok: true, srv, port: address.port, engine: loadAddon().engine };
}

async function stop(srv: number): Promise<ServerStats> {
  const h = hosted.get(srv);
  if (!h) throw Object.assign(new Error(`no server ${srv}`), { code: 'ERR_NO_SERVER' });
  await (h.chat ?? h.server).close();
  hosted.delete(srv);
  return h.server.stats();
}

function hostedOrThrow(srv: number): Hosted {
  const h = hosted.get(srv);
  if (!h) throw Object.assign(new Error(`no server ${srv}`), { code: 'ERR_NO_SERVER' });
  return h;
}

async function handle(sock: net.Socket, r: HostRequest): Promise<HostReply> {
  switch (r.op) {
    case 'start':
      return start(sock, r);
    case 'stats':
      return { re: r.req, ok: true, stats: hostedOrThrow(r.srv).server.stats() };
    case 'chatStats': {
      const chat = hostedOrThrow(r.srv).chat;
      if (!chat) throw Object.assign(new Error(`server ${r.srv} does not serve chat`), { code: 'ERR_NOT_CHAT' });
      return { re: r.req, ok: true, chatStats: chat.stats() };
    }
    case 'stop':
      return { re: r.req, ok: true, stats: await stop(r.srv) };
    case 'sync':
      return { re: r.req, ok: true };
    case 'exit':
      if (!r.force) await Promise.all([...hosted.keys()].map((srv) => stop(srv)));
      setTimeout(() => process.exit(0), 50);
      return { re: r.req, ok: true };
    case 'block': {
      const until = Date.now() + Math.min(Math.max(0, r.ms), 10000);
      while (Date.now() < until) {
        // Busy on purpose: the IO threads keep reading while JS does not drain.
      }
      return { re: r.req, ok: true };
    }
    case 'batch': {
      const bodies = r.bodies.map((b) => Buffer.from(b, 'base64'));
      for (const op of r.ops) runOp(op, bodies);
      return { re: r.req, ok: true };
    }
  }
}

function runOp(op: HostOp, bodies: Buffer[]): void {
  const h = hosted.get(op.srv);
  if (!h) return;
  switch (op.kind) {
    case 'send':
      h.conns.get(op.conn)?.send(op.packetId, bodies[op.body]);
      break;
    case 'broadcast': {
      const conns = op.conns.map((id) => h.conns.get(id)).filter((c): c is Connection => c !== undefined);
      h.server.broadcast(conns, op.packetId, bodies[op.body]);
      break;
    }
    case 'close':
      h.conns.get(op.conn)?.close();
      break;
    case 'destroy':
      h.conns.get(op.conn)?.destroy();
      break;
  }
}

function serve(sock: net.Socket): void {
  sock.setNoDelay(true);
  let buf = '';
  // Requests run one after another, so replies and the events they cause keep their order.
  let chain: Promise<void> = Promise.resolve();
  sock.on('data', (chunk: Buffer) => {
    buf += chunk.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.length === 0) continue;
      let r: HostRequest;
      try {
        r = JSON.parse(line) as HostRequest;
      } catch {
        sock.destroy();
        return;
      }
      chain = chain.then(async () => {
        try {
          write(sock, await handle(sock, r));
        } catch (err) {
          const e = err as { message?: string; code?: string };
          write(sock, { re: r.req, ok: false, error: { message: String(e.message ?? err), code: e.code } });
        }
      });
    }
  });
  const cleanUp = (): void => {
    // A test process that went away leaves no server behind.
    for (const [srv, h] of [...hosted]) {
      if (h.owner === sock) void stop(srv).catch(() => undefined);
    }
  };
  sock.on('close', cleanUp);
  sock.on('error', () => undefined);
}

function main(): void {
  const engine = loadAddon().engine;
  const control = net.createServer(serve);
  control.listen(0, '127.0.0.1', () => {
    const address = control.address() as net.AddressInfo;
    process.stdout.write(`${READY_PREFIX} port=${address.port} engine=${engine} node=${process.version}\n`);
  });
  // The runner stops the host with an 'exit' request; this is the fallback.
  process.on('SIGTERM', () => process.exit(0));
}

main();
