/**
 * Starting and stopping the processes of one benchmark run: the server
 * under test and the load generator. Each run gets a fresh server, so its
 * peak memory and CPU belong to that run alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';
import type { LoadgenReport } from './scenarios';

const LISTENING = /listening on (\S+):(\d+)/;
const KEEP_LINES = 30;

export interface ServerProcess {
  pid: number;
  host: string;
  port: number;
  /** The last lines the server printed, for error messages. */
  output: string[];
  stop(): Promise<void>;
}

function remember(lines: string[], line: string): void {
  lines.push(line);
  if (lines.length > KEEP_LINES) lines.shift();
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), graceMs);
  });
  const timedOut = await Promise.race([done.then(() => false), late]);
  clearTimeout(timer);
  if (timedOut) {
    child.kill('SIGKILL');
    await done;
  }
}

/**
 * Spawns `command...` (node and a script, or the reference server) with the
 * open-file limit raised (10,000 connections need more than the usual 1024),
 * on the given CPUs when cpus is set (taskset -c), and waits for the line
 * "listening on HOST:PORT".
 */
export async function startServer(command: string[], cpus?: string, timeoutMs = 20000): Promise<ServerProcess> {
  // bash execs taskset, which execs the server: the pid is the server's and the raised limit is inherited.
  const pinned = cpus === undefined ? command : ['taskset', '-c', cpus, ...command];
  const child = spawn('bash', ['-c', 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"', 'bash', ...pinned], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const script = command.join(' ');
  const output: string[] = [];
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start the server (${script})`);

  const address = await new Promise<{ host: string; port: number }>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => finish(new Error(`the server did not print "listening on HOST:PORT" within ${timeoutMs} ms`)), timeoutMs);
    const finish = (err: Error | undefined, value?: { host: string; port: number }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else if (value) resolve(value);
    };
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      remember(output, line);
      const m = LISTENING.exec(line);
      if (m) {
        const host = m[1] === '0.0.0.0' || m[1] === '::' ? '127.0.0.1' : m[1];
        finish(undefined, { host, port: Number(m[2]) });
      }
    });
    readline.createInterface({ input: child.stderr }).on('line', (line) => remember(output, line));
    child.once('error', (err) => finish(err));
    child.once('exit', (code, signal) => finish(new Error(`the server exited (${signal ?? `code ${code}`}) before listening`)));
  }).catch(async (err: Error) => {
    await stopChild(child, 2000);
    throw new Error(`${err.message}\n  ${script}\n  ${output.join('\n  ')}`);
  });

  return {
    pid,
    host: address.host,
    port: address.port,
    output,
    stop: () => stopChild(child, 10000),
  };
}

export interface LoadgenResult {
  report: LoadgenReport;
  stderr: string[];
}

/**
 * Runs the load generator to its end. onPhase is called for each "@..."
 * line of its stderr as it arrives (ready, measure-start, measure-end).
 */
export function runLoadgen(binary: string, args: string[], timeoutMs: number, onPhase: (phase: string) => void, cpus?: string): Promise<LoadgenResult> {
  return new Promise((resolve, reject) => {
    const child =
      cpus === undefined
        ? spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('taskset', ['-c', cpus, binary, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const stderr: string[] = [];
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
    });
    readline.createInterface({ input: child.stderr }).on('line', (line) => {
      if (line.startsWith('@')) onPhase(line.slice(1).split(' ')[0]);
      else remember(stderr, line);
    });
    const timer = setTimeout(() => {
      remember(stderr, `(killed after ${timeoutMs} ms)`);
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop() ?? '';
      let report: LoadgenReport | undefined;
      try {
        report = JSON.parse(line) as LoadgenReport;
      } catch {
        report = undefined;
      }
      if (!report || code !== 0) {
        const why = report?.error ?? (signal ? `killed by ${signal}` : `exit code ${code}`);
        reject(new Error(`the load generator failed: ${why}\n  ${[binary, ...args].join(' ')}\n  ${stderr.join('\n  ')}`));
        return;
      }
      resolve({ report, stderr });
    });
  });
}
