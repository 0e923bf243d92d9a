/**
 * The packets of the lobby game (examples/lobby-game.ts), shared by its
 * server and its client (examples/lobby-client.ts). Bodies are packed
 * little-endian structs; ids 3001..3006 stay clear of the engine's 1..99.
 * In an application, import from 'iocpnet' instead of '../lib/index'.
 */
import { Field, defineStruct } from '../lib/index';

export const LobbyPacketId = {
  /** client → server: JoinRequest */
  JOIN_REQUEST: 3001,
  /** server → client: JoinResponse */
  JOIN_RESPONSE: 3002,
  /** server → client: PlayerJoined, one per player already there on joining, then one per newcomer */
  PLAYER_JOINED: 3003,
  /** client → server: Move, once joined */
  MOVE: 3004,
  /** server → every player: Position, after each accepted Move */
  POSITION: 3005,
  /** server → every player: PlayerLeft */
  PLAYER_LEFT: 3006,
} as const;

/** The Result of a JoinResponse. */
export const JoinResult = { OK: 0, ALREADY_JOINED: 1, LOBBY_FULL: 2, BAD_NAME: 3 } as const;

/** Bytes of a player's name on the wire (UTF-8, NUL-padded). */
export const NAME_BYTES = 16;

export const JoinRequest = defineStruct('JOIN_REQUEST', [Field.char('Name', NAME_BYTES)]);
export const JoinResponse = defineStruct('JOIN_RESPONSE', [Field.u16('Result'), Field.u32('PlayerId')]);
export const PlayerJoined = defineStruct('PLAYER_JOINED', [Field.u32('PlayerId'), Field.char('Name', NAME_BYTES), Field.i32('x'), Field.i32('y')]);
export const Move = defineStruct('MOVE', [Field.i32('x'), Field.i32('y')]);
export const Position = defineStruct('POSITION', [Field.u32('PlayerId'), Field.i32('x'), Field.i32('y')]);
export const PlayerLeft = defineStruct('PLAYER_LEFT', [Field.u32('PlayerId')]);
