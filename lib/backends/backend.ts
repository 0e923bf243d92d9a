/**
 * The seam between the server API and a transport engine: the Server drives
 * a Backend, and the Backend reports its sockets' events to a BackendSink.
 * Both run on the JS main thread. A backend imports nothing from the server
 * front end (lib/server/server.ts, connection.ts), only its types and errors.
 */
import type { DisconnectReason, Transport } from '../contract';
import type { BackendName, ListenAddress, ServerStats } from '../server/types';

/**
 * What a backend calls on the JS thread when its sockets produce events.
 * The Server implements it.
 */
export interface BackendSink {
  /** A connection opened, once its transport is known (see ServerOptions.transportDetectMs). */
  onConnect(id: number, remoteAddress: string, remotePort: number, transport: Transport): void;
  /** body is valid only during the call. */
  onPacket(id: number, packetId: number, body: Uint8Array): void;
  onDisconnect(id: number, reason: DisconnectReason): void;
  /** Called after a batch of events was delivered; the Server flushes then. */
  onBatchEnd(): void;
}

/**
 * A transport engine behind the Server. Ids are opaque numbers, unique among
 * open connections. Sends may be buffered until flush().
 *
 * Open means open as the JS thread sees it: an id is open from the
 * onConnect that reports it until the onDisconnect that reports its end, or
 * until closeConnection() is called for it, whichever comes first. The
 * engine may already be ending a connection that is open in this sense (the
 * peer's FIN or reset, a slow consumer, the shutdown), since JS hears of it
 * only with the next onDisconnect; what is sent to it then may be dropped.
 * So the values send, broadcast and closeConnection return depend only on
 * the events reported and the calls made, and every backend returns the
 * same ones for the same script. A refused id changes nothing but
 * stats().staleRefused, which also counts what an engine dropped.
 */
export interface Backend {
  readonly name: BackendName;
  listen(port: number, host: string): Promise<ListenAddress>;
  /**
   * Queues one packet; returns whether id is open. true does not promise
   * delivery: the packet is lost when the connection ends before it is
   * written, or when it makes the connection a slow consumer.
   */
  send(id: number, packetId: number, body: Uint8Array): boolean;
  /** Sends one packet to many connections; returns how many of ids are open (each as often as it is listed). */
  broadcast(ids: readonly number[], packetId: number, body: Uint8Array): number;
  /**
   * 'close': DISCONNECT_NOTIFY(code) after what is queued, then a graceful
   * close. code is a DisconnectCode, KICKED when omitted; onDisconnect(id,
   * 'protocol_error') follows for PROTOCOL_ERROR, onDisconnect(id, 'kicked')
   * for any other code.
   * 'destroy': drop what is queued and close now; code is ignored and
   * onDisconnect(id, 'kicked') follows.
   * Returns whether id was open; it is not open afterwards.
   */
  closeConnection(id: number, mode: 'close' | 'destroy', code?: number): boolean;
  /** Hands what was buffered by send/broadcast/closeConnection to the sockets. */
  flush(): void;
  stats(): ServerStats;
  /** Stops accepting, sends SERVER_SHUTDOWN to everyone, flushes, closes all, releases every handle. */
  close(): Promise<void>;
}
