#!/usr/bin/env node
// `npm run prebuild`: the binaries that ship in the npm package.
//
//   prebuilds/<platform>-<arch>/iocpnet.uv1.glibc.node   this machine, by prebuildify
//   prebuilds/win32-x64/...                              scripts/release/build-win.js (mingw-w64)
//
// prebuildify runs with --napi (one binary for every Node with Node-API 8),
// --strip, and cmake-js behind scripts/release/cmake-js-as-node-gyp.js. The uv and
// libc tags keep node-gyp-build from loading the binary where it cannot work:
// the libuv engine calls Node's own libuv, and a glibc build does not load on
// musl; there the install falls back to a source build.
//
// Options: --host-only skips the Windows cross build.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const hostOnly = process.argv.includes('--host-only');
const tuple = `${process.platform}-${process.arch}`;
const hostDir = path.join(root, 'prebuilds', tuple);

/**
 * Runs node with args; exits if it fails, else returns the seconds it took.
 * @param {string} label
 * @param {string[]} args
 * @param {import('node:child_process').SpawnSyncOptions} [options]
 */
function run(label, args, options = {}) {
  const started = Date.now();
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', ...options });
  if (r.status !== 0) {
    console.error(`prebuild: ${label} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
  return (Date.now() - started) / 1000;
}

// A stale binary from an earlier run (other tags, other name) must not ship.
fs.rmSync(hostDir, { recursive: true, force: true });

// prebuildify works in a staging folder: it moves whatever .node it finds in
// <cwd>/build/Release, and the development build in build/ must stay put.
const stage = path.join(root, 'build-prebuild', 'stage');
fs.rmSync(stage, { recursive: true, force: true });
fs.mkdirSync(stage, { recursive: true });

const seconds = run('prebuildify', [
  require.resolve('prebuildify/bin.js', { paths: [root] }),
  '--napi',
  '--strip',
  '--tag-uv',
  '--tag-libc',
  '--name=iocpnet',
  `--node-gyp=${path.join(__dirname, 'cmake-js-as-node-gyp.js')}`,
  `--cwd=${stage}`,
  `--out=${root}`,
]);
fs.rmSync(stage, { recursive: true, force: true });

const built = fs.readdirSync(hostDir).filter((f) => f.endsWith('.node'));
if (built.length !== 1) {
  console.error(`prebuild: expected one .node in ${hostDir}, found ${JSON.stringify(built)}`);
  process.exit(1);
}
console.log(`prebuild: ${tuple}/${built[0]} (${fs.statSync(path.join(hostDir, built[0])).size} bytes, ${seconds.toFixed(1)} s)`);

// The cross build checks (and as root installs) its own toolchain; a failure
// fails the prebuild, since a package without its Windows binary must not ship
// by accident. --host-only is the way to leave it out.
const winScript = path.join(__dirname, 'build-win.js');
if (hostOnly || tuple === 'win32-x64') {
  // Nothing more to build.
} else if (!fs.existsSync(winScript)) {
  console.log('prebuild: win32-x64 skipped: scripts/release/build-win.js is not in this checkout');
} else {
  const winSeconds = run('scripts/release/build-win.js', [winScript]);
  console.log(`prebuild: win32-x64 built in ${winSeconds.toFixed(1)} s`);
}
