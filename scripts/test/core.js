#!/usr/bin/env node
// Builds the C++ tests of native/core and the libuv engine (test/core) into
// build-tests/ and runs them with CTest. Part of `npm test`.
// Needs cmake, a C++17 compiler and libuv's development files (libuv1-dev);
// as root they are installed with apt-get when missing, otherwise the script
// says what to install.
'use strict';
const { buildAndTestCore } = require('../../test/core/native-test-tools');

if (process.platform === 'win32') {
  console.log('test-core: the C++ core tests run on Linux and macOS; skipped on Windows.');
  process.exit(0);
}
buildAndTestCore({ buildDir: 'build-tests', ctestArgs: process.argv.slice(2) });
