/**
 * Builds the C++ load generator (bench/loadgen, a standalone CMake project)
 * and the reference server (bench/reference, one file) into build-loadgen/
 * when a binary is missing or older than its sources.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const LOADGEN_NAME = 'iocpnet-loadgen';
export const REFERENCE_NAME = 'iocpnet-reference';

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

/** Returns the path of an up-to-date load generator, building it if needed; throws if the build fails. */
export function ensureLoadgen(root: string, log: (line: string) => void): string {
  const source = path.join(root, 'bench', 'loadgen');
  const buildDir = path.join(root, 'build-loadgen');
  const binary = path.join(buildDir, LOADGEN_NAME);
  const builtAt = fs.existsSync(binary) ? fs.statSync(binary).mtimeMs : 0;
  if (builtAt > 0 && builtAt >= newestSource(source)) return binary;

  log(`building the load generator into ${path.relative(root, buildDir) || buildDir} ...`);
  build(root, 'the load generator', [
    ['cmake', '-S', source, '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release'],
    ['cmake', '--build', buildDir, '--parallel', '2'],
  ]);
  return binary;
}

/** Returns the path of an up-to-date reference server, building it with g++ -O2 if needed; throws if the build fails. */
export function ensureReference(root: string, log: (line: string) => void): string {
  const source = path.join(root, 'bench', 'reference');
  const buildDir = path.join(root, 'build-loadgen');
  const binary = path.join(buildDir, REFERENCE_NAME);
  const builtAt = fs.existsSync(binary) ? fs.statSync(binary).mtimeMs : 0;
  if (builtAt > 0 && builtAt >= newestSource(source)) return binary;
  log(`building the reference server into ${path.relative(root, binary)} ...`);
  fs.mkdirSync(buildDir, { recursive: true });
  const cxx = process.env.CXX ?? 'g++';
  build(root, 'the reference server', [[cxx, '-O2', '-std=c++17', '-Wall', '-Wextra', '-o', binary, path.join(source, 'reference_server.cpp')]]);
  return binary;
}

function build(root: string, what: string, steps: string[][]): void {
  for (const [cmd, ...args] of steps) {
    const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8' });
    if (r.error || r.status !== 0) {
      const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
      throw new Error(
        `building ${what} failed (${[cmd, ...args].join(' ')}): ${r.error?.message ?? `exit ${r.status}`}\n${output}\n` +
          'It needs cmake 3.16+ and a C++17 compiler (Linux only).',
      );
    }
  }
}
