import { hostname } from 'node:os';
import { checkInteger, describe } from '../server/validate';

/** How a chat server joins a cluster on Redis (docs/CLUSTER.md). */
export interface ClusterOptions {
  /** redis://[user:password@]host[:port][/db] or rediss://... */
  redis: string;
  /** A node that stops renewing its lease is declared dead within this many ms. Default 5000. */
  leaseMs?: number;
  /** The prefix of every key, so that several clusters share one Redis. Default 'iocpnet:'. */
  prefix?: string;
  /** This node's name, unique in the cluster. Default `<hostname>:<pid>`. */
  nodeId?: string;
  /** Chat bytes held for Redis while it does not answer; past it chats are refused. Default 8 MiB. */
  maxBufferBytes?: number;
}

export interface ResolvedClusterOptions {
  redis: string;
  leaseMs: number;
  prefix: string;
  nodeId: string;
  maxBufferBytes: number;
}

/** Ranges and defaults of the cluster's integer options. */
export const CLUSTER_OPTIONS = {
  leaseMs: { min: 1000, max: 600_000, default: 5000 },
  maxBufferBytes: { min: 64 * 1024, max: 1024 * 1024 * 1024, default: 8 * 1024 * 1024 },
} as const;

const KEYS = new Set(['redis', 'leaseMs', 'prefix', 'nodeId', 'maxBufferBytes']);
const PREFIX = /^[\x21-\x7e]{1,100}$/;
const NODE_ID = /^[A-Za-z0-9._:-]{1,100}$/;

function checkString(name: string, value: unknown, pattern: RegExp, what: string): string {
  if (typeof value !== 'string') throw new TypeError(`cluster.${name} must be a string, got ${describe(value)}`);
  if (!pattern.test(value)) throw new RangeError(`cluster.${name} must be ${what}, got ${JSON.stringify(value)}`);
  return value;
}

function checkRedisUrl(value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`cluster.redis must be a redis:// URL string, got ${describe(value)}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RangeError(`cluster.redis must be a redis://HOST[:PORT][/DB] URL, got ${JSON.stringify(value)}`);
  }
  if ((url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
    throw new RangeError(`cluster.redis must be a redis://HOST[:PORT][/DB] URL, got ${JSON.stringify(value)}`);
  }
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d{1,5}$/.test(url.pathname)) {
    throw new RangeError(`cluster.redis: the database must be a number (redis://HOST:PORT/DB), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Validates cluster options (a TypeError or RangeError naming the option) and fills in defaults. */
export function resolveClusterOptions(options: unknown): ResolvedClusterOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`cluster must be an object, got ${describe(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KEYS.has(key)) throw new TypeError(`unknown cluster option '${key}'`);
  }
  const redis = checkRedisUrl(o.redis);
  const leaseMs =
    o.leaseMs === undefined
      ? CLUSTER_OPTIONS.leaseMs.default
      : checkInteger('cluster.leaseMs', o.leaseMs, CLUSTER_OPTIONS.leaseMs.min, CLUSTER_OPTIONS.leaseMs.max);
  const maxBufferBytes =
    o.maxBufferBytes === undefined
      ? CLUSTER_OPTIONS.maxBufferBytes.default
      : checkInteger('cluster.maxBufferBytes', o.maxBufferBytes, CLUSTER_OPTIONS.maxBufferBytes.min, CLUSTER_OPTIONS.maxBufferBytes.max);
  const prefix = o.prefix === undefined ? 'iocpnet:' : checkString('prefix', o.prefix, PREFIX, '1..100 printable ASCII characters without spaces');
  const nodeId =
    o.nodeId === undefined
      ? `${hostname()
          .replace(/[^A-Za-z0-9._-]/g, '_')
          .slice(0, 80)}:${process.pid}`
      : checkString('nodeId', o.nodeId, NODE_ID, '1..100 characters of A-Z a-z 0-9 . _ : -');
  return { redis, leaseMs, prefix, nodeId, maxBufferBytes };
}
