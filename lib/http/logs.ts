import type { ChatServer } from '../chat/chat-server';
import { HandlerError, IocpnetError } from '../server/errors';
import type { Server } from '../server/server';
import type { Logger } from './logger';

/** The packet id of a router's handler error ('packet 203'), if the event names one. */
function packetIdOf(event: string): number | undefined {
  const m = /^packet (\d+)$/.exec(event);
  return m === null ? undefined : Number(m[1]);
}

/**
 * Logs target's events to logger: handler errors at error (with the
 * connection id, the packet id and the stack), the cluster's Redis faults
 * (ECLUSTERREDIS, ECLUSTERLOST) at warn, listen and close at info, and,
 * when debug is enabled, every connect and disconnect. The 'error' listener
 * it adds replaces the default printing to the console. Returns a function
 * that removes every listener it added.
 */
export function attachLogger(target: Server | ChatServer, logger: Logger): () => void {
  // A ChatServer's server is a Server<User>; only the event API is used here.
  const server: Server = 'router' in target ? target.server : target;
  const onError = (err: Error): void => {
    if (err instanceof HandlerError) {
      const packetId = packetIdOf(err.event);
      const cause = (err as { cause?: unknown }).cause;
      logger.error(
        { event: err.event, connectionId: err.connectionId, ...(packetId === undefined ? {} : { packetId }), err: cause instanceof Error ? cause : err },
        err.message,
      );
    } else if (err instanceof IocpnetError && err.code.startsWith('ECLUSTER')) {
      // Redis away or chats lost in a Redis restart: the cluster carries on, so a warning.
      logger.warn({ code: err.code, err }, err.message);
    } else {
      logger.error({ err }, err.message);
    }
  };
  const onListening = (address: { address: string; port: number }): void =>
    logger.info({ address: address.address, port: address.port, backend: server.backend }, `listening on ${address.address}:${address.port}`);
  const onClose = (): void => logger.info({}, 'closed');
  server.on('error', onError);
  server.on('listening', onListening);
  server.on('close', onClose);
  const debug = logger.isLevelEnabled === undefined || logger.isLevelEnabled('debug');
  const onConnect = (conn: { id: number; remoteAddress: string; remotePort: number }): void =>
    logger.debug({ connectionId: conn.id, remoteAddress: conn.remoteAddress, remotePort: conn.remotePort }, 'connect');
  const onDisconnect = (conn: { id: number }, reason: string): void => logger.debug({ connectionId: conn.id, reason }, 'disconnect');
  if (debug) {
    server.on('connect', onConnect);
    server.on('disconnect', onDisconnect);
  }
  return () => {
    server.off('error', onError);
    server.off('listening', onListening);
    server.off('close', onClose);
    server.off('connect', onConnect);
    server.off('disconnect', onDisconnect);
  };
}
