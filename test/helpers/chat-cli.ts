import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CLI = path.join(ROOT, 'dist', 'lib', 'cli.js');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Compiles the package when dist/lib/cli.js is missing or older than a source in lib/. */
export function ensureBuilt(): void {
  const built = fs.existsSync(CLI) ? fs.statSync(CLI).mtimeMs : 0;
  if (built >= newestSource(path.join(ROOT, 'lib'))) return;
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
    cwd: ROOT,
    stdio: 'pipe',
    timeout: 180_000,
  });
}

/** Removes terminal escape sequences and carriage returns from what a program wrote to a terminal. */
export function plain(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
}

/**
 * A spawned process whose output is collected; waitOutput() and waitExit()
 * are bounded in time.
 */
export class Spawned {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  exitCode: number | null = null;
  signal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;

  constructor(command: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
    this.proc = spawn(command, args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout?.setEncoding('utf8').on('data', (s: string) => (this.stdout += s));
    this.proc.stderr?.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exitCode = code;
        this.signal = signal;
      });
      // 'close' comes after the output streams are drained.
      this.proc.on('close', () => resolve());
    });
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Resolves with the match once the plain stdout matches re. */
  waitOutput(re: RegExp, timeoutMs = 10000): Promise<RegExpMatchArray> {
    return this.#wait(() => this.stdout, re, timeoutMs);
  }

  /** Resolves with the match once the plain stderr matches re. */
  waitErrorOutput(re: RegExp, timeoutMs = 10000): Promise<RegExpMatchArray> {
    return this.#wait(() => this.stderr, re, timeoutMs);
  }

  async #wait(text: () => string, re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = plain(text()).match(re);
      if (m) return m;
      if (Date.now() > deadline || !this.running) {
        throw new Error(`no ${re} in output (running=${this.running}):\n--- stdout\n${plain(this.stdout)}\n--- stderr\n${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async waitExit(timeoutMs = 10000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const outcome = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') throw new Error(`process did not exit within ${timeoutMs} ms\n--- stdout\n${plain(this.stdout)}\n--- stderr\n${this.stderr}`);
    return this.exitCode;
  }

  type(line: string): void {
    this.proc.stdin?.write(`${line}\n`);
  }

  kill(): void {
    if (this.running) this.proc.kill('SIGKILL');
  }
}

/** Runs the compiled CLI. */
export function runCli(args: string[]): Spawned {
  return new Spawned(process.execPath, [CLI, ...args]);
}

/** Runs the compiled CLI under a pseudo-terminal (util-linux script), as a person at a terminal would. */
export function runCliInTerminal(args: string[]): Spawned {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, CLI, ...args].map(quote).join(' ');
  return new Spawned('script', ['-qfec', command, '/dev/null'], { ...process.env, TERM: 'xterm' });
}
