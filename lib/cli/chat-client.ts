import * as net from 'node:net';
import * as readline from 'node:readline';
import { Command } from 'commander';
import {
  ChatPacketId,
  ChatResult,
  LoginRequest,
  LoginResponse,
  MESSAGE_FIELD,
  RoomChatNotify,
  RoomChatRequest,
  RoomChatResponse,
  RoomEnterRequest,
  RoomEnterResponse,
  RoomLeaveResponse,
  RoomLeaveUserNotify,
  RoomNewUserNotify,
  chatResultName,
  decodeUserList,
  parseUserId,
} from '../chat/packets';
import { DisconnectCode, PacketId } from '../contract';
import { PacketReader, type ReceivedPacket } from '../toolkit/packet-reader';
import { encodePacket } from '../toolkit/packet-writer';
import { intOption } from './int-option';

interface ChatClientFlags {
  host: string;
  port: number;
  user: string;
  password: string;
  room?: number;
  pingIntervalMs: number;
}

const I32_MAX = 0x7fffffff;

/** Adds `chat-client` to program. */
export function addChatClientCommand(program: Command): void {
  program
    .command('chat-client')
    .description('an interactive chat client: /join N, /leave, /quit; any other line is a chat message')
    .option('--host <address>', 'server address', '127.0.0.1')
    .option('--port <n>', 'server port', intOption(1, 65535), 12021)
    .requiredOption('--user <name>', 'user id: 1..20 bytes of UTF-8, no control characters')
    .option('--password <text>', 'password, if the server checks one', '')
    .option('--room <n>', 'room to join after login', intOption(-I32_MAX - 1, I32_MAX))
    .option('--ping-interval-ms <n>', 'keep-alive PING period; keep it below the server idle timeout', intOption(100, 3_600_000), 20000)
    .action((flags: ChatClientFlags, command: Command) => {
      if (parseUserId(Buffer.from(flags.user, 'utf8')) === undefined) {
        command.error(`error: --user must be 1..20 bytes of UTF-8 without control characters, got ${JSON.stringify(flags.user)}`);
      }
      if (Buffer.byteLength(flags.password, 'utf8') > 21) command.error('error: --password holds at most 21 bytes');
      return new ChatClient(flags).run();
    });
}

/** A ROOM_ENTER_REQUEST in flight: the room, the room left for it, and whether it goes back to that one. */
interface RoomEntry {
  room: number;
  left: number | undefined;
  returning: boolean;
}

