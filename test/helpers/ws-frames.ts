import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { PacketReader } from '../../lib/index';
import type { Packet } from './raw-client';

/**
 * A WebSocket client written frame by frame over a net.Socket, for the
 * cases a well-behaved client library cannot produce: unmasked frames, bad
 * opcodes and RSV bits, fragments, control frames in between, lengths that
 * lie, handshakes that never end. It collects the server's HTTP response,
 * its frames and the packets its binary frames carry.
 */

export const Op = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

export interface FrameOptions {
  fin?: boolean;
  /** Mask the payload (clients must); default true. */
  mask?: boolean;
  /** RSV1..3 bits, 0..7. */
  rsv?: number;
  /** The length the header claims, when it is to differ from the payload's. */
  length?: number | bigint;
}

/** One client frame: header, masking key and (masked) payload. */
export function clientFrame(opcode: number, payload: Uint8Array = Buffer.alloc(0), opts: FrameOptions = {}): Buffer {
  const fin = opts.fin ?? true;
  const mask = opts.mask ?? true;
  const length = BigInt(opts.length ?? payload.length);
  const head: number[] = [(fin ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode];
  const m = mask ? 0x80 : 0;
  let ext = Buffer.alloc(0);
  if (length < 126n) {
    head.push(m | Number(length));
  } else if (length < 0x10000n) {
    head.push(m | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(Number(length));
  } else {
    head.push(m | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(length);
  }
  const body = Buffer.from(payload);
  if (!mask) return Buffer.concat([Buffer.from(head), ext, body]);
  const key = randomBytes(4);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from(head), ext, key, body]);
}

/** A masked CLOSE frame with code (and reason), or without a body. */
export function clientClose(code?: number, reason = ''): Buffer {
  if (code === undefined) return clientFrame(Op.CLOSE);
  const body = Buffer.alloc(2 + Buffer.byteLength(reason));
  body.writeUInt16BE(code, 0);
  body.write(reason, 2);
  return clientFrame(Op.CLOSE, body);
}

/** The RFC 6455 example key (section 1.3) and the accept value the RFC gives for it. */
export const RFC_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const RFC_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

/** An upgrade request; extra header lines replace or add to the usual ones (a null value drops one). */
export function upgradeRequest(extra: Record<string, string | null> = {}, path = '/'): Buffer {
  const headers: Record<string, string | null> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': RFC_KEY,
    'Sec-WebSocket-Version': '13',
    ...extra,
  };
  const lines = Object.entries(headers)
    .filter((e): e is [string, string] => e[1] !== null)
    .map(([k, v]) => `${k}: ${v}\r\n`);
  return Buffer.from(`GET ${path} HTTP/1.1\r\n${lines.join('')}\r\n`, 'latin1');
}

export interface ServerFrame {
  fin: boolean;
  opcode: number;
  /** Whether the server masked it (it must not). */
  masked: boolean;
  payload: Buffer;
}

/** A socket speaking WebSocket by hand: the HTTP response, then the server's frames, parsed as they come. */
export class WsFrameClient {
  readonly socket: net.Socket;
  /** The server's HTTP response head (status line and headers), once its blank line arrived. */
  response: string | undefined;
  /** Bytes after the response head (the whole input for a server that never answered with HTTP). */
  readonly frames: ServerFrame[] = [];
  readonly packets: Packet[] = [];
  ended = false;
  closed = false;
  error: Error | undefined;
  /** Raw bytes after the HTTP response head, not yet parsed into frames. */
  #rest: Buffer = Buffer.alloc(0);
  #head: Buffer = Buffer.alloc(0);
  readonly #reader = new PacketReader();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#received(chunk));
    socket.on('end', () => (this.ended = true));
    socket.on('error', (err) => (this.error = err));
    socket.on('close', () => (this.closed = true));
  }

  static connect(port: number, host = '127.0.0.1'): Promise<WsFrameClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new WsFrameClient(socket));
      });
    });
  }

  /** Connects, sends an upgrade request (extra headers as for upgradeRequest) and waits for the response head. */
  static async open(port: number, extra: Record<string, string | null> = {}, timeoutMs = 5000): Promise<WsFrameClient> {
    const c = await WsFrameClient.connect(port);
    c.write(upgradeRequest(extra));
    await c.waitFor(() => c.response !== undefined || c.closed, timeoutMs, 'the HTTP response');
    return c;
  }

  /** The response's status code, or undefined before it came. */
  get status(): number | undefined {
    const m = this.response === undefined ? null : /^HTTP\/1\.1 (\d{3}) /.exec(this.response);
    return m === null ? undefined : Number(m[1]);
  }

  /** A response header's value (name case-insensitive). */
  header(name: string): string | undefined {
    if (this.response === undefined) return undefined;
    const line = this.response.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
    return line?.slice(name.length + 1).trim();
  }

  /** The code of the server's CLOSE frame: a number, null for a CLOSE without a code, undefined before one came. */
  get closeCode(): number | null | undefined {
    const f = this.frames.find((x) => x.opcode === Op.CLOSE);
    if (f === undefined) return undefined;
    return f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Sends one masked binary message carrying bytes. */
  sendBinary(bytes: Uint8Array): void {
    this.write(clientFrame(Op.BINARY, bytes));
  }

  waitFor(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (pred()) {
          resolve();
        } else if (Date.now() > deadline) {
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${what}; response ${JSON.stringify(this.response?.split('\r\n')[0])}, ${this.frames.length} frames, closed=${this.closed}`,
            ),
          );
        } else {
          setTimeout(check, 5);
        }
      };
      check();
    });
  }

  waitClosed(timeoutMs = 5000): Promise<void> {
    return this.waitFor(() => this.closed, timeoutMs, 'close');
  }

  destroy(): void {
    this.socket.destroy();
  }

  #received(chunk: Buffer): void {
    if (this.response === undefined) {
      this.#head = Buffer.concat([this.#head, chunk]);
      const end = this.#head.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.response = this.#head.toString('latin1', 0, end);
      chunk = this.#head.subarray(end + 4);
    }
    let buf = this.#rest.length > 0 ? Buffer.concat([this.#rest, chunk]) : chunk;
    for (;;) {
      if (buf.length < 2) break;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) break;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) break;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (masked) at += 4;
      if (buf.length < at + len) break;
      const payload = Buffer.from(buf.subarray(at, at + len));
      if (masked) {
        const key = buf.subarray(at - 4, at);
        for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
      }
      const frame: ServerFrame = { fin: (buf[0] & 0x80) !== 0, opcode: buf[0] & 0x0f, masked, payload };
      this.frames.push(frame);
      if (frame.opcode === Op.BINARY || frame.opcode === Op.CONT) {
        for (const p of this.#reader.push(payload)) this.packets.push({ id: p.packetId, type: p.type, body: p.body });
      }
      buf = buf.subarray(at + len);
    }
    this.#rest = Buffer.from(buf);
  }
}
