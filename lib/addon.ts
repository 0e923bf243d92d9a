import * as fs from 'node:fs';
import * as path from 'node:path';
import { IocpnetError } from './errors';

/** The NativeServer class the addon exports (binding/native_server.h). */
export interface NativeServerHandle {
  listen(ip: string, port: number): number;
  submit(batch: Uint8Array, length: number): void;
  shutdown(): void;
  stats(): Float64Array;
}

export interface NativeOptions {
  ioThreads: number;
  maxConnections: number;
  maxPacketSize: number;
  idleTimeoutMs: number;
  maxSendQueueBytes: number;
  maxPendingBytes: number;
  closeTimeoutMs: number;
}

export interface Addon {
  NativeServer: new (
    options: NativeOptions,
    onEvents: (batch: ArrayBuffer | undefined, finished: boolean) => void,
  ) => NativeServerHandle;
  /** 'libuv' or 'iocp'. */
  engine: string;
}

let cached: Addon | undefined;

/** The package root: the folder of the package.json named iocpnet above this file. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'iocpnet') return dir;
      } catch {
        // Not ours; keep looking.
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new IocpnetError('ERR_NATIVE_LOAD', `cannot find the iocpnet package root above ${__dirname}`);
    dir = parent;
  }
}

/**
 * Loads the native addon: IOCPNET_NATIVE_PATH when set (a .node file, for
 * bundlers and Electron), else build/Release, then prebuilds/<platform>-<arch>.
 */
export function loadAddon(): Addon {
  if (cached) return cached;
  const explicit = process.env.IOCPNET_NATIVE_PATH;
  try {
    if (explicit) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      cached = require(path.resolve(explicit)) as Addon;
    } else {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const load = require('node-gyp-build') as (dir: string) => unknown;
      cached = load(packageRoot()) as Addon;
    }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new IocpnetError(
      'ERR_NATIVE_LOAD',
      `iocpnet: no native addon loads for ${process.platform}-${process.arch} (Node-API ${process.versions.napi}, ` +
        `Node ${process.version}): ${reason}\n` +
        `Fix: run \`npm rebuild iocpnet --build-from-source\` (needs cmake and a C++17 compiler), ` +
        `set IOCPNET_NATIVE_PATH to a built iocpnet.node, or use createServer({ backend: 'js' }).`,
    );
  }
  return cached;
}
