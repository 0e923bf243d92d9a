import { defineConfig } from 'vitest/config';

// The Windows suites: run by `npm run test:win` (scripts/test-win.js), which
// starts the server host in Windows Node under Wine and passes its address
// in IOCPNET_WIN_HOST. The clients run here, on Linux.
export default defineConfig({
  test: {
    include: ['test/win/**/*.test.ts'],
    testTimeout: 60000,
    hookTimeout: 60000,
    fileParallelism: false,
    pool: 'forks',
  },
});
