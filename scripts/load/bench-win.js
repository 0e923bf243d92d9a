#!/usr/bin/env node
// npm run bench:win: the benchmark against the IOCP engine. The echo server
// and the chat server run in Windows Node under Wine (the win32-x64 addon);
// the load generator and bench/run.js run here, against them over
// 127.0.0.1 (bench/run.js --server-host). With --compare-linux, the same
// scenarios then run against the libuv engine on this machine's Node, so
// the two tables can be read side by side.
//
//   npm run bench:win -- --quick --compare-linux
//
// Options: --no-build, --compare-linux, --io-threads <n>, --wine-backends
// <native,js> (which backends run under Wine, default native; js is Node's
// own libuv on IOCP, the fair baseline under the same Wine overhead); the
// others go to bench/run.js (--quick, --rounds, --duration, ...).
// Figures under Wine include Wine's own overhead: they bound what the IOCP
// engine does on Windows from below, they do not measure it.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const tools = require('../wine/tools');
const winHost = require('../wine/host');

/**
 * Removes `name value` from args and returns the value.
 * @param {string[]} args
 * @param {string} name
 */
function takeOption(args, name) {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const value = args[i + 1];
  args.splice(i, 2);
  return value;
}

/** @param {string[]} args arguments of bench/run.js */
function runBench(args) {
  const r = spawnSync(process.execPath, [path.join(tools.root, 'dist', 'bench', 'run.js'), ...args], { cwd: tools.root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`bench/run.js ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

/**
 * Runs scenarios against a server script started under Wine; stops it afterwards.
 * @param {string} name
 * @param {string} backend 'native' or 'js'
 * @param {string} script
 * @param {string[]} scriptArgs
 * @param {string} scenarios
 * @param {string[]} passThrough
 */
async function benchUnderWine(name, backend, script, scriptArgs, scenarios, passThrough) {
  const logFile = path.join(tools.cacheDir, 'logs', `bench-${name}-${backend}.log`);
  const server = await winHost.startScript(script, scriptArgs, { logFile, ready: /listening on [^\s:]+:(\d+)/ });
  const port = server.match[1];
  tools.log(`${name} server (${backend}) under Wine on port ${port} (started in ${server.startMs} ms)`);
  try {
    runBench([
      '--scenarios',
      scenarios,
      '--server-host',
      '127.0.0.1',
      '--server-port',
      port,
      '--label',
      `${backend}-wine`,
      '--json',
      path.join('.bench', `win-${name}-${backend}.json`),
      ...passThrough,
    ]);
  } finally {
    // Windows Node under Wine has no SIGTERM handler to run: the process is simply ended.
    server.child.kill('SIGKILL');
    await Promise.race([server.exited, new Promise((r) => setTimeout(r, 5000))]);
  }
}

async function main() {
  const args = process.argv.slice(2);
  const build = !args.includes('--no-build');
  const compare = args.includes('--compare-linux');
  const ioThreads = takeOption(args, '--io-threads');
  const wineBackends = (takeOption(args, '--wine-backends') ?? 'native').split(',').filter(Boolean);
  for (const b of wineBackends) if (b !== 'native' && b !== 'js') throw new Error(`unknown backend '${b}' (native, js)`);
  const passThrough = args.filter((a) => a !== '--no-build' && a !== '--compare-linux');

  tools.ensureWine();
  if (build) tools.run(process.execPath, [path.join(tools.root, 'scripts', 'release', 'build-win.js')], { cwd: tools.root });
  // bench/run.js and its helpers, compiled as npm run bench does.
  tools.run(process.execPath, [require.resolve('typescript/bin/tsc', { paths: [tools.root] }), '-p', 'tsconfig.json'], { cwd: tools.root });
  winHost.stage();
  fs.mkdirSync(path.join(tools.root, '.bench'), { recursive: true });

  try {
    for (const backend of wineBackends) {
      const io = ioThreads !== undefined && backend === 'native' ? ['--io-threads', ioThreads] : [];
      await benchUnderWine(
        'echo',
        backend,
        path.join('bench', 'echo-server.js'),
        ['--backend', backend, '--host', '127.0.0.1', '--port', '0', '--max-connections', '20000', ...io],
        'echo',
        passThrough,
      );
      // One chat server for both room sizes: 100 rooms of up to 100 users.
      await benchUnderWine(
        'chat',
        backend,
        path.join('lib', 'cli.js'),
        [
          'chat-server',
          '--backend',
          backend,
          '--host',
          '127.0.0.1',
          '--port',
          '0',
          '--max-connections',
          '20000',
          '--start-room',
          '0',
          '--max-rooms',
          '100',
          '--max-room-users',
          '100',
          '--idle-timeout-ms',
          '0',
          ...io,
        ],
        'chat10,chat100',
        passThrough,
      );
    }
  } finally {
    winHost.stopWine();
  }
  if (compare) {
    tools.log('the same scenarios against the libuv engine on this machine');
    const io = ioThreads !== undefined ? ['--io-threads', ioThreads] : [];
    runBench(['--scenarios', 'echo,chat10,chat100', '--backends', 'native', '--json', path.join('.bench', 'linux-native.json'), ...io, ...passThrough]);
  }
}

main().catch((err) => {
  console.error(`\nbench:win failed: ${err instanceof Error ? err.message : String(err)}`);
  winHost.stopWine();
  process.exit(1);
});
