import * as fs from 'node:fs';
import * as path from 'node:path';
import { IocpnetError } from '../../server/errors';

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
  sendQueueHighWaterBytes: number;
  sendQueueLowWaterBytes: number;
  maxPendingBytes: number;
  closeTimeoutMs: number;
  reusePort: boolean;
  /** The WebSocket options may be left out: the contract's defaults apply (the backend always passes them). */
  webSocket?: boolean;
  maxUpgradeRequestBytes?: number;
  upgradeTimeoutMs?: number;
  transportDetectMs?: number;
  webSocketOrigins?: readonly string[];
}

export interface Addon {
  /**
   * onEvents gets the batch as the first `length` bytes of `batch`, an
   * ArrayBuffer the addon reuses for the next batch: valid only during the call.
   */
  NativeServer: new (options: NativeOptions, onEvents: (batch: ArrayBuffer | undefined, finished: boolean, length: number) => void) => NativeServerHandle;
  /** The name of the engine the addon was built with (engineName() of its native/ folder). */
  engine: string;
}

let cached: Addon | undefined;
let cachedFile: string | undefined;

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

/** The Node-API version the addon is built for (CMakeLists.txt NAPI_VERSION, package.json binary.napi_versions). */
const ADDON_NAPI_VERSION = 8;

/** Whether this Node's Node-API is new enough, in words that cannot be read as a mismatch. */
function napiNote(): string {
  const have = Number(process.versions.napi);
  return have >= ADDON_NAPI_VERSION
    ? `the addon needs Node-API ${ADDON_NAPI_VERSION} or later, which this Node has`
    : `the addon needs Node-API ${ADDON_NAPI_VERSION} or later: upgrade Node`;
}

/**
 * Loads the native addon: IOCPNET_NATIVE_PATH when set (a .node file, for
 * bundlers and Electron), else what node-gyp-build picks in the package:
 * build/Release (a source build), then prebuilds/<platform>-<arch>
 * (PREBUILDS_ONLY=1 skips build/).
 */
export function loadAddon(): Addon {
  if (cached) return cached;
  const explicit = process.env.IOCPNET_NATIVE_PATH;
  let tried = explicit ? `IOCPNET_NATIVE_PATH=${explicit}` : 'the iocpnet package';
  try {
    if (explicit) {
      const file = path.resolve(explicit);
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      cached = require(file) as Addon;
      cachedFile = file;
    } else {
      const root = packageRoot();
      const prebuilds = `prebuilds/${process.platform}-${process.arch}`;
      tried = process.env.PREBUILDS_ONLY ? `${prebuilds} (PREBUILDS_ONLY is set) in ${root}` : `build/Release and ${prebuilds} in ${root}`;
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const load = require('node-gyp-build') as { (dir: string): unknown; resolve(dir: string): string };
      const file = load.resolve(root);
      cached = load(root) as Addon;
      cachedFile = file;
    }
  } catch (err) {
    // The first line says what failed; the rest is a require stack or a repeat of the folder.
    const reason = (err instanceof Error ? err.message : String(err)).trim().split('\n')[0];
    throw new IocpnetError(
      'ERR_NATIVE_LOAD',
      `iocpnet: no native addon loads for ${process.platform}-${process.arch}, Node ${process.version} ` +
        `with Node-API ${process.versions.napi} (${napiNote()}); tried ${tried}: ${reason}\n` +
        `Fix: run \`npm rebuild iocpnet --build-from-source\` (needs cmake 3.16+ and a C++17 compiler), ` +
        `set IOCPNET_NATIVE_PATH to an iocpnet.node built for this platform, or use createServer({ backend: 'js' }).`,
    );
  }
  return cached;
}

/** The .node file loadAddon() loaded (it loads the addon first), e.g. for child processes that must load the same one. */
export function loadedAddonPath(): string {
  loadAddon();
  return cachedFile as string;
}
