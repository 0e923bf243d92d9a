'use strict';
// The tsconfig.json of a TypeScript project that uses the installed package the way
// a user's project would: strict, nodenext, the package's own .d.ts checked
// (skipLibCheck false). test:pack and the README's code blocks compile against it.
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');

/**
 * Writes dir/tsconfig.json: the consumer's compiler options with `compilerOptions` laid over them, plus `rest`
 * (include, files).
 * @param {string} dir
 * @param {Record<string, unknown>} compilerOptions
 * @param {Record<string, unknown>} rest
 */
function writeConsumerTsconfig(dir, compilerOptions, rest) {
  const tsconfig = {
    compilerOptions: {
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'ES2022',
      lib: ['ES2022'],
      strict: true,
      skipLibCheck: false,
      types: ['node'],
      typeRoots: [path.join(root, 'node_modules', '@types')],
      ...compilerOptions,
    },
    ...rest,
  };
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
}

module.exports = { writeConsumerTsconfig };
