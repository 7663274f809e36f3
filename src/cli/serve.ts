import type { AddressInfo } from 'node:net';
import { OzError, describeCause, quote } from '../errors.js';
import { loadSigningKey } from '../keys.js';
import { dataDir } from '../paths.js';
import { createIssuerServer } from '../server.js';
import { issuerUrl } from './issuer.js';
import { out, note } from './output.js';

function parsePort(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw new OzError('usage', `invalid --port ${quote(text)}: expected 0–65535`);
  }
  return Number(text);
}

export async function serveCommand(opts: { host: string; port: string; issuer?: string }): Promise<void> {
  const port = parsePort(opts.port);
  const dir = dataDir(process.env, process.cwd());
  // Create (or check) the key before listening, so a broken key store fails at start-up.
  loadSigningKey(dir);
  const explicitIssuer = opts.issuer !== undefined || (process.env.OZ_ISSUER_URL ?? '') !== '';
  let issuer = explicitIssuer ? issuerUrl(opts.issuer) : '';
  const routes = {};
  const server = createIssuerServer({ get issuer() { return issuer; }, dataDir: dir, log: (l) => note(l), routes });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new OzError('config', `cannot listen on ${opts.host}:${port}: ${describeCause(e)}`, { cause: e })));
    server.listen(port, opts.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const listening = `http://${host}:${addr.port}`;
  if (!explicitIssuer) issuer = listening;
  out(`${listening}\n`);
  note(`oz: issuer ${issuer} serving on ${listening} (discovery, JWKS); stop with Ctrl-C or SIGTERM`);
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
