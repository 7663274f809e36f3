// Whether Azure's own CLI (Debian's azure-cli, Python MSAL) can be pointed at the Entra stand-in
// with `az login --service-principal --federated-token`. It cannot log in: az takes the authority
// only from a registered cloud's `active_directory` endpoint, and MSAL for Python, unlike the
// Node library, cannot be told by az to skip instance discovery, so it asks
// login.microsoftonline.com whether the authority is Microsoft's; Entra (here the stand-in, reached
// through the proxy trap) says `invalid_instance` and az gives up before any token request. This
// test pins that behaviour so a change in az shows up. Skipped when az is not installed.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAz } from './helpers/azure-clients.js';
import { makeTempDir } from './helpers/clients.js';
import { AZURE_AD_TOKEN_EXCHANGE, startEntraBehindTrap } from './helpers/entra.js';
import type { EntraStandIn } from './helpers/entra.js';
import type { ProxyTrap } from './helpers/proxy-trap.js';
import type { TestCertificates } from './helpers/tls.js';
import { startTestIssuer } from './helpers/test-issuer.js';
import type { TestIssuer } from './helpers/test-issuer.js';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const SUBJECT = 'teams:abc123:sub:user-42';
const hasAz = spawnSync('az', ['version'], { stdio: 'ignore', timeout: 60_000 }).status === 0;

let issuer: TestIssuer;
let certs: TestCertificates;
let entra: EntraStandIn;
let trap: ProxyTrap;
let dir: string;
let cleanup: () => Promise<void>;
let closeEntra: () => Promise<void>;

describe.skipIf(!hasAz)('az CLI against the Entra stand-in', () => {
  beforeAll(async () => {
    issuer = await startTestIssuer();
    ({ certs, entra, trap, close: closeEntra } = await startEntraBehindTrap({ tenantId: TENANT, applications: { [CLIENT]: [{ issuer: issuer.url, subject: SUBJECT }] } }));
    ({ dir, cleanup } = await makeTempDir('oz-az-'));
  });

  afterAll(async () => {
    await Promise.all([issuer?.close(), closeEntra?.(), cleanup?.()]);
  });

  it('az login --federated-token stops at instance discovery: the stand-in authority is not Microsoft\'s', async () => {
    const configDir = path.join(dir, 'azure');
    const az = (args: string[]) => runAz(args, { configDir, caFile: certs.caFile, proxy: trap.url, home: dir });
    const registered = await az([
      'cloud', 'register', '--name', 'OzStandIn',
      '--endpoint-active-directory', entra.url,
      '--endpoint-active-directory-resource-id', 'https://management.core.windows.net/',
      // With all four set, az does not fetch the cloud's metadata from the resource manager.
      '--endpoint-active-directory-graph-resource-id', 'https://graph.windows.net/',
      '--endpoint-resource-manager', `${entra.url}/`,
    ]);
    expect(registered.code, registered.stderr).toBe(0);
    const set = await az(['cloud', 'set', '--name', 'OzStandIn']);
    expect(set.code, set.stderr).toBe(0);

    const before = entra.requests.length;
    const token = issuer.token({ sub: SUBJECT, aud: AZURE_AD_TOKEN_EXCHANGE });
    const login = await az(['login', '--service-principal', '--username', CLIENT, '--tenant', TENANT, '--federated-token', token, '--allow-no-subscriptions', '--output', 'json']);
    expect(login.code).not.toBe(0);
    expect(login.stderr).toMatch(/invalid_instance: The authority you provided, .* is not whitelisted/);
    const seen = entra.requests.slice(before);
    expect(seen.map((q) => q.endpoint)).toEqual(['instance-discovery']);
    expect(seen[0]).toMatchObject({ host: 'login.microsoftonline.com', errorCode: 50049 });
    // MSAL for Python names the authority by host alone, dropping the port.
    expect(seen[0]!.params.authorization_endpoint).toBe(`https://127.0.0.1/${TENANT}/oauth2/v2.0/authorize`);
    // Besides the tunnelled discovery, az only tried its connectivity check after the failure
    // (util.check_connectivity, https://azure.microsoft.com), and the trap cut it.
    expect(trap.requests.filter((t) => !t.tunnelled).every((t) => t.target === 'azure.microsoft.com:443')).toBe(true);
  });
});
