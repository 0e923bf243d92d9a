import * as net from 'node:net';
import WebSocket from 'ws';
import {
  HEADER_SIZE,
  PacketReader,
  TRANSPORTS,
  createServer,
  encodePacket,
  type BackendName,
  type Server,
  type ServerOptions,
  type Transport,
} from '../../lib/index';

/** The values of all that the environment variable name lists (comma-separated), or all when it is not set. */
function narrowed<T extends string>(name: string, all: readonly T[]): T[] {
  const env = process.env[name];
  if (!env) return [...all];
  const wanted = env.split(',').map((s) => s.trim());
  return all.filter((v) => wanted.includes(v));
}

/** The backends every engine and chat suite runs on. IOCPNET_BACKENDS=js,native narrows it. */
export function backends(): BackendName[] {
  return narrowed<BackendName>('IOCPNET_BACKENDS', ['native', 'js']);
}

/** The transports the engine and chat suites run over. IOCPNET_TRANSPORTS=tcp,websocket narrows it. */
export function transports(): Transport[] {
  return narrowed<Transport>('IOCPNET_TRANSPORTS', TRANSPORTS);
}

/** Every backend over every transport, as [backend, transport] rows for describe.each. */
export function backendsAndTransports(): Array<[BackendName, Transport]> {
  return backends().flatMap((b) => transports().map((t): [BackendName, Transport] => [b, t]));
}

export interface Packet {
  id: number;
  type: number;
  body: Buffer;
}

/** Encodes one packet with the package's writer; length and type may be overwritten to build bad packets. */
export function frame(id: number, body: Uint8Array = Buffer.alloc(0), opts: { length?: number; type?: number } = {}): Buffer {
  const out = encodePacket(id, body);
  if (opts.length !== undefined) out.writeUInt16LE(opts.length, 0);
  if (opts.type !== undefined) out.writeUInt8(opts.type, HEADER_SIZE - 1);
  return out;
}

/**
 * A client that speaks the framing of PROTOCOL.md section 1 (the package's
 * PacketReader) over raw TCP, or over WebSocket (the `ws` package as the
 * client), and collects every packet the server sends, for black-box tests.
 * A server that breaks the framing sets error and ends the collecting.
 *
 * Over WebSocket, write() sends each packet, or the part of one that the
 * bytes hold, as its own binary message, as a browser client would: a
 * message never exceeds the packet it carries, so it stays within the
 * server's maxPacketSize whenever the packet does. writeMessage() sends bytes
 * as one message, whatever they hold.
 *
 * Over WebSocket, ended means the server's CLOSE frame arrived (closeCode
 * holds its code; 1005: none), and a connection that ended without one
 * (1006, as a reset) sets error.
 */
export class RawClient {
  readonly transport: Transport;
  /** The TCP socket (under the WebSocket, for 'websocket'). */
  readonly socket: net.Socket;
  readonly ws: WebSocket | undefined;
  readonly packets: Packet[] = [];
  ended = false;
  closed = false;
  error: Error | undefined;
  /** The code of the server's CLOSE frame (WebSocket only). */
  closeCode: number | undefined;
  /** Text messages the server sent (WebSocket only; there should be none). */
  textMessages = 0;
  readonly #reader = new PacketReader();
  #waiters: Array<() => void> = [];
  /** Outbound stream position, to cut writes at packet ends: header bytes seen of the current packet... */
  readonly #outHeader = Buffer.alloc(HEADER_SIZE);
  #outHeaderFill = 0;
  /** ...and its body bytes still to come once the header is whole. */
  #outBodyLeft = 0;

