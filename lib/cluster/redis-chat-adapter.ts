import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import type { ChatAdapter, ChatAdapterHost, EnterOutcome } from '../chat/chat-adapter';
import { ChatPacketId, ChatResult, RoomChatNotify, RoomLeaveUserNotify, RoomNewUserNotify } from '../chat/packets';
import type { Room } from '../chat/room-manager';
import type { User } from '../chat/user-manager';
import { Buckets } from '../http/buckets';
import type { Logger } from '../http/logger';
import { IocpnetError } from '../server/errors';
import { batchedSize, decodeChatBatch, encodeChatBatch, type BatchedChat } from './chat-batch';
import type { ResolvedClusterOptions } from './cluster-options';
import { REDIS_SECONDS_BUCKETS, type ClusterStats } from './cluster-stats';
import { CLAIM, DEREGISTER, ENTER, HEARTBEAT, LEAVE, REBUILD, REGISTER, RELEASE } from './scripts';

/** The stream is trimmed to about this many entries. */
const STREAM_MAX_LEN = 10_000;
/** Entries one XREAD returns at most, and how long it blocks. */
const READ_COUNT = 1000;
const READ_BLOCK_MS = 1000;
/** Sender boots whose last sequence number a reader remembers. */
const MAX_SENDERS = 10_000;
/**
 * While an XADD of chats is in flight, the chats accepted meanwhile wait for
 * its reply and then go as one entry, so a node sends at most one chat entry
 * per Redis round trip however its chats are spread over turns; an entry that
 * grows past this many bytes goes at once all the same.
 */
const MAX_ENTRY_BYTES = 256 * 1024;

interface PendingEnter {
  room: number;
  settled: boolean;
  eventSeen: boolean;
  outcome: EnterOutcome | undefined;
  score: string | undefined;
  reply: Promise<void> | undefined;
  timer: NodeJS.Timeout | undefined;
  finish(outcome: EnterOutcome): void;
}

interface LocalUser {
  room: number | undefined;
  score: string | undefined;
}

type StreamReply = Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Resolves to the promise's value, or to undefined after ms. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/**
 * The chat state of a cluster in Redis (docs/CLUSTER.md): logins, room
 * members and the stream of room events, with two connections (commands,
 * and a blocking stream reader). JS thread only; it owns both connections.
 */
