import type { Connection } from '../server/connection';
import type { Room } from './room-manager';
import type { TokenBucket } from '../toolkit/token-bucket';

/** Where a connection is in the chat: not logged in, logged in, or in a room. */
export type UserState = 'none' | 'login' | 'room';

/**
 * A logged-in user. Lives from a successful login until its connection
 * closes; kept in its Connection's `data`. JS thread only.
 */
export class User {
  readonly userId: string;
  /** The id as it goes on the wire (1..20 bytes). */
  readonly idBytes: Buffer;
  readonly conn: Connection<User>;
  /** The room the user is in, if any. */
  room: Room | undefined = undefined;
  /** Chat messages the user may still send (chatRateLimit). */
  readonly chatBucket: TokenBucket;
  #loggedIn = true;

  /** @internal Use UserManager.add(). */
  constructor(userId: string, idBytes: Buffer, conn: Connection<User>, chatBucket: TokenBucket) {
    this.userId = userId;
    this.idBytes = idBytes;
    this.conn = conn;
    this.chatBucket = chatBucket;
  }

  get state(): UserState {
    if (!this.#loggedIn) return 'none';
    return this.room === undefined ? 'login' : 'room';
  }

  /** @internal */
  _logout(): void {
    this.#loggedIn = false;
  }
}

/** The logged-in users by id, at most maxUsers. JS thread only. */
export class UserManager {
  readonly maxUsers: number;
  readonly #byId = new Map<string, User>();

  constructor(maxUsers: number) {
    this.maxUsers = maxUsers;
  }

  get count(): number {
    return this.#byId.size;
  }

  get isFull(): boolean {
    return this.#byId.size >= this.maxUsers;
  }

  get(userId: string): User | undefined {
    return this.#byId.get(userId);
  }

  /** Logs a user in; the caller has checked that the id is free and there is room. */
  add(userId: string, idBytes: Buffer, conn: Connection<User>, chatBucket: TokenBucket): User {
    if (this.#byId.has(userId)) throw new RangeError(`user ${JSON.stringify(userId)} is already logged in`);
    if (this.isFull) throw new RangeError(`${this.maxUsers} users are logged in already`);
    const user = new User(userId, Buffer.from(idBytes), conn, chatBucket);
    this.#byId.set(userId, user);
    return user;
  }

  /** Logs a user out; its id is free again at once. The caller has taken it out of its room. */
  remove(user: User): boolean {
    if (this.#byId.get(user.userId) !== user) return false;
    this.#byId.delete(user.userId);
    user._logout();
    return true;
  }

  [Symbol.iterator](): IterableIterator<User> {
    return this.#byId.values();
  }
}
