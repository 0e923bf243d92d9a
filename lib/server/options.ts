import * as os from 'node:os';
import { ENGINE_FLAGS, ENGINE_OPTIONS, WEB_SOCKET, type EngineFlagName, type EngineOptionName } from '../contract';
import type { ResolvedServerOptions, ServerOptions } from './types';
import { checkInteger, describe } from './validate';

/** Default IO threads: one core stays free for the JS thread. */
export function defaultIoThreads(): number {
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, cores - 1);
}

export const DEFAULT_OPTIONS: Readonly<Omit<ResolvedServerOptions, 'ioThreads'>> = {
  backend: 'native',
  maxConnections: ENGINE_OPTIONS.maxConnections.default,
  maxPacketSize: ENGINE_OPTIONS.maxPacketSize.default,
  idleTimeoutMs: ENGINE_OPTIONS.idleTimeoutMs.default,
  maxSendQueueBytes: ENGINE_OPTIONS.maxSendQueueBytes.default,
  sendQueueHighWaterBytes: ENGINE_OPTIONS.sendQueueHighWaterBytes.default,
  sendQueueLowWaterBytes: ENGINE_OPTIONS.sendQueueLowWaterBytes.default,
  maxPendingBytes: ENGINE_OPTIONS.maxPendingBytes.default,
  closeTimeoutMs: ENGINE_OPTIONS.closeTimeoutMs.default,
  reusePort: ENGINE_FLAGS.reusePort.default,
  webSocket: ENGINE_FLAGS.webSocket.default,
  webSocketOrigins: Object.freeze([]),
  maxUpgradeRequestBytes: ENGINE_OPTIONS.maxUpgradeRequestBytes.default,
  upgradeTimeoutMs: ENGINE_OPTIONS.upgradeTimeoutMs.default,
  transportDetectMs: ENGINE_OPTIONS.transportDetectMs.default,
};

const KNOWN_KEYS = new Set<string>(['backend', 'webSocketOrigins', ...Object.keys(ENGINE_OPTIONS), ...Object.keys(ENGINE_FLAGS)]);

/** Validates server options and fills in defaults. */
export function resolveServerOptions(options: ServerOptions | undefined): ResolvedServerOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_KEYS.has(key)) throw new TypeError(`unknown option '${key}'`);
  }
  const o = { ...DEFAULT_OPTIONS, ioThreads: defaultIoThreads() };
  const pick = <K extends keyof ServerOptions>(key: K): ServerOptions[K] | undefined => (options[key] === undefined ? undefined : options[key]);

  const backend = pick('backend');
  if (backend !== undefined) {
    if (backend !== 'native' && backend !== 'js') {
      throw new TypeError(`backend must be 'native' or 'js', got ${describe(backend)}`);
    }
    o.backend = backend;
  }
  for (const key of Object.keys(ENGINE_OPTIONS) as EngineOptionName[]) {
    const v = pick(key);
    if (v !== undefined) o[key] = checkInteger(key, v, ENGINE_OPTIONS[key].min, ENGINE_OPTIONS[key].max);
  }
  for (const key of Object.keys(ENGINE_FLAGS) as EngineFlagName[]) {
    const v = pick(key);
    if (v !== undefined) {
      if (typeof v !== 'boolean') throw new TypeError(`${key} must be a boolean, got ${describe(v)}`);
      o[key] = v;
    }
  }
  resolveWaterMarks(o, pick('sendQueueHighWaterBytes') !== undefined, pick('sendQueueLowWaterBytes') !== undefined);
  const origins = pick('webSocketOrigins');
  if (origins !== undefined) o.webSocketOrigins = checkOrigins(origins);
  return o;
}

/** A printable-ASCII origin: what a browser's Origin header can hold. */
const ORIGIN_TEXT = /^[\x21-\x7e]+$/;

/** Validates webSocketOrigins; returns a frozen copy. */
function checkOrigins(origins: unknown): readonly string[] {
  if (!Array.isArray(origins)) throw new TypeError(`webSocketOrigins must be an array of strings, got ${describe(origins)}`);
  if (origins.length > WEB_SOCKET.maxOrigins) {
    throw new RangeError(`webSocketOrigins must hold at most ${WEB_SOCKET.maxOrigins} origins, got ${origins.length}`);
  }
  const out: string[] = [];
  for (let i = 0; i < origins.length; i++) {
    const origin: unknown = origins[i];
    if (typeof origin !== 'string') throw new TypeError(`webSocketOrigins[${i}] must be a string, got ${describe(origin)}`);
    if (origin.length === 0 || origin.length > WEB_SOCKET.maxOriginLength) {
      throw new RangeError(`webSocketOrigins[${i}] must be 1 to ${WEB_SOCKET.maxOriginLength} characters long, got ${origin.length}`);
    }
    if (!ORIGIN_TEXT.test(origin)) {
      throw new RangeError(`webSocketOrigins[${i}] must be printable ASCII without spaces (an origin such as 'https://example.com'), got ${describe(origin)}`);
    }
    out.push(origin);
  }
  return Object.freeze(out);
}

/**
 * The flow-control marks must lie below maxSendQueueBytes, low under high.
 * A mark left out follows maxSendQueueBytes: high is a quarter of it (the
 * contract default at its default), low a quarter of high.
 */
function resolveWaterMarks(o: ResolvedServerOptions, highGiven: boolean, lowGiven: boolean): void {
  if (!highGiven) o.sendQueueHighWaterBytes = Math.max(1, Math.floor(o.maxSendQueueBytes / 4));
  if (!lowGiven) o.sendQueueLowWaterBytes = Math.floor(o.sendQueueHighWaterBytes / 4);
  if (o.sendQueueHighWaterBytes >= o.maxSendQueueBytes) {
    throw new RangeError(`sendQueueHighWaterBytes must be below maxSendQueueBytes (${o.maxSendQueueBytes}), got ${o.sendQueueHighWaterBytes}`);
  }
  if (o.sendQueueLowWaterBytes >= o.sendQueueHighWaterBytes) {
    throw new RangeError(`sendQueueLowWaterBytes must be below sendQueueHighWaterBytes (${o.sendQueueHighWaterBytes}), got ${o.sendQueueLowWaterBytes}`);
  }
}
