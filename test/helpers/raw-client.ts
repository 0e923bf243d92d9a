import * as net from 'node:net';
import { createServer, type BackendName, type Server, type ServerOptions } from '../../lib/index';

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

/** Encodes one packet; length and type may be forced to build bad packets. */
export function frame(id: number, body: Uint8Array = Buffer.alloc(0), opts: { length?: number; type?: number } = {}): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out.writeUInt16LE(opts.length ?? 5 + body.length, 0);
  out.writeUInt16LE(id, 2);
  out.writeUInt8(opts.type ?? 0, 4);
  Buffer.from(body.buffer, body.byteOffset, body.length).copy(out, 5);
  return out;
}

/**
 * A raw TCP client that speaks the framing of PROTOCOL.md section 1 and
 * collects every packet the server sends, for black-box tests.
 */
export class RawClient {
  readonly socket: net.Socket;
  readonly packets: Packet[] = [];
  ended = false;
  closed = false;
  error: Error | undefined;
  #buf: Buffer = Buffer.alloc(0);
  #waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      while (this.#buf.length >= 5) {
        const len = this.#buf.readUInt16LE(0);
        if (len < 5 || this.#buf.length < len) break;
        this.packets.push({
          id: this.#buf.readUInt16LE(2),
          type: this.#buf.readUInt8(4),
          body: Buffer.from(this.#buf.subarray(5, len)),
        });
        this.#buf = this.#buf.subarray(len);
      }
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
