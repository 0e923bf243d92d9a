import { Server } from './server';
import type { Backend, BackendSink, ResolvedServerOptions, ServerOptions } from './types';

export { Server, Connection, emptyStats } from './server';
export type { ServerEvents } from './server';
export { IocpnetError, HandlerError } from './errors';
export { DEFAULT_OPTIONS, defaultIoThreads } from './options';
export * from './protocol';
export * from './types';

function createBackend(options: ResolvedServerOptions, sink: BackendSink): Backend {
  if (options.backend === 'js') {
    // Loaded lazily so that neither backend costs the other anything.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { JsBackend } = require('./backends/js') as typeof import('./backends/js');
    return new JsBackend(options, sink);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { NativeBackend } = require('./backends/native') as typeof import('./backends/native');
  return new NativeBackend(options, sink);
}

/** Creates a server; call listen() to start it. Options are validated here. */
export function createServer(options?: ServerOptions): Server {
  return new Server(options, createBackend);
}
