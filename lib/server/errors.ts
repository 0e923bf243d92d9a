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

/** The words for the system errors a bind commonly meets, the same on every backend and platform. */
const LISTEN_FAILURES: Readonly<Record<string, string>> = {
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available on this machine',
  EACCES: 'permission denied (ports below 1024 need privileges on most systems)',
  ENOTSUP: 'reusePort (SO_REUSEPORT) is not available with this backend on this system',
};

/**
 * listen() failed for a reason of the system's, such as EADDRINUSE. Both
 * backends reject with it, in the same words, naming the address once;
 * `cause` holds the backend's own error.
 */
export class ListenError extends IocpnetError {
  readonly syscall = 'listen';
  readonly address: string;
  readonly port: number;
  constructor(code: string, address: string, port: number, cause: unknown) {
    super(code, `cannot listen on ${address}:${port}: ${LISTEN_FAILURES[code] ?? 'failed'} (${code})`);
    this.name = 'ListenError';
    this.address = address;
    this.port = port;
    (this as { cause?: unknown }).cause = cause;
  }

  /** err as a ListenError when it is a bind failure of the system's; otherwise err itself. */
  static from(err: unknown, address: string, port: number): unknown {
    const code = (err as { code?: unknown } | null)?.code;
    return typeof code === 'string' && code in LISTEN_FAILURES ? new ListenError(code, address, port, err) : err;
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
