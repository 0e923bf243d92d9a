import * as net from 'node:net';
import { HEADER_SIZE, PacketReader, createServer, encodePacket, type BackendName, type Server, type ServerOptions } from '../../lib/index';

/** The backends every engine and chat suite runs on. IOCPNET_BACKENDS=js,native narrows it. */
export function backends(): BackendName[] {
  const all: BackendName[] = ['native', 'js'];
  const env = process.env.IOCPNET_BACKENDS;
  if (!env) return all;
  return env
    .split(',')
    .map((s) => s.trim())
    .filter((s): s is BackendName => s === 'native' || s === 'js');
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
 * A raw TCP client that speaks the framing of PROTOCOL.md section 1 (the
 * package's PacketReader) and collects every packet the server sends, for
 * black-box tests. A server that breaks the framing sets error and ends the
 * collecting.
 */
export class RawClient {
  readonly socket: net.Socket;
  readonly packets: Packet[] = [];
  ended = false;
  closed = false;
  error: Error | undefined;
  readonly #reader = new PacketReader();
  #waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      if (this.#reader.error) return;
      for (const p of this.#reader.push(chunk)) this.packets.push({ id: p.packetId, type: p.type, body: p.body });
      if (this.#reader.error) this.error ??= this.#reader.error;
      this.#wake();
    });
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
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      const onError = (err: Error) => reject(err);
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(new RawClient(socket));
      });
    });
  }

  write(data: Uint8Array): void {
    this.socket.write(data);
  }

  send(id: number, body: Uint8Array = Buffer.alloc(0)): void {
    this.socket.write(frame(id, body));
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
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
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
