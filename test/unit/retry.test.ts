import { describe, expect, it } from 'vitest';
import {
  backoffDelayMs,
  describeHttpFailure,
  describeNetworkError,
  isRetryableStatus,
  parseProblem,
  parseRetryAfter,
  BASE_DELAY_MS,
} from '../../src/sandbox/sources/retry.js';

describe('backoffDelayMs', () => {
  it('counts a negative attempt as the first', () => {
    expect(backoffDelayMs(-3, () => 0.5)).toBe(BASE_DELAY_MS / 2);
  });

  it('draws from Math.random unless told otherwise', () => {
    const delays = Array.from({ length: 200 }, () => backoffDelayMs(2));
    for (const d of delays) {
      expect(Number.isInteger(d)).toBe(true);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(BASE_DELAY_MS * 4);
    }
    // Jitter: 200 draws from 1000 values are not all alike.
    expect(new Set(delays).size).toBeGreaterThan(1);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-06-01T12:00:00Z');
  it.each([
    ['5s', undefined],
    ['a5', undefined],
    ['1 2', undefined],
    ['2026-06-01', undefined],
    ['tomorrow', undefined],
    [[], undefined],
    [['', '5'], undefined],
    [['Mon, 01 Jun 2026 12:01:00 GMT'], 60_000],
    ['\t3\n', 3000],
  ])('%j → %j ms', (value, expected) => {
    expect(parseRetryAfter(value as string | string[], now)).toBe(expected);
  });
});

describe('isRetryableStatus', () => {
  it.each([
    [428, false],
    [429, true],
    [430, false],
    [499, false],
    [500, true],
    [501, true],
    [599, true],
    [200, false],
  ])('%i → %s', (status, retry) => {
    expect(isRetryableStatus(status)).toBe(retry);
  });
});

describe('parseProblem', () => {
  const problem = JSON.stringify({ type: 'urn:oz:problem:x', title: 'Forbidden', detail: 'no' });
  it.each([
    ['no content type', problem, undefined],
    ['a content type that is not JSON', problem, 'text/plain'],
    ['null', 'null', 'application/json'],
    ['a number', '7', 'application/json'],
    ['an array', '[{"title":"x"}]', 'application/json'],
    ['an object without the members', '{"status":403}', 'application/problem+json'],
    ['members that are not strings', '{"type":1,"title":["x"],"detail":{"a":1}}', 'application/problem+json'],
    ['members that are blank', '{"type":"","title":"  ","detail":"\\n"}', 'application/problem+json'],
  ])('%s → {}', (_n, body, type) => {
    expect(parseProblem(body, type)).toStrictEqual({});
  });

  it('reads JSON whatever the case of its media type', () => {
    expect(parseProblem(problem, 'Application/Problem+JSON; charset=utf-8')).toEqual({ type: 'urn:oz:problem:x', title: 'Forbidden', detail: 'no' });
  });

  it('keeps each member on its own', () => {
    expect(parseProblem('{"title":"t"}', 'application/json')).toStrictEqual({ title: 't' });
    expect(parseProblem('{"detail":"d"}', 'application/json')).toStrictEqual({ detail: 'd' });
    expect(parseProblem('{"type":"about:blank"}', 'application/json')).toStrictEqual({ type: 'about:blank' });
  });

  it('clips a member after 300 characters, on one line', () => {
    const p = parseProblem(JSON.stringify({ title: 'x'.repeat(300), detail: `a\r\n\tb${'y'.repeat(300)}` }), 'application/json');
    expect(p.title).toBe('x'.repeat(300));
    expect(p.detail).toBe(`a b${'y'.repeat(297)}…`);
  });
});

describe('describeHttpFailure', () => {
  it.each([
    [400, 'Bad Request'],
    [401, 'Unauthorized'],
    [403, 'Forbidden'],
    [404, 'Not Found'],
    [405, 'Method Not Allowed'],
    [408, 'Request Timeout'],
    [413, 'Content Too Large'],
    [415, 'Unsupported Media Type'],
    [429, 'Too Many Requests'],
    [500, 'Internal Server Error'],
    [502, 'Bad Gateway'],
    [503, 'Service Unavailable'],
    [504, 'Gateway Timeout'],
  ])('HTTP %i is %s', (status, text) => {
    expect(describeHttpFailure(status, {})).toBe(`HTTP ${status} ${text}`);
  });

  it.each([
    [599, {}, 'HTTP 599'],
    [599, { detail: 'later' }, 'HTTP 599: later'],
    [403, { title: 'Run Not Allowed' }, 'HTTP 403 Run Not Allowed'],
    [403, { type: 'urn:x', detail: 'audience refused' }, 'HTTP 403 Forbidden: audience refused'],
  ])('HTTP %i with %j → %s', (status, problem, line) => {
    expect(describeHttpFailure(status, problem)).toBe(line);
  });
});

describe('describeNetworkError', () => {
  const coded = (message: string, code?: unknown, extra: object = {}) => Object.assign(new Error(message), { code, ...extra });
  const refused = coded('connect ECONNREFUSED 127.0.0.1:9', 'ECONNREFUSED');

  it.each([
    ['a string', 'boom', 'boom'],
    ['null', null, 'null'],
    ['an error with no message', new Error(''), 'Error'],
    ['a code that is not a string', coded('socket hang up', 5), 'socket hang up'],
    ['a code the message does not name', coded('socket hang up', 'ECONNRESET'), 'socket hang up (ECONNRESET)'],
    ['a message over several lines', coded('bad\nthings\r\n'), 'bad things'],
    ['a long message', coded('x'.repeat(400)), `${'x'.repeat(300)}…`],
    ['an AggregateError with a message of its own', new AggregateError([refused], 'all failed'), 'all failed'],
    ['an empty AggregateError', new AggregateError([], ''), 'AggregateError'],
  ])('%s', (_n, error, text) => {
    expect(describeNetworkError(error)).toBe(text);
  });

  it.each(['fetch failed', 'Fetch Failed', 'other side closed', 'terminated'])('follows the cause of undici’s %j', (message) => {
    expect(describeNetworkError(coded(message, undefined, { cause: refused }))).toBe(`${message}: connect ECONNREFUSED 127.0.0.1:9`);
  });

  it('follows causes down, and not round in a circle', () => {
    const inner = coded('fetch failed', undefined, { cause: refused });
    expect(describeNetworkError(coded('terminated', 'UND_ERR_SOCKET', { cause: inner }))).toBe(
      'terminated (UND_ERR_SOCKET): fetch failed: connect ECONNREFUSED 127.0.0.1:9',
    );
    const circular = coded('fetch failed');
    (circular as { cause?: unknown }).cause = circular;
    expect(describeNetworkError(circular)).toBe('fetch failed');
  });

  it('does not follow the cause of other errors', () => {
    expect(describeNetworkError(coded('fetch failed twice', undefined, { cause: refused }))).toBe('fetch failed twice');
    expect(describeNetworkError(coded('request terminated', undefined, { cause: refused }))).toBe('request terminated');
  });
});
