/**
 * The package entry: re-exports only. Layers, bottom up: contract.ts (the
 * wire and batch contract), backends/ (the engines), server/ (the server
 * API), toolkit/ (what a game or a client builds on: packet router, struct
 * codecs, rate limiter, packet reader and writer), chat/ (the chat
 * application), cluster/ (the chat application across processes on Redis;
 * its adapter and Redis client are loaded only by a server that joins a
 * cluster), http/ (metrics, dashboard and logs over HTTP); cli/ is the
 * command line.
 */
export {
  DISCONNECT_REASONS,
  DisconnectCode,
  FIRST_APP_PACKET_ID,
  HEADER_SIZE,
  MAX_BODY_SIZE,
  MAX_PING_BODY,
  MAX_WIRE_PACKET,
  PacketId,
  TRANSPORTS,
  WsCloseCode,
  type DisconnectReason,
  type Transport,
} from './contract';

export type { Backend, BackendSink } from './backends/backend';
export { emptyStats } from './backends/stats';
export { Connection } from './server/connection';
export { createServer } from './server/create-server';
export { HandlerError, IocpnetError, ListenError } from './server/errors';
export { DEFAULT_OPTIONS, defaultIoThreads } from './server/options';
export { Server } from './server/server';
export type { ServerEvents, ServerObserver } from './server/server';
export type { BackendName, CloseReason, IoThreadStats, ListenAddress, ResolvedServerOptions, ServerOptions, ServerStats } from './server/types';

export { PacketRouter } from './toolkit/packet-router';
export type { PacketHandler, PacketRouterOptions, PacketRouterStats } from './toolkit/packet-router';
export { ProtocolError } from './toolkit/protocol-error';
export { Field, StructCodec, charValue, defineStruct } from './toolkit/struct-codec';
export type { CharField, FieldSpec, NumberField, NumberFieldType, StructInput, StructValues } from './toolkit/struct-codec';
export { TokenBucket } from './toolkit/token-bucket';
export { PacketReader } from './toolkit/packet-reader';
export type { ReceivedPacket } from './toolkit/packet-reader';
export { encodePacket, writePacket } from './toolkit/packet-writer';

export { ChatServer, CHAT_DEFAULTS, resolveChatOptions, splitChatServerOptions } from './chat/chat-server';
export type { Authenticate, ChatOptions, ChatServerOptions, ChatStats, ResolvedChatOptions } from './chat/chat-server';
export { createChatServer } from './chat/create-chat-server';
export { LocalChatAdapter } from './chat/chat-adapter';
export type { ChatAdapter, ChatAdapterHost, EnterOutcome } from './chat/chat-adapter';
// Types only: the cluster layer itself is loaded by a chat server that joins a cluster.
export type { ClusterOptions, ResolvedClusterOptions } from './cluster/cluster-options';
export type { ClusterStats } from './cluster/cluster-stats';
export { Room, RoomManager } from './chat/room-manager';
export { User, UserManager } from './chat/user-manager';
export type { UserState } from './chat/user-manager';
export * from './chat/packets';

export { serveMetrics } from './http/serve-metrics';
export type { MetricsHandle, MetricsOptions } from './http/serve-metrics';
export type { DashboardSample, MetricsExtension, ObservedRouter, ObservedServer } from './http/metrics';
export { LOG_LEVELS, createLogger, prettyLine } from './http/logger';
export type { LogFormat, LogLevel, Logger, LoggerOptions } from './http/logger';
export { attachLogger } from './http/logs';
