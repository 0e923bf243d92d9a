#!/usr/bin/env node
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { packageRoot } from './backends/native/addon';
import { addChatClientCommand } from './cli/chat-client';
import { addChatServerCommand } from './cli/chat-server';

/** Exit code of a usage error (unknown flag, bad value), as most command-line tools use. */
const EXIT_USAGE = 2;

function version(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export function buildProgram(): Command {
  const program = new Command('iocpnet')
    .description('TCP networking core for game servers: chat server and client')
    .version(version())
    .showHelpAfterError()
    // Help and --version end with 0; every usage error with EXIT_USAGE. Inherited by the subcommands below.
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE));
  addChatServerCommand(program);
  addChatClientCommand(program);
  return program;
}

if (require.main === module) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    });
}
