/**
 * Reads a process's CPU time and memory from /proc (Linux). Used around a
 * measurement to get the server's own cost: CPU is utime + stime of every
 * thread, memory is the resident set now (VmRSS) and at its peak (VmHWM).
 */
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';

let ticksPerSecond: number | undefined;

/** Clock ticks per second of /proc/PID/stat (CLK_TCK, almost always 100). */
export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/**
 * CPU seconds (user + system) the process used so far, all threads, or with
 * thread one thread's: the main thread's id is the pid, so thread = pid
 * gives the JS thread's. undefined if it is gone.
 */
export function cpuSeconds(pid: number, thread?: number): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses; fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return (utime + stime) / clockTicks();
}

/**
 * CPU seconds the whole machine spent in user and system mode so far (all
 * cores; interrupt time excluded), from /proc/stat.
 */
export function machineBusySeconds(): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync('/proc/stat', 'utf8');
  } catch {
    return undefined;
  }
  const fields = text.slice(0, text.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system] = fields;
  if (![user, nice, system].every(Number.isFinite)) return undefined;
  return (user + nice + system) / clockTicks();
}

export interface MemorySample {
  /** Resident set size now, in KiB. */
  rssKiB: number;
  /** Peak resident set size, in KiB. */
  hwmKiB: number;
}

/** Current and peak resident memory, or undefined if the process is gone. */
export function memory(pid: number): MemorySample | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const field = (name: string): number | undefined => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const rssKiB = field('VmRSS');
  const hwmKiB = field('VmHWM');
  if (rssKiB === undefined || hwmKiB === undefined) return undefined;
  return { rssKiB, hwmKiB };
}

export interface ProcessSample {
  atMs: number;
  cpuSeconds: number;
  /** The JS (main) thread's share of cpuSeconds. */
  jsThreadCpuSeconds?: number;
  /** machineBusySeconds() at the same moment. */
  machineCpuSeconds: number | undefined;
  rssKiB: number;
  hwmKiB: number;
}

/** CPU and memory of pid at this moment, or undefined if it is gone. */
export function sample(pid: number): ProcessSample | undefined {
  const cpu = cpuSeconds(pid);
  const mem = memory(pid);
  if (cpu === undefined || mem === undefined) return undefined;
  return { atMs: performance.now(), cpuSeconds: cpu, jsThreadCpuSeconds: cpuSeconds(pid, pid), machineCpuSeconds: machineBusySeconds(), ...mem };
}
