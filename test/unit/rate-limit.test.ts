import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/platform/rate-limit.js';

/** How many of `count` requests, one every `everyMs` from t = 0, the limiter lets through. */
function allowed(limiter: RateLimiter, key: string, count: number, everyMs: number, startMs = 0): number {
  let ok = 0;
  for (let i = 0; i < count; i++) if (limiter.take(key, startMs + i * everyMs).ok) ok++;
  return ok;
}

describe('RateLimiter', () => {
  it.each([
    [{ ratePerSecond: 0, burst: 1 }],
    [{ ratePerSecond: -1, burst: 1 }],
    [{ ratePerSecond: Number.NaN, burst: 1 }],
    [{ ratePerSecond: 1, burst: 0.5 }],
    [{ ratePerSecond: 1, burst: 0 }],
    [{ ratePerSecond: 1, burst: Number.NaN }],
  ])('refuses %j as a programming error', (opts) => {
    expect(() => new RateLimiter(opts)).toThrow(new TypeError('rate and burst must be positive'));
  });

  it.each([
    [{ ratePerSecond: 0.001, burst: 1 }],
    [{ ratePerSecond: 1000, burst: 3000 }],
  ])('takes %j', (opts) => {
    expect(new RateLimiter(opts).take('k', 0)).toEqual({ ok: true });
  });

  it('a client that asks every 600 ms for a minute gets its burst and then the rate: 62 of 100', () => {
    // The token service's shape: bursts of three times the rate. Periodic clean-up runs many
    // times in this minute and must not hand the busy client a fresh bucket.
    const limiter = new RateLimiter({ ratePerSecond: 1, burst: 3 });
    expect(allowed(limiter, 'run', 100, 600)).toBe(62);
    expect(limiter.size).toBe(1);
  });

  it('keeps each key to its own bucket', () => {
    const limiter = new RateLimiter({ ratePerSecond: 1, burst: 2 });
    expect(allowed(limiter, 'a', 5, 0)).toBe(2);
    expect(allowed(limiter, 'b', 5, 0)).toBe(2);
  });

  it('lets a request through at exactly one token, not before', () => {
    const limiter = new RateLimiter({ ratePerSecond: 1, burst: 1 });
    expect(limiter.take('k', 0)).toEqual({ ok: true });
    expect(limiter.take('k', 999)).toEqual({ ok: false, retryAfterSeconds: 1 });
    expect(limiter.take('k', 1000)).toEqual({ ok: true });
  });

  it('a refused request costs nothing', () => {
    const limiter = new RateLimiter({ ratePerSecond: 1, burst: 1 });
    limiter.take('k', 0);
    for (let t = 100; t < 1000; t += 100) expect(limiter.take('k', t).ok).toBe(false);
    expect(limiter.take('k', 1000).ok).toBe(true);
  });

  it.each([
    // `--rate-limit 0.5`: bursts of 1.5, one request every two seconds after that.
    [0.5, 1.5, [0, 0], [true, false], 1],
    [0.5, 1, [0, 0], [true, false], 2],
    [0.5, 1, [0, 1000], [true, false], 1],
    [0.25, 1, [0, 0], [true, false], 4],
    [2, 3, [0, 0, 0, 0], [true, true, true, false], 1],
    [10, 1, [0, 0], [true, false], 1],
  ])('rate %d/s, burst %d: requests at %j → %j, then Retry-After %i s, and that is enough', (rate, burst, times, oks, retryAfter) => {
    const limiter = new RateLimiter({ ratePerSecond: rate, burst });
    const decisions = times.map((t) => limiter.take('k', t));
    expect(decisions.map((d) => d.ok)).toEqual(oks);
    const last = decisions.at(-1)!;
    const at = times.at(-1)!;
    expect(last).toEqual({ ok: false, retryAfterSeconds: retryAfter });
    if (retryAfter > 1) expect(limiter.take('k', at + (retryAfter - 1) * 1000).ok).toBe(false);
    expect(limiter.take('k', at + retryAfter * 1000).ok).toBe(true);
  });

  it('never holds more than a burst, however long a key was idle between clean-ups', () => {
    // 100 ms refills this bucket, but clean-up runs at most once a second: in between, an idle
    // key must still get one request, not ten.
    const limiter = new RateLimiter({ ratePerSecond: 10, burst: 1 });
    expect(limiter.take('k', 1).ok).toBe(true);
    expect(allowed(limiter, 'k', 5, 0, 999)).toBe(1);
  });

  it('forgets keys whose bucket has refilled, at most once a second', () => {
    const limiter = new RateLimiter({ ratePerSecond: 10, burst: 10 });
    for (const k of ['a', 'b', 'c']) limiter.take(k, 0);
    limiter.take('x', 999);
    expect(limiter.size).toBe(4);
    // a, b and c refilled long ago; x, used 1 ms ago, is one token short.
    limiter.take('y', 1000);
    expect(limiter.size).toBe(2);
    // Everything has refilled by now, but the last clean-up was less than a second ago.
    limiter.take('z', 1999);
    expect(limiter.size).toBe(3);
    limiter.take('z', 2000);
    expect(limiter.size).toBe(1);
  });

  it('when a refill takes longer than a second, clean-up waits for it', () => {
    const limiter = new RateLimiter({ ratePerSecond: 1, burst: 5 });
    limiter.take('a', 0);
    // a refilled at 1 s, but a full refill takes 5 s: that is how often clean-up runs.
    limiter.take('b', 4999);
    expect(limiter.size).toBe(2);
    limiter.take('c', 5000);
    expect(limiter.size).toBe(2);
  });

  it('forgets a bucket that is exactly full, and keeps one that is not quite', () => {
    const limiter = new RateLimiter({ ratePerSecond: 1, burst: 2 });
    limiter.take('full', 1000);
    limiter.take('short', 1001);
    limiter.take('other', 2000);
    expect(limiter.size).toBe(2);
    expect(limiter.take('short', 2000)).toEqual({ ok: true });
    expect(limiter.take('short', 2000)).toEqual({ ok: false, retryAfterSeconds: 1 });
  });
});
