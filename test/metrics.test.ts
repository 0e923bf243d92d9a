import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import parsePrometheus, { type ParsedFamily } from 'parse-prometheus-text-format';
import { afterEach, describe, expect, it } from 'vitest';
import { ChatPacketId, ChatResult, DISCONNECT_REASONS, PacketRouter, serveMetrics, type MetricsHandle } from '../lib/index';
import { ChatFixture } from './helpers/chat-client';
import { ROOT, ensureBuilt } from './helpers/chat-cli';
import { sleep, waitUntil } from './helpers/engine-harness';
import { RawClient, backends, frame, startServer } from './helpers/raw-client';
import { RedisServer, redisServerAvailable } from './helpers/redis';

async function scrape(handle: MetricsHandle): Promise<{ text: string; families: Map<string, ParsedFamily> }> {
  const res = await fetch(`http://127.0.0.1:${handle.address().port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return { text, families: new Map(parsePrometheus(text).map((f) => [f.name, f])) };
}

/** The value of a counter or gauge series whose labels include labels. */
function value(families: Map<string, ParsedFamily>, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name);
  if (family === undefined) throw new Error(`no metric ${name}`);
  const sample = family.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (sample?.value === undefined) throw new Error(`no series of ${name} with ${JSON.stringify(labels)}`);
  return Number(sample.value);
}

/**
 * The _count of one series of a labelled histogram. The parser flattens a
 * histogram's series into one and drops their labels, so these lines are
 * read with the text format's sample syntax instead.
 */
function histogramCount(text: string, name: string, label: string, labelValue: string): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (m === null || m[1] !== `${name}_count`) continue;
    if (m[2].split(',').includes(`${label}="${labelValue}"`)) return Number(m[3]);
  }
  return undefined;
}

describe.each(backends())('metrics endpoint (%s backend)', (backend) => {
  const fx = new ChatFixture();
  let handle: MetricsHandle | undefined;
  afterEach(async () => {
    await handle?.close();
    handle = undefined;
    await fx.dispose();
  });

  it('counts the packets, chats, refusals and closes the test caused', async () => {
    const chat = await fx.start(backend);
    handle = await serveMetrics(chat, { port: 0 });
    const N = 7;
    const [a, b, c, d] = await fx.clientsN(4);
    await a.join('alice', 1);
    expect(await b.login('alice')).toBe(ChatResult.LOGIN_USER_ALREADY);
    await b.join('bob', 1);
    for (let i = 0; i < N; i++) expect(await a.chat(`m${i}`)).toBe(ChatResult.NONE);
    await b.waitFor(() => b.notifies().length === N);
    // An id the router has no handler for: labelled 'other'.
    c.send(5000);
    await waitUntil(() => chat.router.stats().unknown === 1);
    // d has sent nothing yet: with WebSocket on, it opens (as raw TCP) after transportDetectMs.
    await waitUntil(() => chat.server.stats().connections === 4, 5000, 'the silent client opened');

    let { text, families } = await scrape(handle);
    // In: a logs in and enters; b is refused, logs in and enters; N chats; c sends one unknown id.
    const packetsIn = 2 + 3 + N + 1;
    // Out: a 3 (login response, enter response, user list) + 1 (bob entered); b 4; N x (response + 2 notifies).
    const packetsOut = 4 + 4 + 3 * N;
    expect(value(families, 'iocpnet_packets_received_total')).toBe(packetsIn);
    expect(value(families, 'iocpnet_packets_sent_total')).toBe(packetsOut);
    expect(value(families, 'iocpnet_connections')).toBe(4);
    expect(value(families, 'iocpnet_connections_accepted_total')).toBe(4);
    expect(value(families, 'iocpnet_chat_users')).toBe(2);
    expect(value(families, 'iocpnet_chat_rooms_occupied')).toBe(1);
    expect(value(families, 'iocpnet_chat_messages_total')).toBe(N);
    expect(value(families, 'iocpnet_chat_notifies_total')).toBe(2 * N);
    expect(value(families, 'iocpnet_chat_logins_total')).toBe(2);
    expect(value(families, 'iocpnet_chat_logins_refused_total', { code: 'LOGIN_USER_ALREADY' })).toBe(1);
    expect(value(families, 'iocpnet_router_unknown_packets_total')).toBe(1);
    expect(families.get('iocpnet_chat_room_members')?.metrics[0]?.buckets?.['2']).toBe('1');
    expect(histogramCount(text, 'iocpnet_handler_duration_seconds', 'packet_id', String(ChatPacketId.ROOM_CHAT_REQUEST))).toBe(N);
    expect(histogramCount(text, 'iocpnet_handler_duration_seconds', 'packet_id', String(ChatPacketId.LOGIN_REQUEST))).toBe(3);
    expect(histogramCount(text, 'iocpnet_handler_duration_seconds', 'packet_id', 'other')).toBe(1);
    const batches = families.get('iocpnet_js_batch_packets')?.metrics[0];
    expect(Number(batches?.count)).toBeGreaterThan(0);
    expect(Number(batches?.sum)).toBe(packetsIn);
    // prom-client's default metrics are there.
    expect(families.has('nodejs_eventloop_lag_p99_seconds')).toBe(true);
    expect(families.has('process_cpu_user_seconds_total')).toBe(true);
    // Every iocpnet name follows the conventions: counters end in _total.
    for (const f of families.values()) {
      if (!f.name.startsWith('iocpnet_')) continue;
      if (f.type === 'COUNTER') expect(f.name).toMatch(/_total$/);
      else expect(f.name).not.toMatch(/_total$/);
    }

    // The closes: b leaves (closed), c is kicked, d breaks the framing (protocol_error).
    const connOfC = [...chat.server.connections.values()].find((conn) => conn.remotePort === c.raw.socket.localPort);
    b.close();
    expect(connOfC?.close('kicked')).toBe(true);
    d.raw.socket.write(frame(200, Buffer.alloc(0), { length: 2 }));
    await waitUntil(() => chat.server.stats().connections === 1);
    ({ text, families } = await scrape(handle));
    const closes = Object.fromEntries(DISCONNECT_REASONS.map((reason) => [reason, value(families, 'iocpnet_connections_closed_total', { reason })]));
    expect(closes).toEqual({ ...Object.fromEntries(DISCONNECT_REASONS.map((r) => [r, 0])), closed: 1, kicked: 1, protocol_error: 1 });
    expect(value(families, 'iocpnet_connections')).toBe(1);
    expect(value(families, 'iocpnet_chat_users')).toBe(1);
    expect(text).not.toMatch(/alice|bob/);
  });

  it('reports the bytes queued for a client that does not read, in total and per IO thread', async () => {
    const { server, port } = await startServer(backend, { ioThreads: 2, maxSendQueueBytes: 64 << 20 });
    const body = Buffer.alloc(32 * 1024, 7);
    const PACKETS = 1024; // 32 MiB: more than the loopback's socket buffers take
    server.on('connect', (conn) => {
      // The first connection is the one that stops reading.
      if (server.connections.size === 1) for (let i = 0; i < PACKETS; i++) conn.send(200, body);
    });
    handle = await serveMetrics(server, { port: 0, defaultMetrics: false });
    const stalled = await RawClient.connect(port);
    stalled.socket.pause();
    // A client that sends nothing opens after transportDetectMs: the others connect once this one is open.
    await waitUntil(() => server.connections.size === 1);
    const others = await Promise.all([RawClient.connect(port), RawClient.connect(port), RawClient.connect(port)]);
    try {
      await waitUntil(() => server.stats().connections === 4 && server.stats().packetsOut === PACKETS);
      await sleep(200);
      const { families } = await scrape(handle);
      const queued = value(families, 'iocpnet_send_queue_bytes');
      expect(queued).toBeGreaterThan(8 << 20);
      expect(queued).toBeLessThanOrEqual(PACKETS * (body.length + 6));
      expect(value(families, 'iocpnet_js_pending_bytes')).toBe(0);
      const threads = server.stats().threads.length;
      expect(threads).toBe(backend === 'native' ? 2 : 1);
      // The per-thread series add up to the totals.
      const perThread = (name: string): number[] => Array.from({ length: threads }, (_, i) => value(families, name, { thread: String(i) }));
      const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
      expect(sum(perThread('iocpnet_io_thread_connections'))).toBe(4);
      expect(sum(perThread('iocpnet_io_thread_send_queue_bytes'))).toBe(queued);
      expect(sum(perThread('iocpnet_io_thread_packets_sent_total'))).toBe(value(families, 'iocpnet_packets_sent_total'));
      expect(sum(perThread('iocpnet_io_thread_received_bytes_total'))).toBe(value(families, 'iocpnet_received_bytes_total'));
      expect(families.get('iocpnet_io_thread_connections')?.metrics).toHaveLength(threads);
      if (backend === 'native') expect(perThread('iocpnet_io_thread_connections')).toEqual([2, 2]);
      // Once the client reads, the queue empties.
      stalled.socket.resume();
      await waitUntil(() => stalled.packets.length === PACKETS, 20000);
      await waitUntil(() => server.stats().sendQueueBytes === 0);
      expect(value((await scrape(handle)).families, 'iocpnet_send_queue_bytes')).toBe(0);
    } finally {
      stalled.socket.destroy();
      for (const c of others) c.socket.destroy();
      await server.close();
    }
  });

  it("times each packet's handler alone, also when packets of one batch follow each other", async () => {
    const { server, port } = await startServer(backend);
    const router = new PacketRouter()
      .on(300, () => {
        const until = performance.now() + 4;
        while (performance.now() < until);
      })
      .on(301, () => {})
      .attach(server);
    handle = await serveMetrics(server, { port: 0, defaultMetrics: false, router });
    const c = await RawClient.connect(port);
    try {
      // One write: the slow packet, then fast ones, handled in one batch (native) or one read (js).
      const ROUNDS = 5;
      for (let i = 0; i < ROUNDS; i++) {
        c.socket.write(Buffer.concat([frame(300), frame(301), frame(301), frame(301)]));
        await waitUntil(() => server.stats().packetsIn === 4 * (i + 1));
      }
      const { text } = await scrape(handle);
      const bucket = (id: string, le: string): number | undefined => {
        for (const line of text.split('\n')) {
          const m = /^iocpnet_handler_duration_seconds_bucket\{([^}]*)\} (\S+)$/.exec(line);
          if (m !== null && m[1].split(',').includes(`packet_id="${id}"`) && m[1].split(',').includes(`le="${le}"`)) return Number(m[2]);
        }
        return undefined;
      };
      expect(histogramCount(text, 'iocpnet_handler_duration_seconds', 'packet_id', '300')).toBe(ROUNDS);
      expect(histogramCount(text, 'iocpnet_handler_duration_seconds', 'packet_id', '301')).toBe(3 * ROUNDS);
      // The slow handler's 4 ms are its own: none of its packets under 2.5 ms, and none of the fast ones above.
      expect(bucket('300', '0.0025')).toBe(0);
      expect(bucket('301', '0.0025')).toBe(3 * ROUNDS);
    } finally {
      c.socket.destroy();
      await server.close();
    }
  });

  it('counts a connection refused while the server is full', async () => {
    const chat = await fx.start(backend, { maxConnections: 1 });
    handle = await serveMetrics(chat, { port: 0, defaultMetrics: false });
    await fx.client();
    const refused = await fx.client();
    await refused.waitClosed();
    await waitUntil(() => chat.server.stats().closes.server_full === 1);
    const { families } = await scrape(handle);
    expect(value(families, 'iocpnet_connections_refused_total', { cause: 'server_full' })).toBe(1);
    expect(families.has('nodejs_eventloop_lag_p99_seconds')).toBe(false);
  });
});

describe.skipIf(!redisServerAvailable())('metrics endpoint of a cluster node', () => {
  it("exports the cluster's counters, gauges and Redis round trips, and its node id", async () => {
    const redis = await RedisServer.start();
    const fx = new ChatFixture();
    const fy = new ChatFixture();
    let handle: MetricsHandle | undefined;
    try {
      const cluster = { redis: redis.url, prefix: 'metrics-test:', leaseMs: 1000 };
      const chat = await fx.start('js', { cluster: { ...cluster, nodeId: 'metrics-node' } });
      handle = await serveMetrics(chat, { port: 0, defaultMetrics: false });
      await waitUntil(() => chat.stats().cluster?.nodes === 1);
      await fy.start('js', { cluster: { ...cluster, nodeId: 'other-node' } });
      // Seen at this node's next heartbeat (every leaseMs / 5).
      await waitUntil(() => chat.stats().cluster?.nodes === 2);
      const a = await fx.client();
      await a.join('alice', 1);
      const b = await fy.client();
      await b.join('bob', 1);
      const CHATS = 5;
      for (let i = 0; i < CHATS; i++) expect(await a.chat(`hello ${i}`)).toBe(ChatResult.NONE);
      await b.waitFor(() => b.notifies().length === CHATS);
      await waitUntil(() => chat.stats().cluster?.bufferedChats === 0);
      const { text, families } = await scrape(handle);
      expect(value(families, 'iocpnet_cluster_chats_published_total')).toBe(CHATS);
      expect(value(families, 'iocpnet_cluster_lost_chats_total')).toBe(0);
      expect(value(families, 'iocpnet_cluster_nodes')).toBe(2);
      expect(value(families, 'iocpnet_cluster_buffered_messages')).toBe(0);
      expect(value(families, 'iocpnet_cluster_buffered_bytes')).toBe(0);
      expect(families.get('iocpnet_cluster_nodes')?.type).toBe('GAUGE');
      // Round trips: the register, the heartbeats, the claim, the enter and at least one stream append.
      const rtt = families.get('iocpnet_cluster_redis_round_trip_seconds')?.metrics[0];
      expect(families.get('iocpnet_cluster_redis_round_trip_seconds')?.type).toBe('HISTOGRAM');
      expect(Number(rtt?.count)).toBeGreaterThanOrEqual(5);
      expect(Number(rtt?.sum)).toBeGreaterThan(0);
      expect(Number(rtt?.sum)).toBeLessThan(Number(rtt?.count) * 5);
      expect(text).toMatch(/^iocpnet_cluster_redis_round_trip_seconds_bucket\{le="\+Inf"\} \d+$/m);
      const json = (await (await fetch(`http://127.0.0.1:${handle.address().port}/stats.json`)).json()) as { node: { id: string | null } };
      expect(json.node.id).toBe('metrics-node');
      // The other node leaves: seen once its heartbeat says so.
      await fy.dispose();
      await waitUntil(() => chat.stats().cluster?.nodes === 1);
      expect(value((await scrape(handle)).families, 'iocpnet_cluster_nodes')).toBe(1);
    } finally {
      await handle?.close();
      await fy.dispose();
      await fx.dispose();
      await redis.stop();
    }
  });
});

