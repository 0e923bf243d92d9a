import { JsBackend } from './backends/js';
import { NativeBackend } from './backends/native';
import { Server } from './server';
import type { Backend, BackendSink, ResolvedServerOptions, ServerOptions } from './types';

export { Server, Connection, emptyStats } from './server';
export type { ServerEvents } from './server';
export { IocpnetError, HandlerError } from './errors';
export { DEFAULT_OPTIONS, defaultIoThreads } from './options';
export * from './protocol';
export * from './types';

function createBackend(options: ResolvedServerOptions, sink: BackendSink): Backend {
  // The addon itself is loaded only when a native server is created.
  return options.backend === 'js' ? new JsBackend(options, sink) : new NativeBackend(options, sink);
}

/** Creates a server; call listen() to start it. Options are validated here. */
export function createServer(options?: ServerOptions): Server {
  return new Server(options, createBackend);
}
export * from './chat/index';
