/**
 * The echo server of the benchmark: every application packet goes back to
 * its sender unchanged, through the public API, so the figure covers the
 * same path as any handler (batch in, send, flush).
 *
 *   node dist/bench/echo-server.js --backend native --port 0
 *
 * Prints "listening on HOST:PORT" once bound; SIGTERM or SIGINT closes it.
 */
import { Command, InvalidArgumentError } from 'commander';
import { createServer, type BackendName } from '../lib/index';

function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer in [${min}, ${max}]`);
    }
    return n;
  };
}

function backendName(value: string): BackendName {
  if (value !== 'native' && value !== 'js') throw new InvalidArgumentError("expected 'native' or 'js'");
  return value;
}

async function main(): Promise<void> {
  const program = new Command('echo-server')
    .description('iocpnet echo server for benchmarks')
    .option('--backend <name>', "'native' or 'js'", backendName, 'native' as BackendName)
    .option('--host <address>', 'address to bind', '127.0.0.1')
    .option('--port <n>', 'port to bind, 0 picks one', integer(0, 65535), 0)
    .option('--max-connections <n>', 'open connections at most', integer(1, 1_000_000), 20000)
    .option('--io-threads <n>', 'native IO threads (default: cores - 1)', integer(1, 64))
    .parse(process.argv);
  const opts = program.opts<{ backend: BackendName; host: string; port: number; maxConnections: number; ioThreads?: number }>();

  const server = createServer({
    backend: opts.backend,
    maxConnections: opts.maxConnections,
    ...(opts.ioThreads !== undefined ? { ioThreads: opts.ioThreads } : {}),
  });
  server.on('packet', (conn, packetId, body) => {
    conn.send(packetId, body);
  });
  server.on('error', (err) => console.error(err));
  const address = await server.listen(opts.port, opts.host);
  console.log(`echo server (${server.backend}) listening on ${address.address}:${address.port}`);

  let closing = false;
  const stop = (): void => {
    if (closing) return;
    closing = true;
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
