#!/usr/bin/env node
// `npm run test:pack`: the published package, as a user gets it.
//
//  1. The host prebuild (made by scripts/release/prebuild.js when missing or older
//     than the sources) and `npm pack`; the tarball's file list.
//  2. Install into a temporary project with a PATH that holds node, npm, npx
//     and basic shell tools but no compiler, cmake, make, ninja or Python:
//     require(), import, the .d.ts/.d.mts types, and `npx iocpnet chat-server
//     --port 0` with a login + room enter + chat over TCP; an empty TypeScript
//     project (strict, skipLibCheck false) that builds the game of
//     test/pack/consumer/game and runs its server and client on both backends.
//  3. The same tarball without its prebuilds: with that PATH the install must
//     fail with a clear message; with the normal PATH it builds from source.
//  4. `npm rebuild iocpnet --build-from-source` and PREBUILDS_ONLY=1.
//
// Figures (tarball size, install time, installed tree size, source build
// time) are printed; none is asserted. IOCPNET_KEEP_PACK_TMP=1 keeps the
// temporary folder.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { writeConsumerTsconfig } = require('./consumer-tsconfig');

const root = path.resolve(__dirname, '..', '..');
const tuple = `${process.platform}-${process.arch}`;
const packDir = path.join(root, 'test', 'pack');
const results = { passed: 0, failed: 0, skipped: 0 };
/** @type {[string, string | number][]} */
const figures = [];

/**
 * @typedef {object} RunResult
 * @property {number | null} status
 * @property {NodeJS.Signals | null} signal
 * @property {Error | undefined} error
 * @property {string} stdout
 * @property {string} output stdout, then stderr
 * @property {number} seconds
 */

/** @param {string} line */
function log(line) {
  console.log(line);
}

/** @param {string} what */
function pass(what) {
  results.passed++;
  log(`  ok    ${what}`);
}

/**
 * @param {string} what
 * @param {string} [detail]
 */
function fail(what, detail) {
  results.failed++;
  log(`  FAIL  ${what}${detail ? `\n        ${detail.trim().split('\n').join('\n        ')}` : ''}`);
}

/**
 * @param {string} what
 * @param {string} why
 */
function skip(what, why) {
  results.skipped++;
  log(`  skip  ${what}: ${why}`);
}

/**
 * Passes or fails what by ok; returns ok.
 * @param {string} what
 * @param {boolean} ok
 * @param {string} [detail] shown when it fails
 */
function check(what, ok, detail) {
  if (ok) pass(what);
  else fail(what, detail);
  return ok;
}

/**
 * @param {string} name
 * @param {string | number} value
 */
function figure(name, value) {
  figures.push([name, value]);
  log(`  --    ${name}: ${value}`);
}

/**
 * @param {string | undefined} text
 * @param {number} [lines]
 */
function tail(text, lines = 25) {
  return `${text ?? ''}`.trim().split('\n').slice(-lines).join('\n');
}

/**
 * The environment of a user's shell: none of npm's per-run variables, none of ours.
 * @param {NodeJS.ProcessEnv} [extra]
 */
function userEnv(extra = {}) {
  /** @type {NodeJS.ProcessEnv} */
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || /^IOCPNET/i.test(k) || k === 'INIT_CWD' || k === 'PREBUILDS_ONLY') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/**
 * Runs a command to completion, its output captured.
 * @param {string} command
 * @param {string[]} args
 * @param {{ cwd?: string, env?: NodeJS.ProcessEnv, timeoutMs?: number, input?: string }} [options]
 * @returns {RunResult}
 */
function run(command, args, { cwd, env, timeoutMs = 300000, input } = {}) {
  const started = process.hrtime.bigint();
  const r = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: timeoutMs, input, maxBuffer: 64 << 20 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return { status: r.status, signal: r.signal, error: r.error, stdout: r.stdout ?? '', output, seconds };
}

/**
 * @param {string} dir
 * @returns {number}
 */
function newestMtime(dir) {
  let newest = 0;
  if (!fs.existsSync(dir)) return newest;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * @param {string} dir
 * @returns {number}
 */
function dirBytes(dir) {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) total += dirBytes(p);
    else if (entry.isFile()) total += fs.statSync(p).size;
  }
  return total;
}

