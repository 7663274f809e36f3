import { OzError, quote } from './errors.js';

/** Longest duration oz accepts anywhere; longer values are typos, not intentions. */
export const MAX_DURATION_SECONDS = 366 * 24 * 3600;

const UNIT_SECONDS: Record<string, number> = { d: 86400, h: 3600, m: 60, s: 1 };
const DURATION_RE = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/**
 * Parse `90s`, `15m`, `1h30m`, `2h`, `1d` or plain seconds (`3600`) into whole seconds.
 * Returns a reason instead of throwing so that each caller can say where the value came from
 * (a flag is a usage error, an environment variable a configuration error).
 */
export function parseDurationSeconds(text: string): number | string {
  const s = text.trim();
  if (s === '') return 'it is empty';
  let seconds: number;
  if (/^\d+$/.test(s)) {
    seconds = Number(s);
  } else {
    // Non-empty, so a match has at least one unit and ends with it.
    const m = DURATION_RE.exec(s);
    if (!m) {
      return 'expected a duration like 90s, 15m, 1h30m, 2h or plain seconds';
    }
    seconds = 0;
    const units = ['d', 'h', 'm', 's'] as const;
    units.forEach((u, i) => {
      const v = m[i + 1];
      if (v !== undefined) seconds += Number(v) * UNIT_SECONDS[u]!;
    });
  }
  if (!Number.isSafeInteger(seconds) || seconds > MAX_DURATION_SECONDS) {
    return 'it is longer than 366 days';
  }
  if (seconds <= 0) return 'it must be longer than zero';
  return seconds;
}

export function parseDurationOrThrow(
  text: string,
  what: string,
  code: 'usage' | 'config' = 'usage',
): number {
  const r = parseDurationSeconds(text);
  if (typeof r === 'string') {
    throw new OzError(code, `invalid ${what} ${quote(text)}: ${r}`);
  }
  return r;
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
