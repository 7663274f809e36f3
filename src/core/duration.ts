import { ok, problem, type Parsed } from './errors.js';

/** Longest duration oz accepts anywhere; longer values are typos, not intentions. */
export const MAX_DURATION_SECONDS = 366 * 24 * 3600;

const UNIT_SECONDS: Record<string, number> = { d: 86400, h: 3600, m: 60, s: 1 };
const DURATION_RE = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/**
 * Parse `90s`, `15m`, `1h30m`, `2h`, `1d` or plain seconds (`3600`) into whole seconds. The
 * text is taken as it is: surrounding whitespace is refused here as everywhere else in oz.
 */
export function parseDurationSeconds(text: string): Parsed<number> {
  if (text === '') return problem('it is empty');
  let seconds: number;
  if (/^\d+$/.test(text)) {
    seconds = Number(text);
  } else {
    // Non-empty, so a match has at least one unit and ends with it.
    const m = DURATION_RE.exec(text);
    if (!m) {
      return problem('expected a duration like 90s, 15m, 1h30m, 2h or plain seconds');
    }
    seconds = 0;
    const units = ['d', 'h', 'm', 's'] as const;
    units.forEach((u, i) => {
      const v = m[i + 1];
      if (v !== undefined) seconds += Number(v) * UNIT_SECONDS[u]!;
    });
  }
  if (!Number.isSafeInteger(seconds) || seconds > MAX_DURATION_SECONDS) {
    return problem('it is longer than 366 days');
  }
  if (seconds <= 0) return problem('it must be longer than zero');
  return ok(seconds);
}

/** A duration of at most `maxSeconds`, for settings with a tighter bound than a year. */
export function durationAtMost(maxSeconds: number): (text: string) => Parsed<number> {
  return (text) => {
    const r = parseDurationSeconds(text);
    if (r.ok && r.value > maxSeconds) return problem(`it is longer than ${formatDuration(maxSeconds)}`);
    return r;
  };
}

/** `5400` → `1h30m`; `0` → `0s`. */
export function formatDuration(totalSeconds: number): string {
  let rest = Math.max(0, Math.floor(totalSeconds));
  if (rest === 0) return '0s';
  let out = '';
  for (const [unit, size] of Object.entries(UNIT_SECONDS)) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}
