/**
 * Stands in for test/helpers/raw-client.ts when vitest.win.config.ts runs
 * the shared engine suites: with IOCPNET_WIN_HOST set, the native servers
 * those suites start run in the Wine host (the IOCP engine) and are driven
 * through RemoteServer, which mirrors the Server events, connections and
 * stats they check. Everything else is the real helper.
 */
import type { BackendName, Server, ServerOptions, Transport } from '../../lib/index';
import * as real from '../helpers/raw-client';
import { HostClient, winHostAddress } from './remote-server';

export { RawClient, frame, transports } from '../helpers/raw-client';
export type { Packet } from '../helpers/raw-client';

let shared: Promise<HostClient> | undefined;

function hostClient(): Promise<HostClient> {
  shared ??= HostClient.connect();
  return shared;
}

/** Under test:win only the native backend is of interest: the js one would run here, on Linux. */
export function backends(): BackendName[] {
  return winHostAddress() ? ['native'] : real.backends();
}

/** Every backend of backends() over every transport. */
export function backendsAndTransports(): Array<[BackendName, Transport]> {
  return backends().flatMap((b) => real.transports().map((t): [BackendName, Transport] => [b, t]));
}

export async function startServer(backend: BackendName, options: ServerOptions = {}): Promise<{ server: Server; port: number }> {
  if (backend !== 'native' || !winHostAddress()) return real.startServer(backend, options);
  const s = await (await hostClient()).start('plain', { ioThreads: 2, ...options }, { mirrorPackets: true });
  // RemoteServer has the part of Server's surface that black-box suites use.
  return { server: s as unknown as Server, port: s.port };
}

export async function startEchoServer(backend: BackendName, options: ServerOptions = {}): Promise<{ server: Server; port: number }> {
  if (backend !== 'native' || !winHostAddress()) return real.startEchoServer(backend, options);
  const s = await (await hostClient()).start('echo', { ioThreads: 2, ...options }, { mirrorPackets: true });
  return { server: s as unknown as Server, port: s.port };
}
