import * as net from 'node:net';
import { DisconnectCode } from '../../contract';
import { IocpnetError } from '../../server/errors';
import type { ListenAddress, ResolvedServerOptions } from '../../server/types';
import type { Backend, BackendSink } from '../backend';
import { EngineCore, disconnectNotifyPacket, type JsConnection } from './engine-core';
import { Sniffed, checkUpgrade, headersEnd, httpError, sniff } from './websocket';

function ignore(): void {}

function destroySelf(this: net.Socket): void {
  this.destroy();
}

/**
 * The pure-JS backend on node:net: the listening server and the sockets'
 * events, fed to EngineCore (engine-core.ts), which does everything else.
 * Everything runs on the JS main thread: each socket 'data' event is framed
 * in place and its packets are handed to the sink at once, then the sink's
 * onBatchEnd flushes; every connection's packets of one flush go out in one
 * write.
 *
 * Inbound flow control: packets are delivered synchronously inside the
 * 'data' event that carried them, so nothing waits for JS and
 * maxPendingBytes never applies (stats.readPauses stays 0). A slow handler
 * slows the event loop, and with it reading, which pushes back on clients
 * through TCP.
 */
export class JsBackend extends EngineCore implements Backend {
  readonly name = 'js' as const;
  /** Sockets refused at accept, until they are closed. */
  readonly #rejected = new Set<net.Socket>();
  #server: net.Server | undefined;
  #closing = false;
  #serverClosed = false;
  #closePromise: Promise<void> | undefined;
  #closeResolve: (() => void) | undefined;
  #closeTimer: NodeJS.Timeout | undefined;
  readonly #options: ResolvedServerOptions;
  /** Connections whose first bytes are awaited (webSocket on), with what they sent so far. */
  readonly #pending = new Map<JsConnection, Detection>();

  constructor(options: ResolvedServerOptions, sink: BackendSink) {
    super(options, sink);
    this.#options = options;
  }

