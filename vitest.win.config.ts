import * as path from 'node:path';
import { defineConfig } from 'vitest/config';

// The Windows suites: run by `npm run test:win` (scripts/test/win.js), which
// starts the server host in Windows Node under Wine and passes its address
// in IOCPNET_WIN_HOST. The clients run here, on Linux.
//
// Besides test/win, the shared black-box engine suites run too: their
// helper's server factory is swapped for one that starts the servers in the
// Wine host (test/win/raw-client-remote.ts), so the same checks that pass
// against the libuv engine run against the IOCP engine.
export default defineConfig({
  resolve: {
    alias: [{ find: /^\.\/(helpers\/)?raw-client$/, replacement: path.resolve(__dirname, 'test/win/raw-client-remote.ts') }],
  },
  test: {
    include: ['test/win/**/*.test.ts', 'test/engine-framing.test.ts', 'test/engine-limits.test.ts', 'test/flow-control.test.ts'],
    testTimeout: 60000,
    hookTimeout: 60000,
    fileParallelism: false,
    pool: 'forks',
  },
});