describe('metrics endpoint', () => {
  it('answers 404 off its paths, 405 to other methods, and stops on close()', async () => {
    const fx = new ChatFixture();
    const chat = await fx.start('js');
    const handle = await serveMetrics(chat.server, { port: 0, defaultMetrics: false });
    const base = `http://127.0.0.1:${handle.address().port}`;
    try {
      expect((await fetch(`${base}/nope`)).status).toBe(404);
      expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
      // A plain Server: no chat metrics, and every packet id is 'other' without a router.
      const text = await (await fetch(`${base}/metrics`)).text();
      expect(text).toContain('iocpnet_packets_received_total');
      expect(text).not.toContain('iocpnet_chat_');
      expect(() => chat.server.setObserver({ packetHandled() {}, batchEnded() {} })).toThrow(/observer/);
    } finally {
      await handle.close();
      await fx.dispose();
    }
    await expect(fetch(`${base}/metrics`)).rejects.toThrow();
  });

  it('refuses unknown options and bad ports', async () => {
    const fx = new ChatFixture();
    const chat = await fx.start('js');
    try {
      // @ts-expect-error: not an option
      await expect(serveMetrics(chat, { prot: 1 })).rejects.toThrow(/unknown metrics option 'prot'/);
      await expect(serveMetrics(chat, { port: 70000 })).rejects.toThrow(RangeError);
    } finally {
      await fx.dispose();
    }
  });

  it('is not loaded by require("iocpnet"): prom-client loads on the first serveMetrics()', () => {
    ensureBuilt();
    const entry = require.resolve('../dist/lib/index.js');
    const script = `
      const has = () => Object.keys(require.cache).some((k) => k.includes('/node_modules/prom-client/'));
      const lib = require(${JSON.stringify(entry)});
      const before = has();
      lib.serveMetrics(lib.createServer({ backend: 'js' }), { port: 0 }).then(async (h) => {
        const after = has();
        await h.close();
        console.log(JSON.stringify({ before, after }));
      });`;
    const out = execFileSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 20000 });
    expect(JSON.parse(out)).toEqual({ before: false, after: true });
  });
});
