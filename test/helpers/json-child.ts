import { spawn, type ChildProcess } from 'node:child_process';
import { waitUntil } from './engine-harness';

/**
 * A server child process that speaks in JSON lines on stdout: one `{ port }`
 * line once it listens, then one line in answer to each line written to its
 * stdin. Closing its stdin asks it to stop.
 */
export class JsonLineChild {
  port = 0;
  stderr = '';
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly #lines: string[] = [];

  protected constructor(command: string, args: string[]) {
    this.proc = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let buf = '';
    this.proc.stdout?.setEncoding('utf8').on('data', (s: string) => {
      buf += s;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        this.#lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    this.proc.stderr?.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
  }

  /** Waits for the `{ port }` line. */
  protected async listening(): Promise<void> {
    await waitUntil(() => this.#lines.length > 0 || this.proc.exitCode !== null, 20000, 'the child to listen');
    if (this.#lines.length === 0) throw new Error(`the child exited: ${this.stderr}`);
    this.port = (JSON.parse(this.#lines.shift() as string) as { port: number }).port;
  }

  /** Writes one line and resolves with the child's JSON answer. */
  protected async ask<T>(request: string, what: string): Promise<T> {
    this.proc.stdin?.write(`${request}\n`);
    await waitUntil(() => this.#lines.length > 0, 10000, what);
    return JSON.parse(this.#lines.shift() as string) as T;
  }

  alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Closes stdin and waits for the exit; SIGKILL after 10 s. */
  async stop(): Promise<void> {
    if (!this.alive()) return;
    this.proc.stdin?.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(timer);
  }
}
