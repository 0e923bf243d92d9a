import { Command, Option } from 'commander';
import { CHAT_OPTIONS as C, type ChatServer } from '../chat/chat-server';
import { createChatServer } from '../chat/create-chat-server';
import { ENGINE_OPTIONS as E } from '../contract';
import type { BackendName } from '../server/types';
import { ListenError } from '../server/errors';
import { intOption } from './int-option';

interface ChatServerFlags {
  port: number;
  host: string;
  backend: BackendName;
  ioThreads?: number;
  startRoom: number;
  maxRooms: number;
  maxRoomUsers: number;
  maxConnections: number;
  maxUsers?: number;
  maxPacketSize: number;
  idleTimeoutMs: number;
  chatRateLimit: number;
}

/** Adds `chat-server` to program. */
export function addChatServerCommand(program: Command): void {
  program
    .command('chat-server')
    .description('run the chat server (docs/PROTOCOL.md section 3) until SIGINT or SIGTERM')
    .option('--port <n>', 'TCP port; 0 picks a free one', intOption(0, 65535), 12021)
    .option('--host <address>', 'address to listen on', '0.0.0.0')
    .addOption(new Option('--backend <name>', 'network backend').choices(['native', 'js']).default('native'))
    .option('--io-threads <n>', 'native IO threads (default: cores - 1, at least 1)', intOption(E.ioThreads.min, E.ioThreads.max))
    .option('--start-room <n>', 'first room number', intOption(C.startRoom.min, C.startRoom.max), C.startRoom.default)
    .option('--max-rooms <n>', 'number of rooms', intOption(C.maxRooms.min, C.maxRooms.max), C.maxRooms.default)
    .option('--max-room-users <n>', 'users a room holds at most', intOption(C.maxRoomUsers.min, C.maxRoomUsers.max), C.maxRoomUsers.default)
    .option('--max-connections <n>', 'open connections at most', intOption(E.maxConnections.min, E.maxConnections.max), E.maxConnections.default)
    .option('--max-users <n>', 'users logged in at once at most (default: --max-connections)', intOption(C.maxUsers.min, C.maxUsers.max))
    .option('--max-packet-size <n>', 'largest accepted packet in bytes, header included', intOption(E.maxPacketSize.min, E.maxPacketSize.max), E.maxPacketSize.default)
    .option('--idle-timeout-ms <n>', 'close connections silent for this long; 0 disables', intOption(E.idleTimeoutMs.min, E.idleTimeoutMs.max), E.idleTimeoutMs.default)
    .option('--chat-rate-limit <n>', 'chat messages per user per second; 0 disables', intOption(C.chatRateLimit.min, C.chatRateLimit.max), C.chatRateLimit.default)
    .action(async (flags: ChatServerFlags, command: Command) => {
      let chat: ChatServer;
      try {
        chat = createChatServer({
          backend: flags.backend,
          ...(flags.ioThreads === undefined ? {} : { ioThreads: flags.ioThreads }),
          maxConnections: flags.maxConnections,
          maxPacketSize: flags.maxPacketSize,
          idleTimeoutMs: flags.idleTimeoutMs,
          startRoom: flags.startRoom,
          maxRooms: flags.maxRooms,
          maxRoomUsers: flags.maxRoomUsers,
          ...(flags.maxUsers === undefined ? {} : { maxUsers: flags.maxUsers }),
          chatRateLimit: flags.chatRateLimit,
        });
      } catch (err) {
        // Flags that are fine alone but not together, e.g. --start-room near the i32 limit with many rooms.
        if (err instanceof RangeError || err instanceof TypeError) command.error(`error: ${err.message}`);
        throw err;
      }
      await serve(chat, flags);
    });
}

async function serve(chat: ChatServer, flags: ChatServerFlags): Promise<void> {
  chat.server.on('error', (err) => console.error(`error: ${err.message}`));
  let address;
  try {
    address = await chat.listen(flags.port, flags.host);
  } catch (err) {
    if (err instanceof ListenError) {
      console.error(`error: ${err.message}`);
    } else {
      const code = (err as { code?: unknown } | null)?.code;
      const message = err instanceof Error ? err.message : String(err);
      const detail = typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
      console.error(`error: cannot listen on ${flags.host}:${flags.port}: ${detail}`);
    }
    process.exit(1);
  }
  console.log(`iocpnet chat server (${chat.server.backend} backend) listening on ${address.address}:${address.port}`);

  let closing = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (closing) {
      console.error(`${signal} again: exiting without waiting for clients`);
      process.exit(1);
    }
    closing = true;
    console.log(`${signal}: shutting down`);
    // server.close() bounds itself by closeTimeoutMs; this only guards against a hang.
    const guard = setTimeout(() => {
      console.error('error: shutdown did not finish in time');
      process.exit(1);
    }, chat.server.options.closeTimeoutMs + 5000);
    guard.unref();
    chat.close().then(
      () => {
        console.log('closed');
        process.exit(0);
      },
      (err: unknown) => {
        console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}
