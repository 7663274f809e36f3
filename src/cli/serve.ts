import type { AddressInfo } from 'node:net';
import { OzError, describeCause } from '../core/errors.js';
import { openSigningKey } from '../core/keys.js';
import { dataDir } from '../core/paths.js';
import { condensedLog, createIssuerServer } from '../platform/server.js';
import { createKeyCache } from '../platform/key-cache.js';
import { TOKEN_PATH } from '../core/wire.js';
import { ISSUER_URL } from '../core/context.js';
import { parseFrom, readSetting } from '../core/settings.js';
import { tokenRoute } from '../platform/token-service.js';
import { ALLOWED_AUDIENCES, RATE_LIMIT, parseHost, parseOneAudience, parsePort, parseRequestTimeout, parseMaxConnections } from '../platform/settings.js';
import { out, note } from './output.js';
import type { OptionsOf, SERVE } from './spec.js';
import { publicIssuerWarning } from '../core/url.js';

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** The audience allow-list: --allow-audience flags, else OZ_ALLOWED_AUDIENCES (comma-separated). */
function allowedAudiences(flags: string[] | undefined, env: NodeJS.ProcessEnv): string[] {
  if (flags && flags.length > 0) return flags.map((a) => parseFrom(parseOneAudience, a, '--allow-audience', 'usage'));
  return readSetting(ALLOWED_AUDIENCES, env).value;
}

export async function serveCommand(opts: OptionsOf<typeof SERVE>): Promise<void> {
  const host = parseFrom(parseHost, opts.host ?? '127.0.0.1', '--host', 'usage');
  const port = parseFrom(parsePort, opts.port ?? '8787', '--port', 'usage');
  const requestTimeoutMs = opts.requestTimeout === undefined ? undefined : parseFrom(parseRequestTimeout, opts.requestTimeout, '--request-timeout', 'usage') * 1000;
  const maxConnections = opts.maxConnections === undefined ? undefined : parseFrom(parseMaxConnections, opts.maxConnections, '--max-connections', 'usage');
  const rateLimit = readSetting(RATE_LIMIT, process.env, opts.rateLimit).value;
  const allowed = allowedAudiences(opts.allowAudience, process.env);
  const dir = await dataDir(process.env, process.cwd());
  // Create (or check) the key before listening, so a broken key store fails at start-up.
  const { key, created } = openSigningKey(dir);
  if (created) {
    note(`oz: no signing key in ${dir}: created a new ${key.alg} key, kid ${key.kid} (if the key lives elsewhere, stop and set OZ_DATA_DIR)`);
  }
  const configured = readSetting({ ...ISSUER_URL, fallback: undefined }, process.env, opts.issuer);
  let issuer = configured?.value ?? '';
  const log = condensedLog(note);
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
  const server = createIssuerServer({ issuer: issuerNow, keys, log, routes, requestTimeoutMs, maxConnections });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new OzError('config', `cannot listen on ${host}:${port}: ${describeCause(e)}`, { cause: e })));
    server.listen(port, host, () => resolve());
  });
  // Listening for the signals before saying where it serves: whoever waits for that line and
  // then sends SIGTERM gets a clean stop, not Node's default death.
  const stopped = new Promise<void>((resolve) => {
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
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const listening = `http://${shown}:${addr.port}`;
  if (!configured) issuer = listening;
  out(`${listening}\n`);
  const limits = `${rateLimit > 0 ? `${rateLimit} token requests/s per run` : 'no rate limit'}${allowed.length > 0 ? `, audiences: ${allowed.join(', ')}` : ''}, at most ${server.maxConnections} connections`;
  // Serving beyond loopback, or for a configured issuer, means relying parties are meant to use it.
  const warning = (configured || !isLoopbackHost(host)) && publicIssuerWarning(issuer, 'set --issuer or OZ_ISSUER_URL to the public https URL of a TLS proxy in front of this server');
  if (warning) note(warning);
  note(`oz: issuer ${issuer} serving on ${listening} (discovery, JWKS, token service at ${TOKEN_PATH}: ${limits}); stop with Ctrl-C or SIGTERM`);
  await stopped;
}