/**
 * @param {string} nodeModules
 * @returns {number}
 */
function countPackages(nodeModules) {
  let count = 0;
  for (const entry of fs.readdirSync(nodeModules, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    if (entry.name.startsWith('@')) count += fs.readdirSync(path.join(nodeModules, entry.name)).length;
    else count++;
    const nested = path.join(nodeModules, entry.name, 'node_modules');
    if (fs.existsSync(nested)) count += countPackages(nested);
  }
  return count;
}

const mib = (/** @type {number} */ bytes) => `${(bytes / 1048576).toFixed(2)} MiB`;
const kib = (/** @type {number} */ bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

/**
 * A bin folder with node, npm, npx and shell basics, and no build tool.
 * @param {string} dir
 */
function makeToolFreeBin(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const npmCli = findNpmCli();
  /** @type {Record<string, string>} */
  const links = {
    node: process.execPath,
    npm: npmCli,
    npx: path.join(path.dirname(npmCli), 'npx-cli.js'),
  };
  const basics = [
    'sh',
    'bash',
    'dash',
    'env',
    'cat',
    'ls',
    'mkdir',
    'rm',
    'rmdir',
    'cp',
    'mv',
    'ln',
    'chmod',
    'touch',
    'uname',
    'dirname',
    'basename',
    'sed',
    'grep',
    'tar',
    'gzip',
    'id',
    'true',
    'false',
    'sleep',
  ];
  for (const name of basics) {
    const found = ['/bin', '/usr/bin'].map((d) => path.join(d, name)).find((p) => fs.existsSync(p));
    if (found) links[name] = fs.realpathSync(found);
  }
  for (const [name, target] of Object.entries(links)) fs.symlinkSync(target, path.join(dir, name));
  return dir;
}

/** npm's own npm-cli.js: the one `npm run` is using, else the npm on PATH. */
function findNpmCli() {
  if (process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath)) return process.env.npm_execpath;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, 'npm');
    if (fs.existsSync(candidate)) {
      const real = fs.realpathSync(candidate);
      if (real.endsWith('npm-cli.js')) return real;
    }
  }
  throw new Error('cannot find npm-cli.js: run this with npm, or put npm on PATH');
}

/**
 * A fresh project folder with its own package.json and the check scripts.
 * @param {string} dir
 */
function makeProject(dir) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    `${JSON.stringify({ name: `pack-check-${path.basename(dir)}`, version: '1.0.0', private: true }, null, 2)}\n`,
  );
  // The files only: consumer/game/ is a project of its own (gameCheck).
  for (const entry of fs.readdirSync(path.join(packDir, 'consumer'), { withFileTypes: true })) {
    if (entry.isFile()) fs.copyFileSync(path.join(packDir, 'consumer', entry.name), path.join(dir, entry.name));
  }
  fs.copyFileSync(path.join(packDir, 'wire-client.js'), path.join(dir, 'wire-client.js'));
  return dir;
}

/**
 * @param {string} project
 * @param {string} tarball
 * @param {NodeJS.ProcessEnv} env
 * @param {string[]} [extra] more npm install arguments
 */
function npmInstall(project, tarball, env, extra = []) {
  return run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', '--loglevel=warn', ...extra], {
    cwd: project,
    env,
    timeoutMs: 600000,
  });
}

/**
 * Runs require-check.cjs in the project; checks that the addon it loaded is under expectedPrefix.
 * @param {string} project
 * @param {NodeJS.ProcessEnv} env
 * @param {string} what
 * @param {string} expectedPrefix
 */
function requireCheck(project, env, what, expectedPrefix) {
  const r = run(process.execPath, ['require-check.cjs'], { cwd: project, env, timeoutMs: 60000 });
  if (r.status !== 0) return fail(what, tail(r.output));
  let addon;
  try {
    addon = JSON.parse(r.stdout.trim().split('\n').pop() ?? '').addon;
  } catch {
    return fail(what, `unexpected output: ${tail(r.output)}`);
  }
  check(`${what}: loads ${addon}`, addon.startsWith(expectedPrefix), `expected a binary under ${expectedPrefix}`);
}

