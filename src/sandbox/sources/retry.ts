import { escapeInvisible, oneLine } from '../../core/errors.js';

/**
 * The retry policy of the token-service client, as pure functions: which answers are worth
 * another attempt, how long to wait before it, and how a refusal reads in one line.
 */

export const MAX_ATTEMPTS = 5;
export const BASE_DELAY_MS = 250;
export const MAX_DELAY_MS = 4000;

/**
 * "Full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"): a uniform delay
 * between zero and the exponential ceiling, so that many sandboxes retrying after the same
 * outage do not return in step. `attempt` counts the failures so far, from 0.
 */
export function backoffDelayMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}

/** A Retry-After header (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Milliseconds, or undefined. */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** Server trouble and rate limiting may pass; any other refusal will not. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

export interface ProblemSummary {
  type?: string;
  title?: string;
  detail?: string;
}

/** The members of an RFC 9457 problem document worth reporting; anything else yields {}. */
export function parseProblem(body: string, contentType: string | undefined): ProblemSummary {
  if (!/json/i.test(contentType ?? '')) return {};
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return {};
  }
  if (value === null || typeof value !== 'object') return {};
  const p = value as Record<string, unknown>;
  // What the service says reaches a terminal: on one line, with nothing hidden or reordered.
  const text = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? escapeInvisible(clip(oneLine(v), 300)) : undefined);
  const out: ProblemSummary = {};
  const type = text(p.type);
  const title = text(p.title);
  const detail = text(p.detail);
  if (type !== undefined) out.type = type;
  if (title !== undefined) out.title = title;
  if (detail !== undefined) out.detail = detail;
  return out;
}

/** `HTTP 401 Unauthorized: the run token's signature does not verify`, from what the service said. */
export function describeHttpFailure(status: number, problem: ProblemSummary): string {
  const title = problem.title ?? STATUS_TEXT[status];
  return `HTTP ${status}${title ? ` ${title}` : ''}${problem.detail ? `: ${problem.detail}` : ''}`;
}

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** A network error in a few words: `connect ECONNREFUSED 127.0.0.1:9` rather than a stack. */
export function describeNetworkError(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  // Node reports a refused dual-stack connect as an AggregateError with an empty message.
  if (Array.isArray(err?.errors) && err.errors.length > 0 && !err.message) return describeNetworkError(err.errors[0]);
  const message = typeof err?.message === 'string' && err.message !== '' ? oneLine(err.message) : String(e);
  const code = typeof err?.code === 'string' ? err.code : undefined;
  const own = code && !message.includes(code) ? `${message} (${code})` : message;
  if (err?.cause && err.cause !== e && /^(fetch failed|other side closed|terminated)$/i.test(message)) {
    return `${own}: ${describeNetworkError(err.cause)}`;
  }
  return clip(own, 300);
}
