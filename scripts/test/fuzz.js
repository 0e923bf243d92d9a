#!/usr/bin/env node
// Fuzzing: `npm run fuzz -- --seconds N [--target NAME ...]`.
//
// C++ targets (test/fuzz/fuzz_<name>.cpp) run under clang's libFuzzer with
// AddressSanitizer and UndefinedBehaviorSanitizer, built into build-fuzz/.
// The chat struct decoders are TypeScript, so they are fuzzed by a bounded
// mutational loop in Node (test/fuzz/chat-decoders.fuzz.ts, run by vitest).
// Each target runs for N seconds (default 30); the script prints executions
// per target and fails if any target crashed. A crash input is copied into
// test/fuzz/corpus/<target>/, where the C++ tests replay it from then on.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { root, ensure, run } = require('../../test/core/native-test-tools');

// The C++ targets, and the sources each links besides test/fuzz/fuzz_<name>.cpp.
/** @type {Record<string, string[]>} */
const cppTargets = {
  packet_assembler: ['native/core/packet_assembler.cpp'],
  outbound_batch: ['native/core/outbound_batch.cpp'],
  ws_handshake: ['native/core/ws_handshake.cpp', 'native/core/ws_crypto.cpp'],
  ws_frame: [],
};
const jsTargets = ['chat_decoders'];

/**
 * @typedef {object} FuzzResult
 * @property {string} target
 * @property {string} engine
 * @property {number} seconds
 * @property {number | undefined} execs
 * @property {number | undefined} execsPerSecond
 * @property {number | undefined} [newUnits]
 * @property {{ edges: number, features: number }} [coverage] the final coverage (C++ targets only)
 * @property {number} [corpus] inputs in the working corpus and the seeds
 * @property {string[]} crashes the inputs kept, or why the run failed
 * @property {boolean} ok
 */

/** @param {string[]} argv */
function parseArgs(argv) {
  /** @type {{ seconds: number, targets: string[], help?: boolean }} */
  const out = { seconds: 30, targets: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--seconds') out.seconds = Number(value());
    else if (a.startsWith('--seconds=')) out.seconds = Number(a.slice('--seconds='.length));
    else if (a === '--target') out.targets.push(value());
    else if (a === '--help' || a === '-h') out.help = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(out.seconds) || out.seconds < 1 || out.seconds > 86400) {
    throw new Error('--seconds must be an integer between 1 and 86400');
  }
  const all = [...Object.keys(cppTargets), ...jsTargets];
  for (const t of out.targets) if (!all.includes(t)) throw new Error(`unknown target ${t}; targets: ${all.join(', ')}`);
  if (out.targets.length === 0) out.targets = all;
  return out;
}

/** @param {string[]} files */
function newestMtime(files) {
  return Math.max(...files.map((f) => fs.statSync(f).mtimeMs));
}

/** @param {string} name */
function buildCppTarget(name) {
  const outDir = path.join(root, 'build-fuzz');
  fs.mkdirSync(outDir, { recursive: true });
  const binary = path.join(outDir, `fuzz_${name}`);
  const sources = [`test/fuzz/fuzz_${name}.cpp`, ...cppTargets[name]].map((s) => path.join(root, s));
  const headers = ['native/core', 'test/core'].flatMap((d) =>
    fs
      .readdirSync(path.join(root, d))
      .filter((f) => f.endsWith('.h'))
      .map((f) => path.join(root, d, f)),
  );
  if (fs.existsSync(binary) && fs.statSync(binary).mtimeMs > newestMtime([...sources, ...headers])) return binary;
  console.log(`fuzz: building ${path.relative(root, binary)}`);
  run('clang++', [
    '-std=c++17',
    '-g',
    '-O1',
    '-Wall',
    '-Wextra',
    '-fsanitize=fuzzer,address,undefined',
    '-fno-sanitize-recover=undefined',
    '-fno-omit-frame-pointer',
    ...sources,
    '-o',
    binary,
  ]);
  return binary;
}

/**
 * @param {string} name
 * @param {number} seconds
 * @returns {FuzzResult}
 */
