// A throwaway certificate authority and a server certificate for loopback TLS stand-ins, made
// with the openssl CLI (node:crypto cannot write X.509). Clients trust it only through their own
// CA-bundle setting (NODE_EXTRA_CA_CERTS for Node, REQUESTS_CA_BUNDLE for Python's requests), so
// a test also proves that setting is honoured.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir } from './clients.js';

const run = promisify(execFile);

export interface TestCertificates {
  /** PEM file of the CA alone: what a client's CA-bundle setting points at. */
  caFile: string;
  caPem: string;
  /** PEM server key and certificate, for `tls.createServer`. */
  key: string;
  cert: string;
  close(): Promise<void>;
}

export interface CertificateNames {
  dns?: string[];
  ips?: string[];
}

/**
 * A CA and one server certificate for `names` (default: localhost, 127.0.0.1 and ::1), valid
 * for a day. Extra DNS names let a loopback proxy answer for a public host (see proxy-trap.ts).
 */
export async function makeTestCertificates(names: CertificateNames = {}): Promise<TestCertificates> {
  const { dir, cleanup } = await makeTempDir('oz-tls-');
  const f = (name: string) => path.join(dir, name);
  const dns = ['localhost', ...(names.dns ?? [])];
  const ips = names.ips ?? ['127.0.0.1', '::1'];
  try {
    await run('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '1',
      '-keyout', f('ca.key'), '-out', f('ca.pem'), '-subj', '/CN=oz stand-in test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-addext', 'subjectKeyIdentifier=hash',
    ]);
    await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
    const san = [...dns.map((d) => `DNS:${d}`), ...ips.map((i) => `IP:${i}`)].join(',');
    await writeFile(
      f('server.ext'),
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth',
        `subjectAltName=${san}`,
        'subjectKeyIdentifier=hash',
        'authorityKeyIdentifier=keyid,issuer',
        '',
      ].join('\n'),
    );
    await run('openssl', [
      'x509', '-req', '-sha256', '-days', '1', '-in', f('server.csr'),
      '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-extfile', f('server.ext'),
    ]);
    const [caPem, key, cert] = await Promise.all([readFile(f('ca.pem'), 'utf8'), readFile(f('server.key'), 'utf8'), readFile(f('server.pem'), 'utf8')]);
    return { caFile: f('ca.pem'), caPem, key, cert, close: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
