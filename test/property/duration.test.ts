import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatDuration, parseDurationSeconds, MAX_DURATION_SECONDS } from '../../src/core/duration.js';

// The grammar the README and SPEC document: plain seconds, or days, hours, minutes and seconds
// in that order, each optional but at least one; nothing around them, whitespace included.
const GRAMMAR = /^(?:(\d+)|(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?)$/;
const seconds = (m: RegExpExecArray) =>
  m[1] !== undefined
    ? Number(m[1])
    : Number(m[2] ?? 0) * 86400 + Number(m[3] ?? 0) * 3600 + Number(m[4] ?? 0) * 60 + Number(m[5] ?? 0);

// Strings made mostly of what durations are made of, so that near misses are common.
const durationish = fc
  .array(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom('0', '1', '5', '9', '12', '60', '366', '0007', '99999999999999999999') },
      { weight: 4, arbitrary: fc.constantFrom('d', 'h', 'm', 's') },
      { weight: 1, arbitrary: fc.constantFrom(' ', '\t', '\n', '+', '-', '.', 'e', 'x', 'D', 'H', '١', '_', ',') },
      { weight: 1, arbitrary: fc.string({ maxLength: 2 }) },
    ),
    { maxLength: 8 },
  )
  .map((parts) => parts.join(''));

// A well-formed duration with one character inserted somewhere: the near misses an unanchored
// or too lenient pattern would let through.
const noise = fc.constantFrom(' ', '\n', '+', '-', '.', 'e', 'x', 'd', 'h', 'm', 's', '0', 'D', '١', '\u00a0', 'é');
const nearMiss = fc
  .tuple(fc.oneof(fc.integer({ min: 1, max: MAX_DURATION_SECONDS }).map(formatDuration), fc.nat(99999).map(String)), noise, fc.nat())
  .map(([text, c, at]) => text.slice(0, at % (text.length + 1)) + c + text.slice(at % (text.length + 1)));

describe('durations (property)', () => {
  it('formatDuration then parseDurationSeconds is the identity from 1 s to 366 days', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_DURATION_SECONDS }), (n) => {
        expect(parseDurationSeconds(formatDuration(n))).toEqual({ ok: true, value: n });
      }),
      { numRuns: 2000 },
    );
  });

  it('formats with each unit at most once, in order, and never a zero', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_DURATION_SECONDS }), (n) => {
        expect(formatDuration(n)).toMatch(/^(?:[1-9]\d*d)?(?:(?:[1-9]|1\d|2[0-3])h)?(?:[1-5]?[1-9]m|[1-5]0m)?(?:[1-5]?[1-9]s|[1-5]0s)?$/);
      }),
      { numRuns: 1000 },
    );
  });

  it('accepts exactly the documented grammar, between 1 s and 366 days, and means what it says', () => {
    fc.assert(
      fc.property(fc.oneof(durationish, nearMiss), (text) => {
        const parsed = parseDurationSeconds(text);
        const m = text === '' ? null : GRAMMAR.exec(text);
        const expected = m ? seconds(m) : undefined;
        if (expected !== undefined && expected >= 1 && expected <= MAX_DURATION_SECONDS) {
          expect(parsed).toEqual({ ok: true, value: expected });
        } else {
          expect(parsed.ok).toBe(false);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
