import { DisconnectCode } from '../contract';
import type { CloseReason, Transport } from './types';
import { checkPacketArgs, describe } from './validate';

/** What a Connection asks of the server that made it; the Server implements it. */
export interface ConnectionOwner {
  /** @internal */
  _send(id: number, packetId: number, body: Uint8Array): boolean;
  /** @internal */
  _closeConnection(id: number, mode: 'close' | 'destroy', code?: number): boolean;
}

/** The body of a packet sent without one. */
export const EMPTY_BODY = new Uint8Array(0);

/**
 * One client connection. Created by the Server on 'connect'; after
 * 'disconnect' it is closed for good and every call on it is refused.
 * T is the type of `data`, the application's own state for the connection
 * (createServer<T>() picks it). JS thread only.
 */
export class Connection<T = unknown> {
  /** Opaque id, unique among open connections; a reused slot gets a new id. */
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /**
   * How the client reached the server: 'tcp' (the raw framing) or
   * 'websocket' (the same packets in binary WebSocket messages). Handlers
   * need not care; it is there for logs, metrics and policy.
   */
  readonly transport: Transport;
  /** Free for application state (the chat server keeps its user here); undefined until the application sets it. */
  data: T | undefined = undefined;
  #open = true;
  readonly #server: ConnectionOwner;

  /** @internal */
  constructor(server: ConnectionOwner, id: number, remoteAddress: string, remotePort: number, transport: Transport) {
    this.#server = server;
    this.id = id;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
    this.transport = transport;
  }

  /** True until close(), destroy() or the 'disconnect' event. */
  get isOpen(): boolean {
    return this.#open;
  }

  /**
   * Queues one packet. Returns false when the connection is no longer open.
   * The body is copied before send() returns.
   */
  send(packetId: number, body: Uint8Array = EMPTY_BODY): boolean {
    checkPacketArgs(packetId, body);
    if (!this.#open) return false;
    return this.#server._send(this.id, packetId, body);
  }

  /**
   * Sends what is queued, then DISCONNECT_NOTIFY(KICKED), or
   * DISCONNECT_NOTIFY(PROTOCOL_ERROR) with reason 'protocol_error', then
   * closes. The 'disconnect' event reports the same reason.
   */
  close(reason: CloseReason = 'kicked'): boolean {
    if (reason !== 'kicked' && reason !== 'protocol_error') {
      throw new TypeError(`reason must be 'kicked' or 'protocol_error', got ${describe(reason)}`);
    }
    if (!this.#open) return false;
    this.#open = false;
    const code = reason === 'protocol_error' ? DisconnectCode.PROTOCOL_ERROR : DisconnectCode.KICKED;
    return this.#server._closeConnection(this.id, 'close', code);
  }

  /** Drops what is queued and closes now. */
  destroy(): boolean {
    if (!this.#open) return false;
    this.#open = false;
    return this.#server._closeConnection(this.id, 'destroy');
  }

  /** @internal */
  _markClosed(): void {
    this.#open = false;
  }
}