/**
 * Starts `npx iocpnet chat-server --port 0 --host 127.0.0.1`, runs the chat check, stops the server.
 * @param {string} project
 * @param {NodeJS.ProcessEnv} env
 * @param {string} what
 */
async function chatServerCheck(project, env, what) {
  const installed = JSON.parse(fs.readFileSync(path.join(project, 'node_modules', 'iocpnet', 'package.json'), 'utf8'));
  const bin = typeof installed.bin === 'string' ? installed.bin : installed.bin?.iocpnet;
  if (!bin) return skip(what, 'the package has no iocpnet bin');
  if (!fs.existsSync(path.join(project, 'node_modules', 'iocpnet', bin))) {
    // Until the CLI exists in the checkout, its absence is reported, not failed.
    if (!fs.existsSync(path.join(root, 'lib', 'cli.ts'))) return skip(what, `no CLI in this checkout (lib/cli.ts; bin ${bin})`);
    return fail(what, `package.json bin ${bin} is not in the tarball`);
  }
  /** @type {typeof import('../../test/pack/chat-check.js')} */
  const { runChatCheck } = require(path.join(packDir, 'chat-check.js'));
  // Its own process group, so the server that npx starts is stopped with it.
  const child = spawn('npx', ['--no-install', 'iocpnet', 'chat-server', '--port', '0', '--host', '127.0.0.1'], {
    cwd: project,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  /** @type {Promise<{ code: number | null, signal: NodeJS.Signals | null }>} */
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  try {
    /** @type {{ host: string, port: number }} */
    const address = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no "listening on HOST:PORT" line within 30 s')), 30000);
      const onData = (/** @type {Buffer} */ chunk) => {
        output += chunk.toString();
        const m = /listening on (\S+):(\d+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve({ host: m[1], port: Number(m[2]) });
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`the server exited (${code ?? signal}) before listening`));
      });
    });
    // Whatever address it bound, the check connects over loopback.
    const steps = await runChatCheck(address.port, '127.0.0.1');
    pass(`${what}: listening on ${address.host}:${address.port}; ${steps.join('; ')}`);
  } catch (err) {
    fail(what, `${err instanceof Error ? err.message : String(err)}\n${tail(output)}`);
  } finally {
    const group = child.pid;
    if (group !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-group, 'SIGTERM');
      } catch {
        // Already gone.
      }
      const stopped = await Promise.race([exited, new Promise((r) => setTimeout(() => r(undefined), 10000))]);
      if (!stopped) {
        try {
          process.kill(-group, 'SIGKILL');
        } catch {
          // Already gone.
        }
        await exited;
      }
    }
  }
}

/**
 * The game of test/pack/consumer/game in an empty TypeScript project (strict,
 * skipLibCheck false) that installs the tarball: tsc builds its server and
 * client, and they run against each other on each backend.
 * @param {string} dir
 * @param {string} tarball
 * @param {NodeJS.ProcessEnv} env
 */
async function gameCheck(dir, tarball, env) {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!fs.existsSync(tsc)) return skip('game', 'typescript is not installed in the checkout');
  fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    `${JSON.stringify({ name: 'pack-check-game', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`,
  );
  let r = npmInstall(dir, tarball, env);
  if (!check('game: npm install <tarball> into an empty TypeScript project', r.status === 0, tail(r.output))) return;
  const sources = fs.readdirSync(path.join(packDir, 'consumer', 'game')).filter((f) => f.endsWith('.ts'));
  for (const f of sources) fs.copyFileSync(path.join(packDir, 'consumer', 'game', f), path.join(dir, 'src', f));
  writeConsumerTsconfig(dir, { rootDir: 'src', outDir: 'out' }, { include: ['src'] });
  r = run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir, env, timeoutMs: 120000 });
  const built = sources.every((f) => fs.existsSync(path.join(dir, 'out', f.replace(/\.ts$/, '.js'))));
  const compiled = r.status === 0 && r.output.trim() === '' && built;
  if (!check(`game: tsc builds ${sources.join(', ')} (strict, skipLibCheck false) with no error`, compiled, tail(r.output))) return;
  for (const backend of ['native', 'js']) await gameRun(dir, backend, env);
}