function runCppTarget(name, seconds) {
  const binary = buildCppTarget(name);
  const seeds = path.join(root, 'test', 'fuzz', 'corpus', name);
  // New inputs go to a working corpus outside the repository; the seeds stay as committed.
  const work = path.join(root, 'build-fuzz', 'corpus', name);
  const artifacts = path.join(root, 'build-fuzz', 'artifacts', name);
  fs.mkdirSync(work, { recursive: true });
  fs.mkdirSync(artifacts, { recursive: true });
  const before = new Set(fs.readdirSync(artifacts));
  const r = spawnSync(
    binary,
    [
      `-max_total_time=${seconds}`,
      '-print_final_stats=1',
      '-timeout=10',
      '-rss_limit_mb=2048',
      '-max_len=70000',
      `-artifact_prefix=${artifacts}${path.sep}`,
      work,
      seeds,
    ],
    { encoding: 'utf8', env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1', UBSAN_OPTIONS: 'print_stacktrace=1' }, maxBuffer: 64 << 20 },
  );
  const log = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  /** @param {string} key */
  const stat = (key) => {
    const m = log.match(new RegExp(`stat::${key}:\\s+(\\d+)`));
    return m ? Number(m[1]) : undefined;
  };
  // The last status line holds the final coverage (edges) and features.
  const status = [...log.matchAll(/cov: (\d+) ft: (\d+)/g)].pop();
  const crashes = fs.readdirSync(artifacts).filter((f) => !before.has(f));
  /** @type {FuzzResult} */
  const result = {
    target: name,
    engine: 'libFuzzer + ASan + UBSan',
    seconds,
    execs: stat('number_of_executed_units'),
    execsPerSecond: stat('average_exec_per_sec'),
    newUnits: stat('new_units_added'),
    coverage: status ? { edges: Number(status[1]), features: Number(status[2]) } : undefined,
    corpus: fs.readdirSync(work).length + fs.readdirSync(seeds).length,
    crashes: [],
    ok: r.status === 0 && crashes.length === 0,
  };
  for (const c of crashes) {
    // Kept as a regression input, replayed by the C++ tests (fuzz_corpus.*).
    const dest = path.join(seeds, c);
    fs.copyFileSync(path.join(artifacts, c), dest);
    result.crashes.push(path.relative(root, dest));
  }
  if (!result.ok) {
    process.stderr.write(log.split('\n').slice(-80).join('\n'));
    if (crashes.length === 0) result.crashes.push(`exit status ${r.status ?? r.signal} without an artifact`);
  }
  return result;
}

/**
 * @param {string} name
 * @param {number} seconds
 * @returns {FuzzResult}
 */
function runJsTarget(name, seconds) {
  const report = path.join(root, 'build-fuzz', `${name}.json`);
  fs.mkdirSync(path.dirname(report), { recursive: true });
  fs.rmSync(report, { force: true });
  const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
  const r = spawnSync(process.execPath, [vitest, 'run', '--config', 'test/fuzz/vitest.fuzz.config.mts'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, IOCPNET_FUZZ_SECONDS: String(seconds), IOCPNET_FUZZ_REPORT: report },
  });
  // What test/fuzz/chat-decoders.fuzz.ts writes.
  /** @typedef {{ execs?: number, crashes?: string[] }} JsFuzzReport */
  /** @type {JsFuzzReport} */
  const data = fs.existsSync(report) ? /** @type {JsFuzzReport} */ (JSON.parse(fs.readFileSync(report, 'utf8'))) : {};
  return {
    target: name,
    engine: 'mutational loop in Node (TypeScript decoders)',
    seconds,
    execs: data.execs,
    execsPerSecond: data.execs ? Math.round(data.execs / seconds) : undefined,
    crashes: data.crashes ?? (r.status === 0 ? [] : [`vitest exit status ${r.status}`]),
    ok: r.status === 0,
  };
}

function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`fuzz: ${err instanceof Error ? err.message : String(err)}\nusage: npm run fuzz -- --seconds N [--target NAME ...]`);
    process.exit(2);
  }
  if (args.help) {
    console.log(`usage: npm run fuzz -- --seconds N [--target ${[...Object.keys(cppTargets), ...jsTargets].join('|')}]`);
    return;
  }
  if (args.targets.some((t) => t in cppTargets)) {
    if (process.platform !== 'linux') {
      console.error('fuzz: the libFuzzer targets need Linux with clang; use --target chat_decoders elsewhere.');
      process.exit(1);
    }
    ensure(['clang', 'libfuzzer'], 'Fuzzing');
  }
  const results = [];
  for (const t of args.targets) {
    console.log(`fuzz: ${t} for ${args.seconds} s`);
    results.push(t in cppTargets ? runCppTarget(t, args.seconds) : runJsTarget(t, args.seconds));
  }
  console.log('\ntarget            execs         execs/s   coverage          result');
  for (const r of results) {
    const result = r.ok ? 'ok' : `CRASH ${r.crashes.join(', ')}`;
    const cov = r.coverage ? `${r.coverage.edges} edges/${r.coverage.features} ft` : '-';
    console.log(`${r.target.padEnd(17)} ${String(r.execs ?? '?').padStart(12)}  ${String(r.execsPerSecond ?? '?').padStart(8)}   ${cov.padEnd(17)} ${result}`);
  }
  fs.writeFileSync(path.join(root, 'build-fuzz', 'summary.json'), JSON.stringify(results, null, 2));
  if (results.some((r) => !r.ok)) {
    console.error('\nfuzz: crashes were found; their inputs are now in test/fuzz/corpus/<target>/ and fail the C++ tests until fixed.');
    process.exit(1);
  }
}

main();
