import { performance } from 'node:perf_hooks';
import { ENGINE_OPTIONS, type DisconnectReason, type IntegerOptionSpec } from '../contract';
import type { Connection } from '../server/connection';
import { HandlerError } from '../server/errors';
import { reportError } from '../server/report-error';
import type { Server } from '../server/server';
import type { ServerOptions } from '../server/types';
import { checkInteger, describe, isThenable } from '../server/validate';
import { PacketRouter, type PacketRouterStats } from '../toolkit/packet-router';
import { charValue } from '../toolkit/struct-codec';
import { TokenBucket } from '../toolkit/token-bucket';
import { resolveClusterOptions, type ClusterOptions, type ResolvedClusterOptions } from '../cluster/cluster-options';
import type { Buckets } from '../http/buckets';
import type { Logger } from '../http/logger';
import { attachLogger } from '../http/logs';
import { LocalChatAdapter, type ChatAdapter, type ChatAdapterHost, type EnterOutcome } from './chat-adapter';
import {
  ChatPacketId,
  ChatResult,
  LoginRequest,
  LoginResponse,
  MAX_USER_LIST,
  RoomChatNotify,
  RoomChatRequest,
  RoomEnterRequest,
  RoomEnterResponse,
  RoomLeaveRequest,
  chatResultName,
  encodeUserList,
  parseUserId,
} from './packets';
import { RoomManager, type Room } from './room-manager';
import { User, UserManager } from './user-manager';

/**
 * Decides whether a login may proceed. Return (or resolve to) true to
 * accept; anything else refuses with LOGIN_USER_INVALID_PW. While a promise
 * is pending, the connection's later packets wait and are handled after it,
 * in order.
 */
export type Authenticate = (userId: string, password: string, conn: Connection<User>) => boolean | PromiseLike<boolean>;

export interface ChatOptions {
  /** The first room number. Default 0. */
  startRoom?: number;
  /** Rooms [startRoom, startRoom + maxRooms). Default 10. */
  maxRooms?: number;
  /** Users a room holds at most. Default 10. */
  maxRoomUsers?: number;
  /** Users logged in at once at most. Default: the server's maxConnections. */
  maxUsers?: number;
  /** Chat messages a user may send per second (a token bucket with one second of burst); 0 = no limit. Default 0. */
  chatRateLimit?: number;
  /** Checks a user's password; default: accept everyone. */
  authenticate?: Authenticate;
  /** Joins a cluster of chat servers on Redis (docs/CLUSTER.md); default: this process alone. */
  cluster?: ClusterOptions;
  /**
   * Where the server logs (a pino logger, or anything with its error, warn,
   * info and debug methods): listening and closing, cluster join and leave
   * and Redis faults at info and warn, handler errors at error with the
   * connection id, the packet id and the stack, connects and disconnects at
   * debug. Handler errors then go to it instead of the console. Default: no
   * logging at all.
   */
  logger?: Logger;
}

export interface ResolvedChatOptions {
  startRoom: number;
  maxRooms: number;
  maxRoomUsers: number;
  maxUsers: number;
  chatRateLimit: number;
  authenticate: Authenticate | undefined;
  cluster: ResolvedClusterOptions | undefined;
  logger: Logger | undefined;
}

export interface ChatServerOptions extends ServerOptions, ChatOptions {}

export interface ChatStats {
  /** Users logged in now. */
  users: number;
  /** Logins accepted since start. */
  logins: number;
  /** Logins refused, any result code. */
  loginsRefused: number;
  /** Logins refused, by result code name (LOGIN_USER_ALREADY, ...); only codes that occurred. */
  loginsRefusedByCode: Record<string, number>;
  /** Chat messages relayed. */
  chats: number;
  /** Chat messages refused with ROOM_TOO_MANY_PACKET. */
  rateLimited: number;
  /** ROOM_CHAT_NOTIFY packets queued, one per receiver of each relayed chat. */
  notifies: number;
  /** The router's counters: unknown packet ids, protocol errors, handler errors. */
  router: PacketRouterStats;
  /** The cluster's counters (docs/CLUSTER.md), when the server is in a cluster. */
  cluster?: Readonly<Record<string, number>>;
}

const I32_MAX = 0x7fffffff;

