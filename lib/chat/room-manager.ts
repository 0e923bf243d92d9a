import type { Connection } from '../server/connection';
import type { User } from './user-manager';

/**
 * One chat room: its members in the order they entered, and their
 * connections in the same order for broadcasts. JS thread only.
 */
export class Room {
  readonly number: number;
  readonly maxUsers: number;
  readonly #users: User[] = [];
  readonly #connections: Connection<User>[] = [];

  constructor(number: number, maxUsers: number) {
    this.number = number;
    this.maxUsers = maxUsers;
  }

  get count(): number {
    return this.#users.length;
  }

  get isFull(): boolean {
    return this.#users.length >= this.maxUsers;
  }

  /** Members, oldest first. */
  get users(): readonly User[] {
    return this.#users;
  }

  /** Members' connections, in the order of users; what room broadcasts go to. */
  get connections(): readonly Connection<User>[] {
    return this.#connections;
  }

  /** @internal Use ChatServer's handlers, which also notify the members. */
  _add(user: User): void {
    this.#users.push(user);
    this.#connections.push(user.conn);
    user.room = this;
  }

  /** @internal */
  _remove(user: User): boolean {
    const i = this.#users.indexOf(user);
    if (i < 0) return false;
    this.#users.splice(i, 1);
    this.#connections.splice(i, 1);
    user.room = undefined;
    return true;
  }
}

/** The rooms numbered [startRoom, startRoom + maxRooms). JS thread only. */
export class RoomManager {
  readonly startRoom: number;
  readonly maxRooms: number;
  readonly maxRoomUsers: number;
  readonly #rooms: Room[] = [];

  constructor(startRoom: number, maxRooms: number, maxRoomUsers: number) {
    this.startRoom = startRoom;
    this.maxRooms = maxRooms;
    this.maxRoomUsers = maxRoomUsers;
    for (let i = 0; i < maxRooms; i++) this.#rooms.push(new Room(startRoom + i, maxRoomUsers));
  }

  /** The room with this number, or undefined when it is outside the range. */
  get(number: number): Room | undefined {
    if (!Number.isInteger(number)) return undefined;
    return this.#rooms[number - this.startRoom];
  }

  [Symbol.iterator](): IterableIterator<Room> {
    return this.#rooms.values();
  }
}
