/**
 * A token bucket per key (the token service keys it by run grant): `ratePerSecond` requests a
 * second on average, with bursts of up to `burst`. A full bucket is the same as no bucket, so
 * idle keys are forgotten and memory follows the number of busy runs, not of all runs.
 */
export interface RateLimitOptions {
  ratePerSecond: number;
  burst: number;
}

export type RateDecision = { ok: true } | { ok: false; retryAfterSeconds: number };

export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  #sweptAt = 0;

  constructor(opts: RateLimitOptions) {
    if (!(opts.ratePerSecond > 0) || !(opts.burst >= 1)) throw new TypeError('rate and burst must be positive');
    this.#rate = opts.ratePerSecond;
    this.#burst = opts.burst;
  }

  take(key: string, nowMs: number): RateDecision {
    this.#sweep(nowMs);
    const b = this.#buckets.get(key);
    const tokens = b ? Math.min(this.#burst, b.tokens + ((nowMs - b.at) / 1000) * this.#rate) : this.#burst;
    // A refusal leaves the bucket as it was: writing back the refilled amount at every refusal
    // would add up rounding errors, and a client that polls would miss its turn. Retry-After
    // is at least a second, since tokens < 1 here.
    if (tokens < 1) return { ok: false, retryAfterSeconds: Math.ceil((1 - tokens) / this.#rate) };
    this.#buckets.set(key, { tokens: tokens - 1, at: nowMs });
    return { ok: true };
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** Drop buckets that have refilled; at most once a time the whole bucket takes to refill. */
  #sweep(nowMs: number): void {
    const refillMs = (this.#burst / this.#rate) * 1000;
    if (nowMs - this.#sweptAt < Math.max(1000, refillMs)) return;
    this.#sweptAt = nowMs;
    for (const [key, b] of this.#buckets) {
      if (b.tokens + ((nowMs - b.at) / 1000) * this.#rate >= this.#burst) this.#buckets.delete(key);
    }
  }
}
