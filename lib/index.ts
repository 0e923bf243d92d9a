/**
 * The package entry: re-exports only. Layers, bottom up: contract.ts (the
 * wire and batch contract), backends/ (the engines), server/ (the server
 * API), chat/ (the chat application); cli/ is the command line.
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
  type DisconnectReason,
} from './contract';
export { encodePacket, writePacket } from './protocol';

export type { Backend, BackendSink } from './backends/backend';
export { emptyStats } from './backends/stats';
export { Connection } from './server/connection';
export { createServer } from './server/create-server';
export { HandlerError, IocpnetError } from './server/errors';
export { DEFAULT_OPTIONS, defaultIoThreads } from './server/options';
export { Server } from './server/server';
export type { ServerEvents } from './server/server';
export type {
  BackendName,
  CloseReason,
  ListenAddress,
  ResolvedServerOptions,
  ServerOptions,
  ServerStats,
} from './server/types';

export { ChatServer, CHAT_DEFAULTS, resolveChatOptions, splitChatServerOptions } from './chat/chat-server';
export type { Authenticate, ChatOptions, ChatServerOptions, ChatStats, ResolvedChatOptions } from './chat/chat-server';
export { createChatServer } from './chat/create-chat-server';
export { PacketRouter } from './chat/packet-router';
export type { PacketHandler, PacketRouterOptions, PacketRouterStats } from './chat/packet-router';
export { ProtocolError } from './chat/protocol-error';
export { Room, RoomManager } from './chat/room-manager';
export { User, UserManager } from './chat/user-manager';
export type { UserState } from './chat/user-manager';
export { TokenBucket } from './chat/token-bucket';
export * from './chat/packets';
export { Field, StructCodec, charValue, defineStruct } from './chat/struct-codec';
export type { CharField, FieldSpec, NumberField, NumberFieldType, StructInput, StructValues } from './chat/struct-codec';
