/**
 * Argument checks for the public API: each throws a TypeError or RangeError
 * that names the argument and what it got. Pure functions; any thread.
 */
import { MAX_BODY_SIZE, MAX_PACKET_ID } from '../contract';

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

/** A short description of value for an error message. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'undefined') return String(value);
  return typeof value;
}

/** Checks the packet id and body of a send or broadcast. */
export function checkPacketArgs(packetId: unknown, body: unknown): asserts body is Uint8Array {
  checkInteger('packetId', packetId, 0, MAX_PACKET_ID);
  if (!(body instanceof Uint8Array)) {
    throw new TypeError(`body must be a Uint8Array or Buffer, got ${describe(body)}`);
  }
  if (body.length > MAX_BODY_SIZE) {
    throw new RangeError(`body must be at most ${MAX_BODY_SIZE} bytes, got ${body.length}`);
  }
}
