/**
 * The js backend's WebSocket transport (RFC 6455), beside the raw framing on
 * the same port: telling the two apart by a connection's first bytes, the
 * HTTP upgrade request (parsed here, within maxUpgradeRequestBytes), the
 * server's frames (unmasked, so built here in a few bytes), and the frame
 * parser for what clients send, which is the `ws` package's Receiver, loaded
 * on the first upgrade. JS main thread only.
 */
import { createHash } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { WsCloseCode } from '../../contract';

/** What a connection's first bytes say. */
export const enum Sniffed {
  /** Not `GET `: the raw framing. */
  Raw,
  /** `GET `: an HTTP request, read as a WebSocket upgrade. */
  Http,
  /** A prefix of `GET `: more bytes decide. */
  More,
}

const GET = Buffer.from('GET ', 'latin1');

/** Classifies the first bytes of a connection (buf holds every byte received so far). */
export function sniff(buf: Buffer): Sniffed {
  const n = Math.min(buf.length, GET.length);
  for (let i = 0; i < n; i++) if (buf[i] !== GET[i]) return Sniffed.Raw;
  return n === GET.length ? Sniffed.Http : Sniffed.More;
}

/** The end of an HTTP request's headers. */
const HEADERS_END = Buffer.from('\r\n\r\n', 'latin1');

/** Where the request's headers end (the index after the blank line), or -1 while they have not ended. */
export function headersEnd(buf: Buffer): number {
  const i = buf.indexOf(HEADERS_END);
  return i < 0 ? -1 : i + HEADERS_END.length;
}

/** The RFC's GUID, appended to the client's key for Sec-WebSocket-Accept. */
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64(SHA-1(key + GUID)). */
export function acceptKey(key: string): string {
  return createHash('sha1')
    .update(key + WS_GUID, 'latin1')
    .digest('base64');
}

/** An upgrade request's verdict: the 101 response to send, or an HTTP error. */
export type Upgrade = { ok: true; response: Buffer } | { ok: false; response: Buffer };

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  408: 'Request Timeout',
  426: 'Upgrade Required',
  431: 'Request Header Fields Too Large',
  503: 'Service Unavailable',
};

