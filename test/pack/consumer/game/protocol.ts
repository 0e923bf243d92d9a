// The game's packets: ids of its own (3001..3007, clear of the engine's 1..99
// and the chat's 100..1000) and their bodies as packed little-endian structs.
import { Field, defineStruct } from 'iocpnet';

export const GameId = {
  /** client to server: JOIN { name } */
  JOIN: 3001,
  /** server to client: WELCOME { playerId, players } */
  WELCOME: 3002,
  /** server to client: PLAYER_JOINED { playerId, name, x, y }, one per player already in and then one per newcomer */
  PLAYER_JOINED: 3003,
  /** client to server: MOVE { x, y } */
  MOVE: 3004,
  /** server to every other player: POSITION { playerId, x, y } */
  POSITION: 3005,
  /** client to server: LEAVE, no body */
  LEAVE: 3006,
  /** server to every other player: PLAYER_LEFT { playerId } */
  PLAYER_LEFT: 3007,
} as const;

export const Join = defineStruct('JOIN', [Field.char('name', 16)]);
export const Welcome = defineStruct('WELCOME', [Field.u32('playerId'), Field.u16('players')]);
export const PlayerJoined = defineStruct('PLAYER_JOINED', [Field.u32('playerId'), Field.char('name', 16), Field.i32('x'), Field.i32('y')]);
export const Move = defineStruct('MOVE', [Field.i32('x'), Field.i32('y')]);
export const Position = defineStruct('POSITION', [Field.u32('playerId'), Field.i32('x'), Field.i32('y')]);
export const PlayerLeft = defineStruct('PLAYER_LEFT', [Field.u32('playerId')]);