/** Ranges and defaults of the chat layer's integer options; maxUsers defaults to maxConnections. */
export const CHAT_OPTIONS = {
  startRoom: { min: -I32_MAX - 1, max: I32_MAX, default: 0 },
  maxRooms: { min: 1, max: 100_000, default: 10 },
  maxRoomUsers: { min: 1, max: MAX_USER_LIST, default: 10 },
  maxUsers: { min: ENGINE_OPTIONS.maxConnections.min, max: ENGINE_OPTIONS.maxConnections.max },
  chatRateLimit: { min: 0, max: 1_000_000, default: 0 },
} as const satisfies Record<string, IntegerOptionSpec>;

export const CHAT_DEFAULTS = {
  startRoom: CHAT_OPTIONS.startRoom.default,
  maxRooms: CHAT_OPTIONS.maxRooms.default,
  maxRoomUsers: CHAT_OPTIONS.maxRoomUsers.default,
  chatRateLimit: CHAT_OPTIONS.chatRateLimit.default,
} as const;

const CHAT_KEYS = new Set<string>([...Object.keys(CHAT_OPTIONS), 'authenticate', 'cluster', 'logger']);
const LOGGER_METHODS = ['error', 'warn', 'info', 'debug'] as const;

/** Validates chat options and fills in defaults; maxConnections is the default of maxUsers. */
export function resolveChatOptions(options: ChatOptions | undefined, maxConnections: number): ResolvedChatOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!CHAT_KEYS.has(key)) throw new TypeError(`unknown chat option '${key}'`);
  }
  const maxRooms =
    options.maxRooms === undefined ? CHAT_DEFAULTS.maxRooms : checkInteger('maxRooms', options.maxRooms, CHAT_OPTIONS.maxRooms.min, CHAT_OPTIONS.maxRooms.max);
  const startRoom =
    options.startRoom === undefined
      ? CHAT_DEFAULTS.startRoom
      : checkInteger('startRoom', options.startRoom, CHAT_OPTIONS.startRoom.min, CHAT_OPTIONS.startRoom.max - maxRooms + 1);
  const maxRoomUsers =
    options.maxRoomUsers === undefined
      ? CHAT_DEFAULTS.maxRoomUsers
      : checkInteger('maxRoomUsers', options.maxRoomUsers, CHAT_OPTIONS.maxRoomUsers.min, CHAT_OPTIONS.maxRoomUsers.max);
  const maxUsers =
    options.maxUsers === undefined ? maxConnections : checkInteger('maxUsers', options.maxUsers, CHAT_OPTIONS.maxUsers.min, CHAT_OPTIONS.maxUsers.max);
  const chatRateLimit =
    options.chatRateLimit === undefined
      ? CHAT_DEFAULTS.chatRateLimit
      : checkInteger('chatRateLimit', options.chatRateLimit, CHAT_OPTIONS.chatRateLimit.min, CHAT_OPTIONS.chatRateLimit.max);
  const authenticate = options.authenticate;
  if (authenticate !== undefined && typeof authenticate !== 'function') {
    throw new TypeError(`authenticate must be a function, got ${describe(authenticate)}`);
  }
  const cluster = options.cluster === undefined ? undefined : resolveClusterOptions(options.cluster);
  const logger = options.logger;
  if (logger !== undefined) {
    if (typeof logger !== 'object' || logger === null) throw new TypeError(`logger must be an object such as a pino logger, got ${describe(logger)}`);
    for (const method of LOGGER_METHODS) {
      if (typeof logger[method] !== 'function') throw new TypeError(`logger must have a ${method}() method, as a pino logger does`);
    }
  }
  return { startRoom, maxRooms, maxRoomUsers, maxUsers, chatRateLimit, authenticate, cluster, logger };
}

/** Splits combined options into the Server's and the chat layer's. */
export function splitChatServerOptions(options: ChatServerOptions = {}): { server: ServerOptions; chat: ChatOptions } {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  const server: Record<string, unknown> = {};
  const chat: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) (CHAT_KEYS.has(key) ? chat : server)[key] = value;
  return { server, chat };
}

/** Cached bodies of the 2-byte Result responses; send() copies them, so one per code is enough. */
function resultBodies(): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (const code of Object.values(ChatResult)) m.set(code, LoginResponse.encode({ Result: code }));
  return m;
}
const RESULT_BODY = resultBodies();

/**
 * The chat application of PROTOCOL.md section 3 on a Server: logins, rooms
 * and room chat, with its handlers in a PacketRouter that applications may
 * extend with their own packet ids. Each logged-in user is kept in its
 * Connection's `data`. JS thread only.
 */
