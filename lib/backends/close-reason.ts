import { DisconnectCode, type DisconnectReason } from '../contract';

/**
 * The reason a close is reported and counted under, decided here for both
 * backends. The engine may begin a close (the peer's FIN, an idle timeout, a
 * protocol error, the shutdown) that the JS thread has not been told of yet
 * while application code closes the same connection: for the application its
 * own close came first, so its reason wins, as long as the engine's close is
 * graceful and still waits to be reported. A close the engine made final at
 * once (a reset, a slow consumer, a drop) keeps its reason.
 */
export function reportedReason(engine: DisconnectReason, engineCloseGraceful: boolean, app: DisconnectReason | undefined): DisconnectReason {
  return app !== undefined && engineCloseGraceful ? app : engine;
}

/** The reason an application close reports: 'protocol_error' for DISCONNECT_NOTIFY(PROTOCOL_ERROR), else 'kicked'. */
export function appCloseReason(mode: 'close' | 'destroy', code: number): DisconnectReason {
  return mode === 'close' && code === DisconnectCode.PROTOCOL_ERROR ? 'protocol_error' : 'kicked';
}
