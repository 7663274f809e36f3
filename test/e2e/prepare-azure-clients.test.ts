// `eval "$(oz federate prepare --azure-…)"`, then Azure's real client library: @azure/identity's
// WorkloadIdentityCredential and DefaultAzureCredential get an access token from the Entra ID
// stand-in (TLS on loopback, a generated CA), which judges the token file as Entra does. Both
// token sources: the embedded issuer, and a token service (`oz issuer serve` + `grant-run`).
// Every client runs behind the proxy trap; only login.microsoftonline.com is tunnelled, to the
// stand-in, for the instance discovery MSAL asks of it when not told to skip it.
import { rm } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { azureIdentityToken } from '../helpers/azure-clients.js';
import { AZURE_AD_TOKEN_EXCHANGE, startEntraBehindTrap, type EntraStandIn } from '../helpers/entra.js';
import type { ProxyTrap } from '../helpers/proxy-trap.js';
import type { TestCertificates } from '../helpers/tls.js';
import { decode, oz, OZ_BIN, run, scrubbedEnv, tempDir } from '../helpers/oz.js';
import { parseEnv0 } from '../helpers/shells.js';
import { serve, type Served } from '../helpers/serve.js';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const SCOPE = 'https://management.azure.com/.default';
const CREDENTIALS = ['WorkloadIdentityCredential', 'DefaultAzureCredential'] as const;

let certs: TestCertificates;
let entra: EntraStandIn;
let trap: ProxyTrap;
let closeEntra: () => Promise<void>;
let issuerHome: string;
let issuerEnv: Record<string, string>;
let served: Served;

beforeAll(async () => {
  issuerHome = tempDir('oz-azure-clients-');
  issuerEnv = scrubbedEnv(issuerHome);
  // One oz key serves both modes: the embedded issuer signs with it in the sandbox's own data
  // directory, and `serve` publishes its discovery and JWKS (and is the token service).
  served = await serve(issuerEnv, ['--rate-limit', '0']);
  ({ certs, entra, trap, close: closeEntra } = await startEntraBehindTrap({
    tenantId: TENANT,
    applications: {
      [CLIENT]: [
        { name: 'embedded-run', issuer: served.url, subject: 'user-42' },
        { name: 'granted-run', issuer: served.url, subject: 'user-7' },
      ],
    },
  }));
});

afterAll(async () => {
  await Promise.all([closeEntra?.(), served?.stop('SIGKILL')]);
  await rm(issuerHome, { recursive: true, force: true });
});

/** The AZURE_* variables a shell has after `eval "$(oz federate prepare …)"`. */
async function prepared(env: Record<string, string>, dir: string, extra: string[] = []): Promise<Record<string, string>> {
  const flags = ['--dir', dir, '--azure-client-id', CLIENT, '--azure-tenant-id', TENANT, '--azure-authority-host', entra.url, ...extra];
  const r = await run('/bin/sh', ['-c', `eval "$('${OZ_BIN}' federate prepare ${flags.map((f) => `'${f}'`).join(' ')})" || exit 9; env -0`], { env });
  expect(r.code, r.stderr).toBe(0);
  // The only note: this authority host is not Microsoft's.
  expect(r.stderr).toMatch(/^oz: note: https:\/\/127\.0\.0\.1:\d+\/ is not one of Microsoft's authority hosts/);
  const all = parseEnv0(r.stdout);
  return Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith('AZURE_')));
}

/** @azure/identity in a scrubbed child: the shell's AZURE_* variables and nothing else of the run. */
async function getToken(credential: (typeof CREDENTIALS)[number], azureEnv: Record<string, string>) {
  const trapped = trap.requests.length;
  const before = entra.requests.length;
  // The Node library cannot be told by a variable to skip instance discovery: code passes the
  // option for a host of its own. DefaultAzureCredential is used as applications write it.
  const options = credential === 'WorkloadIdentityCredential' ? { disableInstanceDiscovery: true } : {};
  const r = await azureIdentityToken({ credential, options, env: azureEnv, caFile: certs.caFile, proxy: trap.url, scope: SCOPE });
  return { r, trapped: trap.requests.slice(trapped), seen: entra.requests.slice(before) };
}

