import * as net from 'node:net';
import { DisconnectCode } from '../../contract';
import { IocpnetError } from '../../server/errors';
import type { ListenAddress, ResolvedServerOptions } from '../../server/types';
import type { Backend, BackendSink } from '../backend';
import { EngineCore, disconnectNotifyPacket, type JsConnection } from './engine-core';

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

  readonly #reusePort: boolean;

  constructor(options: ResolvedServerOptions, sink: BackendSink) {
    super(options, sink);
    this.#reusePort = options.reusePort;
  }

  listen(port: number, host: string): Promise<ListenAddress> {
    if (this.#reusePort && !nodeHasReusePort()) {
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
      server.listen(this.#reusePort ? { port, host, reusePort: true } : { port, host });
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
    socket.on('data', (chunk: Buffer) => this.received(c, chunk));
    socket.on('end', () => this.peerEnded(c));
    socket.on('error', () => this.socketFailed(c));
    socket.on('close', (hadError: boolean) => this.socketClosed(c, hadError));
    this.connected(c, remoteAddress, remotePort);
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
