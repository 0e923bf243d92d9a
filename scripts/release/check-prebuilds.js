#!/usr/bin/env node
// `prepublishOnly` (npm publish runs it first; also `npm run check:prebuilds`):
// refuses to go on unless the prebuilt binaries of every platform the package
// promises are in prebuilds/ and load. Without them every user would need
// cmake and a compiler.
//
//   linux-x64: loaded by this machine's Node in a child process (needs a linux-x64 host)
//   win32-x64: loaded by Windows Node under Wine (scripts/wine/host.js)
//
// Exit 0 when all load, 1 with what is missing and how to make it otherwise.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const REQUIRED = ['linux-x64', 'win32-x64'];

/**
 * The one .node file in prebuilds/<tuple>, or a reason why there is none.
 * @param {string} tuple
 * @returns {{ file: string, problem?: undefined } | { file?: undefined, problem: string }}
 */
function findPrebuild(tuple) {
  const dir = path.join(root, 'prebuilds', tuple);
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.node')) : [];
  if (files.length === 0) return { problem: `prebuilds/${tuple} holds no .node file` };
  if (files.length > 1) return { problem: `prebuilds/${tuple} holds ${files.length} .node files (${files.join(', ')}); a stale one would ship` };
  return { file: path.join(dir, files[0]) };
}

// What the loaded addon must export; lib/backends/native/addon.ts uses these.
const PROBE = `const a = require(process.argv[process.argv.length - 1]);
if (typeof a.NativeServer !== 'function') { console.log('no NativeServer export'); process.exit(3); }
console.log('iocpnet-prebuild-loads ' + (a.engine || ''));`;

/**
 * Why the binary does not load on this machine's Node, or undefined when it does.
 * @param {string} file
 */
function loadOnLinux(file) {
  if (`${process.platform}-${process.arch}` !== 'linux-x64')
    return `cannot load a linux-x64 binary on ${process.platform}-${process.arch}; check on a linux-x64 machine`;
  const r = spawnSync(process.execPath, ['-e', PROBE, file], { encoding: 'utf8', timeout: 30000 });
  if (r.status === 0 && /iocpnet-prebuild-loads/.test(r.stdout)) return undefined;
  return `does not load: ${(r.stderr || r.stdout || `exit ${r.status ?? r.signal}`).trim().split('\n')[0]}`;
}

/**
 * Why the binary does not load in Windows Node under Wine, or undefined when it does.
 * @param {string} file
 */
function loadUnderWine(file) {
  let host;
  try {
    host = require('../wine/host');
  } catch (err) {
    return `cannot start Wine: ${err instanceof Error ? err.message : String(err)}`;
  }
  const dir = path.join(host.stageDir, 'prebuild-check');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'probe.js'), PROBE);
  fs.copyFileSync(file, path.join(dir, 'iocpnet.node'));
  const log = path.join(dir, 'probe.log');
  // Windows Node under Wine resolves an absolute Linux path through the Z: drive.
  const cmd = host.windowsCommand(path.join('prebuild-check', 'probe.js'), [path.join(dir, 'iocpnet.node')]);
  const fd = fs.openSync(log, 'w');
  const r = spawnSync(cmd.command, cmd.args, { cwd: cmd.cwd, env: cmd.env, stdio: ['ignore', fd, fd], timeout: 120000 });
  fs.closeSync(fd);
  host.stopWine();
  const text = fs.readFileSync(log, 'utf8');
  if (r.status === 0 && /iocpnet-prebuild-loads/.test(text)) return undefined;
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const why = lines.find((l) => /Error/.test(l)) ?? lines[lines.length - 1] ?? 'no output';
  return `does not load under Wine (exit ${r.status ?? r.signal}): ${why}`;
}

function main() {
  const problems = [];
  for (const tuple of REQUIRED) {
    const found = findPrebuild(tuple);
    if (found.file === undefined) {
      problems.push(found.problem);
      continue;
    }
    const problem = tuple === 'win32-x64' ? loadUnderWine(found.file) : loadOnLinux(found.file);
    if (problem) problems.push(`${path.relative(root, found.file)} ${problem}`);
    else console.log(`check-prebuilds: ${path.relative(root, found.file)} loads`);
  }
  if (problems.length > 0) {
    console.error('check-prebuilds: refusing to publish:');
    for (const p of problems) console.error(`  - ${p}`);
    console.error('Run `npm run prebuild` (both platforms; needs mingw-w64 for Windows), then publish again.');
    process.exit(1);
  }
}

main();
