import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from './helpers/chat-cli';

const root = path.resolve(__dirname, '..');

beforeAll(() => ensureBuilt(), 200_000);

describe('the addon loader', () => {
  it('says what failed and what to do, and words the Node-API check so that it does not read as a mismatch', () => {
    const script = `
      const { createServer } = require(${JSON.stringify(path.join(root, 'dist', 'lib', 'index.js'))});
      createServer({ backend: 'native' }).listen(0, '127.0.0.1').then(
        () => { console.log('loaded'); process.exit(0); },
        (err) => console.log(JSON.stringify({ code: err.code, message: err.message })));`;
    const r = spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      env: { ...process.env, IOCPNET_NATIVE_PATH: path.join(root, 'no-such-dir', 'iocpnet.node') },
      timeout: 30000,
    });
    const { code, message } = JSON.parse(r.stdout.trim()) as { code: string; message: string };
    expect(code).toBe('ERR_NATIVE_LOAD');
    expect(message).toContain(`Node-API ${process.versions.napi} (the addon needs Node-API 8 or later, which this Node has)`);
    expect(message).toContain('IOCPNET_NATIVE_PATH=');
    expect(message).toMatch(/Fix: run `npm rebuild iocpnet --build-from-source`/);
  });
});
