import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONTRACT_HEADER, renderContractHeader } from '../scripts/codegen/contract-header';
import { DISCONNECT_REASONS, ENGINE_OPTIONS, STATS_FIELDS, THREAD_STATS_FIELDS } from '../lib/contract';
import { createServer, DEFAULT_OPTIONS } from '../lib/index';

const root = path.resolve(__dirname, '..');

describe('the one contract (lib/contract.ts)', () => {
  it('native/core/contract.h is the header generated from it (run `npm run codegen` after editing the contract)', () => {
    const onDisk = fs.readFileSync(path.join(root, CONTRACT_HEADER), 'utf8');
    expect(onDisk).toBe(renderContractHeader());
  });

  it('no other C++ file defines a contract value by hand', () => {
    const names = ['kHeaderSize', 'kPingId', 'kFirstAppPacketId', 'kCloseReasonCount', 'enum class CloseReason', 'enum class NotifyCode'];
    const folders = ['native', 'binding'];
    const offenders: string[] = [];
    const visit = (dir: string): void => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) visit(file);
        else if (/\.(h|cpp)$/.test(entry.name) && path.relative(root, file) !== CONTRACT_HEADER) {
          const text = fs.readFileSync(file, 'utf8');
          for (const name of names) {
            if (new RegExp(`(constexpr[^;\\n]*\\b${name}\\b\\s*=|${name}\\s*[:{])`).test(text)) offenders.push(`${file}: ${name}`);
          }
        }
      }
    };
    for (const folder of folders) visit(path.join(root, folder));
    expect(offenders).toEqual([]);
  });

  it('the server defaults are the contract defaults', () => {
    for (const [name, spec] of Object.entries(ENGINE_OPTIONS)) {
      if ('default' in spec) expect(DEFAULT_OPTIONS[name as keyof typeof DEFAULT_OPTIONS], name).toBe(spec.default);
    }
  });

  it('the native stats array has the contract layout, and stats() names every field', async () => {
    const server = createServer({ backend: 'native', ioThreads: 1 });
    try {
      await server.listen(0, '127.0.0.1');
      const stats = server.stats();
      expect(Object.keys(stats).sort()).toEqual([...STATS_FIELDS, 'closes', 'threads'].sort());
      expect(Object.keys(stats.closes)).toEqual([...DISCONNECT_REASONS]);
      for (const field of STATS_FIELDS) expect(typeof stats[field], field).toBe('number');
      expect(stats.threads).toHaveLength(1);
      expect(Object.keys(stats.threads[0])).toEqual([...THREAD_STATS_FIELDS]);
    } finally {
      await server.close();
    }
  });

  it('the js backend reports the same stats fields', async () => {
    const server = createServer({ backend: 'js' });
    try {
      await server.listen(0, '127.0.0.1');
      const stats = server.stats();
      expect(Object.keys(stats).sort()).toEqual([...STATS_FIELDS, 'closes', 'threads'].sort());
      expect(Object.keys(stats.closes)).toEqual([...DISCONNECT_REASONS]);
      expect(stats.threads).toHaveLength(1);
      expect(Object.keys(stats.threads[0]).sort()).toEqual([...THREAD_STATS_FIELDS].sort());
    } finally {
      await server.close();
    }
  });
});
