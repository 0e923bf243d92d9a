/**
 * The seam between the server API and a transport engine: the Server drives
 * a Backend, and the Backend reports its sockets' events to a BackendSink.
 * Both run on the JS main thread. A backend imports nothing from the server
 * front end (lib/server/server.ts, connection.ts), only its types and errors.
 */
import type { DisconnectReason } from '../contract';
import type { BackendName, ListenAddress, ServerStats } from '../server/types';

/**
 * What a backend calls on the JS thread when its sockets produce events.
 * The Server implements it.
 */
export interface BackendSink {
  onConnect(id: number, remoteAddress: string, remotePort: number): void;
  /** body is valid only during the call. */
  onPacket(id: number, packetId: number, body: Uint8Array): void;
  onDisconnect(id: number, reason: DisconnectReason): void;
  /** Called after a batch of events was delivered; the Server flushes then. */
  onBatchEnd(): void;
}

/**
 * A transport engine behind the Server. Ids are opaque numbers, unique among
 * open connections; a backend refuses an id that is not open (returns false).
 * Sends may be buffered until flush().
 */
export interface Backend {
  readonly name: BackendName;
  listen(port: number, host: string): Promise<ListenAddress>;
  send(id: number, packetId: number, body: Uint8Array): boolean;
  /** Sends one packet to many connections; returns how many were open. */
  broadcast(ids: readonly number[], packetId: number, body: Uint8Array): number;
  /**
   * 'close': DISCONNECT_NOTIFY(code) after what is queued, then a graceful
   * close. code is a DisconnectCode, KICKED when omitted; onDisconnect(id,
   * 'protocol_error') follows for PROTOCOL_ERROR, onDisconnect(id, 'kicked')
   * for any other code.
   * 'destroy': drop what is queued and close now; code is ignored and
   * onDisconnect(id, 'kicked') follows.
   */
  closeConnection(id: number, mode: 'close' | 'destroy', code?: number): boolean;
  /** Hands what was buffered by send/broadcast/closeConnection to the sockets. */
  flush(): void;
  stats(): ServerStats;
  /** Stops accepting, sends SERVER_SHUTDOWN to everyone, flushes, closes all, releases every handle. */
  close(): Promise<void>;
}
