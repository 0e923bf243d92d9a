import type { Backend, BackendSink } from '../backends/backend';
import { JsBackend } from '../backends/js/js-backend';
import { NativeBackend } from '../backends/native/native-backend';
import { Server } from './server';
import type { ResolvedServerOptions, ServerOptions } from './types';

function createBackend(options: ResolvedServerOptions, sink: BackendSink): Backend {
  // The addon itself is loaded only when a native server is created.
  return options.backend === 'js' ? new JsBackend(options, sink) : new NativeBackend(options, sink);
}

/** Creates a server; call listen() to start it. Options are validated here. */
export function createServer(options?: ServerOptions): Server {
  return new Server(options, createBackend);
}
