import type { Buckets } from '../http/buckets';
import type { Server } from '../server/server';
import { ChatPacketId, ChatResult, RoomLeaveUserNotify, RoomNewUserNotify } from './packets';
import type { Room } from './room-manager';
import type { User } from './user-manager';

/**
 * What an adapter decided about a room enter. On NONE the chat server admits
 * the user to its local room and sends the responses; rival and members,
 * when given, are the room's members on every node (oldest first, the
 * newcomer last), else the local room's are used.
 */
export interface EnterOutcome {
  result: number;
  rival?: Uint8Array;
  members?: readonly Uint8Array[];
}

/** What the chat server offers its adapter. JS thread only. */
export interface ChatAdapterHost {
  /** Sends a packet to this node's members of room number (nothing when it has none). */
  toRoom(room: number, packetId: number, body: Uint8Array): void;
  /** Closes the connection of the user logged in here with this id, if any (DISCONNECT_NOTIFY(KICKED)). */
  kick(userId: string): void;
  /** Closes the connections of every user logged in here. */
  kickAll(): void;
  /** Reports an error on the server's 'error' event. */
  report(err: Error): void;
}

/**
 * The seam between the chat protocol and where its shared state lives: the
 * users and rooms of one process (LocalChatAdapter) or of a cluster
 * (lib/cluster). The chat server does the local checks and the replies; the
 * adapter decides what needs the other nodes and tells them. JS thread
 * only.
 */
export interface ChatAdapter {
  /** Called by listen() before the port is bound. */
  start(): Promise<void>;
  /** Claims userId for a login that passed the local checks: NONE, or the refusal's result code. */
  claim(userId: string): number | Promise<number>;
  /**
   * Decides an enter of user into room (the local checks passed). Calls done
   * exactly once, synchronously at the point where the user joins the
   * room's order of events; a returned promise settles after done.
   */
  enter(user: User, room: Room, done: (outcome: EnterOutcome) => void): void | Promise<void>;
  /** The user has been taken out of its local room (a leave or a disconnect). */
  left(user: User, room: Room): void;
  /** The id is free again: a logout, or a claim that was given up. */
  release(userId: string): void;
  /** A chat accepted from user in room; false when it cannot be relayed now (refused with ROOM_TOO_MANY_PACKET). */
  chat(user: User, room: Room, message: Uint8Array): boolean;
  /** Called by close() after the server has closed. */
  close(): Promise<void>;
  /** The adapter's counters, if it has any. */
  stats(): Readonly<Record<string, number>> | undefined;
  /** The round trips to the shared state (Redis), in seconds, if there is one. */
  readonly roundTrip?: Buckets;
}

/** The users and rooms of this process only: what a single chat server does. JS thread only. */
export class LocalChatAdapter implements ChatAdapter {
  readonly #server: Server<User>;

  constructor(server: Server<User>) {
    this.#server = server;
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  claim(): number {
    return ChatResult.NONE;
  }

  enter(user: User, room: Room, done: (outcome: EnterOutcome) => void): void {
    if (room.isFull) return done({ result: ChatResult.ENTER_ROOM_FULL_USER });
    // The members are told before the newcomer is added, so the broadcast needs no filtered copy of the list.
    if (room.count > 0) this.#server.broadcast(room.connections, ChatPacketId.ROOM_NEW_USER_NOTIFY, RoomNewUserNotify.encode({ UserID: user.idBytes }));
    done({ result: ChatResult.NONE });
  }

  left(user: User, room: Room): void {
    if (room.count > 0) this.#server.broadcast(room.connections, ChatPacketId.ROOM_LEAVE_USER_NOTIFY, RoomLeaveUserNotify.encode({ UserID: user.idBytes }));
  }

  release(): void {}

  chat(): boolean {
    return true;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  stats(): undefined {
    return undefined;
  }
}