/** A short HTTP error response that ends the connection. */
export function httpError(status: number, message: string, extraHeaders = ''): Buffer {
  const body = `${message}\n`;
  return Buffer.from(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`,
    'latin1',
  );
}

/** A header's comma-separated tokens include token (case-insensitive). */
function hasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  return value.split(',').some((t) => t.trim().toLowerCase() === token);
}

const REQUEST_LINE = /^GET [\x21-\x7e]+ HTTP\/(\d\.\d)$/;
/** What a 426 names: the protocol, and the one version spoken. */
const UPGRADE_HEADERS = 'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n';
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/;
/** 16 bytes in base64 (as the ws package checks it). */
const KEY = /^[A-Za-z0-9+/]{22}==$/;

/**
 * Checks an upgrade request (its bytes up to and including the blank line)
 * and gives the response: 101 with Sec-WebSocket-Accept, or 400 (a malformed
 * request or key, no Host, no Connection: Upgrade), 426 (no Upgrade:
 * websocket, HTTP other than 1.1, or a version other than 13), 403 (an
 * Origin not in origins, when origins is not empty). Pure.
 */
export function checkUpgrade(request: Buffer, origins: readonly string[]): Upgrade {
  const lines = request.toString('latin1', 0, request.length - HEADERS_END.length).split('\r\n');
  const requestLine = REQUEST_LINE.exec(lines[0]);
  if (requestLine === null) return { ok: false, response: httpError(400, 'not an HTTP GET request') };
  if (requestLine[1] !== '1.1') return { ok: false, response: httpError(426, 'WebSocket needs HTTP/1.1', UPGRADE_HEADERS) };
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const m = HEADER_LINE.exec(lines[i]);
    if (m === null) return { ok: false, response: httpError(400, 'malformed header line') };
    const name = m[1].toLowerCase();
    const before = headers.get(name);
    headers.set(name, before === undefined ? m[2] : `${before}, ${m[2]}`);
  }
  if (!hasToken(headers.get('upgrade'), 'websocket')) {
    return { ok: false, response: httpError(426, 'this port speaks the iocpnet framing and WebSocket only', UPGRADE_HEADERS) };
  }
  if (!headers.has('host')) return { ok: false, response: httpError(400, 'Host header expected') };
  if (!hasToken(headers.get('connection'), 'upgrade')) return { ok: false, response: httpError(400, 'Connection: Upgrade expected') };
  if (headers.get('sec-websocket-version') !== '13') {
    return { ok: false, response: httpError(426, 'WebSocket version 13 only', UPGRADE_HEADERS) };
  }
  const key = headers.get('sec-websocket-key');
  if (key === undefined || !KEY.test(key)) return { ok: false, response: httpError(400, 'missing or malformed Sec-WebSocket-Key') };
  const origin = headers.get('origin');
  if (origins.length > 0 && origin !== undefined && !origins.includes(origin)) {
    return { ok: false, response: httpError(403, 'origin not allowed') };
  }
  return {
    ok: true,
    response: Buffer.from(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
      'latin1',
    ),
  };
}

const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PONG = 0xa;

/** The header of an unmasked, unfragmented server frame with a payload of length bytes. */
export function frameHeader(opcode: number, length: number): Buffer {
  if (length < 126) return Buffer.from([0x80 | opcode, length]);
  if (length < 0x10000) return Buffer.from([0x80 | opcode, 126, length >>> 8, length & 0xff]);
  const h = Buffer.alloc(10);
  h[0] = 0x80 | opcode;
  h[1] = 127;
  h.writeUInt32BE(Math.floor(length / 0x100000000), 2);
  h.writeUInt32BE(length >>> 0, 6);
  return h;
}

/** The header of a binary message of length bytes. */
export function binaryHeader(length: number): Buffer {
  return frameHeader(OP_BINARY, length);
}

/** A CLOSE frame with code, or without a body (the echo of a CLOSE that had none). */
export function closeFrame(code: number | undefined): Buffer {
  if (code === undefined) return Buffer.from([0x80 | OP_CLOSE, 0]);
  return Buffer.from([0x80 | OP_CLOSE, 2, code >>> 8, code & 0xff]);
}

/** A PONG frame echoing a PING's payload (at most 125 bytes: the parser refuses longer control frames). */
export function pongFrame(payload: Buffer): Buffer {
  return Buffer.concat([frameHeader(OP_PONG, payload.length), payload]);
}

/** The close code for a frame parser error of the `ws` package (its err.code): 1009 for a message too long, else 1002. */
export function closeCodeOf(err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH'
    ? WsCloseCode.MESSAGE_TOO_BIG
    : WsCloseCode.PROTOCOL_ERROR;
}

/** What the js backend uses of the `ws` package's frame parser (a Writable). */
export interface FrameReceiver extends EventEmitter {
  write(chunk: Buffer): boolean;
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'ping' | 'pong', listener: (data: Buffer) => void): this;
  on(event: 'conclude', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}

type ReceiverClass = new (options: {
  isServer: boolean;
  maxPayload: number;
  binaryType: 'nodebuffer';
  skipUTF8Validation: boolean;
  allowSynchronousEvents: boolean;
}) => FrameReceiver;

let receiverClass: ReceiverClass | undefined;

/**
 * A frame parser for one client connection: masked frames required, a
 * message (all its fragments) of at most maxMessage bytes, events emitted
 * synchronously from write(). Loads `ws` on the first call.
 */
export function createReceiver(maxMessage: number): FrameReceiver {
  if (receiverClass === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    receiverClass = (require('ws') as { Receiver: ReceiverClass }).Receiver;
  }
  return new receiverClass({
    isServer: true,
    maxPayload: maxMessage,
    binaryType: 'nodebuffer',
    // Text frames are refused whatever they hold, and a CLOSE's reason is not used.
    skipUTF8Validation: true,
    allowSynchronousEvents: true,
  });
}
