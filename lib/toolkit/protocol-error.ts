import { IocpnetError } from '../server/errors';

/**
 * A peer broke an application-level layout, for example a body longer than
 * its struct. A handler throws it; the PacketRouter then closes that
 * connection with DISCONNECT_NOTIFY(PROTOCOL_ERROR) and nothing else.
 */
export class ProtocolError extends IocpnetError {
  constructor(message: string) {
    super('ERR_PROTOCOL', message);
    this.name = 'ProtocolError';
  }
}
