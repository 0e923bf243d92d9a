#!/usr/bin/env node
// Cross-builds the win32-x64 addon (the IOCP engine) with mingw-w64 and puts
// it where node-gyp-build looks on Windows: prebuilds/win32-x64/.
//
// Node-API functions are imported from node.exe through an import library
// made from node-api-headers' def file; libgcc, libstdc++ and winpthread are
// linked in. The result is checked: a PE32+ DLL that exports
// napi_register_module_v1 and imports only from node.exe and Windows DLLs.
//
// Options: --debug (debug build), --clean (fresh build folder).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const tools = require('../wine/tools');

// DLLs a Windows installation always has; anything else would have to ship
// beside the addon.
const SYSTEM_DLLS = new Set(['kernel32.dll', 'ws2_32.dll', 'msvcrt.dll', 'advapi32.dll', 'user32.dll', 'ntdll.dll']);

/**
 * What objdump says about a PE file: its format, the DLLs it imports, its exports.
 * @param {string} file
 */
function inspect(file) {
  const r = spawnSync(`${tools.mingwPrefix}-objdump`, ['-p', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`objdump -p ${file} failed: ${r.stderr}`);
  const text = r.stdout;
  const format = /file format (\S+)/.exec(text)?.[1] ?? '?';
  const magic = /^Magic\s+(\S+)/m.exec(text)?.[1] ?? '?';
  const dlls = [...text.matchAll(/^\s*DLL Name: (\S+)/gm)].map((m) => m[1]);
  // The export table lists "[ordinal] name" rows under "[Ordinal/Name Pointer] Table".
  const table = text.split('[Ordinal/Name Pointer] Table')[1] ?? '';
  const exports = [...table.matchAll(/^\s*\[\s*\d+\]\s+(\S+)/gm)].map((m) => m[1]);
  const characteristics = /^Characteristics\s+(\S+)/m.exec(text)?.[1] ?? '0';
  const isDll = (parseInt(characteristics, 16) & 0x2000) !== 0;
  return { format, magic, dlls, exports, isDll };
}

function main() {
  const args = process.argv.slice(2);
  const debug = args.includes('--debug');
  tools.ensureMingw();
  if (args.includes('--clean')) fs.rmSync(tools.buildDir, { recursive: true, force: true });
  fs.mkdirSync(tools.buildDir, { recursive: true });

  const headers = /** @type {{ include_dir: string, def_paths: { node_api_def: string } }} */ (
    require(require.resolve('node-api-headers', { paths: [tools.root] }))
  );
  const addonApi = path.dirname(require.resolve('node-addon-api/package.json', { paths: [tools.root] }));
  const importLib = path.join(tools.buildDir, 'libnode_api.a');
  // The def file names NODE.EXE: the addon binds to the executable that loads it.
  tools.run(`${tools.mingwPrefix}-dlltool`, ['-d', headers.def_paths.node_api_def, '-l', importLib]);

  const toolchain = path.join(tools.root, 'cmake', 'mingw-w64-x86_64.cmake');
  tools.run(
    'cmake',
    [
      '-S',
      tools.root,
      '-B',
      tools.buildDir,
      '-G',
      'Unix Makefiles',
      `-DCMAKE_TOOLCHAIN_FILE=${toolchain}`,
      `-DCMAKE_BUILD_TYPE=${debug ? 'Debug' : 'Release'}`,
      `-DCMAKE_JS_INC=${headers.include_dir}`,
      `-DCMAKE_JS_LIB=${importLib}`,
      `-DNODE_ADDON_API_DIR=${addonApi}`,
      '-DCMAKE_EXPORT_COMPILE_COMMANDS=ON',
    ],
    { cwd: tools.root },
  );
  tools.run('cmake', ['--build', tools.buildDir, '--parallel', String(Math.max(1, Math.min(2, require('node:os').cpus().length)))]);

  const built = path.join(tools.buildDir, 'iocpnet.node');
  if (!fs.existsSync(built)) throw new Error(`the build did not produce ${built}`);
  const info = inspect(built);
  const problems = [];
  if (info.format !== 'pei-x86-64' || info.magic !== '020b') problems.push(`not PE32+ x86-64 (format ${info.format}, magic ${info.magic})`);
  if (!info.isDll) problems.push('not a DLL');
  if (!info.exports.includes('napi_register_module_v1')) problems.push('napi_register_module_v1 is not exported');
  const foreign = info.dlls.filter((d) => d.toLowerCase() !== 'node.exe' && !SYSTEM_DLLS.has(d.toLowerCase()));
  if (foreign.length > 0) problems.push(`imports from non-system DLLs: ${foreign.join(', ')}`);
  if (problems.length > 0) throw new Error(`${built}: ${problems.join('; ')}`);

  fs.mkdirSync(tools.prebuildDir, { recursive: true });
  fs.copyFileSync(built, tools.prebuildFile);
  const size = fs.statSync(tools.prebuildFile).size;
  console.log(
    `win32-x64 addon: ${path.relative(tools.root, tools.prebuildFile)} (${(size / 1024).toFixed(0)} KiB, PE32+ DLL)\n` +
      `  exports: ${info.exports.join(', ')}\n` +
      `  imports: ${info.dlls.join(', ')}`,
  );
}

try {
  main();
} catch (err) {
  console.error(`\nbuild:win failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
