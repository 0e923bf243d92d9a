import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DisconnectCode, PacketId, PacketReader, type BackendName, type ServerStats } from '../lib/index';
import { childPrelude, sleep, waitUntil } from './helpers/engine-harness';
import { JsonLineChild } from './helpers/json-child';
import { backends, frame } from './helpers/raw-client';

// A handler that blocks the JS thread for 2 seconds, with a server in a
// child process (the clients here must keep running meanwhile). Pingers only
// PING, talkers also stream numbered packets, and one client stays silent.
// The talkers send enough during the stall to pass a small maxPendingBytes,
// or, with the default one, the native engine's flow control (their unhandled
// requests count toward sendQueueHighWaterBytes). Everything is observed on
// the wire, and in what the child's handlers saw.

const STALL_MS = 2000;
const IDLE_TIMEOUT_MS = 1000;
const PING_EVERY_MS = 200;
const STALL = 200;
const SEQ = 300;

const CHILD_SOURCE = `${childPrelude()}
  const { backend, options, stallMs } = JSON.parse(process.argv[1]);
  const server = iocpnet.createServer({ backend, ...options });
  let stalled = false;
  let largestBatch = 0;
  const talkers = {};
  const disconnects = [];
  server.on('packet', (conn, id, body) => {
    if (id === ${STALL} && !stalled) {
      stalled = true;
      const until = Date.now() + stallMs;
      while (Date.now() < until);
      return;
    }
    if (id !== ${SEQ}) return;
    // On the native backend every body is a view into the batch it came in (one buffer reused from batch to
    // batch, so its byteLength is its capacity): how far into it a body ends tells the size of its batch.
    largestBatch = Math.max(largestBatch, body.byteOffset + body.byteLength);
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const tag = view.getUint32(0, true);
    const seq = view.getUint32(4, true);
    const t = (talkers[tag] ??= { count: 0, ordered: true });
    if (seq !== t.count) t.ordered = false;
    t.count++;
  });
  server.on('disconnect', (conn, reason) => disconnects.push(reason));
  server.listen(0, '127.0.0.1').then(({ port }) => process.stdout.write(JSON.stringify({ port }) + '\\n'));
  process.stdin.setEncoding('utf8').on('data', () =>
    process.stdout.write(JSON.stringify({ talkers, disconnects, largestBatch, stats: server.stats() }) + '\\n'));
  process.stdin.on('end', () => server.close().then(() => process.exit(0)));
`;

interface Report {
  talkers: Record<string, { count: number; ordered: boolean }>;
  disconnects: string[];
  largestBatch: number;
  stats: ServerStats;
}

class StallServer extends JsonLineChild {
  static async start(backend: BackendName, maxPendingBytes: number | undefined): Promise<StallServer> {
    const options = { ioThreads: 2, idleTimeoutMs: IDLE_TIMEOUT_MS, ...(maxPendingBytes !== undefined ? { maxPendingBytes } : {}) };
    const s = new StallServer(process.execPath, ['-e', CHILD_SOURCE, JSON.stringify({ backend, options, stallMs: STALL_MS })]);
    await s.listening();
    return s;
  }

  report(): Promise<Report> {
    return this.ask<Report>('report', 'the report from the child');
  }
}

/** A client that timestamps the PONGs it gets and notes the server's notify and close. */
class TimedClient {
  readonly pongs: number[] = [];
  notify: number | undefined;
  closed = false;
  sent = 0;
  readonly #reader = new PacketReader();

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      for (const p of this.#reader.push(chunk)) {
        if (p.packetId === PacketId.PONG) this.pongs.push(Date.now());
        if (p.packetId === PacketId.DISCONNECT_NOTIFY) this.notify = p.body.readUInt16LE(0);
      }
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  static connect(port: number): Promise<TimedClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new TimedClient(socket));
      });
    });
  }

  ping(): void {
    if (!this.closed) this.socket.write(frame(PacketId.PING, Buffer.from('p')));
  }

  /** The next numbered packet of size bytes, tagged with this client's number. */
  talk(tag: number, size: number): void {
    if (this.closed) return;
    const body = Buffer.alloc(size);
    body.writeUInt32LE(tag, 0);
    body.writeUInt32LE(this.sent++, 4);
    this.socket.write(frame(SEQ, body));
  }

  /** The longest time between two PONGs that arrived in [from, to], counting from `from`. */
  longestGap(from: number, to: number): number {
    let last = from;
    let gap = 0;
    for (const t of this.pongs) {
      if (t < from || t > to) continue;
      gap = Math.max(gap, t - last);
      last = t;
    }
    return Math.max(gap, to - last);
  }
}

