import { connect, type DetailedPeerCertificate } from 'node:tls';
import { OzError, describeCause, quote } from '../core/errors.js';

export interface IssuerThumbprint {
  /** SHA-1 of the top certificate of the chain, 40 lower-case hex digits, as IAM wants it. */
  thumbprint: string;
  /** The subject of that certificate, to show what was fingerprinted. */
  subject: string;
  /** Whether this machine trusts the chain (IAM does its own check), and why not. */
  trusted: boolean;
  untrustedBecause?: string;
  host: string;
  port: number;
}

/**
 * Connects to the issuer's host over TLS and fingerprints the top certificate of the chain it
 * presents: the last one, which IAM's "thumbprint" means (the root or top intermediate). The
 * chain is read even when this machine does not trust it, so that an administrator can see
 * the value before publishing; `trusted` says whether it verified here.
 */
export function issuerThumbprint(issuer: string, opts: { timeoutMs?: number; ca?: string | Buffer } = {}): Promise<IssuerThumbprint> {
  const url = new URL(issuer);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port === '' ? 443 : Number(url.port);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const fail = (why: string, cause?: unknown) =>
      reject(
        new OzError(
          'config',
          `cannot compute the TLS thumbprint of the issuer ${quote(`${url.host}`)}: ${why}; check that it serves https there, or pass --thumbprint HEX`,
          { cause },
        ),
      );
    const socket = connect({
      host,
      port,
      servername: /^[\d.]+$|:/.test(host) ? undefined : host,
      rejectUnauthorized: false,
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
    });
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      fail(`no TLS handshake within ${timeoutMs / 1000} s`);
    });
    socket.once('error', (e) => fail(describeCause(e), e));
    socket.once('secureConnect', () => {
      const leaf = socket.getPeerCertificate(true);
      const trusted = socket.authorized;
      const why = socket.authorizationError;
      socket.end();
      if (!leaf || Object.keys(leaf).length === 0) return fail('the server presented no certificate');
      let top: DetailedPeerCertificate = leaf;
      const seen = new Set<string>();
      // Each certificate links to its issuer; the top one links to itself or to nothing.
      while (top.issuerCertificate && top.issuerCertificate !== top && !seen.has(top.fingerprint)) {
        seen.add(top.fingerprint);
        if (top.issuerCertificate.fingerprint === top.fingerprint) break;
        top = top.issuerCertificate;
      }
      resolve({
        thumbprint: top.fingerprint.replace(/:/g, '').toLowerCase(),
        subject: Object.entries(top.subject ?? {})
          .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
          .join(', '),
        trusted,
        ...(trusted || why === undefined ? {} : { untrustedBecause: String(why) }),
        host,
        port,
      });
    });
  });
}
