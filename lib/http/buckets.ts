/**
 * A histogram's counts kept in plain arrays, so that observing a value on
 * the hot path allocates nothing and hashes no labels; prom-client reads
 * them only when /metrics is scraped (see histogramMetric in metrics.ts).
 */
export class Buckets {
  readonly bounds: readonly number[];
  /** counts[i]: values <= bounds[i] and > bounds[i - 1]; the last slot holds those above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  /** Adds other's counts (same bounds) to this. */
  add(other: Buckets): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    this.sum += other.sum;
    this.count += other.count;
  }

  /** Cumulative counts per bound, as Prometheus' `le` buckets (the +Inf bucket is count). */
  cumulative(): number[] {
    const out: number[] = [];
    let acc = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      acc += this.counts[i];
      out.push(acc);
    }
    return out;
  }
}