describe('embedded issuer', () => {
  let home: string;
  let env: Record<string, string>;
  let azureEnv: Record<string, string>;

  beforeAll(async () => {
    home = tempDir('oz-azure-embedded-');
    // A day-long run: the token file is as long-lived as Entra ID accepts, and no longer.
    env = scrubbedEnv(home, { OZ_DATA_DIR: issuerEnv.OZ_DATA_DIR!, OZ_ISSUER_URL: served.url, OZ_RUN_ID: 'run-az', OZ_SUBJECT: 'user-42', OZ_MAX_RUN_DURATION: '24h' });
    azureEnv = await prepared(env, join(home, 'prepared'));
  });
  afterAll(() => rm(home, { recursive: true, force: true }));

  it('exports exactly the four variables of the WorkloadIdentityCredential contract', () => {
    expect(azureEnv).toEqual({
      AZURE_CLIENT_ID: CLIENT,
      AZURE_TENANT_ID: TENANT,
      AZURE_FEDERATED_TOKEN_FILE: join(home, 'prepared', 'azure-federated-token'),
      AZURE_AUTHORITY_HOST: `${entra.url}/`,
    });
    const { header, claims } = decode(readFileSync(azureEnv.AZURE_FEDERATED_TOKEN_FILE!, 'utf8'));
    expect(header.alg).toBe('RS256');
    expect(claims).toMatchObject({ iss: served.url, aud: AZURE_AD_TOKEN_EXCHANGE, sub: 'user-42' });
    expect((claims.exp as number) - (claims.nbf as number)).toBe(86_400);
  });

  it.each(CREDENTIALS)('%s gets an access token for the prepared token file', async (credential) => {
    const { r, trapped, seen } = await getToken(credential, azureEnv);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(entra.issued.get(r.value.token)).toMatchObject({ clientId: CLIENT, tenantId: TENANT, federatedIssuer: served.url, federatedSubject: 'user-42', credentialName: 'embedded-run', resource: 'https://management.azure.com' });
    const tokenRequest = seen.find((q) => q.endpoint === 'token')!;
    // The file's bytes, exactly: what the library read is what oz wrote.
    expect(tokenRequest.params.client_assertion).toBe(readFileSync(azureEnv.AZURE_FEDERATED_TOKEN_FILE!, 'utf8'));
    expect(tokenRequest.checks).toEqual(expect.arrayContaining(['signature', 'audience', 'federated credential', 'lifetime']));
    if (credential === 'WorkloadIdentityCredential') {
      expect(r.value.credential).toBe('WorkloadIdentityCredential');
      expect(trapped).toEqual([]);
    } else {
      // The default chain's environment step does not answer; its managed-identity step reads
      // the token file, with discovery asked of the (tunnelled) Microsoft host.
      expect(r.value.credential).toBe('ManagedIdentityCredential');
      expect(trapped.every((t) => t.tunnelled && t.target === 'login.microsoftonline.com:443')).toBe(true);
    }
  });

  it('a run whose subject has no federated credential is refused by Entra ID (AADSTS70021)', async () => {
    const other = tempDir('oz-azure-other-');
    try {
      const otherEnv = await prepared(scrubbedEnv(other, { OZ_DATA_DIR: issuerEnv.OZ_DATA_DIR!, OZ_ISSUER_URL: served.url, OZ_SUBJECT: 'user-666' }), join(other, 'prepared'));
      const { r } = await getToken('WorkloadIdentityCredential', otherEnv);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('AADSTS70021');
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});

describe('token service (remote mode)', () => {
  let home: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    const g = await oz(['issuer', 'grant-run', '--run-id', 'run-77', '--subject', 'user-7', '--teams', 'team-a'], { env: { ...issuerEnv, OZ_ISSUER_URL: served.url } });
    expect({ code: g.code, stderr: g.stderr }).toEqual({ code: 0, stderr: '' });
    home = tempDir('oz-azure-remote-');
    // The sandbox's own claims are ignored in this mode; its subject would match no credential.
    env = scrubbedEnv(home, { OZ_RUN_TOKEN: g.stdout.trim(), OZ_ISSUER_URL: served.url, OZ_SUBJECT: 'user-42' });
  });
  afterAll(() => rm(home, { recursive: true, force: true }));

  it.each(CREDENTIALS)("%s gets an access token for the grant's identity", async (credential) => {
    const azureEnv = await prepared(env, join(home, `prepared-${credential}`));
    expect(existsSync(env.OZ_DATA_DIR!)).toBe(false);
    const { r } = await getToken(credential, azureEnv);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (r.ok) expect(entra.issued.get(r.value.token)).toMatchObject({ clientId: CLIENT, federatedIssuer: served.url, federatedSubject: 'user-7', credentialName: 'granted-run' });
  });

  it('refuses a token service that signs with ES256, by the header of the token it sent, writing nothing', async () => {
    const esHome = tempDir('oz-azure-es-');
    const esEnv = scrubbedEnv(esHome);
    expect((await oz(['issuer', 'init', '--alg', 'ES256'], { env: esEnv })).code).toBe(0);
    const es = await serve(esEnv, ['--rate-limit', '0']);
    try {
      const g = await oz(['issuer', 'grant-run', '--run-id', 'run-es', '--subject', 'user-7'], { env: { ...esEnv, OZ_ISSUER_URL: es.url } });
      expect(g.code, g.stderr).toBe(0);
      const sandbox = scrubbedEnv(esHome, { OZ_RUN_TOKEN: g.stdout.trim(), OZ_ISSUER_URL: es.url, OZ_DATA_DIR: join(esHome, 'sandbox-data') });
      const dir = join(esHome, 'prepared');
      const r = await oz(['federate', 'prepare', '--dir', dir, '--azure-client-id', CLIENT, '--azure-tenant-id', TENANT, '--token', 'vault=https://v'], { env: sandbox });
      expect(r.code).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe('oz: cannot prepare Azure: Entra ID accepts RS256 tokens only, and the token service signs with "ES256": its operator must switch the issuer to an RS256 key (oz issuer rotate --alg RS256)\n');
      expect(existsSync(dir)).toBe(false);
      // The same service is fine for relying parties that take ES256.
      const vault = await oz(['federate', 'prepare', '--dir', dir, '--token', 'vault=https://v', '--shell', 'json'], { env: sandbox });
      expect(vault.code, vault.stderr).toBe(0);
      expect(decode(readFileSync(JSON.parse(vault.stdout).OZ_TOKEN_FILE_VAULT, 'utf8')).header.alg).toBe('ES256');
    } finally {
      await es.stop('SIGKILL');
      await rm(esHome, { recursive: true, force: true });
    }
  });
});
