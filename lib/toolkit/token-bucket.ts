/**
 * A token bucket: `rate` tokens a second, holding at most `rate` (one
 * second of burst). A rate of 0 means no limit. JS thread only.
 */
export class TokenBucket {
  readonly rate: number;
  #tokens: number;
  #last: number;

  constructor(rate: number, now: number) {
    this.rate = rate;
    this.#tokens = rate;
    this.#last = now;
  }

  /** Takes one token if there is one; `now` is in milliseconds on a monotonic clock. */
  take(now: number): boolean {
    if (this.rate === 0) return true;
    const elapsed = now - this.#last;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.rate, this.#tokens + (elapsed * this.rate) / 1000);
      this.#last = now;
    }
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
