import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');

/** A throw-away package folder with the real package.json and the real check, and the prebuilds given. */
function packageWith(prebuilds: Record<string, Buffer>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iocpnet-release-'));
  fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  fs.mkdirSync(path.join(dir, 'scripts', 'release'), { recursive: true });
  fs.copyFileSync(path.join(root, 'scripts', 'release', 'check-prebuilds.js'), path.join(dir, 'scripts', 'release', 'check-prebuilds.js'));
  for (const [file, bytes] of Object.entries(prebuilds)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), bytes);
  }
  return dir;
}

/** What npm runs before `npm publish`. */
function prepublish(dir: string): { status: number | null; output: string } {
  const r = spawnSync('npm', ['run', '--silent', 'prepublishOnly'], { cwd: dir, encoding: 'utf8', timeout: 60000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('publishing refuses a package without loadable prebuilds', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it('names every missing platform', () => {
    const dir = packageWith({});
    dirs.push(dir);
    const r = prepublish(dir);
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/refusing to publish/);
    expect(r.output).toMatch(/prebuilds\/linux-x64 holds no \.node file/);
    expect(r.output).toMatch(/prebuilds\/win32-x64 holds no \.node file/);
    expect(r.output).toMatch(/npm run prebuild/);
  });

  it.runIf(process.platform === 'linux' && process.arch === 'x64')('refuses a linux-x64 binary that does not load', () => {
    const dir = packageWith({ 'prebuilds/linux-x64/iocpnet.uv1.glibc.node': Buffer.from('not an ELF file') });
    dirs.push(dir);
    const r = prepublish(dir);
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/prebuilds\/linux-x64\/iocpnet\.uv1\.glibc\.node does not load/);
  });

  it.runIf(process.platform === 'linux' && process.arch === 'x64')('accepts the linux-x64 binary this checkout built', () => {
    const built = path.join(root, 'build', 'Release', 'iocpnet.node');
    const dir = packageWith({ 'prebuilds/linux-x64/iocpnet.uv1.glibc.node': fs.readFileSync(built) });
    dirs.push(dir);
    const r = prepublish(dir);
    expect(r.output).toMatch(/prebuilds\/linux-x64\/iocpnet\.uv1\.glibc\.node loads/);
    // Windows is still missing, so publishing is refused all the same.
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/prebuilds\/win32-x64 holds no \.node file/);
  });
});
