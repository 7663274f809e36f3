import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { condensedLog } from '../../src/platform/server.js';

describe('condensedLog: the access log under a flood', () => {
  let clock: number;
  let written: string[];
  let log: ReturnType<typeof condensedLog>;
  beforeEach(() => {
    vi.useFakeTimers();
    clock = 1_000_000;
    written = [];
    log = condensedLog((text) => written.push(...text.split('\n')), { linesPerSecond: 3, now: () => clock });
  });
  afterEach(() => vi.useRealTimers());

  it('writes every line while under the budget, batched per turn of the event loop', () => {
    log('a', 'GET /x 200');
    log('b', 'GET /x 200');
    expect(written).toEqual([]);
    vi.runOnlyPendingTimers();
    expect(written).toEqual(['a', 'b']);
  });

  it('past the budget, counts the second by kind and sums it up in one line when the second ends', () => {
    for (let i = 0; i < 10_000; i++) log(`jwks ${i}`, 'GET /.well-known/jwks.json 200');
    log('token', 'POST /v1/token 429');
    log('reload failed', undefined);
    clock += 1000;
    vi.advanceTimersByTime(1000);
    vi.runOnlyPendingTimers();
    expect(written).toEqual([
      'jwks 0',
      'jwks 1',
      'jwks 2',
      'reload failed',
      'oz: access log: 9998 more requests in the last second not logged one by one (over 3 a second): 9997 × GET /.well-known/jwks.json 200, 1 × POST /v1/token 429',
    ]);
    // A new second has its budget back.
    log('next', 'GET /x 200');
    vi.runOnlyPendingTimers();
    expect(written.at(-1)).toBe('next');
  });

  it('a request in the next second brings the summary out before its own line', () => {
    for (let i = 0; i < 5; i++) log(`r${i}`, 'GET /x 200');
    clock += 1500;
    log('later', 'GET /x 200');
    vi.runOnlyPendingTimers();
    expect(written).toEqual(['r0', 'r1', 'r2', 'oz: access log: 2 more requests in the last second not logged one by one (over 3 a second): 2 × GET /x 200', 'later']);
  });

  it('counts at most 20 kinds one by one, and the rest together', () => {
    for (let i = 0; i < 3; i++) log('x', 'GET /x 200');
    for (let i = 0; i < 25; i++) log('y', `GET /x ${400 + i}`);
    clock += 1000;
    vi.advanceTimersByTime(1000);
    vi.runOnlyPendingTimers();
    const summary = written.at(-1)!;
    expect(summary).toMatch(/^oz: access log: 25 more requests/);
    expect(summary.split(', ')).toHaveLength(21);
    expect(summary).toContain('5 × other requests');
  });
});
