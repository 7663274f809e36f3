import { describe, expect, it } from 'vitest';
import { formatDuration, parseDurationSeconds } from '../../src/core/duration.js';
import { OzError } from '../../src/core/errors.js';
import { parseFrom } from '../../src/core/settings.js';
import { ozError } from '../helpers/thrown.js';

describe('parseDurationSeconds', () => {
  it.each([
    ['90s', 90],
    ['15m', 900],
    ['1h30m', 5400],
    ['2h', 7200],
    ['3600', 3600],
    ['1d', 86400],
    ['1h0m5s', 3605],
    ['366d', 366 * 86400],
    ['31622400', 366 * 86400],
    ['1', 1],
    ['1s', 1],
    ['007m', 420],
  ])('%j → %d seconds', (text, seconds) => {
    expect(parseDurationSeconds(text)).toEqual({ ok: true, value: seconds });
  });

  it.each([
    ['0', 'it must be longer than zero'],
    ['0s', 'it must be longer than zero'],
    ['-5m', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['banana', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['10x', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['1.5h', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['30m1h', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['h', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    // What Number() would take but a duration is not: the plain-seconds form is digits only.
    ['1e3', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['0x10', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['+5', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['5.0', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['1 2', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['5m ago', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['1h 30m', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['1H', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['', 'it is empty'],
    ['   ', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    [' 45m ', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['45m\n', 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['367d', 'it is longer than 366 days'],
    ['31622401', 'it is longer than 366 days'],
    ['366d1s', 'it is longer than 366 days'],
    ['99999999999999999999999', 'it is longer than 366 days'],
    ['9999999h', 'it is longer than 366 days'],
  ])('%j is refused: %s', (text, reason) => {
    expect(parseDurationSeconds(text)).toEqual({ ok: false, problem: reason });
  });

  it('names the source of a bad value and uses the given error code', () => {
    const e = (() => {
      try {
        parseFrom(parseDurationSeconds, '10x', 'OZ_MAX_RUN_DURATION', 'config');
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(OzError);
    expect((e as OzError).code).toBe('config');
    expect((e as OzError).message).toBe('invalid OZ_MAX_RUN_DURATION "10x": expected a duration like 90s, 15m, 1h30m, 2h or plain seconds');
  });

  it('read from a flag, is a usage error, and gives the seconds of a good value', () => {
    expect(parseFrom(parseDurationSeconds, '2m', '--duration', 'usage')).toBe(120);
    const e = ozError(() => parseFrom(parseDurationSeconds, '0', '--duration', 'usage'));
    expect({ code: e.code, message: e.message }).toEqual({ code: 'usage', message: 'invalid --duration "0": it must be longer than zero' });
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [59, '59s'],
    [3600, '1h'],
    [5400, '1h30m'],
    [90061, '1d1h1m1s'],
    [86400, '1d'],
    [3601, '1h1s'],
    [59.9, '59s'],
    [-5, '0s'],
  ])('%d → %s', (s, text) => expect(formatDuration(s)).toBe(text));
});
