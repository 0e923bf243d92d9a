/**
 * The logger the library writes to when it is handed one: pino's Logger fits
 * it, and so does any object with these methods. Without one the library
 * logs nothing.
 */
export interface Logger {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  /** pino's: lets per-connection events be skipped entirely below debug. */
  isLevelEnabled?(level: string): boolean;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  /** Default 'info'. */
  level?: LogLevel;
  /** 'json': one JSON object a line (pino's own); 'pretty': `HH:MM:SS.mmm LEVEL message key=value`. Default 'json'. */
  format?: LogFormat;
  /** Where the lines go. Default process.stdout. */
  destination?: { write(line: string): unknown };
}

const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** One pino JSON line as a short human line; what is not the time, level or message follows as key=value. */
export function prettyLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const { time, level, msg, pid: _pid, hostname: _hostname, err, ...rest } = rec;
  const t = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
  const name = typeof level === 'number' ? (LEVEL_NAMES[level] ?? String(level)) : String(level);
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const stack =
    err !== null && typeof err === 'object' && typeof (err as { stack?: unknown }).stack === 'string' ? `\n${(err as { stack: string }).stack}` : '';
  return `${t} ${name.padEnd(5)} ${typeof msg === 'string' ? msg : ''}${fields ? ` ${fields}` : ''}${stack}\n`;
}

/**
 * A pino logger, loaded on this call (an application that never asks for a
 * logger never loads pino). The CLI's --log-level and --log-format use it.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pino = require('pino') as typeof import('pino');
  const out = options.destination ?? process.stdout;
  const destination = options.format === 'pretty' ? { write: (line: string) => out.write(prettyLine(line)) } : out;
  return pino.pino({ level: options.level ?? 'info', base: { pid: process.pid } }, destination);
}