export class ChatServer {
  readonly server: Server<User>;
  readonly router: PacketRouter<User>;
  readonly users: UserManager;
  readonly rooms: RoomManager;
  readonly options: ResolvedChatOptions;
  #adapter: ChatAdapter;
  #joined: Promise<void> | undefined;
  #logins = 0;
  #loginsRefused = 0;
  #chats = 0;
  #rateLimited = 0;
  #notifies = 0;
  /** The ROOM_CHAT_NOTIFY body, written anew for each chat: broadcast() copies it, so one buffer serves every chat. */
  readonly #notifyBody = Buffer.alloc(RoomChatNotify.size);
  readonly #loginsRefusedByCode = new Map<number, number>();

  /** Serves chat on server, which may also carry the application's own packets through router. */
  constructor(server: Server<User>, options?: ChatOptions) {
    this.server = server;
    this.options = resolveChatOptions(options, server.options.maxConnections);
    this.users = new UserManager(this.options.maxUsers);
    this.rooms = new RoomManager(this.options.startRoom, this.options.maxRooms, this.options.maxRoomUsers);
    this.#adapter = new LocalChatAdapter(server);
    this.router = new PacketRouter<User>().attach(server);
    this.router
      .on(ChatPacketId.LOGIN_REQUEST, (conn, _id, body) => this.#onLogin(conn, body))
      .on(ChatPacketId.ROOM_ENTER_REQUEST, (conn, _id, body) => this.#onEnter(conn, body))
      .on(ChatPacketId.ROOM_LEAVE_REQUEST, (conn, _id, body) => this.#onLeave(conn, body))
      .on(ChatPacketId.ROOM_CHAT_REQUEST, (conn, _id, body) => this.#onChat(conn, body));
    server.on('disconnect', (conn, reason) => this.#onDisconnect(conn, reason));
    if (this.options.logger !== undefined) attachLogger(this, this.options.logger);
  }

  /** Joins the cluster when there is one, then binds and starts accepting (see Server.listen). */
  async listen(port = 12021, host = '0.0.0.0'): ReturnType<Server<User>['listen']> {
    this.#joined ??= this.#join();
    await this.#joined;
    return this.server.listen(port, host);
  }

  async #join(): Promise<void> {
    const cluster = this.options.cluster;
    if (cluster !== undefined) {
      // The cluster layer and its Redis client are loaded only by a server that joins a cluster (.js: an import() resolves as ESM does).
      const { RedisChatAdapter } = await import('../cluster/redis-chat-adapter.js');
      this.#adapter = new RedisChatAdapter(this.#host(), cluster, this.options.maxRoomUsers, this.options.logger);
    }
    await this.#adapter.start();
  }

  /** Sends SERVER_SHUTDOWN to every client after what is queued, closes, and leaves the cluster (see Server.close). */
  async close(): Promise<void> {
    try {
      await this.server.close();
    } finally {
      await this.#adapter.close();
    }
  }

  /** @internal The cluster's Redis round trips in seconds, for the metrics; undefined outside a cluster and before listen(). */
  _redisRoundTrip(): Buckets | undefined {
    return this.#adapter.roundTrip;
  }

  /** The user logged in on conn, if any. */
  userOf(conn: Connection<User>): User | undefined {
    const data = conn.data;
    return data instanceof User && data.conn === conn && data.state !== 'none' ? data : undefined;
  }

  stats(): ChatStats {
    return {
      users: this.users.count,
      logins: this.#logins,
      loginsRefused: this.#loginsRefused,
      chats: this.#chats,
      rateLimited: this.#rateLimited,
      loginsRefusedByCode: Object.fromEntries([...this.#loginsRefusedByCode].map(([code, n]) => [chatResultName(code), n])),
      notifies: this.#notifies,
      router: this.router.stats(),
      ...(this.options.cluster === undefined ? {} : { cluster: this.#adapter.stats() }),
    };
  }

  #host(): ChatAdapterHost {
    return {
      toRoom: (number, packetId, body) => {
        const room = this.rooms.get(number);
        if (room !== undefined && room.count > 0) this.server.broadcast(room.connections, packetId, body);
      },
      kick: (userId) => this.users.get(userId)?.conn.close('kicked'),
      kickAll: () => {
        for (const user of [...this.users]) user.conn.close('kicked');
      },
      report: (err) => reportError(this.server, err),
    };
  }

  #onLogin(conn: Connection<User>, body: Uint8Array): void | Promise<void> {
    const req = LoginRequest.decode(body);
    if (this.userOf(conn) !== undefined) return this.#refuseLogin(conn, ChatResult.LOGIN_USER_ALREADY);
    const userId = parseUserId(req.UserID);
    if (userId === undefined) return this.#refuseLogin(conn, ChatResult.LOGIN_USER_INVALID_ID);
    // Checked before authenticate so that a login that cannot succeed costs no password check; checked again after it.
    const early = this.#loginBlocker(userId);
    if (early !== ChatResult.NONE) return this.#refuseLogin(conn, early);
    // The body is only valid during this call, and the claim may go to the cluster.
    const idBytes = Buffer.from(req.UserID);
    const authenticate = this.options.authenticate;
    if (authenticate === undefined) return this.#completeLogin(conn, userId, idBytes, true);
    let verdict: boolean | PromiseLike<boolean>;
    try {
      verdict = authenticate(userId, req.UserPW.toString('utf8'), conn);
    } catch (err) {
      this.#reportAuthError(conn, err);
      return this.#refuseLogin(conn, ChatResult.LOGIN_USER_INVALID_PW);
    }
    if (!isThenable(verdict)) return this.#completeLogin(conn, userId, idBytes, verdict === true);
    return Promise.resolve(verdict).then(
      (ok) => this.#completeLogin(conn, userId, idBytes, ok === true),
      (err: unknown) => {
        this.#reportAuthError(conn, err);
        return this.#completeLogin(conn, userId, idBytes, false);
      },
    );
  }

  #loginBlocker(userId: string): number {
    if (this.users.get(userId) !== undefined) return ChatResult.LOGIN_USER_ALREADY;
    if (this.users.isFull) return ChatResult.LOGIN_USER_USED_ALL_OBJ;
    return ChatResult.NONE;
  }

  #completeLogin(conn: Connection<User>, userId: string, idBytes: Buffer, accepted: boolean): void | Promise<void> {
    // A connection that closed while authenticate ran gets nothing and leaves nothing behind.
    if (!conn.isOpen) return;
    if (!accepted) return this.#refuseLogin(conn, ChatResult.LOGIN_USER_INVALID_PW);
    const blocker = this.userOf(conn) !== undefined ? ChatResult.LOGIN_USER_ALREADY : this.#loginBlocker(userId);
    if (blocker !== ChatResult.NONE) return this.#refuseLogin(conn, blocker);
    const claim = this.#adapter.claim(userId);
    if (typeof claim === 'number') return this.#admitLogin(conn, userId, idBytes, claim);
    return claim.then((code) => this.#admitLogin(conn, userId, idBytes, code));
  }

  #admitLogin(conn: Connection<User>, userId: string, idBytes: Buffer, claim: number): void {
    if (claim !== ChatResult.NONE) {
      if (conn.isOpen) this.#refuseLogin(conn, claim);
      return;
    }
    // The checks again, for what changed while the claim went to the cluster.
    const blocker = !conn.isOpen || this.userOf(conn) !== undefined ? ChatResult.LOGIN_USER_ALREADY : this.#loginBlocker(userId);
    if (blocker !== ChatResult.NONE) {
      this.#adapter.release(userId);
      if (conn.isOpen) this.#refuseLogin(conn, blocker);
      return;
    }
    const user = this.users.add(userId, idBytes, conn, new TokenBucket(this.options.chatRateLimit, performance.now()));
    conn.data = user;
    this.#logins++;
    conn.send(ChatPacketId.LOGIN_RESPONSE, RESULT_BODY.get(ChatResult.NONE));
  }

  #refuseLogin(conn: Connection<User>, code: number): void {
    this.#loginsRefused++;
    this.#loginsRefusedByCode.set(code, (this.#loginsRefusedByCode.get(code) ?? 0) + 1);
    conn.send(ChatPacketId.LOGIN_RESPONSE, RESULT_BODY.get(code));
  }

  #reportAuthError(conn: Connection<User>, err: unknown): void {
    reportError(this.server, new HandlerError('authenticate', conn.id, err));
  }

  #onEnter(conn: Connection<User>, body: Uint8Array): void | Promise<void> {
    const req = RoomEnterRequest.decode(body);
    const user = this.userOf(conn);
    if (user === undefined || user.room !== undefined) return this.#enterResult(conn, ChatResult.ENTER_ROOM_INVALID_USER_STATUS);
    const room = this.rooms.get(req.RoomNumber);
    if (room === undefined) return this.#enterResult(conn, ChatResult.ROOM_INVALID_INDEX);
    return this.#adapter.enter(user, room, (outcome) => this.#admitToRoom(user, room, outcome));
  }

  #admitToRoom(user: User, room: Room, outcome: EnterOutcome): void {
    // A user that logged out while the enter was decided gets nothing; the adapter frees its seat.
    if (user.state !== 'login' || !user.conn.isOpen) return;
    if (outcome.result !== ChatResult.NONE) return this.#enterResult(user.conn, outcome.result);
    const rival = outcome.members === undefined ? room.users[0]?.idBytes : outcome.rival;
    room._add(user);
    user.conn.send(ChatPacketId.ROOM_ENTER_RESPONSE, RoomEnterResponse.encode({ Result: ChatResult.NONE, RivalUserID: rival }));
    user.conn.send(ChatPacketId.ROOM_USER_LIST_NOTIFY, encodeUserList(outcome.members ?? room.users.map((u) => u.idBytes)));
  }

