#!/usr/bin/env node
// The package's install script.
//
// - An installed package uses the binary that node-gyp-build picks (a
//   prebuild from prebuilds/, or an earlier source build) when it loads in a
//   child process (node-gyp-build-test): no compiler, cmake or Python needed.
// - Otherwise, in a git checkout, or when asked (`--build-from-source`, or
//   IOCPNET_BUILD_FROM_SOURCE=1) it builds from source with cmake-js.
//
// `--dry-run` prints the decision and exits.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const dryRun = process.argv.includes('--dry-run');
const target = `${process.platform}-${process.arch} (Node ${process.version}, Node-API ${process.versions.napi})`;

/** npm turns `npm install --build-from-source[=iocpnet,...]` into npm_config_build_from_source. */
function buildFromSourceRequested() {
  const own = process.env.IOCPNET_BUILD_FROM_SOURCE;
  if (own && own !== '0' && own !== 'false') return true;
  const v = process.env.npm_config_build_from_source;
  if (!v || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1') return true;
  return v
    .split(',')
    .map((s) => s.trim())
    .includes('iocpnet');
}

/** A development checkout builds from its sources so the build follows them. */
function isCheckout() {
  return fs.existsSync(path.join(root, '.git'));
}

/** Loads the binary node-gyp-build would pick, in a child process so a bad binary cannot crash the install. */
function testBinary() {
  let testScript;
  try {
    testScript = require.resolve('node-gyp-build/build-test.js', { paths: [root] });
  } catch {
    return { ok: false, why: 'node-gyp-build is not installed' };
  }
  const r = spawnSync(process.execPath, [testScript], { cwd: root, encoding: 'utf8', timeout: 60000 });
  if (r.status === 0) {
    let file = 'a native build';
    try {
      const nodeGypBuild = /** @type {{ resolve(dir: string): string }} */ (require(require.resolve('node-gyp-build', { paths: [root] })));
      file = path.relative(root, nodeGypBuild.resolve(root));
    } catch {
      // The binary loaded; only its name is unknown.
    }
    return { ok: true, why: file };
  }
  // Node prints the failing source line first; the error message is the useful part.
  const lines = `${r.stderr ?? ''}`.split('\n');
  const message = lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.find((l) => /\S/.test(l));
  return { ok: false, why: (message ?? `exit ${r.status ?? r.signal}`).trim() };
}

function decide() {
  if (buildFromSourceRequested()) return { action: 'source', why: 'a source build was requested' };
  if (isCheckout()) return { action: 'source', why: 'development checkout' };
  const test = testBinary();
  if (test.ok) return { action: 'prebuilt', why: test.why };
  return { action: 'source', why: `no prebuilt binary loads (${test.why})`, noPrebuild: true };
}

function missingBuildDependencies() {
  return ['cmake-js', 'node-addon-api'].filter((name) => {
    try {
      require.resolve(`${name}/package.json`, { paths: [root] });
      return false;
    } catch {
      return true;
    }
  });
}

const decision = decide();
if (dryRun) {
  console.log(`${decision.action}: ${decision.why}`);
  process.exit(0);
}
if (decision.action === 'prebuilt') {
  console.log(`iocpnet: using ${decision.why} for ${target}`);
  process.exit(0);
}

console.log(`iocpnet: building the native addon from source for ${target}: ${decision.why}`);
const missing = missingBuildDependencies();
if (missing.length > 0) {
  console.error(
    `iocpnet: cannot build from source: ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not installed ` +
      '(were optional dependencies omitted?). Install them, or use the pure-JS backend: ' +
      "npm install --ignore-scripts, then createServer({ backend: 'js' }).",
  );
  process.exit(1);
}
const r = spawnSync(process.execPath, [path.join(__dirname, 'build-native.js')], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    (decision.noPrebuild
      ? `iocpnet: there is no prebuilt binary for ${target}, and the source build failed (see above).\n`
      : 'iocpnet: the source build failed (see above).\n') +
      'Install the build tools, then run `npm rebuild iocpnet`; ' +
      "or install with --ignore-scripts and use createServer({ backend: 'js' }).",
  );
  process.exit(r.status || 1);
}
