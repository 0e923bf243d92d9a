#!/usr/bin/env node
// Prints the closing line of a CI run, "N passed, N failed": the tests of
// every vitest JSON report given, plus one failure for each failed step
// named with --failed-step (a step whose own tests were not reported).
'use strict';
const fs = require('node:fs');

let passed = 0;
let failed = 0;
/** @type {string[]} */
const failedSteps = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--failed-step') {
    failedSteps.push(args[++i]);
    continue;
  }
  const file = args[i];
  if (!fs.existsSync(file)) continue;
  const report = /** @type {{ numPassedTests?: number, numFailedTests?: number }} */ (JSON.parse(fs.readFileSync(file, 'utf8')));
  passed += report.numPassedTests ?? 0;
  failed += report.numFailedTests ?? 0;
}
for (const step of failedSteps) console.log(`failed step: ${step}`);
failed += failedSteps.length;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
