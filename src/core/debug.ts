/**
 * OZ_DEBUG: a trace on stderr of what oz does (settings and where each came from, requests
 * and retries, files written). The CLI turns it on by handing in where lines go; until then
 * every trace point costs one comparison, so the hot path pays nothing when it is off.
 *
 * A trace must never carry a token: settings whose name says TOKEN, SECRET or PASSWORD are
 * shown redacted, and every line is scrubbed of anything JWT-shaped and of bearer
 * credentials, whatever the caller passed.
 */

let sink: ((line: string) => void) | undefined;

/** Lines already written: a setting read five times is traced once. */
const seen = new Set<string>();

export function enableDebug(write: (line: string) => void): void {
  sink = write;
}

export function disableDebug(): void {
  sink = undefined;
}

export function debugEnabled(): boolean {
  return sink !== undefined;
}

/** OZ_DEBUG's value turns tracing on unless it is empty, `0` or `false`. */
export function debugWanted(value: string | undefined): boolean {
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

const JWT_SHAPED = /[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g;
const BEARER = /\b(Bearer|Basic)\s+\S+/gi;

export function scrub(text: string): string {
  return text.replace(JWT_SHAPED, '<redacted token>').replace(BEARER, '$1 <redacted>').replace(/[\u0000-\u001f\u007f]+/g, ' ');
}

export function debug(text: string): void {
  if (sink === undefined) return;
  const line = `oz: debug: ${scrub(text)}`;
  if (seen.has(line)) return;
  seen.add(line);
  sink(line);
}

/**
 * Whether a setting's value is a secret by its name: TOKEN, SECRET or PASSWORD in it, unless
 * the name says it is where a token goes or how long to wait for one (OZ_TOKEN_URL,
 * OZ_TOKEN_TIMEOUT, OZ_TOKEN_FILES).
 */
export function isSecretName(name: string): boolean {
  return /TOKEN|SECRET|PASSWORD/i.test(name) && !/_(URL|TIMEOUT|FILES?)$/i.test(name);
}

/** A setting's value as the trace shows it. */
export function showValue(name: string, value: unknown): string {
  if (value === undefined) return 'unset';
  if (isSecretName(name)) return '<redacted>';
  if (value instanceof Date) return value.toISOString();
  // A query string may carry a credential; the trace shows where, not what.
  if (typeof value === 'string' && /^https?:\/\/[^?]*\?/.test(value)) return JSON.stringify(`${value.slice(0, value.indexOf('?'))}?…`);
  const text = JSON.stringify(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
