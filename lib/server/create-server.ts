import type { Backend, BackendSink } from '../backends/backend';
import { JsBackend } from '../backends/js/js-backend';
import { NativeBackend } from '../backends/native/native-backend';
import { Server } from './server';
import type { ResolvedServerOptions, ServerOptions } from './types';

function createBackend(options: ResolvedServerOptions, sink: BackendSink): Backend {
  // The addon itself is loaded only when a native server is created.
  return options.backend === 'js' ? new JsBackend(options, sink) : new NativeBackend(options, sink);
}

/**
 * Creates a server; call listen() to start it. Options are validated here.
 * T is the type of the application's state in each connection's `data`.
 */
export function createServer<T = unknown>(options?: ServerOptions): Server<T> {
  return new Server<T>(options, createBackend);
}
