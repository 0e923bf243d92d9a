#!/usr/bin/env node
// npm run test:win: builds the win32-x64 addon (IOCP engine) with mingw-w64,
// starts the server host in Windows Node 22 under Wine, and runs the Windows
// suites (vitest.win.config.ts) from Linux against it over 127.0.0.1.
// Installs what is missing: mingw-w64 and Wine with apt-get when root,
// Windows Node into the cache (IOCPNET_WIN_CACHE, default ~/.cache/iocpnet-win).
//
// Options: --no-build (use the prebuild as it is), any other argument goes to vitest.
'use strict';
const { spawnSync } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');
const tools = require('./win-tools');
const winHost = require('./win-host');

function timed(label, timings, fn) {
  const t0 = Date.now();
  const r = fn();
  timings.push([label, Date.now() - t0]);
  return r;
}

/** Sends the host an 'exit' request; resolves when it answered or after a while. */
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
  const build = !args.includes('--no-build');
  const vitestArgs = args.filter((a) => a !== '--no-build');
  const timings = [];
  const t0 = Date.now();

  tools.ensureWine();
  if (build) {
    timed('build:win', timings, () => tools.run(process.execPath, [path.join(__dirname, 'build-win.js')], { cwd: tools.root }));
  }
  timed('Windows Node + Wine prefix', timings, () => {
    winHost.ensureWindowsNode();
    winHost.ensurePrefix();
  });
  timed('stage', timings, () => winHost.stage());

  const logFile = path.join(tools.cacheDir, 'logs', 'host.log');
  const t1 = Date.now();
  const host = await winHost.startScript(path.join('test', 'win', 'host.js'), [], {
    logFile,
    ready: /IOCPNET_HOST port=(\d+) engine=(\S+) node=(\S+)/,
  });
  timings.push(['host start under Wine', Date.now() - t1]);
  const port = Number(host.match[1]);
  tools.log(`host ready: Windows Node ${host.match[3]}, engine ${host.match[2]}, control port ${port}`);
  let status = 1;
  try {
    if (host.match[2] !== 'iocp') throw new Error(`the Windows addon reports engine ${host.match[2]}, not iocp`);
    const r = timed('vitest (Windows suites)', timings, () =>
      spawnSync('npx', ['vitest', 'run', '--config', 'vitest.win.config.ts', ...vitestArgs], {
        cwd: tools.root,
        stdio: 'inherit',
        env: { ...process.env, IOCPNET_WIN_HOST: `127.0.0.1:${port}` },
      }),
    );
    status = r.status ?? 1;
  } finally {
    await askHostToExit(port);
    const exited = await Promise.race([host.exited, new Promise((r) => setTimeout(() => r(null), 10000))]);
    if (exited === null) {
      tools.log('the host did not exit; killing it');
      host.child.kill('SIGKILL');
    }
    winHost.stopWine();
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
