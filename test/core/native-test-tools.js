// Shared by scripts/test/core.js, scripts/test/fuzz.js and scripts/test/sanitizers.js:
// makes sure the system packages a native check needs are there (installing
// them with apt-get only when running as root, and saying so), and runs
// commands with their output shown.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');

/** @param {string} name */
function commandExists(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** @param {string[]} paths */
function anyFileExists(paths) {
  return paths.some((p) => fs.existsSync(p));
}

/** @typedef {{ present: () => boolean, apt: string | (() => string) }} Requirement */

// What each requirement looks like when present, and the Debian package
// that provides it.
/** @satisfies {Record<string, Requirement>} */
const requirements = {
  cmake: { present: () => commandExists('cmake'), apt: 'cmake' },
  'c++': { present: () => commandExists('c++') || commandExists('g++'), apt: 'g++' },
  make: { present: () => commandExists('make') || commandExists('ninja'), apt: 'make' },
  libuv: {
    // Where test/core/CMakeLists.txt looks: Debian/Ubuntu, /usr/local, Homebrew.
    present: () =>
      anyFileExists(['/usr/include/uv.h', '/usr/local/include/uv.h', '/opt/homebrew/include/uv.h']) &&
      anyFileExists([
        `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/libuv.so`,
        '/usr/lib/libuv.so',
        '/usr/local/lib/libuv.so',
        '/usr/local/lib/libuv.dylib',
        '/opt/homebrew/lib/libuv.dylib',
      ]),
    apt: 'libuv1-dev',
  },
  clang: { present: () => commandExists('clang++'), apt: 'clang' },
  libfuzzer: {
    // libFuzzer's runtime ships in the compiler-rt package matching clang.
    present: () => {
      const r = spawnSync('clang++', ['-print-resource-dir'], { encoding: 'utf8' });
      if (r.status !== 0) return false;
      const dir = path.join(r.stdout.trim(), 'lib', 'linux');
      return fs.existsSync(dir) && fs.readdirSync(dir).some((f) => f.startsWith('libclang_rt.fuzzer'));
    },
    apt: () => {
      const r = spawnSync('clang++', ['-dumpversion'], { encoding: 'utf8' });
      const major = r.status === 0 ? r.stdout.trim().split('.')[0] : '14';
      return `libclang-rt-${major}-dev`;
    },
  },
};

/** @typedef {keyof typeof requirements} RequirementName */

/**
 * Ensures every named requirement is present. As root with apt-get, missing
 * packages are installed (apt-get update once first); otherwise the process
 * exits with a message naming the packages to install.
 * @param {RequirementName[]} names
 * @param {string} what what needs them, for the messages
 */
function ensure(names, what) {
  const missing = () => names.filter((n) => !requirements[n].present());
  let lacking = missing();
  if (lacking.length === 0) return;
  /** @param {RequirementName} n */
  const aptOf = (n) => {
    /** @type {Requirement} */
    const r = requirements[n];
    return typeof r.apt === 'function' ? r.apt() : r.apt;
  };
  /** @param {RequirementName[]} list */
  const packagesOf = (list) => [...new Set(list.map(aptOf))];
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !commandExists('apt-get')) {
    console.error(
      `${what} needs ${lacking.join(', ')}, which this machine lacks.\n` +
        `Install the Debian/Ubuntu packages: sudo apt-get install -y ${packagesOf(lacking).join(' ')}\n` +
        "(macOS: brew install cmake libuv; elsewhere the same tools from the platform's package manager), then run this again.",
    );
    process.exit(1);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  console.log(`${what}: installing ${packagesOf(lacking).join(' ')} with apt-get (running as root)`);
  run('apt-get', ['update', '-qq'], { env });
  // Two rounds: the compiler-rt package is named after the clang just installed.
  for (let round = 0; round < 2 && lacking.length > 0; round++) {
    run('apt-get', ['install', '-y', '-qq', ...packagesOf(lacking)], { env });
    lacking = missing();
  }
  if (lacking.length > 0) {
    console.error(`${what}: still missing after apt-get: ${lacking.join(', ')}`);
    process.exit(1);
  }
}

/**
 * Runs a command with inherited output; exits with its status if it fails.
 * @param {string} cmd
 * @param {readonly string[]} args
 * @param {import('node:child_process').SpawnSyncOptions} [options]
 */
function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...options });
  if (r.error) {
    console.error(`${cmd}: ${r.error.message}`);
    process.exit(1);
  }
  if (r.status !== 0) {
    console.error(`command failed (${r.status ?? r.signal}): ${cmd} ${args.join(' ')}`);
    process.exit(r.status || 1);
  }
  return r;
}

/** Parallel jobs: the machine is shared, so at most 2. */
function jobs() {
  const fromEnv = Number(process.env.IOCPNET_BUILD_JOBS);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : 2;
}

/**
 * Configures and builds test/core into buildDir (sanitize: '', 'address' or
 * 'thread'), then runs ctest there. ctestArgs select tests (-R ...).
 * @param {{ buildDir: string, sanitize?: '' | 'address' | 'thread', ctestArgs?: string[], env?: NodeJS.ProcessEnv }} options
 */
function buildAndTestCore({ buildDir, sanitize = '', ctestArgs = [], env = process.env }) {
  ensure(['cmake', 'c++', 'make', 'libuv'], 'The C++ core tests');
  const generator = commandExists('ninja') ? ['-G', 'Ninja'] : [];
  const dir = path.join(root, buildDir);
  if (!fs.existsSync(path.join(dir, 'CMakeCache.txt'))) {
    run('cmake', ['-S', path.join(root, 'test', 'core'), '-B', dir, ...generator, `-DIOCPNET_SANITIZE=${sanitize}`]);
  } else {
    run('cmake', [dir, `-DIOCPNET_SANITIZE=${sanitize}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  run('cmake', ['--build', dir, '--parallel', String(jobs())]);
  run('ctest', ['--output-on-failure', ...ctestArgs], { cwd: dir, env });
}

module.exports = { root, ensure, run, jobs, commandExists, buildAndTestCore };