/**
 * Starts the game server on backend, runs the game client against it, stops the server with SIGTERM.
 * @param {string} dir
 * @param {string} backend
 * @param {NodeJS.ProcessEnv} env
 */
async function gameRun(dir, backend, env) {
  const what = `game on the ${backend} backend: router, struct codecs, PacketReader and encodePacket`;
  const server = spawn(process.execPath, [path.join('out', 'server.js'), backend], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const onData = (/** @type {Buffer} */ chunk) => (output += chunk.toString());
  server.stdout.on('data', onData);
  server.stderr.on('data', onData);
  /** @type {Promise<{ code: number | null, signal: NodeJS.Signals | null }>} */
  const exited = new Promise((resolve) => server.once('close', (code, signal) => resolve({ code, signal })));
  /** @param {number} ms */
  const within = (ms) => new Promise((resolve) => setTimeout(() => resolve(undefined), ms));
  try {
    const deadline = Date.now() + 30000;
    let m;
    while (!(m = /game listening on 127\.0\.0\.1:(\d+)/.exec(output))) {
      if (server.exitCode !== null || server.signalCode !== null) throw new Error('the server exited before listening');
      if (Date.now() > deadline) throw new Error('no "game listening on 127.0.0.1:PORT" line within 30 s');
      await within(50);
    }
    const r = run(process.execPath, [path.join('out', 'client.js'), m[1]], { cwd: dir, env, timeoutMs: 60000 });
    if (r.status !== 0) throw new Error(`the client failed (${r.status ?? r.signal}):\n${tail(r.output)}`);
    /** @type {{ aliceSawPositions: number, bobSawPositions: number, packetsReceived: number, cheater: string }} */
    const seen = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
    server.kill('SIGTERM');
    const stopped = await Promise.race([exited, within(10000)]);
    if (!stopped) throw new Error('the server did not exit within 10 s of SIGTERM');
    if (stopped.code !== 0) throw new Error(`the server exited with ${stopped.code ?? stopped.signal}`);
    /** @type {{ joins: number, leaves: number, playersLeft: number, router: { handled: number, unknown: number, protocolErrors: number, handlerErrors: number } }} */
    const figures = JSON.parse(output.trim().split('\n').pop() ?? '');
    const ok =
      seen.aliceSawPositions === 1 &&
      seen.bobSawPositions === 20 &&
      seen.packetsReceived === 27 &&
      seen.cheater === 'PROTOCOL_ERROR' &&
      figures.joins === 2 &&
      figures.leaves === 2 &&
      figures.playersLeft === 0 &&
      figures.router.handled === 25 &&
      figures.router.unknown === 0 &&
      figures.router.protocolErrors === 1 &&
      figures.router.handlerErrors === 0;
    check(
      `${what}: 2 players joined, 21 positions reached the other player, 1 MOVE before JOIN closed with PROTOCOL_ERROR, the server stopped on SIGTERM`,
      ok,
      `client: ${JSON.stringify(seen)}\nserver: ${JSON.stringify(figures)}`,
    );
  } catch (err) {
    fail(what, `${err instanceof Error ? err.message : String(err)}\n${tail(output)}`);
  } finally {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGKILL');
      await exited;
    }
  }
}

/**
 * The files in the tarball, relative to its package/ folder.
 * @param {string} tarball
 */
