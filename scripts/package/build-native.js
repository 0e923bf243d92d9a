#!/usr/bin/env node
// Builds the addon with cmake-js, offline: Node-API headers come from the
// node-api-headers package and uv.h from the running Node's include folder.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const args = process.argv.slice(2);
const debug = args.includes('--debug');

// Node's headers sit in <prefix>/include/node next to <prefix>/bin/node.
const nodeInclude = path.resolve(path.dirname(process.execPath), '..', 'include', 'node');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
const cmakeArgs = [cmakeJs, 'compile', '--out', 'build'];
if (debug) cmakeArgs.push('--debug');
if (fs.existsSync(path.join(nodeInclude, 'uv.h'))) cmakeArgs.push(`--CDNODE_INCLUDE_DIR=${nodeInclude}`);
for (const a of args) if (a.startsWith('--CD')) cmakeArgs.push(a);

const r = spawnSync(process.execPath, cmakeArgs, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    '\niocpnet: building the native addon failed. It needs cmake (3.16+), a C++17 compiler and make or ninja;\n' +
      "the pure-JS backend (createServer({ backend: 'js' })) works without it.",
  );
  process.exit(r.status ?? 1);
}
