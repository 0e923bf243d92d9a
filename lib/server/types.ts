/**
 * The server API's public types. Types only: the backends may import them,
 * and nothing here imports the server or the backends.
 */

import type { DisconnectReason, ThreadStatsField } from '../contract';

export type { DisconnectReason, Transport } from '../contract';

/**
 * Why application code closes a connection gracefully: 'kicked' sends
 * DISCONNECT_NOTIFY(KICKED); 'protocol_error' sends
 * DISCONNECT_NOTIFY(PROTOCOL_ERROR), for a peer that broke an
 * application-level layout (PROTOCOL.md section 3). Either is also the
 * reason the 'disconnect' event reports.
 */
export type CloseReason = 'kicked' | 'protocol_error';

export type BackendName = 'native' | 'js';

export interface ServerOptions {
  /** 'native' (C++ engine, the default) or 'js' (node:net). */
  backend?: BackendName;
  /** Native IO threads. Default: cores - 1, at least 1. Ignored by the js backend. */
  ioThreads?: number;
  /** Open connections at most; one more is sent DISCONNECT_NOTIFY(SERVER_FULL). Default 1024. */
  maxConnections?: number;
  /** Largest accepted packet, header included, 5..65535. Default 8192. */
  maxPacketSize?: number;
  /** Close a connection that sent nothing for this long; 0 disables. Default 60000. */
  idleTimeoutMs?: number;
  /**
   * Queued outbound bytes per connection before it is closed as a slow
   * consumer. Reads of a connection pause at sendQueueHighWaterBytes, so only
   * what others send to it (broadcasts, pushes) grows its queue further.
   * Default 1 MiB.
   */
  maxSendQueueBytes?: number;
  /**
   * Flow control: when a connection's queue passes this many bytes, the
   * server stops reading from it until the queue is back at
   * sendQueueLowWaterBytes, so that TCP pushes back on a client that sends
   * faster than it reads. What counts as queued differs by backend
   * (docs/API.md, "Flow control"). Below maxSendQueueBytes. Default: a
   * quarter of maxSendQueueBytes (256 KiB).
   */
  sendQueueHighWaterBytes?: number;
  /** Flow control: the queue size at which a paused connection reads again; below sendQueueHighWaterBytes. Default: a quarter of the high-water mark (64 KiB). */
  sendQueueLowWaterBytes?: number;
  /** Received bytes waiting for JS at most before reading pauses. Default 64 MiB. */
  maxPendingBytes?: number;
  /** How long a graceful close waits for the peer to finish before the socket is dropped. Default 5000. */
  closeTimeoutMs?: number;
  /**
   * Listen with SO_REUSEPORT, so that several processes share the port and
   * the kernel spreads new connections over them (docs/CLUSTER.md, "Worker
   * processes"). Native engine on Linux; the js backend on Node 22.12+.
   * Elsewhere listen() rejects with code ENOTSUP. Default false.
   */
  reusePort?: boolean;
  /**
   * WebSocket (RFC 6455) on the same port as the raw framing: a connection
   * whose first bytes are `GET ` is read as an HTTP upgrade request, and its
   * binary messages then carry the same packets. false: raw framing only, and
   * connections open at accept. Default true.
   */
  webSocket?: boolean;
  /**
   * Origins a browser's upgrade request may name in its Origin header, exactly
   * (e.g. 'https://game.example.com'); any other Origin gets HTTP 403. A
   * request without an Origin header (not a browser) is let in. Empty (the
   * default): any Origin.
   */
  webSocketOrigins?: readonly string[];
  /** The largest HTTP upgrade request, request line and headers, in bytes; a longer one gets HTTP 431. Default 4096. */
  maxUpgradeRequestBytes?: number;
  /** How long an HTTP upgrade request may take from accept to its last header; then HTTP 408 and a close. Default 5000. */
  upgradeTimeoutMs?: number;
  /**
   * With webSocket on, a connection opens (the 'connect' event) once its
   * transport is known: at its first bytes, or, for a client that sends
   * nothing, after this many ms, as 'tcp'. Default 250.
   */
  transportDetectMs?: number;
}

/** Options after defaults and validation. */
export type ResolvedServerOptions = Required<ServerOptions>;

export interface ServerStats {
  /** Connections open now. */
  connections: number;
  /** Connections accepted since listen (server_full rejections excluded). */
  accepted: number;
  /** Framed packets received, system packets included. */
  packetsIn: number;
  /** Packets queued for sending, system packets and every broadcast receiver included. */
  packetsOut: number;
  /** Bytes received. */
  bytesIn: number;
  /** Bytes written to sockets. */
  bytesOut: number;
  /** PING packets answered by the engine. */
  pings: number;
  /** System packets (ids 1..99) other than PING, ignored. */
  ignoredSystemPackets: number;
  /** Sends and closes refused because the connection id was stale or closed. */
  staleRefused: number;
  /** Times a connection stopped reading because too many received bytes waited for JS (maxPendingBytes). */
  readPauses: number;
  /** Times a connection stopped reading because its own queue passed sendQueueHighWaterBytes (flow control). */
  readPausesSendQueue: number;
  /**
   * Connections refused at accept because the process had no file descriptor
   * (socket handle) left: closed at once with DISCONNECT_NOTIFY(SERVER_FULL).
   * Native backend only; node:net closes such connections inside libuv without
   * telling JS, so the js backend counts 0.
   */
  descriptorRefused: number;
  /**
   * Bytes of received packets waiting for the JS thread now (a gauge). The
   * js backend hands each read to JS at once, so it reports 0.
   */
  pendingBytes: number;
  /** Bytes queued for sending and not yet written to the sockets now, over every connection (a gauge). */
  sendQueueBytes: number;
  /** Connections ended, by reason. */
  closes: Record<DisconnectReason, number>;
  /**
   * The same figures per IO thread, index = thread. The native engine has
   * ioThreads of them; the js backend does all its I/O on the JS thread and
   * reports that one. Empty before listen().
   */
  threads: IoThreadStats[];
}

/** One IO thread's share of the ServerStats of the same names (the contract's THREAD_STATS_FIELDS). */
export type IoThreadStats = Record<ThreadStatsField, number>;

export interface ListenAddress {
  address: string;
  port: number;
}