  #enterResult(conn: Connection<User>, code: number): void {
    conn.send(ChatPacketId.ROOM_ENTER_RESPONSE, RoomEnterResponse.encode({ Result: code }));
  }

  #onLeave(conn: Connection<User>, body: Uint8Array): void {
    RoomLeaveRequest.decode(body);
    const user = this.userOf(conn);
    if (user === undefined || user.room === undefined) {
      conn.send(ChatPacketId.ROOM_LEAVE_RESPONSE, RESULT_BODY.get(ChatResult.LEAVE_ROOM_INVALID_ROOM_INDEX));
      return;
    }
    conn.send(ChatPacketId.ROOM_LEAVE_RESPONSE, RESULT_BODY.get(ChatResult.NONE));
    this.#leaveRoom(user);
  }

  /** Takes user out of its room and tells the members who remain. */
  #leaveRoom(user: User): void {
    const room = user.room;
    if (room === undefined) return;
    room._remove(user);
    this.#adapter.left(user, room);
  }

  #onChat(conn: Connection<User>, body: Uint8Array): void {
    // The layout is one char field, so the message is the body up to its
    // first NUL (missing bytes read as zero): no zero-filled copy of a compact
    // body. decode() is asked only to throw its ProtocolError for a long one.
    if (body.length > RoomChatRequest.size) RoomChatRequest.decode(body);
    const message = charValue(body);
    const user = this.userOf(conn);
    const room = user?.room;
    if (user === undefined || room === undefined) {
      conn.send(ChatPacketId.ROOM_CHAT_RESPONSE, RESULT_BODY.get(ChatResult.CHAT_ROOM_INVALID_ROOM_NUMBER));
      return;
    }
    if (!user.chatBucket.take(performance.now())) {
      this.#rateLimited++;
      conn.send(ChatPacketId.ROOM_CHAT_RESPONSE, RESULT_BODY.get(ChatResult.ROOM_TOO_MANY_PACKET));
      return;
    }
    if (!this.#adapter.chat(user, room, message)) {
      this.#rateLimited++;
      conn.send(ChatPacketId.ROOM_CHAT_RESPONSE, RESULT_BODY.get(ChatResult.ROOM_TOO_MANY_PACKET));
      return;
    }
    this.#chats++;
    // The sender's response is queued before the notify, so it arrives first.
    conn.send(ChatPacketId.ROOM_CHAT_RESPONSE, RESULT_BODY.get(ChatResult.NONE));
    RoomChatNotify.encodeInto(this.#notifyBody, 0, { UserID: user.idBytes, Msg: message });
    this.#notifies += this.server.broadcast(room.connections, ChatPacketId.ROOM_CHAT_NOTIFY, this.#notifyBody);
  }

  #onDisconnect(conn: Connection<User>, reason: DisconnectReason): void {
    const user = this.userOf(conn);
    if (user === undefined) return;
    // At shutdown every member is being closed too: telling them who left would only delay their SERVER_SHUTDOWN.
    if (reason === 'shutdown') user.room?._remove(user);
    else this.#leaveRoom(user);
    this.users.remove(user);
    this.#adapter.release(user.userId);
    conn.data = undefined;
  }
}
