/**
 * What the metrics' observer costs the JS thread per packet and per batch,
 * without sockets or load generator: Server.onPacket and onBatchEnd are
 * driven directly, with a listener that does nothing, in batches of a given
 * size, with no observer and with the ServerMetrics that serveMetrics()
 * sets. Rounds alternate off and on; the medians are printed.
 *
 *   npm run prepare && node dist/bench/observer-cost.js [--batch 64] [--rounds 7]
 */
import { Command, InvalidArgumentError } from 'commander';
import { PerformanceObserver } from 'node:perf_hooks';
import * as prom from 'prom-client';
import { ServerMetrics, metricsSource } from '../lib/http/metrics';
import { createServer } from '../lib/server/create-server';
import { median } from './report';

function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer in [${min}, ${max}]`);
    return n;
  };
}

const o = new Command('observer-cost')
  .description("the metrics observer's cost per packet and per batch on the JS thread")
  .option('--batch <n>', 'packets per batch', integer(1, 4096), 64)
  .option('--packets <n>', 'packets per measurement', integer(1000, 100_000_000), 2_560_000)
  .option('--rounds <n>', 'measurements of each kind (alternating)', integer(1, 99), 7)
  .parse(process.argv)
  .opts<{ batch: number; packets: number; rounds: number }>();

let gcs = 0;
new PerformanceObserver((list) => {
  gcs += list.getEntries().length;
}).observe({ entryTypes: ['gc'] });

const server = createServer({ backend: 'js' });
let seen = 0;
server.on('packet', () => {
  seen++;
});
// The BackendSink side of the server, as a backend calls it; no socket is involved.
server.onConnect(1, '127.0.0.1', 1, 'tcp');
const body = new Uint8Array(40);

function run(): void {
  for (let i = 0; i < o.packets; i += o.batch) {
    for (let j = 0; j < o.batch; j++) server.onPacket(1, 204, body);
    server.onBatchEnd();
  }
}

/** ns per packet and scavenges per million packets of one measurement. */
function measure(): { ns: number; gcs: number } {
  run(); // warm-up
  gcs = 0;
  const t0 = process.hrtime.bigint();
  run();
  const ns = Number(process.hrtime.bigint() - t0) / o.packets;
  return { ns, gcs: (gcs / o.packets) * 1e6 };
}

const off: Array<{ ns: number; gcs: number }> = [];
const on: Array<{ ns: number; gcs: number }> = [];
for (let round = 0; round < o.rounds; round++) {
  server.setObserver(null);
  off.push(measure());
  const metrics = new ServerMetrics(prom, metricsSource(server), { defaultMetrics: false, extensions: [] });
  server.setObserver(metrics);
  on.push(measure());
  server.setObserver(null);
  metrics.stop();
}
const m = (xs: number[]): number => median(xs) ?? NaN;
const offNs = m(off.map((r) => r.ns));
const onNs = m(on.map((r) => r.ns));
process.stdout.write(
  `Server.onPacket, batches of ${o.batch}, medians of ${o.rounds}: ${offNs.toFixed(1)} ns per packet without an observer, ` +
    `${onNs.toFixed(1)} ns with the metrics' (+${(onNs - offNs).toFixed(1)} ns); ` +
    `scavenges per million packets ${m(off.map((r) => r.gcs)).toFixed(1)} and ${m(on.map((r) => r.gcs)).toFixed(1)} (${seen} packets handled)\n`,
);