  private constructor(socket: net.Socket, ws: WebSocket | undefined) {
    this.socket = socket;
    this.ws = ws;
    this.transport = ws === undefined ? 'tcp' : 'websocket';
    socket.setNoDelay(true);
    if (ws === undefined) {
      socket.on('data', (chunk: Buffer) => this.#received(chunk));
      socket.on('end', () => {
        this.ended = true;
        this.#wake();
      });
      socket.on('error', (err) => {
        this.error = err;
        this.#wake();
      });
      socket.on('close', () => {
        this.closed = true;
        this.#wake();
      });
      return;
    }
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.#received(data);
      else this.textMessages++;
    });
    ws.on('error', (err) => {
      this.error ??= err;
      this.#wake();
    });
    ws.on('close', (code: number) => {
      if (code === 1006) this.error ??= new Error('the WebSocket ended without a CLOSE frame (1006)');
      else this.ended = true;
      this.closeCode = code;
      this.closed = true;
      this.#wake();
    });
  }

  static connect(port: number, host = '127.0.0.1', transport: Transport = 'tcp'): Promise<RawClient> {
    if (transport === 'websocket') return RawClient.#connectWs(port, host);
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      const onError = (err: Error) => reject(err);
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(new RawClient(socket, undefined));
      });
    });
  }

  static #connectWs(port: number, host: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${host}:${port}/`, { perMessageDeflate: false, maxPayload: 1 << 20 });
      let socket: net.Socket | undefined;
      ws.once('upgrade', (res) => (socket = res.socket));
      const onError = (err: Error) => reject(err);
      ws.once('error', onError);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with HTTP ${res.statusCode}`)));
      ws.once('open', () => {
        ws.off('error', onError);
        resolve(new RawClient(socket as net.Socket, ws));
      });
    });
  }

  /** The client's local port, which the server sees as the connection's remotePort. */
  get localPort(): number | undefined {
    return this.socket.localPort;
  }

  /** Sends bytes: as they are over TCP; over WebSocket, one binary message per packet (or part of one) they hold. */
  write(data: Uint8Array): void {
    const ws = this.ws;
    if (ws === undefined) {
      this.socket.write(data);
      return;
    }
    let pos = 0;
    let start = 0;
    while (pos < data.length) {
      if (this.#outHeaderFill < HEADER_SIZE) {
        this.#outHeader[this.#outHeaderFill++] = data[pos++];
        if (this.#outHeaderFill === HEADER_SIZE) this.#outBodyLeft = Math.max(0, this.#outHeader.readUInt16LE(0) - HEADER_SIZE);
      } else {
        const n = Math.min(this.#outBodyLeft, data.length - pos);
        pos += n;
        this.#outBodyLeft -= n;
      }
      if (this.#outHeaderFill === HEADER_SIZE && this.#outBodyLeft === 0) {
        this.#outHeaderFill = 0;
        ws.send(data.subarray(start, pos), { binary: true });
        start = pos;
      }
    }
    if (start < pos) ws.send(data.subarray(start, pos), { binary: true });
  }

  /** Sends bytes as one binary WebSocket message (over TCP, as they are). */
  writeMessage(data: Uint8Array): void {
    if (this.ws !== undefined) this.ws.send(data, { binary: true });
    else this.socket.write(data);
  }

  send(id: number, body: Uint8Array = Buffer.alloc(0)): void {
    this.write(frame(id, body));
  }

  /** Sends data, then ends the connection: the FIN over TCP, a CLOSE frame (1000) over WebSocket. */
  end(data?: Uint8Array): void {
    if (data !== undefined) this.write(data);
    this.close();
  }

  /**
   * Resolves when pred() holds; rejects after timeoutMs with what was seen.
   * Checked on every socket event and every 10 ms, so pred may also watch
   * server-side state.
   */
  waitFor(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        clearInterval(poll);
        this.#waiters = this.#waiters.filter((w) => w !== check);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${this.packets.length} packets, ended=${this.ended}, closed=${this.closed}`),
        );
      }, timeoutMs);
      const check = () => {
        if (!pred()) return;
        done();
        resolve();
      };
      const poll = setInterval(check, 10);
      this.#waiters.push(check);
    });
  }

  /** Resolves once count packets have arrived in total. */
  waitPackets(count: number, timeoutMs = 5000): Promise<Packet[]> {
    return this.waitFor(() => this.packets.length >= count, timeoutMs, `${count} packets`).then(() => this.packets);
  }

  /** Resolves once the server closed the connection (FIN or reset). */
  waitClosed(timeoutMs = 5000): Promise<void> {
    return this.waitFor(() => this.closed, timeoutMs, 'close');
  }

  close(): void {
    if (this.ws !== undefined) this.ws.close(1000);
    else this.socket.end();
  }

  destroy(): void {
    if (this.ws !== undefined) this.ws.terminate();
    this.socket.destroy();
  }

  #received(chunk: Buffer): void {
    if (this.#reader.error) return;
    for (const p of this.#reader.push(chunk)) this.packets.push({ id: p.packetId, type: p.type, body: p.body });
    if (this.#reader.error) this.error ??= this.#reader.error;
    this.#wake();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}

/** Starts a server on 127.0.0.1:0 with the given backend; returns it and its port. */
export async function startServer(backend: BackendName, options: ServerOptions = {}): Promise<{ server: Server; port: number }> {
  const server = createServer({ ioThreads: 2, ...options, backend });
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, port };
}

/** Starts an echo server: every packet goes back to its sender unchanged. */
export async function startEchoServer(backend: BackendName, options: ServerOptions = {}): Promise<{ server: Server; port: number }> {
  const started = await startServer(backend, options);
  started.server.on('packet', (conn, id, body) => {
    conn.send(id, body);
  });
  return started;
}
