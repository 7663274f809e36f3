import { problem, quote, type Parsed } from '../core/errors.js';
import { claimValueProblem } from '../core/claims.js';
import { durationAtMost } from '../core/duration.js';
import type { Setting } from '../core/settings.js';
import { RUN_TOKEN_AUDIENCE } from '../core/wire.js';

/** The token service's settings, each declared once with its `oz issuer serve` flag. */

export const DEFAULT_RATE_LIMIT = 10;

function audience(raw: string): string | undefined {
  const p = claimValueProblem(raw);
  if (p) return `audience ${quote(raw)}: ${p}`;
  if (raw === RUN_TOKEN_AUDIENCE) return `${RUN_TOKEN_AUDIENCE} is reserved for run tokens`;
  return undefined;
}

/**
 * A comma-separated audience list. A list that names no audience at all (`,` or `, ,`) is
 * refused: read as "no allow-list" it would mean "any audience", the opposite of what was meant.
 */
export function parseAudienceList(raw: string): Parsed<string[]> {
  const items = raw.split(',').map((a) => a.trim());
  const named = items.filter((a) => a !== '');
  if (named.length === 0) return problem('it names no audience (comma-separated; leave it unset to allow any)');
  for (const a of named) {
    const p = audience(a);
    if (p) return problem(p);
  }
  return { ok: true, value: named };
}

export function parseOneAudience(raw: string): Parsed<string> {
  const p = audience(raw);
  return p ? problem(p) : { ok: true, value: raw };
}

export const ALLOWED_AUDIENCES = {
  variable: 'OZ_ALLOWED_AUDIENCES',
  flag: '--allow-audience',
  parse: parseAudienceList,
  fallback: () => [],
  help: 'the only audiences tokens are issued for (none: any)',
} satisfies Setting<string[]>;

export function parseRateLimit(raw: string): Parsed<number> {
  if (!/^\d{1,6}(\.\d{1,3})?$/.test(raw)) return problem('expected requests per second per run, such as 10 (0 turns the limit off)');
  return { ok: true, value: Number(raw) };
}

export const RATE_LIMIT = {
  variable: 'OZ_TOKEN_RATE_LIMIT',
  flag: '--rate-limit',
  parse: parseRateLimit,
  fallback: () => DEFAULT_RATE_LIMIT,
  help: 'token requests per second per run grant',
} satisfies Setting<number>;

export function parsePort(raw: string): Parsed<number> {
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) return problem('expected 0–65535');
  return { ok: true, value: Number(raw) };
}

/** An address to listen on; empty would make Node listen on every interface. */
export function parseHost(raw: string): Parsed<string> {
  if (raw === '') return problem('it is empty; give an address such as 127.0.0.1, or 0.0.0.0 for every interface');
  if (/[\s\u0000-\u001f\u007f]/.test(raw)) return problem('it contains whitespace or control characters');
  return { ok: true, value: raw };
}

export const parseRequestTimeout = durationAtMost(300);

export function parseMaxConnections(raw: string): Parsed<number> {
  if (!/^\d{1,7}$/.test(raw) || Number(raw) < 1) return problem('expected a whole number of connections, at least 1');
  return { ok: true, value: Number(raw) };
}
