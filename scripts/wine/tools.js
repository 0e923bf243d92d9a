// Shared by scripts/release/build-win.js, scripts/test/win.js,
// scripts/load/bench-win.js and ./host.js: where things live, and getting
// the Linux tools the Windows build and the Wine tests need.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const buildDir = path.join(root, 'build-win');
const prebuildDir = path.join(root, 'prebuilds', 'win32-x64');
// node-gyp-build's prebuild layout: a napi build is picked for any Node version.
const prebuildFile = path.join(prebuildDir, 'iocpnet.napi.node');
const mingwPrefix = 'x86_64-w64-mingw32';
// Windows Node, its Wine prefix and the staged test tree live outside the
// checkout, so that a fresh clone stays clean and repeated runs are fast.
const cacheDir = process.env.IOCPNET_WIN_CACHE
  ? path.resolve(process.env.IOCPNET_WIN_CACHE)
  : path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'iocpnet-win');

/** @param {string} msg */
function log(msg) {
  process.stderr.write(`[win] ${msg}\n`);
}

/**
 * The executable `cmd` on PATH, or null.
 * @param {string} cmd
 */
function which(cmd) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // Not here.
    }
  }
  return null;
}

/**
 * Runs a command (output inherited unless opts say otherwise); throws if it fails.
 * @param {string} cmd
 * @param {readonly string[]} args
 * @param {import('node:child_process').SpawnSyncOptions} [opts]
 */
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
  return r;
}

/** @typedef {{ command: string, package: string, found: () => boolean }} CommandNeed */

let aptUpdated = false;

/**
 * Installs the Debian packages whose commands are missing, when running as
 * root with apt-get; otherwise says what to install and fails.
 * @param {CommandNeed[]} needs
 */
function ensureCommands(needs) {
  const missing = needs.filter((n) => !n.found());
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((n) => n.package))];
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !which('apt-get')) {
    throw new Error(`missing ${missing.map((n) => n.command).join(', ')}: install the Debian/Ubuntu packages ${packages.join(' ')}`);
  }
  log(`installing ${packages.join(' ')} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    run('apt-get', ['update', '-qq'], { env });
    aptUpdated = true;
  }
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { env });
  const still = missing.filter((n) => !n.found());
  if (still.length > 0) throw new Error(`still missing after apt-get: ${still.map((n) => n.command).join(', ')}`);
}

/**
 * @param {string} command
 * @param {string} pkg the Debian package that provides it
 * @returns {CommandNeed}
 */
function commandNeed(command, pkg) {
  return { command, package: pkg, found: () => which(command) !== null };
}

/** The cross compiler and friends. */
function ensureMingw() {
  ensureCommands([
    commandNeed(`${mingwPrefix}-g++-posix`, 'g++-mingw-w64-x86-64-posix'),
    commandNeed(`${mingwPrefix}-gcc-posix`, 'gcc-mingw-w64-x86-64-posix'),
    commandNeed(`${mingwPrefix}-dlltool`, 'binutils-mingw-w64-x86-64'),
    commandNeed(`${mingwPrefix}-objdump`, 'binutils-mingw-w64-x86-64'),
    commandNeed('cmake', 'cmake'),
    commandNeed('make', 'make'),
  ]);
}

/** The 64-bit Wine loader: Debian ships it outside PATH as /usr/lib/wine/wine64. */
function wineLoader() {
  for (const p of ['/usr/lib/wine/wine64', which('wine64'), which('wine')]) {
    if (p && fs.existsSync(p)) return p;
  }
  return null;
}

function wineServer() {
  for (const p of ['/usr/lib/wine/wineserver64', which('wineserver'), '/usr/lib/wine/wineserver']) {
    if (p && fs.existsSync(p)) return p;
  }
  return null;
}

/** Installs Wine when it is missing (see ensureCommands); returns the 64-bit loader. */
function ensureWine() {
  ensureCommands([
    { command: 'wine64', package: 'wine64', found: () => wineLoader() !== null },
    { command: 'wine', package: 'wine', found: () => which('wine') !== null },
  ]);
  const loader = wineLoader();
  if (loader === null) throw new Error('no 64-bit Wine loader after installing wine64');
  return loader;
}

module.exports = {
  root,
  buildDir,
  prebuildDir,
  prebuildFile,
  mingwPrefix,
  cacheDir,
  log,
  which,
  run,
  ensureMingw,
  ensureWine,
  wineLoader,
  wineServer,
};
