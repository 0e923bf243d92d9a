// The README's code, as a user copies it: every TypeScript block compiles with
// tsc (strict, skipLibCheck false) as an ES module and as CommonJS against the
// built package, and the quick start's server and client run against each
// other in both module kinds and as the plain CommonJS JavaScript its comment
// promises.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeConsumerTsconfig } from '../scripts/test/consumer-tsconfig';
import { ROOT, Spawned, ensureBuilt } from './helpers/chat-cli';

/** A block that cannot compile alone says so on a line of its own before its fence. */
const FRAGMENT_MARK = '<!-- fragment -->';
/** Most blocks must compile; a README that needs more fragments than this has drifted into pseudo-code. */
const MAX_FRAGMENTS = 1;
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const COMPILE_TIMEOUT_MS = 120_000;
const STEP_TIMEOUT_MS = 15_000;

interface CodeBlock {
  /** 1-based line of the opening fence in README.md. */
  line: number;
  lang: string;
  /** The `## ` heading the block sits under. */
  section: string;
  fragment: boolean;
  code: string;
}

/** The fenced code blocks of a Markdown text (``` or ~~~, indented or not). */
function codeBlocks(markdown: string): CodeBlock[] {
  const lines = markdown.split('\n');
  const blocks: CodeBlock[] = [];
  let section = '';
  for (let i = 0; i < lines.length; i++) {
    const heading = /^## +(.*\S)/.exec(lines[i]);
    if (heading) section = heading[1];
    const open = /^( {0,3})(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    let previous = i - 1;
    while (previous >= 0 && lines[previous].trim() === '') previous--;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`);
      if (close.test(lines[j])) break;
      body.push(lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j]);
    }
    if (j === lines.length) throw new Error(`README.md:${i + 1}: the code block is never closed`);
    blocks.push({
      line: i + 1,
      lang: lang.toLowerCase(),
      section,
      fragment: previous >= 0 && lines[previous].trim() === FRAGMENT_MARK,
      code: `${body.join('\n')}\n`,
    });
    i = j;
  }
  return blocks;
}

type ModuleKind = 'esm' | 'cjs';
const KINDS: readonly ModuleKind[] = ['esm', 'cjs'];

const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const tsBlocks = codeBlocks(readme).filter((b) => b.lang === 'ts' || b.lang === 'typescript');
const compiledBlocks = tsBlocks.filter((b) => !b.fragment);
const quickStart = tsBlocks.filter((b) => b.section === 'Quick start');
const fileOf = (b: CodeBlock) => `readme-line-${b.line}`;

// One throw-away folder: node_modules/iocpnet is this checkout (its package.json
// "exports" and dist/), and @types/node is the checkout's, so nothing is installed.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'iocpnet-readme-'));
fs.mkdirSync(path.join(tmp, 'node_modules', '@types'), { recursive: true });
fs.symlinkSync(ROOT, path.join(tmp, 'node_modules', 'iocpnet'), 'dir');
fs.symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(tmp, 'node_modules', '@types', 'node'), 'dir');

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let built: Promise<void> | undefined;

/** dist/ as `npm run prepare` makes it: tsc's CommonJS output, then the ESM entry points. */
function ensurePrepared(): Promise<void> {
  built ??= Promise.resolve().then(() => {
    ensureBuilt();
    const cjs = path.join(ROOT, 'dist', 'lib', 'index.js');
    const esm = path.join(ROOT, 'dist', 'lib', 'index.mjs');
    if (fs.existsSync(esm) && fs.statSync(esm).mtimeMs >= fs.statSync(cjs).mtimeMs) return;
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'release', 'build-esm.js')], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`build-esm.js failed: ${r.stdout}${r.stderr}`);
  });
  return built;
}

interface Compiled {
  dir: string;
  status: number | null;
  output: string;
}

const compiles = new Map<ModuleKind, Promise<Compiled>>();

/** Writes every compilable block into a project of this module kind and runs tsc once over them. */
function compile(kind: ModuleKind): Promise<Compiled> {
  let result = compiles.get(kind);
  if (result) return result;
  result = ensurePrepared().then(() => {
    const dir = path.join(tmp, kind);
    fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ private: true, type: kind === 'esm' ? 'module' : 'commonjs' }));
    // Each block is a file of its own, whether or not it imports anything.
    writeConsumerTsconfig(dir, { moduleDetection: 'force', rootDir: 'src', outDir: 'out' }, { include: ['src/*.ts'] });
    for (const b of compiledBlocks) fs.writeFileSync(path.join(dir, 'src', `${fileOf(b)}.ts`), b.code);
    const r = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: dir, encoding: 'utf8', timeout: COMPILE_TIMEOUT_MS });
    const timedOut = r.error ? `\n${r.error.message}` : '';
    return { dir, status: r.status, output: `${r.stdout}${r.stderr}${timedOut}`.trim() };
  });
  compiles.set(kind, result);
  return result;
}

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** What the README says the client prints: the bytes in its comment. */
function expectedEcho(client: CodeBlock): string {
  const m = /console\.log\('echoed:', bytes\);\s*\/\/\s*(<Buffer [0-9a-f ]+>)/.exec(client.code);
  if (!m) throw new Error(`README.md:${client.line}: the client no longer says in a comment what it prints`);
  return `echoed: ${m[1]}`;
}

/**
 * Starts the server file with PORT set, runs the client file against it, then
 * stops the server with SIGINT: the README's whole quick start, every step bounded.
 */
async function runQuickStart(serverFile: string, clientFile: string, expected: string): Promise<void> {
  const port = await freePort();
  const env = { ...process.env, PORT: String(port) };
  const server = new Spawned(process.execPath, [serverFile], env);
  let client: Spawned | undefined;
  try {
    const listening = await server.waitOutput(/echo server listening on (\S+):(\d+)/, STEP_TIMEOUT_MS);
    expect(listening.slice(1)).toEqual(['127.0.0.1', String(port)]);

    client = new Spawned(process.execPath, [clientFile], env);
    const clientCode = await client.waitExit(STEP_TIMEOUT_MS);
    expect(client.stderr).toBe('');
    expect(clientCode, client.stdout).toBe(0);
    expect(client.stdout.trim()).toBe(expected);

    // The client ended its side; the server saw it arrive and leave.
    await server.waitOutput(/^hello 127\.0\.0\.1$/m, STEP_TIMEOUT_MS);
    await server.waitOutput(/^bye \d+ \S+$/m, STEP_TIMEOUT_MS);

    server.proc.kill('SIGINT');
    const serverCode = await server.waitExit(STEP_TIMEOUT_MS);
    expect(server.stderr).toBe('');
    expect(server.stdout).toMatch(/^closed$/m);
    expect(server.signal).toBeNull();
    expect(serverCode).toBe(0);
  } finally {
    client?.kill();
    server.kill();
  }
}

describe('README code blocks', () => {
  it('has TypeScript blocks, a quick start of one server and one client, and few fragments', () => {
    expect(tsBlocks.length).toBeGreaterThanOrEqual(3);
    expect(tsBlocks.filter((b) => b.fragment).length).toBeLessThanOrEqual(MAX_FRAGMENTS);
    expect(quickStart.map((b) => b.fragment)).toEqual([false, false]);
    const [server, client] = quickStart;
    expect(server.code).toMatch(/\bcreateServer\(/);
    expect(server.code).toMatch(/process\.env\.PORT/);
    expect(client.code).toMatch(/\bnet\.connect\(/);
    expect(client.code).toMatch(/process\.env\.PORT/);
    expect(expectedEcho(client)).toMatch(/^echoed: <Buffer/);
  });

  for (const kind of KINDS) {
    it(
      `every block compiles as ${kind === 'esm' ? 'an ES module' : 'CommonJS'} (strict, skipLibCheck false)`,
      async () => {
        const r = await compile(kind);
        expect(r.output).toBe('');
        expect(r.status).toBe(0);
        for (const b of compiledBlocks) expect(fs.existsSync(path.join(r.dir, 'out', `${fileOf(b)}.js`)), `README.md:${b.line}`).toBe(true);
      },
      COMPILE_TIMEOUT_MS + 60_000,
    );

    it(
      `the quick start runs as ${kind === 'esm' ? 'an ES module' : 'CommonJS'}: the client gets its bytes back, SIGINT closes the server`,
      async () => {
        const r = await compile(kind);
        expect(r.status, r.output).toBe(0);
        const [server, client] = quickStart;
        const out = (b: CodeBlock) => path.join(r.dir, 'out', `${fileOf(b)}.js`);
        await runQuickStart(out(server), out(client), expectedEcho(client));
      },
      COMPILE_TIMEOUT_MS + 5 * STEP_TIMEOUT_MS,
    );
  }

  it(
    'the quick start server runs as plain CommonJS JavaScript with the require() line its comment gives',
    async () => {
      const [server, client] = quickStart;
      const claim = /^import \{ createServer \} from 'iocpnet';\s*\/\/ plain CommonJS JavaScript: (const \{ createServer \} = require\('iocpnet'\);)$/m.exec(
        server.code,
      );
      expect(claim, 'the import line names its CommonJS equivalent').not.toBeNull();
      const plainJs = server.code.replace(claim![0], claim![1]);
      const dir = path.join(tmp, 'plain');
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, 'server.cjs');
      fs.writeFileSync(file, plainJs);
      const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: STEP_TIMEOUT_MS });
      expect(check.stderr, 'the copied code is valid JavaScript as it stands').toBe('');
      expect(check.status).toBe(0);

      await ensurePrepared();
      const r = await compile('cjs');
      expect(r.status, r.output).toBe(0);
      await runQuickStart(file, path.join(r.dir, 'out', `${fileOf(client)}.js`), expectedEcho(client));
    },
    COMPILE_TIMEOUT_MS + 5 * STEP_TIMEOUT_MS,
  );
});