function packageFiles(tarball) {
  const r = run('tar', ['-tzf', tarball]);
  if (r.status !== 0) throw new Error(`tar -tzf failed: ${r.output}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''));
}

/**
 * A copy of the tarball without prebuilds/, as a platform without a prebuild sees it.
 * @param {string} tarball
 * @param {string} work a scratch folder
 */
function withoutPrebuilds(tarball, work) {
  const dir = path.join(work, 'unpacked');
  fs.mkdirSync(dir, { recursive: true });
  let r = run('tar', ['-xzf', tarball, '-C', dir]);
  if (r.status !== 0) throw new Error(`tar -xzf failed: ${r.output}`);
  fs.rmSync(path.join(dir, 'package', 'prebuilds'), { recursive: true, force: true });
  const out = path.join(work, `${path.basename(tarball, '.tgz')}-noprebuilds.tgz`);
  r = run('tar', ['-czf', out, '-C', dir, 'package']);
  if (r.status !== 0) throw new Error(`tar -czf failed: ${r.output}`);
  return out;
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'iocpnet-pack-'));
  const fullEnv = userEnv();
  let toolFreeEnv;
  try {
    log('test:pack: prebuild and npm pack');
    const hostDir = path.join(root, 'prebuilds', tuple);
    const hostBuilds = fs.existsSync(hostDir) ? fs.readdirSync(hostDir).filter((f) => f.endsWith('.node')) : [];
    const sourcesChanged = Math.max(
      newestMtime(path.join(root, 'native')),
      newestMtime(path.join(root, 'binding')),
      fs.statSync(path.join(root, 'CMakeLists.txt')).mtimeMs,
    );
    const stale = hostBuilds.length !== 1 || fs.statSync(path.join(hostDir, hostBuilds[0])).mtimeMs < sourcesChanged;
    if (stale) {
      const r = run(process.execPath, [path.join(root, 'scripts', 'release', 'prebuild.js'), '--host-only'], { cwd: root, env: fullEnv, timeoutMs: 900000 });
      if (!check('npm run prebuild (host)', r.status === 0, tail(r.output))) return;
      figure('prebuild time', `${r.seconds.toFixed(1)} s`);
    } else {
      pass(`prebuild ${tuple}/${hostBuilds[0]} is newer than the sources`);
    }

    const packOut = path.join(tmp, 'pack');
    fs.mkdirSync(packOut);
    let r = run('npm', ['pack', '--pack-destination', packOut, '--loglevel=warn'], { cwd: root, env: fullEnv, timeoutMs: 600000 });
    const tarballs = fs.existsSync(packOut) ? fs.readdirSync(packOut).filter((f) => f.endsWith('.tgz')) : [];
    if (!check('npm pack', r.status === 0 && tarballs.length === 1, tail(r.output))) return;
    const tarball = path.join(packOut, tarballs[0]);
    figure('tarball', `${tarballs[0]}, ${kib(fs.statSync(tarball).size)}`);

    const files = packageFiles(tarball);
    figure('files in the tarball', files.length);
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    const required = [
      'package.json',
      'CMakeLists.txt',
      'scripts/package/install.js',
      'scripts/package/build-native.js',
      pkg.main,
      pkg.types,
      ...Object.values(pkg.exports['.'])
        .flatMap((c) => [c.types, c.default])
        .map((p) => p.replace(/^\.\//, '')),
    ];
    const missing = required.filter((f) => !files.includes(f));
    check(`the tarball has the entry points, types and install scripts`, missing.length === 0, `missing: ${missing.join(', ')}`);
    // What the README links to (docs/, examples/, LICENSE) must resolve on the registry too.
    const readmeLinks = [...new Set([...fs.readFileSync(path.join(root, 'README.md'), 'utf8').matchAll(/\]\((?![a-z]+:)([^)#\s]+)/g)].map((m) => m[1]))];
    const unshipped = ['README.md', 'LICENSE', ...readmeLinks].filter((f) => !files.includes(f));
    check(
      `the tarball has the README, the LICENSE and the ${readmeLinks.length} files the README links to`,
      readmeLinks.length > 0 && unshipped.length === 0,
      `missing: ${unshipped.join(', ')}`,
    );
    const hostPrebuilds = files.filter((f) => f.startsWith(`prebuilds/${tuple}/`) && f.endsWith('.node'));
    check(`the tarball has prebuilds/${tuple}`, hostPrebuilds.length === 1, `found ${JSON.stringify(hostPrebuilds)}`);
    const otherPrebuilds = files.filter((f) => f.startsWith('prebuilds/') && !f.startsWith(`prebuilds/${tuple}/`));
    figure('other prebuilds in the tarball', otherPrebuilds.length ? otherPrebuilds.join(', ') : 'none');
    const sources = files.filter((f) => /^(native|binding)\/.*\.(cpp|h)$/.test(f));
    check(
      'the tarball has the C++ sources for a source build',
      sources.some((f) => f.startsWith('binding/')) && sources.some((f) => f.startsWith('native/core/')),
      `C++ files: ${sources.join(', ')}`,
    );
    const forbidden = files.filter(
      (f) =>
        /^(test|tests|bench|build|build-[^/]*|\.bench|\.ci|node_modules|dist\/(bench|test|examples))\//.test(f) ||
        /(^|\/)[^/]*[._-]test\.(ts|js|cpp)$/.test(f) ||
        /(^|\/)tests?\//.test(f) ||
        /\.(map|log|tsbuildinfo|o|obj)$/.test(f) ||
        /^lib\/.*\.ts$/.test(f),
    );
    check('the tarball has no tests, benchmarks, build folders or maps', forbidden.length === 0, forbidden.join('\n'));

    log('test:pack: install with no build tool on PATH');
    const bin = makeToolFreeBin(path.join(tmp, 'bin'));
    toolFreeEnv = userEnv({ PATH: bin });
    const tools = ['cc', 'c++', 'gcc', 'g++', 'clang', 'clang++', 'cmake', 'make', 'gmake', 'ninja', 'python', 'python3'];
    r = run('/bin/sh', ['-c', `for t in ${tools.join(' ')}; do command -v "$t"; done; exit 0`], { env: toolFreeEnv });
    if (!check(`no ${tools.join('/')} on the tool-free PATH`, r.status === 0 && r.stdout.trim() === '', r.output)) return;

    const projectA = makeProject(path.join(tmp, 'prebuilt'));
    r = npmInstall(projectA, tarball, toolFreeEnv);
    if (!check('npm install <tarball> with no build tool', r.status === 0, tail(r.output))) return;
    figure('install time, no build tool', `${r.seconds.toFixed(1)} s`);
    check('the install script used the prebuild', new RegExp(`iocpnet: using prebuilds/${tuple}/`).test(r.output), tail(r.output));
    const installedA = path.join(projectA, 'node_modules', 'iocpnet');
    check('nothing was built (no build/ in the installed package)', !fs.existsSync(path.join(installedA, 'build')));
    figure(
      'installed tree',
      `${mib(dirBytes(path.join(projectA, 'node_modules')))} in ${countPackages(path.join(projectA, 'node_modules'))} packages (iocpnet itself ${mib(dirBytes(installedA))})`,
    );
    const du = run('du', ['-sh', path.join(projectA, 'node_modules')]);
    if (du.status === 0) figure('du -sh node_modules', du.stdout.split('\t')[0]);

    requireCheck(projectA, toolFreeEnv, 'require()', `prebuilds/${tuple}/`);
    r = run(process.execPath, ['import-check.mjs'], { cwd: projectA, env: toolFreeEnv, timeoutMs: 60000 });
    check('import { createServer } from an .mjs file, same instance as require()', r.status === 0, tail(r.output));

    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    if (fs.existsSync(tsc)) {
      writeConsumerTsconfig(projectA, { noEmit: true }, { files: ['types-check.mts', 'types-check.cts'] });
      r = run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: projectA, env: toolFreeEnv, timeoutMs: 120000 });
      check('types: import (.d.mts) and require (.d.ts) under module nodenext', r.status === 0, tail(r.output));
    } else {
      skip('types', 'typescript is not installed in the checkout');
    }

    await chatServerCheck(projectA, toolFreeEnv, 'npx iocpnet chat-server --port 0 (prebuilt)');
    await gameCheck(path.join(tmp, 'game'), tarball, toolFreeEnv);

    r = run(process.execPath, [path.join(installedA, 'scripts', 'package', 'install.js'), '--dry-run'], { cwd: installedA, env: toolFreeEnv });
    check('install.js in the installed package keeps the prebuild', r.status === 0 && r.stdout.startsWith('prebuilt:'), r.output);
    r = run(process.execPath, [path.join(installedA, 'scripts', 'package', 'install.js'), '--dry-run'], {
      cwd: installedA,
      env: { ...toolFreeEnv, npm_config_build_from_source: 'true' },
    });
    check('install.js honours --build-from-source (npm_config_build_from_source)', r.status === 0 && r.stdout.startsWith('source:'), r.output);
    r = run(process.execPath, [path.join(installedA, 'scripts', 'package', 'install.js'), '--dry-run'], {
      cwd: installedA,
      env: { ...toolFreeEnv, IOCPNET_BUILD_FROM_SOURCE: '1' },
    });
    check('install.js honours IOCPNET_BUILD_FROM_SOURCE=1', r.status === 0 && r.stdout.startsWith('source:'), r.output);

    // The prebuild is found at run time; the install script only decides about a source build.
    const projectNoScripts = makeProject(path.join(tmp, 'ignore-scripts'));
    r = run('npm', ['install', tarball, '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=warn'], {
      cwd: projectNoScripts,
      env: toolFreeEnv,
      timeoutMs: 600000,
    });
    if (check('npm install --ignore-scripts with no build tool', r.status === 0, tail(r.output))) {
      requireCheck(projectNoScripts, toolFreeEnv, 'require() without the install script', `prebuilds/${tuple}/`);
    }
    if (pkg.optionalDependencies?.['cmake-js']) {
      const projectSlim = makeProject(path.join(tmp, 'omit-optional'));
      r = npmInstall(projectSlim, tarball, toolFreeEnv, ['--omit=optional']);
      if (check('npm install --omit=optional with no build tool', r.status === 0, tail(r.output))) {
        const nm = path.join(projectSlim, 'node_modules');
        figure('installed tree, --omit=optional', `${mib(dirBytes(nm))} in ${countPackages(nm)} packages`);
        requireCheck(projectSlim, toolFreeEnv, 'require() with optional dependencies omitted', `prebuilds/${tuple}/`);
      }
    } else {
      skip('npm install --omit=optional', 'cmake-js is not an optional dependency');
    }

    log('test:pack: the same tarball without prebuilds');
    const bare = withoutPrebuilds(tarball, tmp);
    const projectNoTools = makeProject(path.join(tmp, 'no-prebuild-no-tools'));
    r = npmInstall(projectNoTools, bare, toolFreeEnv);
    check(
      'without a prebuild and without build tools the install fails and says how to fix it',
      r.status !== 0 && /no prebuilt binary for/.test(r.output) && /backend: 'js'/.test(r.output),
      tail(r.output),
    );

    const projectB = makeProject(path.join(tmp, 'source-fallback'));
    r = npmInstall(projectB, bare, fullEnv);
    if (check('without a prebuild, with build tools: the install builds from source', r.status === 0, tail(r.output))) {
      figure('install time with the source build', `${r.seconds.toFixed(1)} s`);
      const built = path.join(projectB, 'node_modules', 'iocpnet', 'build', 'Release', 'iocpnet.node');
      check('the source build made build/Release/iocpnet.node', fs.existsSync(built));
      requireCheck(projectB, toolFreeEnv, 'require() after the source build', 'build/Release/');
      await chatServerCheck(projectB, toolFreeEnv, 'npx iocpnet chat-server --port 0 (source build)');
    }

    log('test:pack: npm rebuild --build-from-source, PREBUILDS_ONLY');
    r = run('npm', ['rebuild', 'iocpnet', '--build-from-source', '--foreground-scripts', '--loglevel=warn'], {
      cwd: projectA,
      env: fullEnv,
      timeoutMs: 600000,
    });
    if (
      check(
        'npm rebuild iocpnet --build-from-source builds over the prebuild',
        r.status === 0 && fs.existsSync(path.join(installedA, 'build', 'Release', 'iocpnet.node')),
        tail(r.output),
      )
    ) {
      figure('npm rebuild --build-from-source time', `${r.seconds.toFixed(1)} s`);
      requireCheck(projectA, toolFreeEnv, 'require() after the rebuild', 'build/Release/');
      requireCheck(projectA, { ...toolFreeEnv, PREBUILDS_ONLY: '1' }, 'require() with PREBUILDS_ONLY=1', `prebuilds/${tuple}/`);
    }
  } catch (err) {
    fail('test:pack', err instanceof Error ? (err.stack ?? err.message) : String(err));
  } finally {
    if (process.env.IOCPNET_KEEP_PACK_TMP === '1') log(`test:pack: kept ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
}

void main().then(() => {
  log(`test:pack: ${results.passed} passed, ${results.failed} failed, ${results.skipped} skipped`);
  process.exitCode = results.failed > 0 ? 1 : 0;
});
