import { createServer } from '../server/create-server';
import { User } from './user-manager';
import { ChatServer, resolveChatOptions, splitChatServerOptions, type ChatServerOptions } from './chat-server';

/**
 * Creates a Server (server options such as backend and maxConnections) and
 * serves chat on it (chat options such as maxRooms); call listen() to start.
 */
export function createChatServer(options: ChatServerOptions = {}): ChatServer {
  const { server, chat } = splitChatServerOptions(options);
  // Checked before the server exists, so that a bad chat option leaves nothing behind.
  resolveChatOptions(chat, 1);
  return new ChatServer(createServer<User>(server), chat);
}
