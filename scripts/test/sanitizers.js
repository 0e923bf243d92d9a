#!/usr/bin/env node
// Sanitizer runs (Linux, gcc):
//   npm run test:asan  AddressSanitizer + UndefinedBehaviorSanitizer: the C++
//                      tests (leak checks on) in build-tests-asan/, then the
//                      addon built into build-asan/ and the vitest suites on it.
//   npm run test:tsan  ThreadSanitizer: the C++ tests, engine test included,
//                      in build-tests-tsan/, the engine test three times.
// Any sanitizer report fails the run.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { root, ensure, run, jobs, buildAndTestCore } = require('../../test/core/native-test-tools');

const mode = process.argv[2];
const extra = process.argv.slice(3);
if (mode !== '--asan' && mode !== '--tsan') {
  console.error('usage: node scripts/test/sanitizers.js --asan|--tsan [vitest arguments]');
  process.exit(2);
}
if (process.platform !== 'linux') {
  console.error('test-sanitizers: the sanitizer runs need Linux with gcc.');
  process.exit(1);
}

const ubsanOptions = 'print_stacktrace=1:halt_on_error=1';

/** @param {string} name */
function sanitizerRuntime(name) {
  const r = spawnSync('gcc', [`-print-file-name=${name}`], { encoding: 'utf8' });
  const file = r.status === 0 ? r.stdout.trim() : '';
  if (!file || !path.isAbsolute(file) || !fs.existsSync(file)) {
    console.error(`test-sanitizers: gcc does not know ${name}; install gcc's sanitizer runtimes (Debian: libasan8, libubsan1).`);
    process.exit(1);
  }
  return file;
}

function tsan() {
  buildAndTestCore({
    buildDir: 'build-tests-tsan',
    sanitize: 'thread',
    // Races show up by chance: the engine test runs three times.
    ctestArgs: ['--repeat', 'until-fail:3'],
    env: { ...process.env, TSAN_OPTIONS: 'halt_on_error=1:second_deadlock_stack=1' },
  });
  console.log('test:tsan: ThreadSanitizer found nothing.');
}

function asan() {
  const started = Date.now();
  buildAndTestCore({
    buildDir: 'build-tests-asan',
    sanitize: 'address',
    env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:strict_string_checks=1', UBSAN_OPTIONS: ubsanOptions },
  });
  console.log(`test:asan: C++ tests clean (${Math.round((Date.now() - started) / 1000)} s)`);

  // The addon, built like scripts/package/build-native.js does, with the sanitizers on.
  // cmake-js sets CMAKE_CXX_FLAGS itself, so the flags go in the Release set.
  const flags = '-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer';
  const nodeInclude = path.resolve(path.dirname(process.execPath), '..', 'include', 'node');
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  const args = [
    cmakeJs,
    'compile',
    '--out',
    'build-asan',
    '--parallel',
    String(jobs()),
    `--CDCMAKE_CXX_FLAGS_RELEASE=${flags}`,
    `--CDCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined`,
  ];
  if (fs.existsSync(path.join(nodeInclude, 'uv.h'))) args.push(`--CDNODE_INCLUDE_DIR=${nodeInclude}`);
  run(process.execPath, args);
  const addon = path.join(root, 'build-asan', 'Release', 'iocpnet.node');
  // An addon that only links the runtime would pass without checking anything.
  const symbols = spawnSync('nm', ['-D', addon], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (symbols.status !== 0 || !/__asan_report_load/.test(symbols.stdout)) {
    console.error(`test:asan: ${addon} is missing or not instrumented by AddressSanitizer`);
    process.exit(1);
  }

  // Node itself is not instrumented: the ASan runtime is preloaded, and leak
  // checking is off for the node process (V8 keeps memory until exit).
  const preload = [sanitizerRuntime('libasan.so'), sanitizerRuntime('libubsan.so')].join(':');
  const env = {
    ...process.env,
    LD_PRELOAD: preload,
    ASAN_OPTIONS: 'detect_leaks=0:allow_user_segv_handler=1:detect_odr_violation=0',
    UBSAN_OPTIONS: ubsanOptions,
    IOCPNET_NATIVE_PATH: addon,
    // Tells suites that memory figures mean nothing here (ASan's quarantine
    // holds freed memory); leaks are LeakSanitizer's job in the C++ tests.
    IOCPNET_SANITIZER: 'asan',
    // The instrumented code is the addon: the js backend's runs would only
    // slow the suite down under the preloaded runtime.
    IOCPNET_BACKENDS: 'native',
  };
  const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
  const r = spawnSync(process.execPath, [vitest, 'run', ...extra], {
    cwd: root,
    env,
    stdio: ['ignore', 'inherit', 'pipe'],
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  });
  process.stderr.write(r.stderr ?? '');
  // A report from a forked test worker may not fail vitest by itself.
  const reported = /ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer/.test(r.stderr ?? '');
  if (r.status !== 0 || reported) {
    console.error(`test:asan: the vitest suites on the ASan addon failed (status ${r.status ?? r.signal}${reported ? ', sanitizer report above' : ''})`);
    process.exit(1);
  }
  console.log(`test:asan: C++ tests and vitest suites on the ASan + UBSan addon clean (${Math.round((Date.now() - started) / 1000)} s)`);
}

ensure(['cmake', 'c++', 'make', 'libuv'], 'The sanitizer runs');
if (mode === '--tsan') tsan();
else asan();
