import type { AddressInfo } from 'node:net';
import { OzError, describeCause, quote } from '../errors.js';
import { openSigningKey } from '../keys.js';
import { dataDir } from '../paths.js';
import { createIssuerServer } from '../server.js';
import { createKeyCache } from '../key-cache.js';
import { TOKEN_PATH } from '../issuer.js';
import { parseDurationSeconds } from '../duration.js';
import { validateAudience } from '../token.js';
import { tokenRoute, DEFAULT_RATE_LIMIT } from '../token-service.js';
import { issuerUrl } from './issuer.js';
import { out, note } from './output.js';

function parsePort(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw new OzError('usage', `invalid --port ${quote(text)}: expected 0–65535`);
  }
  return Number(text);
}

/** Requests per second per run grant: a flag, else OZ_TOKEN_RATE_LIMIT, else the default. */
function parseRateLimit(flag: string | undefined, env: NodeJS.ProcessEnv): number {
  const [text, what, code] =
    flag !== undefined ? [flag, '--rate-limit', 'usage' as const] : [env.OZ_TOKEN_RATE_LIMIT ?? '', 'OZ_TOKEN_RATE_LIMIT', 'config' as const];
  if (flag === undefined && text === '') return DEFAULT_RATE_LIMIT;
  if (!/^\d{1,6}(\.\d{1,3})?$/.test(text.trim())) {
    throw new OzError(code, `invalid ${what} ${quote(text)}: expected requests per second per run, such as 10 (0 turns the limit off)`);
  }
  return Number(text);
}

/** The audience allow-list: --allow-audience flags, else OZ_ALLOWED_AUDIENCES (comma-separated). */
function allowedAudiences(flags: string[] | undefined, env: NodeJS.ProcessEnv): string[] {
  if (flags && flags.length > 0) return flags.map((a) => validateAudience(a, 'usage'));
  const raw = env.OZ_ALLOWED_AUDIENCES ?? '';
  return raw
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '')
    .map((a) => validateAudience(a, 'config'));
}

function parseRequestTimeout(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const r = parseDurationSeconds(text);
  if (typeof r === 'string' || r > 300) {
    throw new OzError('usage', `invalid --request-timeout ${quote(text)}: ${typeof r === 'string' ? r : 'it is longer than 5m'}`);
  }
  return r * 1000;
}

/**
 * Log lines are written once per turn of the event loop, so that under load one write to
 * stderr (synchronous for files and pipes) carries many access-log lines rather than one.
 */
function batchedLog(write: (text: string) => void): (line: string) => void {
  let pending: string[] = [];
  const flush = () => {
    const text = pending.join('\n');
    pending = [];
    write(text);
  };
  return (line) => {
    if (pending.length === 0) setImmediate(flush);
    pending.push(line);
  };
}

export interface ServeOptions {
  host: string;
  port: string;
  issuer?: string;
  allowAudience?: string[];
  rateLimit?: string;
  requestTimeout?: string;
}

export async function serveCommand(opts: ServeOptions): Promise<void> {
  const port = parsePort(opts.port);
  const requestTimeoutMs = parseRequestTimeout(opts.requestTimeout);
  const rateLimit = parseRateLimit(opts.rateLimit, process.env);
  const allowed = allowedAudiences(opts.allowAudience, process.env);
  const dir = await dataDir(process.env, process.cwd());
  // Create (or check) the key before listening, so a broken key store fails at start-up.
  const { key, created } = openSigningKey(dir);
  if (created) {
    note(`oz: no signing key in ${dir}: created a new ${key.alg} key, kid ${key.kid} (if the key lives elsewhere, stop and set OZ_DATA_DIR)`);
  }
  const explicitIssuer = opts.issuer !== undefined || (process.env.OZ_ISSUER_URL ?? '') !== '';
  let issuer = explicitIssuer ? issuerUrl(opts.issuer) : '';
  const log = batchedLog(note);
  const issuerNow = () => issuer;
  // One view of the key files for the whole server: what the JWKS publishes is what signs.
  const keys = createKeyCache({ dataDir: dir, onReloadError: log });
  const routes = {
    [TOKEN_PATH]: tokenRoute({
      issuer: issuerNow,
      keys,
      allowedAudiences: allowed,
      rateLimit,
      log,
    }),
  };
  const server = createIssuerServer({ issuer: issuerNow, keys, log, routes, requestTimeoutMs });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new OzError('config', `cannot listen on ${opts.host}:${port}: ${describeCause(e)}`, { cause: e })));
    server.listen(port, opts.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const listening = `http://${host}:${addr.port}`;
  if (!explicitIssuer) issuer = listening;
  out(`${listening}\n`);
  const limits = `${rateLimit > 0 ? `${rateLimit} token requests/s per run` : 'no rate limit'}${allowed.length > 0 ? `, audiences: ${allowed.join(', ')}` : ''}`;
  note(`oz: issuer ${issuer} serving on ${listening} (discovery, JWKS, token service at ${TOKEN_PATH}: ${limits}); stop with Ctrl-C or SIGTERM`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      server.close(() => resolve());
      server.closeIdleConnections();
      // Requests in flight get a moment to finish; then the connections go.
      setTimeout(() => server.closeAllConnections(), 2000).unref();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
