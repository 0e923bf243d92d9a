/**
 * The wire and batch contract, defined once: framing sizes, system packet ids,
 * DISCONNECT_NOTIFY codes, close reasons and their order, the option ranges and
 * defaults, the batch record kinds and layouts, and the order of the engine's
 * stats. native/core/contract.h is generated from this file
 * (`npm run codegen`), and test/contract.test.ts fails when the two differ.
 * Nothing here may import anything: both languages read it as it is.
 */

/** Bytes of the packet header: u16 length (header included), u16 id, u8 type. */
export const HEADER_SIZE = 5;
/** The largest packet the u16 length field can describe. */
export const MAX_WIRE_PACKET = 0xffff;
/** The largest body a server may send. */
export const MAX_BODY_SIZE = MAX_WIRE_PACKET - HEADER_SIZE;
/** The largest PING body the engine echoes. */
export const MAX_PING_BODY = 64;
/** Ids 1..99 are handled by the engine and never reach handlers. */
export const FIRST_APP_PACKET_ID = 100;
/** The largest application packet id (the u16 id field). */
export const MAX_PACKET_ID = 0xffff;

/** System packet ids. */
export const PacketId = {
  PING: 1,
  PONG: 2,
  DISCONNECT_NOTIFY: 3,
} as const;

/** DISCONNECT_NOTIFY reason codes on the wire. */
export const DisconnectCode = {
  SERVER_SHUTDOWN: 1,
  PROTOCOL_ERROR: 2,
  IDLE_TIMEOUT: 3,
  SERVER_FULL: 4,
  KICKED: 5,
  SLOW_CONSUMER: 6,
} as const;

/**
 * Why a connection ended, in the order of the engine's numbering (the u8 of a
 * Disconnect record and the index into the stats' closes).
 */
export const DISCONNECT_REASONS = [
  'closed', // the peer closed its side (FIN)
  'reset', // the peer reset the connection, or a socket error occurred
  'protocol_error', // the peer broke the framing rules
  'idle_timeout', // nothing received for idleTimeoutMs
  'slow_consumer', // queued outbound bytes passed maxSendQueueBytes
  'server_full', // accepted while maxConnections were open (counted only, never emitted)
  'shutdown', // the server is closing
  'kicked', // application code called close() or destroy()
  // The two below are counted only, never emitted: the connection never opened for JS.
  'upgrade_refused', // an HTTP request that was not a valid WebSocket upgrade (or whose Origin is not allowed) was answered with an HTTP error
  'upgrade_timeout', // an HTTP upgrade request did not end within upgradeTimeoutMs
] as const;

/** Why a connection ended. */
export type DisconnectReason = (typeof DISCONNECT_REASONS)[number];

/** An integer option's range and default. ioThreads' default depends on the machine (defaultIoThreads()). */
export interface IntegerOptionSpec {
  readonly min: number;
  readonly max: number;
  readonly default?: number;
}

/** The engine's integer options; every backend and the CLI validate against these. */
export const ENGINE_OPTIONS = {
  ioThreads: { min: 1, max: 64 },
  maxConnections: { min: 1, max: 1_000_000, default: 1024 },
  maxPacketSize: { min: HEADER_SIZE, max: MAX_WIRE_PACKET, default: 8192 },
  idleTimeoutMs: { min: 0, max: 0x7fffffff, default: 60_000 },
  maxSendQueueBytes: { min: 1024, max: 0x7fffffff, default: 1 << 20 },
  // Per-connection flow control: past the high-water mark a connection's reads
  // pause until its queue is back at the low-water mark. Left out, they follow
  // maxSendQueueBytes (a quarter of it, and a quarter of that: these values at
  // its default; lib/server/options.ts).
  sendQueueHighWaterBytes: { min: 1, max: 0x7fffffff, default: 256 << 10 },
  sendQueueLowWaterBytes: { min: 0, max: 0x7fffffff, default: 64 << 10 },
  maxPendingBytes: { min: 65536, max: 0x7fffffff, default: 64 << 20 },
  closeTimeoutMs: { min: 0, max: 600_000, default: 5000 },
  // WebSocket on the same port (see WEB_SOCKET below): the largest HTTP
  // upgrade request (request line and headers), and the time it may take.
  maxUpgradeRequestBytes: { min: 256, max: 65536, default: 4096 },
  upgradeTimeoutMs: { min: 1, max: 600_000, default: 5000 },
  // With webSocket on, a connection opens for JS once its transport is known:
  // at its first bytes, or (a raw client that waits for the server to speak
  // first) when it has sent nothing for this long; it then opens as 'tcp'.
  transportDetectMs: { min: 1, max: 60_000, default: 250 },
} as const satisfies Record<string, IntegerOptionSpec>;

export type EngineOptionName = keyof typeof ENGINE_OPTIONS;

/** An on/off option's default. */
export interface BooleanOptionSpec {
  readonly default: boolean;
}