  listen(port: number, host: string): Promise<ListenAddress> {
    if (this.#options.reusePort && !nodeHasReusePort()) {
      return Promise.reject(new IocpnetError('ENOTSUP', `reusePort needs Node 22.12 or newer with the js backend (this is ${process.version})`));
    }
    return new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: true, noDelay: true });
      const onError = (err: Error): void => {
        server.off('listening', onListening);
        reject(err);
      };
      const onListening = (): void => {
        server.off('error', onError);
        if (this.#closing) {
          // close() ran while the bind was in flight.
          server.close();
          reject(new IocpnetError('ERR_SERVER_STATE', 'the server was closed before it started listening'));
          return;
        }
        // Later errors are failed accepts (EMFILE and the like); net.Server
        // keeps accepting after them.
        server.on('error', ignore);
        this.#server = server;
        this.startTicker();
        const a = server.address() as net.AddressInfo;
        resolve({ address: a.address, port: a.port });
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.on('connection', (socket: net.Socket) => this.#accept(socket));
      // Node itself refuses reusePort on a platform without SO_REUSEPORT.
      server.listen(this.#options.reusePort ? { port, host, reusePort: true } : { port, host });
    });
  }

  close(): Promise<void> {
    if (this.#closePromise) return this.#closePromise;
    this.#closing = true;
    const server = this.#server;
    if (server === undefined) {
      this.#closePromise = Promise.resolve();
      return this.#closePromise;
    }
    this.#closePromise = new Promise<void>((resolve) => {
      this.#closeResolve = resolve;
      server.close(() => {
        this.#serverClosed = true;
        this.#checkClosed();
      });
      this.flush();
      // An upgrade under way is told the server is going; a connection silent so far just ends.
      for (const d of [...this.#pending.values()]) {
        if (d.http) this.#refuse(d, null, httpError(503, 'the server is shutting down'));
        else this.#stopDetection(d);
      }
      // The 'shutdown' disconnects are reported from setImmediate, not from inside close().
      this.closeAll();
      // Whatever has not finished by then is dropped, so that close() is bounded.
      this.#closeTimer = setTimeout(() => {
        this.#closeTimer = undefined;
        this.destroyAll();
        for (const s of this.#rejected) s.destroy();
      }, this.closeTimeoutMs);
      this.#checkClosed();
    });
    return this.#closePromise;
  }

  protected socketGone(): void {
    this.#checkClosed();
  }

  #accept(socket: net.Socket): void {
    this.reportPending();
    if (this.#closing) {
      this.#reject(socket, DisconnectCode.SERVER_SHUTDOWN);
      return;
    }
    const remoteAddress = socket.remoteAddress;
    const remotePort = socket.remotePort;
    if (remoteAddress === undefined || remotePort === undefined) {
      // Reset before it could be handed over; nothing to report.
      socket.on('error', ignore);
      socket.destroy();
      return;
    }
    const c: JsConnection | undefined = this.adopt(socket);
    if (c === undefined) {
      this.#reject(socket, DisconnectCode.SERVER_FULL);
      return;
    }
    c.onWritten = (err) => this.written(c, err);
    socket.setNoDelay(true);
    socket.on('error', () => this.socketFailed(c));
    socket.on('close', (hadError: boolean) => this.#closed(c, hadError));
    if (!this.#options.webSocket) {
      this.#wire(c);
      this.connected(c, remoteAddress, remotePort);
      return;
    }
    // The first bytes tell the transport; until then the connection is not reported.
    this.setPending(c);
    const d = new Detection(c, remoteAddress, remotePort);
    this.#pending.set(c, d);
    d.onData = (chunk: Buffer) => this.#detect(d, chunk);
    d.onEnd = () => this.#detectEnded(d);
    socket.on('data', d.onData);
    socket.on('end', d.onEnd);
    this.#detectAt(d, d.acceptedAt + this.#options.transportDetectMs);
  }

  /** The socket closed; one that closed (or was reset) before its first bytes opens as raw TCP first, as at accept. */
  #closed(c: JsConnection, hadError: boolean): void {
    const d = this.#pending.get(c);
    if (d !== undefined) {
      if (d.http) this.#stopDetection(d);
      else this.#open(d, null);
    }
    this.socketClosed(c, hadError);
  }

  /** The listeners of an open connection's reads. */
  #wire(c: JsConnection): void {
    c.socket.on('data', (chunk: Buffer) => this.received(c, chunk));
    c.socket.on('end', () => this.peerEnded(c));
  }

  /** Bytes of a pending connection: raw framing, an HTTP request still arriving, or a whole upgrade request. */
  #detect(d: Detection, chunk: Buffer): void {
    this.reportPending();
    const c = d.c;
    if (!this.isPending(c)) return;
    this.countBytesIn(chunk.length);
    const head = d.head === null ? chunk : Buffer.concat([d.head, chunk]);
    if (!d.http) {
      const s = sniff(head);
      if (s === Sniffed.More) {
        d.head = head;
        return;
      }
      if (s === Sniffed.Raw) {
        this.#open(d, head);
        return;
      }
      d.http = true;
      // The request may take upgradeTimeoutMs from accept in all.
      this.#detectAt(d, d.acceptedAt + this.#options.upgradeTimeoutMs);
    }
    const max = this.#options.maxUpgradeRequestBytes;
    const end = headersEnd(head.length > max ? head.subarray(0, max) : head);
    if (end < 0) {
      if (head.length >= max) {
        this.#refuse(d, 'upgrade_refused', httpError(431, `the upgrade request is longer than ${max} bytes`));
      } else {
        d.head = head;
      }
      return;
    }
    const verdict = checkUpgrade(head.subarray(0, end), this.#options.webSocketOrigins);
    if (!verdict.ok) {
      this.#refuse(d, 'upgrade_refused', verdict.response);
      return;
    }
    this.#stopDetection(d);
    this.upgraded(c, verdict.response, this.#options.maxPacketSize);
    this.#open(d, end < head.length ? head.subarray(end) : null);
  }

  /** The transport is known: the connection opens, and what it sent after its first bytes (or its request) is read. */
  #open(d: Detection, rest: Buffer | null): void {
    this.#stopDetection(d);
    const c = d.c;
    this.#wire(c);
    this.connected(c, d.remoteAddress, d.remotePort);
    if (rest !== null && rest.length > 0) this.received(c, rest, true);
  }

  /**
   * transportDetectMs without a byte: a raw client waiting for the server;
   * upgradeTimeoutMs into a request: refused. Decided from setImmediate, after
   * the event loop's next poll: a JS thread that was blocked runs its timers
   * before it reads the sockets, and bytes that came meanwhile must count.
   */
  #detectAt(d: Detection, deadline: number): void {
    clearTimeout(d.timer);
    d.deadline = deadline;
    d.timer = setTimeout(() => setImmediate(() => this.#detectTimedOut(d)), Math.max(0, deadline - Date.now()));
  }

  #detectTimedOut(d: Detection): void {
    this.reportPending();
    if (!this.isPending(d.c) || !this.#pending.has(d.c)) return;
    if (Date.now() < d.deadline) {
      // Bytes read since the timer fired set a later deadline (an upgrade request began), or the
      // timer fired a little before its time by this clock.
      this.#detectAt(d, d.deadline);
      return;
    }
    if (d.http) {
      this.#refuse(d, 'upgrade_timeout', httpError(408, `the upgrade request did not end within ${this.#options.upgradeTimeoutMs} ms`));
    } else {
      // A client silent until now opens as raw TCP; its idle time starts here.
      this.#open(d, d.head);
      this.restartIdleClock(d.c);
    }
  }

  /** The peer's FIN before its transport was known: raw bytes open as usual (and close); an unfinished request ends. */
  #detectEnded(d: Detection): void {
    this.reportPending();
    const c = d.c;
    if (!this.isPending(c)) return;
    if (d.http) {
      this.#refuse(d, 'upgrade_refused', null);
      return;
    }
    this.#open(d, d.head);
    this.peerEnded(c);
  }

  #refuse(d: Detection, reason: 'upgrade_refused' | 'upgrade_timeout' | null, response: Buffer | null): void {
    this.#stopDetection(d);
    this.#wire(d.c);
    this.refusePending(d.c, reason, response);
  }

  /** Removes the detection's listeners and timer. */
  #stopDetection(d: Detection): void {
    if (!this.#pending.delete(d.c)) return;
    clearTimeout(d.timer);
    d.c.socket.off('data', d.onData);
    d.c.socket.off('end', d.onEnd);
    d.head = null;
  }

  /** Sends DISCONNECT_NOTIFY(code) to a socket that never became a connection, then closes it. */
  #reject(socket: net.Socket, code: number): void {
    this.#rejected.add(socket);
    socket.on('error', ignore);
    socket.once('close', () => {
      this.#rejected.delete(socket);
      this.#checkClosed();
    });
    socket.setNoDelay(true);
    socket.end(disconnectNotifyPacket(code));
    // Read and discard until the peer closes, so that unread input does not turn the close into a reset.
    socket.resume();
    socket.setTimeout(Math.max(1, this.closeTimeoutMs));
    socket.on('timeout', destroySelf);
  }

  #checkClosed(): void {
    if (!this.#closing || !this.#serverClosed || this.liveCount > 0 || this.#rejected.size > 0) return;
    const resolve = this.#closeResolve;
    if (resolve === undefined) return;
    this.#closeResolve = undefined;
    this.stopTimers();
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    this.#closeTimer = undefined;
    this.endBatch(false);
    resolve();
  }
}

/** net's listen() takes reusePort from Node 22.12 (and 23.1) on. */
function nodeHasReusePort(): boolean {
  const [major, minor] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/** A pending connection's first bytes, while its transport is not known. */
class Detection {
  /** What it sent so far, while that does not decide. */
  head: Buffer | null = null;
  /** Its first bytes are `GET `: an upgrade request is arriving. */
  http = false;
  timer: NodeJS.Timeout | undefined;
  /** When the timer decides (Date.now() time). */
  deadline = 0;
  readonly acceptedAt = Date.now();
  /** Its socket's 'data' and 'end' listeners until then. */
  onData: (chunk: Buffer) => void = ignore;
  onEnd: () => void = ignore;

  constructor(
    readonly c: JsConnection,
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {}
}