/** Control characters from the network are shown as '?', so that a peer cannot drive the terminal. */
function printable(bytes: Buffer): string {
  // Matching control characters is the point here.
  // eslint-disable-next-line no-control-regex
  return bytes.toString('utf8').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/**
 * The terminal chat client: one connection, a readline prompt, and a line
 * of output per notify. JS thread only.
 */
class ChatClient {
  readonly #flags: ChatClientFlags;
  readonly #reader = new PacketReader();
  #socket: net.Socket | undefined;
  #rl: readline.Interface | undefined;
  #room: number | undefined;
  /** The room entries asked for, oldest first; each ROOM_ENTER_RESPONSE answers the first. */
  readonly #joining: RoomEntry[] = [];
  /**
   * Lines typed or piped in wait here until the login (and the --room entry)
   * and any room change under way are done, so that they act in the order given.
   */
  readonly #waitingLines: string[] = [];
  #loggedIn = false;
  #inputEnded = false;
  #quitting = false;
  #exitCode = 0;
  #done: (code: number) => void = () => undefined;

  constructor(flags: ChatClientFlags) {
    this.#flags = flags;
  }

  run(): Promise<void> {
    return new Promise<number>((resolve) => {
      this.#done = resolve;
      const socket = net.connect({ host: this.#flags.host, port: this.#flags.port });
      this.#socket = socket;
      socket.setNoDelay(true);
      socket.once('connect', () => this.#onConnect());
      socket.on('data', (chunk: Buffer) => this.#onData(chunk));
      socket.on('error', (err) => this.#print(`error: ${err.message}`));
      socket.on('close', () => this.#finish(1));
    }).then((code) => {
      process.exitCode = code;
    });
  }

  #onConnect(): void {
    const { host, port, user, password } = this.#flags;
    this.#print(`connected to ${host}:${port}`);
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: Boolean(process.stdin.isTTY && process.stdout.isTTY) });
    this.#rl = rl;
    rl.setPrompt('> ');
    rl.on('line', (line) => {
      this.#waitingLines.push(line);
      this.#runWaitingLines();
    });
    rl.on('SIGINT', () => this.#quit());
    rl.on('close', () => {
      // End of piped input: quit once every line before it has acted.
      this.#inputEnded = true;
      this.#runWaitingLines();
    });
    const ping = setInterval(() => this.#send(PacketId.PING), this.#flags.pingIntervalMs);
    ping.unref();
    this.#socket?.once('close', () => clearInterval(ping));
    this.#send(ChatPacketId.LOGIN_REQUEST, LoginRequest.encode({ UserID: user, UserPW: password }));
    rl.prompt();
  }

  /** Runs the waiting lines while nothing they depend on is under way. */
  #runWaitingLines(): void {
    while (!this.#quitting && this.#loggedIn && this.#joining.length === 0) {
      const line = this.#waitingLines.shift();
      if (line === undefined) {
        if (this.#inputEnded) this.#quit();
        return;
      }
      this.#onLine(line);
    }
  }

  #onLine(raw: string): void {
    const line = raw.trim();
    if (line === '') {
      this.#rl?.prompt();
      return;
    }
    const join = /^\/join\s+(-?\d+)$/.exec(line);
    if (join) {
      const room = Number(join[1]);
      if (!Number.isSafeInteger(room) || room < -I32_MAX - 1 || room > I32_MAX) this.#print('error: room must be a 32-bit integer');
      else this.#join(room);
    } else if (line === '/leave') {
      this.#send(ChatPacketId.ROOM_LEAVE_REQUEST);
    } else if (line === '/quit') {
      this.#quit();
      return;
    } else if (line.startsWith('/') && !line.startsWith('//')) {
      this.#print('commands: /join N, /leave, /quit (start a message with // to send a leading slash)');
    } else {
      const text = Buffer.from(line.startsWith('//') ? line.slice(1) : line, 'utf8');
      if (text.length > MESSAGE_FIELD) this.#print(`error: a message holds at most ${MESSAGE_FIELD} bytes, this one has ${text.length}`);
      else this.#send(ChatPacketId.ROOM_CHAT_REQUEST, RoomChatRequest.encode({ Message: text }));
    }
    this.#rl?.prompt();
  }

  /**
   * Joining another room leaves the current one first, as a person would
   * expect; if the new room refuses, the client goes back to the old one.
   */
  #join(room: number): void {
    const left = this.#room;
    if (left !== undefined) {
      this.#send(ChatPacketId.ROOM_LEAVE_REQUEST);
      this.#room = undefined;
    }
    this.#enter({ room, left, returning: false });
  }

  #enter(entry: RoomEntry): void {
    this.#joining.push(entry);
    this.#send(ChatPacketId.ROOM_ENTER_REQUEST, RoomEnterRequest.encode({ RoomNumber: entry.room }));
  }

  #onData(chunk: Buffer): void {
    let packets: ReceivedPacket[];
    try {
      packets = this.#reader.push(chunk);
    } catch (err) {
      this.#print(`error: ${err instanceof Error ? err.message : String(err)}`);
      this.#socket?.destroy();
      return;
    }
    for (const p of packets) {
      try {
        this.#onPacket(p);
      } catch (err) {
        // A malformed packet from the server is shown, not fatal to the client.
        this.#print(`error: packet ${p.packetId}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (this.#reader.error) {
      this.#print(`error: ${this.#reader.error.message}`);
      this.#socket?.destroy();
    }
  }

  #onPacket(p: ReceivedPacket): void {
    const tag = `[${this.#room ?? '-'}]`;
    switch (p.packetId) {
      case ChatPacketId.LOGIN_RESPONSE: {
        const { Result } = LoginResponse.decode(p.body);
        if (Result !== ChatResult.NONE) {
          this.#print(`error: ${chatResultName(Result)}`);
          if (!this.#loggedIn) this.#quit(1);
          return;
        }
        this.#loggedIn = true;
        this.#print(`logged in as ${this.#flags.user}`);
        if (this.#flags.room !== undefined) this.#join(this.#flags.room);
        this.#runWaitingLines();
        return;
      }
      case ChatPacketId.ROOM_ENTER_RESPONSE: {
        const { Result } = RoomEnterResponse.decode(p.body);
        const entry = this.#joining.shift();
        if (entry === undefined) return;
        if (Result !== ChatResult.NONE) {
          this.#print(`error: ${chatResultName(Result)}`);
          if (entry.left !== undefined) this.#enter({ room: entry.left, left: undefined, returning: true });
        } else {
          this.#room = entry.room;
          this.#print(entry.returning ? `back in room ${entry.room}` : `joined room ${entry.room}`);
        }
        this.#runWaitingLines();
        return;
      }
      case ChatPacketId.ROOM_USER_LIST_NOTIFY:
        this.#print(`${tag} in the room: ${decodeUserList(p.body).map(printable).join(', ')}`);
        return;
      case ChatPacketId.ROOM_NEW_USER_NOTIFY:
        this.#print(`${tag} * ${printable(RoomNewUserNotify.decode(p.body).UserID)} joined`);
        return;
      case ChatPacketId.ROOM_LEAVE_USER_NOTIFY:
        this.#print(`${tag} * ${printable(RoomLeaveUserNotify.decode(p.body).UserID)} left`);
        return;
      case ChatPacketId.ROOM_LEAVE_RESPONSE: {
        const { Result } = RoomLeaveResponse.decode(p.body);
        if (Result !== ChatResult.NONE) {
          this.#print(`error: ${chatResultName(Result)}`);
          return;
        }
        this.#print(`left room ${this.#room}`);
        this.#room = undefined;
        return;
      }
      case ChatPacketId.ROOM_CHAT_RESPONSE: {
        const { Result } = RoomChatResponse.decode(p.body);
        if (Result !== ChatResult.NONE) this.#print(`error: ${chatResultName(Result)}`);
        return;
      }
      case ChatPacketId.ROOM_CHAT_NOTIFY: {
        const { UserID, Msg } = RoomChatNotify.decode(p.body);
        this.#print(`${tag} ${printable(UserID)}: ${printable(Msg)}`);
        return;
      }
      case PacketId.DISCONNECT_NOTIFY: {
        const reason = p.body.length >= 2 ? p.body.readUInt16LE(0) : 0;
        const name = Object.entries(DisconnectCode).find(([, code]) => code === reason)?.[0] ?? `UNKNOWN(${reason})`;
        this.#print(`disconnected by the server: ${name}`);
        return;
      }
      default:
        // PONG and ids this client does not know.
        return;
    }
  }

  #send(packetId: number, body?: Uint8Array): void {
    const socket = this.#socket;
    if (socket === undefined || socket.destroyed || !socket.writable) return;
    socket.write(encodePacket(packetId, body));
  }

  /** Prints a line above the prompt without losing what the user is typing. */
  #print(line: string): void {
    const rl = this.#rl;
    if (rl !== undefined && rl.terminal && !this.#quitting) {
      readline.cursorTo(process.stdout, 0);
      readline.clearLine(process.stdout, 0);
      process.stdout.write(`${line}\n`);
      rl.prompt(true);
    } else {
      process.stdout.write(`${line}\n`);
    }
  }

  #quit(code = 0): void {
    if (this.#quitting) return;
    this.#quitting = true;
    this.#exitCode = code;
    this.#rl?.close();
    const socket = this.#socket;
    if (socket === undefined || socket.destroyed) {
      this.#finish(code);
      return;
    }
    // A graceful end lets the server see a close, not a reset; the timer bounds the wait.
    socket.end();
    setTimeout(() => socket.destroy(), 2000).unref();
  }

  /** The socket is closed: 0 after /quit, otherwise code. */
  #finish(code: number): void {
    const exitCode = this.#quitting ? this.#exitCode : code;
    // Closing readline below must not count as the user quitting.
    this.#quitting = true;
    this.#exitCode = exitCode;
    this.#rl?.close();
    this.#done(exitCode);
  }
}
