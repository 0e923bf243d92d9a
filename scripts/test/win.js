#!/usr/bin/env node
// npm run test:win: builds the win32-x64 addon (IOCP engine) with mingw-w64,
// starts the server host in Windows Node 22 under Wine, and runs the Windows
// suites (vitest.win.config.ts) from Linux against it over 127.0.0.1.
// Installs what is missing: mingw-w64 and Wine with apt-get when root,
// Windows Node into the cache (IOCPNET_WIN_CACHE, default ~/.cache/iocpnet-win).
//
// Options: --no-build (use the prebuild as it is); --linux-host (run the same
// suites against the libuv engine in this machine's Node, for comparison);
// any other argument goes to vitest.
'use strict';
const { spawnSync } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');
const tools = require('../wine/tools');
const winHost = require('../wine/host');

/**
 * Runs fn and adds how long it took to timings.
 * @template T
 * @param {string} label
 * @param {[string, number][]} timings
 * @param {() => T} fn
 * @returns {T}
 */
function timed(label, timings, fn) {
  const t0 = Date.now();
  const r = fn();
  timings.push([label, Date.now() - t0]);
  return r;
}

/**
 * The variables env sets or changes relative to this process's environment; null for one it removes.
 * @param {NodeJS.ProcessEnv} env
 */
function envChanges(env) {
  /** @type {Record<string, string | undefined | null>} */
  const changes = Object.fromEntries(Object.entries(env).filter(([k, v]) => process.env[k] !== v));
  for (const k of Object.keys(process.env)) if (!(k in env)) changes[k] = null;
  return changes;
}

/**
 * Sends the host an 'exit' request; resolves when it answered or after a while.
 * @param {number} port
 * @returns {Promise<void>}
 */
function askHostToExit(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const done = () => {
      sock.destroy();
      resolve();
    };
    sock.on('connect', () => sock.write(`${JSON.stringify({ req: 1, op: 'exit' })}\n`));
    sock.on('data', done);
    sock.on('error', done);
    setTimeout(done, 10000).unref();
  });
}

async function main() {
  const args = process.argv.slice(2);
  const linuxHost = args.includes('--linux-host');
  const build = !args.includes('--no-build') && !linuxHost;
  const vitestArgs = args.filter((a) => a !== '--no-build' && a !== '--linux-host');
  /** @type {[string, number][]} */
  const timings = [];
  const t0 = Date.now();
  const expectEngine = linuxHost ? 'libuv' : 'iocp';

  if (!linuxHost) tools.ensureWine();
  if (build) {
    timed('build:win', timings, () => tools.run(process.execPath, [path.join(tools.root, 'scripts', 'release', 'build-win.js')], { cwd: tools.root }));
  }
  if (!linuxHost) {
    timed('Windows Node + Wine prefix', timings, () => {
      winHost.ensureWindowsNode();
      winHost.ensurePrefix();
    });
  }
  timed('stage', timings, () => winHost.stage({ withPrebuild: !linuxHost }));

  const hostScript = path.join('test', 'win', 'host.js');
  const hostCommand = linuxHost ? winHost.linuxCommand(hostScript) : winHost.windowsCommand(hostScript);
  const logFile = path.join(tools.cacheDir, 'logs', 'host.log');
  const t1 = Date.now();
  const host = await winHost.startLogged(hostCommand, {
    logFile,
    ready: /IOCPNET_HOST port=(\d+) engine=(\S+) node=(\S+)/,
  });
  timings.push([`host start${linuxHost ? '' : ' under Wine'}`, Date.now() - t1]);
  const port = Number(host.match[1]);
  tools.log(`host ready: Node ${host.match[3]}, engine ${host.match[2]}, control port ${port}`);
  let status;
  try {
    if (host.match[2] !== expectEngine) throw new Error(`the host reports engine ${host.match[2]}, not ${expectEngine}`);
    const r = timed('vitest (Windows suites)', timings, () =>
      spawnSync('npx', ['vitest', 'run', '--config', 'vitest.win.config.ts', ...vitestArgs], {
        cwd: tools.root,
        stdio: 'inherit',
        env: {
          ...process.env,
          IOCPNET_WIN_HOST: `127.0.0.1:${port}`,
          IOCPNET_WIN_EXPECT_ENGINE: expectEngine,
          // How a suite starts a host of its own (process teardown checks).
          IOCPNET_WIN_HOST_COMMAND: JSON.stringify({ ...hostCommand, env: envChanges(hostCommand.env) }),
        },
      }),
    );
    status = r.status ?? 1;
  } finally {
    await askHostToExit(port);
    const exited = await Promise.race([host.exited, /** @type {Promise<null>} */ (new Promise((r) => setTimeout(() => r(null), 10000)))]);
    if (exited === null) {
      tools.log('the host did not exit; killing it');
      host.child.kill('SIGKILL');
    }
    if (!linuxHost) winHost.stopWine();
    const log = require('node:fs').readFileSync(logFile, 'utf8').trim();
    if (log) console.log(`\n--- host output (${path.relative(process.cwd(), logFile) || logFile}) ---\n${log}\n---`);
  }
  timings.push(['total', Date.now() - t0]);
  console.log(`test:win timings: ${timings.map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`).join(', ')}`);
  process.exit(status);
}

main().catch((err) => {
  console.error(`\ntest:win failed: ${err instanceof Error ? err.message : String(err)}`);
  winHost.stopWine();
  process.exit(1);
});
