import * as os from 'node:os';
import { ENGINE_FLAGS, ENGINE_OPTIONS, type EngineFlagName, type EngineOptionName } from '../contract';
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
};

const KNOWN_KEYS = new Set<string>(['backend', ...Object.keys(ENGINE_OPTIONS), ...Object.keys(ENGINE_FLAGS)]);

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
  return o;
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