/** The engine's on/off options; every backend validates them as booleans. */
export const ENGINE_FLAGS = {
  // SO_REUSEPORT on the listening socket: several processes (of one user) may
  // listen on the same address and port, and the kernel spreads new
  // connections over them. Linux (and other Unix systems that have it); an
  // engine without it refuses the listen with ENOTSUP.
  reusePort: { default: false },
  // Both transports on one port (TRANSPORTS); false: raw framing only, and
  // connections open at accept.
  webSocket: { default: true },
} as const satisfies Record<string, BooleanOptionSpec>;

export type EngineFlagName = keyof typeof ENGINE_FLAGS;
/**
 * The two transports of one port, in the order of the u8 in a Connect record.
 * 'websocket': a connection whose first bytes are `GET ` is read as an
 * HTTP/1.1 upgrade request (RFC 6455); once upgraded, the payload of its
 * binary messages, in order, is the same byte stream as a raw connection's
 * (the 5-byte framing): a message may carry several packets, and a packet may
 * span frames and messages. A message (all its fragments) may not exceed
 * maxPacketSize bytes. Server frames are unmasked binary frames.
 * The one ambiguous start: a raw first packet of length 0x4547 with id
 * 0x2054 begins with `GET ` too; it exists only when maxPacketSize >= 17735,
 * and is read as HTTP while webSocket is on.
 */
export const TRANSPORTS = ['tcp', 'websocket'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/**
 * The bounds of the webSocketOrigins option (webSocket itself is in
 * ENGINE_FLAGS): empty lets any Origin in; otherwise a request with an Origin
 * header must name one of them exactly (else HTTP 403 and a close). Each
 * origin is a non-empty string of printable ASCII of at most maxOriginLength
 * characters.
 */
export const WEB_SOCKET = {
  maxOrigins: 64,
  maxOriginLength: 256,
} as const;

/** The close codes (RFC 6455 section 7.4.1) the engine sends in its CLOSE frame. */
export const WsCloseCode = {
  NORMAL: 1000, // a close by the application, or the echo of the peer's CLOSE
  GOING_AWAY: 1001, // server shutdown, idle timeout
  PROTOCOL_ERROR: 1002, // unmasked frame, bad opcode, RSV bits, bad control frame, bad packet framing
  UNSUPPORTED_DATA: 1003, // a text frame
  POLICY_VIOLATION: 1008, // closed as a slow consumer
  MESSAGE_TOO_BIG: 1009, // a message longer than maxPacketSize
} as const;

/** Record kinds of the inbound batch (IO threads to JS). */
export const InboundKind = {
  Connect: 1,
  Packet: 2,
  Disconnect: 3,
} as const;

/**
 * Record kinds of the outbound batch (JS to IO threads). Release: JS has
 * handled a Disconnect record of a close the engine began and waits to be
 * released (its flag is set); what JS queued for that connection before it is
 * sent, then the close goes on. It carries the reason JS reported, which the
 * engine counts: an application close that JS issued before it saw the
 * engine's own takes its place, and only JS can tell that order.
 */
export const OutboundOp = {
  Send: 1,
  Broadcast: 2,
  Close: 3,
  Destroy: 4,
  Release: 5,
} as const;

/**
 * Byte sizes of the batch records, little-endian throughout.
 * Inbound: u8 kind, u32 connection id, then
 *   Connect:    u16 remote port, u8 transport (index into TRANSPORTS), u8 address length, address bytes
 *   Packet:     u16 packet id, u16 body length, body
 *   Disconnect: u8 close reason (index into DISCONNECT_REASONS),
 *               u8 awaits release (1: the engine began a graceful close and goes on after a Release)
 * Outbound: u8 op, then
 *   Send:      u32 id, one whole packet (header and body)
 *   Broadcast: u32 count, count x u32 id, one whole packet
 *   Close:     u32 id, u16 DISCONNECT_NOTIFY code
 *   Destroy:   u32 id
 *   Release:   u32 id, u8 close reason reported to the application
 */
export const BatchLayout = {
  /** u8 kind + u32 id, before every inbound record's own fields. */
  RECORD_HEAD: 5,
  CONNECT_FIELDS: 4,
  PACKET_FIELDS: 4,
  DISCONNECT_FIELDS: 2,
  /** u8 op + u32 id (or u32 count, for a broadcast). */
  OP_HEAD: 5,
  CLOSE_FIELDS: 2,
  RELEASE_FIELDS: 1,
} as const;

/** The engine's counters, in the order of the native stats array; the closes by reason follow them. */
export const STATS_FIELDS = [
  'connections',
  'accepted',
  'packetsIn',
  'packetsOut',
  'bytesIn',
  'bytesOut',
  'pings',
  'ignoredSystemPackets',
  'staleRefused',
  'readPauses',
  'readPausesSendQueue',
  'descriptorRefused',
  // Gauges, not counters: bytes of received packets waiting for the JS thread, and bytes queued for sending.
  'pendingBytes',
  'sendQueueBytes',
] as const;

export type StatsField = (typeof STATS_FIELDS)[number];

/**
 * One IO thread's figures, in the order of each thread's block in the native
 * stats array, after the closes by reason (one block per IO thread).
 */
export const THREAD_STATS_FIELDS = ['connections', 'packetsIn', 'packetsOut', 'bytesIn', 'bytesOut', 'sendQueueBytes'] as const;

export type ThreadStatsField = (typeof THREAD_STATS_FIELDS)[number];
