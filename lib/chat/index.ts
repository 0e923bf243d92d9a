import { createServer } from '../index';
import { ChatServer, resolveChatOptions, splitChatServerOptions, type ChatServerOptions } from './chat-server';

export { ChatServer, CHAT_DEFAULTS, resolveChatOptions, splitChatServerOptions } from './chat-server';
export type { Authenticate, ChatOptions, ChatServerOptions, ChatStats, ResolvedChatOptions } from './chat-server';
export { PacketRouter } from './packet-router';
export type { PacketHandler, PacketRouterOptions, PacketRouterStats } from './packet-router';
export { ProtocolError } from './protocol-error';
export { Room, RoomManager } from './room-manager';
export { User, UserManager } from './user-manager';
export type { UserState } from './user-manager';
export { TokenBucket } from './token-bucket';
export * from './packets';
export { Field, StructCodec, charValue, defineStruct } from './struct-codec';
export type { CharField, FieldSpec, NumberField, NumberFieldType, StructInput, StructValues } from './struct-codec';

/**
 * Creates a Server (server options such as backend and maxConnections) and
 * serves chat on it (chat options such as maxRooms); call listen() to start.
 */
export function createChatServer(options: ChatServerOptions = {}): ChatServer {
  const { server, chat } = splitChatServerOptions(options);
  // Checked before the server exists, so that a bad chat option leaves nothing behind.
  resolveChatOptions(chat, 1);
  return new ChatServer(createServer(server), chat);
}
