#!/usr/bin/env node
// Checks the C++ sources against .clang-format: native/, binding/, test/core/,
// test/fuzz/*.cpp, bench/loadgen/ and bench/reference/. Exits 1 when a file would change, 2
// when clang-format is missing or too old.
//
// Usage: node scripts/lint/clang-format-check.js [--fix] [file ...]
//   --fix   rewrites the files in place instead of checking them
//   file    checks only these files (default: every C++ file of the folders above)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
// Folders searched recursively, and folders of which only the top level counts.
const TREES = ['native', 'binding', 'test/core', 'bench/loadgen', 'bench/reference'];
const FLAT = ['test/fuzz'];
const SOURCE = /\.(?:c|cc|cpp|cxx|h|hh|hpp)$/;
const SOURCE_FLAT = /\.cpp$/;
// .clang-format uses options of clang-format 14 (AllIfsAndElse, SortPriority).
const MIN_MAJOR = 14;
const BINARY = process.env.CLANG_FORMAT || 'clang-format';

function installHint() {
  return (
    `Install clang-format ${MIN_MAJOR} or later: on Debian/Ubuntu \`apt-get install clang-format\`, ` +
    'on macOS `brew install clang-format`, on Windows the LLVM installer. ' +
    'Or set CLANG_FORMAT to the binary to use.'
  );
}

/**
 * Adds the files under dir whose names match pattern to out.
 * @param {string} dir
 * @param {RegExp} pattern
 * @param {boolean} recursive
 * @param {string[]} out
 */
function walk(dir, pattern, recursive, out) {
  if (!fs.existsSync(dir)) return;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (recursive) walk(full, pattern, recursive, out);
    } else if (pattern.test(entry.name)) {
      out.push(full);
    }
  }
}

function defaultFiles() {
  /** @type {string[]} */
  const files = [];
  for (const d of TREES) walk(path.join(root, d), SOURCE, true, files);
  for (const d of FLAT) walk(path.join(root, d), SOURCE_FLAT, false, files);
  return files.sort();
}

function checkVersion() {
  const r = spawnSync(BINARY, ['--version'], { encoding: 'utf8' });
  if (r.error) {
    console.error(`clang-format-check: cannot run ${BINARY} (${/** @type {NodeJS.ErrnoException} */ (r.error).code ?? r.error.message}).\n${installHint()}`);
    process.exit(2);
  }
  const major = Number(/version (\d+)/.exec(r.stdout)?.[1]);
  if (!(major >= MIN_MAJOR)) {
    console.error(`clang-format-check: ${r.stdout.trim()} is older than ${MIN_MAJOR}.\n${installHint()}`);
    process.exit(2);
  }
  return r.stdout.trim();
}

function main() {
  const args = process.argv.slice(2);
  const fix = args.includes('--fix');
  const named = args.filter((a) => a !== '--fix').map((f) => path.resolve(f));
  const files = named.length > 0 ? named : defaultFiles();
  const version = checkVersion();
  const mode = fix ? ['-i'] : ['--dry-run', '--Werror'];
  const r = spawnSync(BINARY, [...mode, '--style=file', ...files], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  process.stderr.write(r.stderr);
  /** @param {string} f */
  const rel = (f) => path.relative(root, f);
  if (fix) {
    console.log(`clang-format-check: formatted ${files.length} files (${version}).`);
    process.exit(r.status === 0 ? 0 : 1);
  }
  if (r.status !== 0) {
    // Each finding names its file: "path:line:col: error: code should be clang-formatted".
    const bad = new Set();
    for (const line of r.stderr.split('\n')) {
      const m = /^(.+?):\d+:\d+: error:/.exec(line);
      if (m) bad.add(rel(path.resolve(root, m[1])));
    }
    console.error(
      `clang-format-check: ${bad.size || 'some'} of ${files.length} files are not formatted` +
        (bad.size ? `:\n  ${[...bad].sort().join('\n  ')}` : '.') +
        `\nFix: node scripts/lint/clang-format-check.js --fix ${bad.size ? [...bad].sort().join(' ') : ''}`.trimEnd(),
    );
    process.exit(1);
  }
  console.log(`clang-format-check: ${files.length} files formatted (${version}).`);
}

main();
