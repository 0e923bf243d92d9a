import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as Prom from 'prom-client';
import type { ChatServer } from '../chat/chat-server';
import type { ListenAddress } from '../server/types';
import { checkInteger, describe } from '../server/validate';
import { chatPage } from './chat-page';
import { DASHBOARD_HTML } from './dashboard-page';
import type { Logger } from './logger';
import { ServerMetrics, metricsSource, type MetricsExtension, type ObservedRouter, type ObservedServer } from './metrics';

export interface MetricsOptions {
  /** HTTP port; 0 picks a free one. Default 9464. */
  port?: number;
  /** Address to listen on. Default '127.0.0.1' (this machine only). */
  host?: string;
  /** prom-client's default Node metrics (event-loop lag, GC, heap, CPU). Default true. */
  defaultMetrics?: boolean;
  /** Serve the dashboard at GET / and its figures at GET /stats.json. Default true. */
  dashboard?: boolean;
  /**
   * Serve the web chat client at GET /chat: a page that reaches the chat
   * server over WebSocket (its webSocket option must be on). For a ChatServer
   * only; default true for one.
   */
  chatPage?: boolean;
  /** The router whose packet ids label the handler times; a ChatServer's own router by default. */
  router?: ObservedRouter;
  /** Register further metrics in the registry (the cluster's, once it exists). */
  extensions?: readonly MetricsExtension[];
  /** Told when the endpoint listens and closes, and of failed requests; nothing is logged without it. */
  logger?: Logger;
}

/** A running metrics endpoint. */
export interface MetricsHandle {
  /** The prom-client registry the endpoint serves; an application may register its own metrics in it. */
  readonly registry: Prom.Registry;
  /** The bound HTTP address. */
  address(): ListenAddress;
  /** Stops serving and stops observing the server. */
  close(): Promise<void>;
}

const OPTION_KEYS = new Set(['port', 'host', 'defaultMetrics', 'dashboard', 'chatPage', 'router', 'extensions', 'logger']);

/**
 * Serves `GET /metrics` (the Prometheus text format), the dashboard at `GET /`
 * and its figures at `GET /stats.json` over node:http on the JS thread, for
 * target: a Server, or a ChatServer (its chat metrics included, and the web
 * chat client at `GET /chat`). Loads
 * prom-client on the first call; until then the package does not load it.
 * See docs/METRICS.md.
 */
export async function serveMetrics(target: ObservedServer | ChatServer, options: MetricsOptions = {}): Promise<MetricsHandle> {
  if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${describe(options)}`);
  for (const key of Object.keys(options)) if (!OPTION_KEYS.has(key)) throw new TypeError(`unknown metrics option '${key}'`);
  const port = options.port === undefined ? 9464 : checkInteger('port', options.port, 0, 65535);
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host.length === 0) throw new TypeError(`host must be a non-empty string, got ${describe(host)}`);
  const logger = options.logger;
  const dashboard = options.dashboard !== false;
  for (const key of ['dashboard', 'chatPage', 'defaultMetrics'] as const) {
    const v = options[key];
    if (v !== undefined && typeof v !== 'boolean') throw new TypeError(`${key} must be a boolean, got ${describe(v)}`);
  }

  // Loaded here, and only here: an application that never asks for metrics never loads prom-client.
  const prom = await import('prom-client');
  const source = metricsSource(target, options.router);
  const webChat = source.chat !== undefined && options.chatPage !== false;
  const metrics = new ServerMetrics(prom, source, { defaultMetrics: options.defaultMetrics !== false, extensions: options.extensions ?? [] });
  source.server.setObserver(metrics);

  const node = {
    id: source.chat?.options.cluster?.nodeId ?? null,
    pid: process.pid,
    backend: source.server.backend,
    server: source.server.address() ?? null,
    startedAt: Date.now(),
  };
  const respond = (res: http.ServerResponse, status: number, type: string, body: string): void => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };
  const httpServer = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return respond(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    }
    if (url === '/metrics') {
      metrics.registry.metrics().then(
        (text) => respond(res, 200, metrics.registry.contentType, text),
        (err: unknown) => {
          logger?.error({ err }, 'metrics: collecting failed');
          respond(res, 500, 'text/plain; charset=utf-8', 'collecting the metrics failed\n');
        },
      );
      return;
    }
    if (dashboard && url === '/') return respond(res, 200, 'text/html; charset=utf-8', DASHBOARD_HTML);
    if (webChat && url === '/chat') return respond(res, 200, 'text/html; charset=utf-8', chatPage(source.server.address()?.port ?? null));
    if (dashboard && url === '/stats.json') {
      node.server = source.server.address() ?? null;
      return respond(res, 200, 'application/json', JSON.stringify({ node, sample: metrics.sample() }));
    }
    respond(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  });
  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(port, host, () => {
        httpServer.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    source.server.setObserver(null);
    metrics.stop();
    throw err;
  }
  httpServer.on('error', (err) => logger?.error({ err }, 'metrics: HTTP server error'));
  const info = httpServer.address() as AddressInfo;
  const address: ListenAddress = { address: info.address, port: info.port };
  logger?.info({ address: address.address, port: address.port }, `metrics on http://${address.address}:${address.port}/metrics`);
  let closed: Promise<void> | undefined;
  return {
    registry: metrics.registry,
    address: () => address,
    close(): Promise<void> {
      closed ??= new Promise<void>((resolve) => {
        source.server.setObserver(null);
        metrics.stop();
        httpServer.close(() => {
          logger?.info({ port: address.port }, 'metrics closed');
          resolve();
        });
        // A dashboard tab keeps its connection alive; it must not hold the close up.
        httpServer.closeAllConnections();
      });
      return closed;
    },
  };
}
