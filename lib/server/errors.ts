/**
 * Errors with a stable `code`, like Node's system errors.
 */
export class IocpnetError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'IocpnetError';
    this.code = code;
  }
}

/**
 * A handler threw, or the promise it returned rejected; `cause` holds the
 * reason, `event` the event, `connectionId` the connection (-1 for events of
 * the server itself, such as 'listening').
 */
export class HandlerError extends IocpnetError {
  readonly event: string;
  readonly connectionId: number;
  constructor(event: string, connectionId: number, cause: unknown) {
    super('EHANDLER', `a '${event}' handler threw: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'HandlerError';
    this.event = event;
    this.connectionId = connectionId;
    (this as { cause?: unknown }).cause = cause;
  }
}
