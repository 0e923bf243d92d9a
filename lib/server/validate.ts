/**
 * Argument checks for the public API: each throws a TypeError or RangeError
 * that names the argument and what it got. Pure functions; any thread.
 */
import { FIRST_APP_PACKET_ID, MAX_BODY_SIZE, MAX_PACKET_ID } from '../contract';

/** Throws a TypeError or RangeError naming `name` unless value is an integer in [min, max]. */
export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer, got ${describe(value)}`);
  }
  if (value < min || value > max) {
    throw new RangeError(`${name} must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

/** True for a promise or any other object with a then() method, as await treats it. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** A short description of value for an error message. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'undefined') return String(value);
  return typeof value;
}

/**
 * Throws unless packetId is an application packet id: ids below
 * FIRST_APP_PACKET_ID belong to the engine (PING, PONG, DISCONNECT_NOTIFY),
 * which a handler must not be able to send or route.
 */
export function checkPacketId(packetId: unknown, name = 'packetId'): number {
  if (typeof packetId !== 'number' || !Number.isInteger(packetId)) {
    throw new TypeError(`${name} must be an integer, got ${describe(packetId)}`);
  }
  if (packetId < FIRST_APP_PACKET_ID || packetId > MAX_PACKET_ID) {
    throw new RangeError(
      `${name} must be between ${FIRST_APP_PACKET_ID} and ${MAX_PACKET_ID} (ids 0..${FIRST_APP_PACKET_ID - 1} are reserved for the engine), got ${packetId}`,
    );
  }
  return packetId;
}

/** Checks the packet id and body of a send or broadcast. */
export function checkPacketArgs(packetId: unknown, body: unknown): asserts body is Uint8Array {
  checkPacketId(packetId);
  if (!(body instanceof Uint8Array)) {
    throw new TypeError(`body must be a Uint8Array or Buffer, got ${describe(body)}`);
  }
  if (body.length > MAX_BODY_SIZE) {
    throw new RangeError(`body must be at most ${MAX_BODY_SIZE} bytes, got ${body.length}`);
  }
}