/** How the talkers talk, and the bound on the bytes waiting for JS. */
interface Scenario {
  name: string;
  /** Undefined: the default (64 MiB). */
  maxPendingBytes: number | undefined;
  /** Every 10 ms, each talker sends this many packets of body bytes. */
  burst: number;
  body: number;
}

const SCENARIOS: Scenario[] = [
  { name: 'talkers past a small maxPendingBytes', maxPendingBytes: 65536, burst: 1, body: 500 },
  { name: 'talkers past sendQueueHighWaterBytes with their unhandled requests', maxPendingBytes: undefined, burst: 4, body: 1000 },
];

describe.each(backends())('a handler that blocks the JS thread for 2 s (%s backend)', (backend) => {
  let server: StallServer | undefined;
  const clients: TimedClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    await server?.stop();
    server = undefined;
  });

  it.each(SCENARIOS)(
    '$name: keeps every client that talks or PINGs, delivers all in order, still times out the silent one',
    async (scenario) => {
      const s = (server = await StallServer.start(backend, scenario.maxPendingBytes));
      const connect = async (): Promise<TimedClient> => {
        const c = await TimedClient.connect(s.port);
        clients.push(c);
        return c;
      };
      const pingers = [await connect(), await connect(), await connect()];
      const talkers = [await connect(), await connect(), await connect()];
      const silent = await connect();
      const staller = await connect();

      const pingTimer = setInterval(() => {
        for (const c of [...pingers, ...talkers, staller]) c.ping();
      }, PING_EVERY_MS);
      const talkTimer = setInterval(() => {
        talkers.forEach((c, i) => {
          for (let k = 0; k < scenario.burst; k++) c.talk(i, scenario.body);
        });
      }, 10);
      try {
        await sleep(300);
        const stallStart = Date.now();
        staller.socket.write(frame(STALL));
        await sleep(STALL_MS);
        const stallEnd = Date.now();
        clearInterval(talkTimer);
        await sleep(1000);
        // Every client but the silent one is open, and the silent one was told.
        await waitUntil(() => silent.closed, 5000, 'the silent client closed');
        expect(silent.notify).toBe(DisconnectCode.IDLE_TIMEOUT);
        for (const c of [...pingers, ...talkers, staller]) {
          expect(c.closed).toBe(false);
          expect(c.notify).toBeUndefined();
        }

        const pingerGaps = pingers.map((c) => c.longestGap(stallStart, stallEnd));
        const talkerGaps = talkers.map((c) => c.longestGap(stallStart, stallEnd));
        const report = await s.report();
        const sent = talkers.reduce((n, c) => n + c.sent, 0);
        console.log(
          `${backend}, ${scenario.name}: longest PONG gap during the ${STALL_MS} ms stall: pingers ${pingerGaps.join(', ')} ms, ` +
            `talkers ${talkerGaps.join(', ')} ms; ${sent} packets of ${scenario.body} bytes sent, largest batch ${report.largestBatch} bytes, ` +
            `readPauses ${report.stats.readPauses}, readPausesSendQueue ${report.stats.readPausesSendQueue}; disconnects: ${report.disconnects.join(', ')}`,
        );

        // Every packet arrived, in each client's order.
        talkers.forEach((c, i) => {
          expect(report.talkers[i]).toEqual({ count: c.sent, ordered: true });
        });
        expect(report.disconnects).toEqual(['idle_timeout']);
        expect(report.stats.closes.idle_timeout).toBe(1);

        if (backend === 'native') {
          // The IO threads answer PINGs while JS is blocked.
          for (const gap of pingerGaps) expect(gap).toBeLessThan(3 * PING_EVERY_MS);
          if (scenario.maxPendingBytes !== undefined) {
            // The talkers passed maxPendingBytes and were paused, not closed;
            // the bytes waiting for JS stayed near the bound: past it by at most
            // one read per IO thread and a short read per paused connection.
            expect(report.stats.readPauses).toBeGreaterThan(0);
            expect(report.largestBatch).toBeLessThanOrEqual(scenario.maxPendingBytes + 2 * 65536 + talkers.length * 1024);
          } else {
            // Their requests waiting for JS paused them, and they were not taken for idle.
            expect(report.stats.readPausesSendQueue).toBeGreaterThan(0);
          }
        } else {
          // The JS thread answers PINGs there: they wait for the stall to end.
          for (const gap of pingerGaps) expect(gap).toBeGreaterThan(STALL_MS - 500);
          expect(report.stats.readPauses).toBe(0);
        }
      } finally {
        clearInterval(pingTimer);
        clearInterval(talkTimer);
      }
    },
    30000,
  );
});
