import { OzError } from '../core/errors.js';
import { decodeJwt } from '../core/jwt.js';
import { formatDuration } from '../core/duration.js';
import { out } from './output.js';
import type { INSPECT, OptionsOf } from './spec.js';
import { painter } from './colour.js';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) {
    throw new OzError('usage', 'no token given: pass it as an argument or pipe it in (oz federate inspect -)');
  }
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Discovery and the JWKS come through the proxy-aware client that token requests use. */
async function fetchJson(url: string): Promise<unknown> {
  const { getJson } = await import('../http/get-json.js');
  return getJson(url, process.env);
}

/**
 * The token itself, or oz's own JSON that carries it: `issue-token --format json`'s `token`,
 * `--format gcp`'s `id_token`, `grant-run --json`'s `run_token`, so that any of them can be
 * piped in as it is.
 */
export function tokenOf(text: string): string {
  if (!text.startsWith('{')) return text;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new OzError('usage', 'the input starts with "{" but is not JSON: give a JWT, or the JSON that `oz federate issue-token --format json` or `--format gcp` prints');
  }
  const d = (doc ?? {}) as Record<string, unknown>;
  const found = [d.token, d.id_token, d.run_token].find((v) => typeof v === 'string');
  if (found === undefined) {
    if (d.success === false) throw new OzError('usage', `the input is a failed --format gcp response, with no token: ${typeof d.message === 'string' ? d.message : 'no message'}`);
    throw new OzError('usage', 'the JSON holds no "token", "id_token" or "run_token" string');
  }
  return (found as string).trim();
}

function when(epoch: unknown, now: Date): string | undefined {
  if (typeof epoch !== 'number') return undefined;
  const d = new Date(epoch * 1000);
  const delta = Math.round(epoch - now.getTime() / 1000);
  const rel = delta >= 0 ? `in ${formatDuration(delta)}` : `${formatDuration(-delta)} ago`;
  return `${d.toISOString()} (${rel})`;
}

export async function inspectCommand(opts: OptionsOf<typeof INSPECT>, arg?: string): Promise<void> {
  const token = tokenOf((arg === undefined || arg === '-' ? await readStdin() : arg).trim());
  if (token === '') throw new OzError('usage', 'the token is empty');
  const r = decodeJwt(token);
  if (!r.ok) throw new OzError('usage', `not a JWT: ${r.problem}`);
  const decoded = r.value;
  const now = new Date();
  const exp = decoded.payload.exp;
  const secondsLeft = typeof exp === 'number' ? Math.floor(exp - now.getTime() / 1000) : null;
  let verification: { verified: true; issuer: string; jwks_uri: string; kid: string } | undefined;
  let verifyError: OzError | undefined;
  if (opts.verify) {
    const { verifyAsRelyingParty } = await import('../sandbox/verify.js');
    try {
      const r = await verifyAsRelyingParty(token, { now, fetchJson, audience: opts.audience });
      verification = { verified: true, issuer: r.issuer, jwks_uri: r.jwksUri, kid: r.kid };
    } catch (e) {
      if (!(e instanceof OzError)) throw e;
      verifyError = e;
    }
  }
  if (opts.json) {
    const doc = {
      header: decoded.header,
      claims: decoded.payload,
      issued_at: typeof decoded.payload.iat === 'number' ? new Date(decoded.payload.iat * 1000).toISOString() : null,
      expires_at: typeof exp === 'number' ? new Date(exp * 1000).toISOString() : null,
      seconds_left: secondsLeft,
      ...(opts.verify ? { verification: verification ?? { verified: false, error: verifyError?.message } } : {}),
    };
    out(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    const paint = await painter(process.stdout);
    const bold = (s: string) => (paint ? paint.bold(s) : s);
    out(`${bold('Header')}\n${indent(JSON.stringify(decoded.header, null, 2))}\n`);
    out(`${bold('Claims')}\n${indent(JSON.stringify(decoded.payload, null, 2))}\n`);
    const iat = when(decoded.payload.iat, now);
    if (iat) out(`Issued:     ${iat}\n`);
    const expiry = when(exp, now);
    if (expiry) out(`Expires:    ${expiry}\n`);
    if (secondsLeft !== null) out(`Time left:  ${secondsLeft > 0 ? formatDuration(secondsLeft) : 'none (expired)'}\n`);
    if (verification) {
      const ok = `verified against ${verification.jwks_uri} (kid ${verification.kid})`;
      out(`Signature:  ${paint ? paint.green(ok) : ok}\n`);
    }
  }
  if (verifyError) throw verifyError;
}

function indent(s: string): string {
  return s.replace(/^/gm, '  ');
}
