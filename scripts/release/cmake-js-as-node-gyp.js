#!/usr/bin/env node
// Stands in for node-gyp when prebuildify runs it (`prebuildify --node-gyp
// scripts/release/cmake-js-as-node-gyp.js`): prebuildify only knows how to call
// `node-gyp rebuild --target=... --arch=... --release`, and this project builds
// with cmake-js. prebuildify then takes the .node it finds in
// <cwd>/build/<Release|Debug>, strips it and moves it to prebuilds/.
//
// CMake works in build-prebuild/cmake of the package, not in build/, so a
// prebuild never touches the development build or races a build running there.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');

/**
 * @param {string} message
 * @returns {never}
 */
function fail(message) {
  console.error(`cmake-js-as-node-gyp: ${message}`);
  process.exit(1);
}

const [command, ...rest] = process.argv.slice(2);
if (command !== 'rebuild' && command !== 'build') {
  fail(`only "rebuild" and "build" are supported (prebuildify's calls), got ${JSON.stringify(command)}`);
}
/** @param {string} name */
const option = (name) => {
  const hit = rest.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? undefined : hit.slice(name.length + 3);
};
const debug = rest.includes('--debug');

// --target and --devdir name Node headers to download; a Node-API build needs
// none (cmake-js takes them from node-api-headers), so both are ignored.
const arch = option('arch') ?? os.arch();
if (arch !== os.arch()) {
  fail(`cross-compiling to ${arch} on ${os.arch()} is not supported here (win32-x64 has scripts/release/build-win.js)`);
}

const buildDir = path.join(root, 'build-prebuild', 'cmake');
const nodeInclude = path.resolve(path.dirname(process.execPath), '..', 'include', 'node');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
const args = [cmakeJs, command === 'rebuild' ? 'rebuild' : 'compile', '--out', buildDir];
if (debug) args.push('--debug');
if (fs.existsSync(path.join(nodeInclude, 'uv.h'))) args.push(`--CDNODE_INCLUDE_DIR=${nodeInclude}`);

const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);

const flavour = debug ? 'Debug' : 'Release';
const built = path.join(buildDir, flavour, 'iocpnet.node');
if (!fs.existsSync(built)) fail(`cmake-js finished but ${built} is missing`);

// Copy under a temporary name, then rename: a process that has the old file
// loaded keeps its inode, and prebuildify never sees a half-written file.
const outDir = path.join(process.cwd(), 'build', flavour);
fs.mkdirSync(outDir, { recursive: true });
const dest = path.join(outDir, 'iocpnet.node');
const tmp = `${dest}.${process.pid}.tmp`;
fs.copyFileSync(built, tmp);
fs.renameSync(tmp, dest);