export class RedisChatAdapter implements ChatAdapter {
  readonly options: ResolvedClusterOptions;
  /** Seconds from sending each command (script, XADD) to its answer; the stream reader's blocking XREAD is not counted. */
  readonly roundTrip = new Buckets(REDIS_SECONDS_BUCKETS);
  readonly #host: ChatAdapterHost;
  readonly #logger: Logger | undefined;
  /** The live nodes at the last heartbeat. */
  #nodes = new Set<string>();
  #inFlightChats = 0;
  /** A Redis connection failed and has not been ready since. */
  #redisDown = false;
  readonly #maxRoomUsers: number;
  readonly #cmd: Redis;
  readonly #reader: Redis;
  readonly #boot = randomBytes(8).toString('hex');
  readonly #stream: string;
  readonly #ttl: number;
  readonly #local = new Map<string, LocalUser>();
  readonly #pendingClaims = new Set<string>();
  readonly #pendingEnters = new Map<string, PendingEnter>();
  readonly #seen = new Map<string, number>();
  #batch: BatchedChat[] = [];
  #batchBytes = 0;
  #inFlightBytes = 0;
  #xaddsInFlight = 0;
  #flushScheduled = false;
  #nextSeq = 1;
  #lastId = '0-0';
  #heartbeat: NodeJS.Timeout | undefined;
  #beating = false;
  #started = false;
  #closing = false;
  #closed: Promise<void> | undefined;
  #readLoop: Promise<void> | undefined;
  #errorReported = false;
  #lastError: Error | undefined;
  /** The cluster epoch under which this node's state is in Redis. */
  #epoch = '';
  readonly #stats: ClusterStats = {
    batchesPublished: 0,
    chatsPublished: 0,
    chatsReceived: 0,
    duplicatesDropped: 0,
    lostChats: 0,
    chatsRefused: 0,
    claimTimeouts: 0,
    enterTimeouts: 0,
    usersRemoved: 0,
    rebuilds: 0,
    leasesLost: 0,
    redisErrors: 0,
    reconnects: 0,
    bufferedChats: 0,
    bufferedBytes: 0,
    nodes: 0,
  };

  /** logger, when given, is told of the cluster's lifecycle: this node joining and leaving, other nodes seen coming and going, Redis coming back. */
  constructor(host: ChatAdapterHost, options: ResolvedClusterOptions, maxRoomUsers: number, logger?: Logger) {
    this.#host = host;
    this.#logger = logger;
    this.options = options;
    this.#maxRoomUsers = maxRoomUsers;
    this.#stream = `${options.prefix}events`;
    this.#ttl = Math.floor((options.leaseMs * 4) / 5);
    // Commands are never failed for a lost connection: ioredis holds them and resends what was in flight.
    const common = {
      lazyConnect: true,
      protocol: 2 as const,
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      autoResendUnfulfilledCommands: true,
      retryStrategy: (times: number) => Math.min(50 * times, 500),
    };
    this.#cmd = new Redis(options.redis, { ...common, connectionName: `iocpnet-${options.nodeId}-cmd` });
    this.#reader = new Redis(options.redis, { ...common, connectionName: `iocpnet-${options.nodeId}-read` });
    for (const conn of [this.#cmd, this.#reader]) {
      conn.on('error', (err: Error) => this.#onRedisError(err));
      conn.on('ready', () => {
        this.#errorReported = false;
        if (this.#redisDown && !this.#closing) this.#logger?.info({ nodeId: options.nodeId, redis: this.#where() }, 'cluster: Redis is back');
        this.#redisDown = false;
      });
      conn.on('reconnecting', () => {
        this.#stats.reconnects++;
      });
    }
  }

  async start(): Promise<void> {
    if (this.#started) return;
    const deadline = Date.now() + 2 * this.options.leaseMs;
    try {
      try {
        await Promise.all([this.#cmd.connect(), this.#reader.connect()].map((p) => within(p, this.options.leaseMs)));
      } catch (err) {
        const why = this.#lastError?.message ?? (err instanceof Error ? err.message : String(err));
        throw new IocpnetError('ECLUSTERJOIN', `cannot join the cluster: Redis at ${this.#where()}: ${why}`);
      }
      for (;;) {
        const left = deadline - Date.now();
        const reply =
          left > 0 ? ((await within(this.#run(REGISTER, this.#boot, this.#ttl, randomBytes(8).toString('hex')), left)) as string[] | undefined) : undefined;
        if (reply?.[0] === 'ok') {
          this.#epoch = reply[1];
          break;
        }
        if (reply === undefined) throw new IocpnetError('ECLUSTERJOIN', `cannot join the cluster: Redis at ${this.#where()} did not answer`);
        if (Date.now() + this.options.leaseMs / 5 > deadline) {
          throw new IocpnetError('ECLUSTERJOIN', `cannot join the cluster: node id ${JSON.stringify(this.options.nodeId)} is in use by a live node`);
        }
        await sleep(this.options.leaseMs / 5);
      }
      const last = (await this.#cmd.xrevrange(this.#stream, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
      this.#lastId = last.length > 0 ? last[0][0] : '0-0';
    } catch (err) {
      this.#closing = true;
      this.#cmd.disconnect();
      this.#reader.disconnect();
      throw err;
    }
    this.#started = true;
    this.#logger?.info({ nodeId: this.options.nodeId, redis: this.#where(), prefix: this.options.prefix }, `cluster: joined as ${this.options.nodeId}`);
    this.#heartbeat = setInterval(() => this.#beat(), Math.max(1, Math.floor(this.options.leaseMs / 5)));
    this.#heartbeat.unref();
    // The first beat at once: it tells which nodes are there.
    this.#beat();
    this.#readLoop = this.#read();
  }

  claim(userId: string): number | Promise<number> {
    if (this.#closing) return ChatResult.LOGIN_USER_USED_ALL_OBJ;
    if (this.#local.has(userId) || this.#pendingClaims.has(userId)) return ChatResult.LOGIN_USER_ALREADY;
    // Held until Redis answers, also past a timeout, so that a late claim and its release stay in order.
    this.#pendingClaims.add(userId);
    return new Promise<number>((resolve) => {
      let answered = false;
      const timer = setTimeout(() => {
        answered = true;
        this.#stats.claimTimeouts++;
        resolve(ChatResult.LOGIN_USER_USED_ALL_OBJ);
      }, this.options.leaseMs);
      timer.unref();
      this.#run(CLAIM, this.#boot, userId).then(
        (reply) => {
          this.#pendingClaims.delete(userId);
          clearTimeout(timer);
          const claimed = Number(reply) === 1;
          if (claimed && !answered && !this.#closing) {
            this.#local.set(userId, { room: undefined, score: undefined });
            resolve(ChatResult.NONE);
            return;
          }
          if (claimed) this.#send(RELEASE, userId);
          if (!answered) resolve(Number(reply) === 0 ? ChatResult.LOGIN_USER_ALREADY : ChatResult.LOGIN_USER_USED_ALL_OBJ);
        },
        (err: unknown) => {
          this.#pendingClaims.delete(userId);
          clearTimeout(timer);
          this.#report(err);
          if (!answered) resolve(ChatResult.LOGIN_USER_USED_ALL_OBJ);
        },
      );
    });
  }

  enter(user: User, room: Room, done: (outcome: EnterOutcome) => void): Promise<void> {
    this.#flush();
    const userId = user.userId;
    return new Promise<void>((resolve) => {
      const pending: PendingEnter = {
        room: room.number,
        settled: false,
        eventSeen: false,
        outcome: undefined,
        score: undefined,
        reply: undefined,
        timer: undefined,
        finish: (outcome) => {
          if (pending.settled) return;
          pending.settled = true;
          clearTimeout(pending.timer);
          if (this.#pendingEnters.get(userId) === pending) this.#pendingEnters.delete(userId);
          try {
            done(outcome);
          } finally {
            resolve();
          }
        },
      };
      pending.timer = setTimeout(() => {
        this.#stats.enterTimeouts++;
        pending.finish({ result: ChatResult.ENTER_ROOM_FULL_USER });
        // Entered in Redis but never seen in the stream: taken out again.
        if (pending.outcome !== undefined) this.#send(LEAVE, userId, String(room.number));
      }, this.options.leaseMs);
      pending.timer.unref();
      this.#pendingEnters.set(userId, pending);
      pending.reply = this.#run(ENTER, this.#boot, userId, String(room.number), String(this.#maxRoomUsers)).then(
        (reply) => {
          const values = reply as Array<number | string>;
          const code = Number(values[0]);
          if (code !== 1) {
            pending.finish({ result: code === -2 ? ChatResult.ENTER_ROOM_INVALID_USER_STATUS : ChatResult.ENTER_ROOM_FULL_USER });
            return;
          }
          if (pending.settled) {
            this.#send(LEAVE, userId, String(room.number));
            return;
          }
          const members = values.slice(2).map((m) => Buffer.from(String(m), 'utf8'));
          // The newcomer has the highest score, so it is last; the rival is the oldest of the others.
          pending.outcome = { result: ChatResult.NONE, rival: members.length > 1 ? members[0] : undefined, members };
          pending.score = String(values[1]);
          if (pending.eventSeen) this.#admit(userId, pending);
        },
        (err: unknown) => {
          this.#report(err);
          pending.finish({ result: ChatResult.ENTER_ROOM_FULL_USER });
        },
      );
    });
  }

  left(user: User, room: Room): void {
    this.#flush();
    const local = this.#local.get(user.userId);
    if (local !== undefined) {
      local.room = undefined;
      local.score = undefined;
    }
    this.#send(LEAVE, user.userId, String(room.number));
  }

  release(userId: string): void {
    this.#flush();
    this.#local.delete(userId);
    this.#send(RELEASE, userId);
  }

  chat(user: User, room: Room, message: Uint8Array): boolean {
    const size = batchedSize(user.idBytes, message);
    if (this.#closing || this.#batchBytes + this.#inFlightBytes + size > this.options.maxBufferBytes) {
      this.#stats.chatsRefused++;
      return false;
    }
    this.#batch.push({ room: room.number, userId: user.idBytes, message: Buffer.from(message) });
    this.#batchBytes += size;
    if (this.#batchBytes >= MAX_ENTRY_BYTES) this.#flush();
    else this.#scheduleFlush();
    return true;
  }

  /** Flushes at the end of this turn, unless an XADD is in flight: then its reply does. */
  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#xaddsInFlight > 0 || this.#batch.length === 0) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      if (this.#xaddsInFlight === 0) this.#flush();
    });
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  stats(): ClusterStats {
    return { ...this.#stats, bufferedChats: this.#batch.length + this.#inFlightChats, bufferedBytes: this.#batchBytes + this.#inFlightBytes };
  }

  async #close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#heartbeat);
    this.#flush();
    if (this.#started) {
      // Bounded so that a shutdown with Redis away stays within the CLI's guard; the lease then frees the users.
      try {
        const removed = await within(this.#run(DEREGISTER, this.#boot), this.options.leaseMs / 2);
        if (removed !== undefined) await within(this.#cmd.quit(), 1000);
      } catch (err) {
        this.#report(err);
      }
    }
    this.#cmd.disconnect();
    this.#reader.disconnect();
    await this.#readLoop;
    if (this.#started) this.#logger?.info({ nodeId: this.options.nodeId }, 'cluster: left');
  }

  /** Runs a script of scripts.ts with the common arguments (prefix, node id, stream length) first. */
  #run(script: string, ...args: Array<string | number>): Promise<unknown> {
    return this.#timed(this.#cmd.eval(script, 0, this.options.prefix, this.options.nodeId, STREAM_MAX_LEN, ...args));
  }

  /** Counts the command's round trip once it is answered (a failed command is not a round trip). */
  #timed<T>(command: Promise<T>): Promise<T> {
    const sent = performance.now();
    return command.then((value) => {
      this.roundTrip.observe((performance.now() - sent) / 1000);
      return value;
    });
  }

  /** Runs a script whose answer nobody waits for; a failure is reported. */
  #send(script: string, ...args: Array<string | number>): void {
    this.#run(script, ...args).catch((err: unknown) => this.#report(err));
  }

  /**
   * Appends the chats accepted since the last flush as one stream entry, at
   * once: also before an enter, leave or logout script, so that a user's
   * chats are in the stream before its leave (one connection keeps the order).
   */
  #flush(): void {
    if (this.#batch.length === 0) return;
    const chats = this.#batch;
    const bytes = this.#batchBytes;
    this.#batch = [];
    this.#batchBytes = 0;
    const seq = this.#nextSeq;
    this.#nextSeq += chats.length;
    this.#inFlightBytes += bytes;
    this.#xaddsInFlight++;
    this.#inFlightChats += chats.length;
    this.#stats.batchesPublished++;
    this.#stats.chatsPublished += chats.length;
    const o = this.options;
    this.#timed(
      this.#cmd.xadd(
        this.#stream,
        'MAXLEN',
        '~',
        STREAM_MAX_LEN,
        '*',
        'n',
        o.nodeId,
        'k',
        'c',
        'b',
        this.#boot,
        's',
        seq,
        'c',
        chats.length,
        'd',
        encodeChatBatch(chats),
      ),
    )
      .then(
        () => {
          this.#inFlightBytes -= bytes;
          this.#inFlightChats -= chats.length;
        },
        (err: unknown) => {
          this.#inFlightBytes -= bytes;
          this.#inFlightChats -= chats.length;
          this.#stats.lostChats += chats.length;
          this.#report(err);
        },
      )
      .finally(() => {
        this.#xaddsInFlight--;
        this.#scheduleFlush();
      });
  }

  #beat(): void {
    if (this.#beating || this.#closing) return;
    this.#beating = true;
    this.#run(HEARTBEAT, this.#boot, this.#ttl, this.#epoch)
      .then((reply) => this.#afterBeat(reply as [string, number, string[]?]))
      .catch((err: unknown) => this.#report(err))
      .finally(() => {
        this.#beating = false;
      });
  }

  async #afterBeat([state, removed, nodes]: [string, number, string[]?]): Promise<void> {
    this.#stats.usersRemoved += Number(removed);
    if (this.#closing) return;
    if (Array.isArray(nodes)) this.#sawNodes(nodes.map(String));
    if (state === 'rebuild') {
      const args: string[] = [];
      for (const [userId, u] of this.#local) args.push(userId, u.room === undefined ? '' : String(u.room), u.score ?? '');
      const [epoch, ...lost] = (await this.#run(REBUILD, this.#boot, this.#ttl, randomBytes(8).toString('hex'), ...args)) as string[];
      this.#epoch = epoch;
      this.#stats.rebuilds++;
      for (const userId of lost) this.#host.kick(userId);
    } else if (state === 'removed') {
      // The cluster has told everyone that this node's users left; they log in again.
      this.#stats.leasesLost++;
      this.#host.kickAll();
      const reply = (await this.#run(REGISTER, this.#boot, this.#ttl, randomBytes(8).toString('hex'))) as string[];
      if (reply[0] === 'ok') this.#epoch = reply[1];
    }
  }

  async #read(): Promise<void> {
    while (!this.#closing) {
      let reply: StreamReply;
      try {
        reply = (await this.#reader.callBuffer('XREAD', 'COUNT', READ_COUNT, 'BLOCK', READ_BLOCK_MS, 'STREAMS', this.#stream, this.#lastId)) as StreamReply;
      } catch (err) {
        if (this.#closing) return;
        this.#report(err);
        await sleep(100);
        continue;
      }
      if (reply === null) continue;
      for (const [, entries] of reply) {
        for (const [id, fields] of entries) {
          this.#lastId = id.toString('latin1');
          try {
            const wait = this.#onEntry(fields);
            if (wait !== undefined) await within(wait, this.options.leaseMs);
          } catch (err) {
            this.#report(err);
          }
        }
      }
    }
  }

  /** Delivers one stream entry to this node's members; a promise when the reader must wait for an enter's reply. */
  #onEntry(list: Buffer[]): Promise<void> | undefined {
    const f = new Map<string, Buffer>();
    for (let i = 0; i + 1 < list.length; i += 2) f.set(list[i].toString('latin1'), list[i + 1]);
    const node = f.get('n')?.toString('utf8');
    const kind = f.get('k')?.toString('latin1');
    if (kind === 'e' || kind === 'l') {
      const room = Number(f.get('r')?.toString('latin1'));
      const user = f.get('u') ?? Buffer.alloc(0);
      if (kind === 'l') {
        this.#host.toRoom(room, ChatPacketId.ROOM_LEAVE_USER_NOTIFY, RoomLeaveUserNotify.encode({ UserID: user }));
        return undefined;
      }
      this.#host.toRoom(room, ChatPacketId.ROOM_NEW_USER_NOTIFY, RoomNewUserNotify.encode({ UserID: user }));
      if (node !== this.options.nodeId) return undefined;
      const userId = user.toString('utf8');
      const pending = this.#pendingEnters.get(userId);
      if (pending === undefined || pending.room !== room || pending.settled) return undefined;
      if (pending.outcome !== undefined) {
        this.#admit(userId, pending);
        return undefined;
      }
      pending.eventSeen = true;
      return pending.reply;
    }
    if (kind !== 'c' || node === this.options.nodeId) return undefined;
    const sender = `${node}/${f.get('b')?.toString('latin1')}`;
    const first = Number(f.get('s')?.toString('latin1'));
    const count = Number(f.get('c')?.toString('latin1'));
    const last = this.#seen.get(sender);
    if (last !== undefined) {
      if (first + count - 1 <= last) {
        this.#stats.duplicatesDropped += count;
        return undefined;
      }
      if (first > last + 1) {
        this.#stats.lostChats += first - last - 1;
        this.#report(new IocpnetError('ECLUSTERLOST', `cluster: ${first - last - 1} chats of node ${node} are missing from the stream`));
      }
      this.#seen.delete(sender);
    } else if (this.#seen.size >= MAX_SENDERS) {
      const oldest = this.#seen.keys().next();
      if (oldest.done !== true) this.#seen.delete(oldest.value);
    }
    this.#seen.set(sender, first + count - 1);
    for (const chat of decodeChatBatch(f.get('d') ?? Buffer.alloc(0))) {
      this.#stats.chatsReceived++;
      this.#host.toRoom(chat.room, ChatPacketId.ROOM_CHAT_NOTIFY, RoomChatNotify.encode({ UserID: chat.userId, Msg: chat.message }));
    }
    return undefined;
  }

  /** The user's enter has its place in the stream: the chat server admits it to the local room now. */
  #admit(userId: string, pending: PendingEnter): void {
    const local = this.#local.get(userId);
    if (local !== undefined) {
      local.room = pending.room;
      local.score = pending.score;
    }
    if (pending.outcome !== undefined) pending.finish(pending.outcome);
  }

  /** The live nodes of a heartbeat: logs the ones that came and went since the one before. */
  #sawNodes(nodes: string[]): void {
    const now = new Set(nodes);
    const first = this.#stats.nodes === 0;
    if (!first) {
      for (const id of now) if (!this.#nodes.has(id)) this.#logger?.info({ nodeId: this.options.nodeId, node: id }, `cluster: node ${id} joined`);
      for (const id of this.#nodes) if (!now.has(id)) this.#logger?.info({ nodeId: this.options.nodeId, node: id }, `cluster: node ${id} left`);
    } else {
      this.#logger?.info({ nodeId: this.options.nodeId, nodes: [...now].sort() }, `cluster: ${now.size} nodes`);
    }
    this.#nodes = now;
    this.#stats.nodes = now.size;
  }

  #onRedisError(err: Error): void {
    this.#stats.redisErrors++;
    this.#lastError = err;
    if (this.#started && !this.#closing) this.#redisDown = true;
    // Before start() has joined, start() itself reports what went wrong.
    if (this.#closing || this.#errorReported || !this.#started) return;
    // Once per outage: ioredis retries every half second and would say the same each time.
    this.#errorReported = true;
    this.#host.report(new IocpnetError('ECLUSTERREDIS', `cluster: Redis at ${this.#where()}: ${err.message}`));
  }

  #report(err: unknown): void {
    if (this.#closing) return;
    this.#host.report(err instanceof Error ? err : new Error(String(err)));
  }

  #where(): string {
    const url = new URL(this.options.redis);
    return `${url.hostname}:${url.port || '6379'}`;
  }
}
