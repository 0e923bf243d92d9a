import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The Windows suites run against a server under Wine: npm run test:win.
    exclude: ['test/win/**', 'node_modules/**'],
    testTimeout: 30000,
    hookTimeout: 30000,
    // Network suites open many sockets; files run one at a time on this 2-core machine.
    fileParallelism: false,
    pool: 'forks',
  },
});
