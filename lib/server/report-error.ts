import type { EventEmitter } from 'node:events';

/**
 * Hands err to emitter's 'error' listeners, or prints it when there are
 * none, so that an error nobody listens for never throws (an EventEmitter
 * throws an unhandled 'error'). A listener that throws is printed too, never
 * rethrown into the code that reported. JS thread only.
 */
export function reportError(emitter: EventEmitter, err: Error): void {
  if (emitter.listenerCount('error') === 0) {
    console.error(err);
    return;
  }
  try {
    emitter.emit('error', err);
  } catch (inner) {
    console.error(inner);
  }
}
