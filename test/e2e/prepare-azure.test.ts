import { beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode, oz, OZ_BIN, run, scrubbedEnv, tempDir } from '../helpers/oz.js';
import { parseEnv0, SOURCING_SHELLS } from '../helpers/shells.js';

/** `prepare --azure-*` and `--token` through the built CLI: files, variables, refusals, cleanup. */

const CLIENT = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const AZURE = ['--azure-client-id', CLIENT, '--azure-tenant-id', TENANT];

let home: string;
let env: Record<string, string>;
let dir: string;
beforeEach(() => {
  home = tempDir('oz-prep-azure-');
  env = scrubbedEnv(home, { OZ_RUN_ID: 'run-az', OZ_SUBJECT: 'user-42' });
  dir = join(home, 'prepared');
});

async function prepareJson(args: string[], extra: Record<string, string> = {}) {
  const r = await oz(['federate', 'prepare', '--dir', dir, '--shell', 'json', ...args], { env: { ...env, ...extra } });
  return { ...r, vars: r.code === 0 && r.stdout ? (JSON.parse(r.stdout) as Record<string, string>) : undefined };
}

describe('prepare for Azure', () => {
  it('writes the federated token file and exports the WorkloadIdentityCredential variables', async () => {
    const deadline = new Date(Date.now() + 2 * 3600_000);
    const r = await prepareJson(AZURE, { OZ_RUN_DEADLINE: deadline.toISOString() });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const file = join(dir, 'azure-federated-token');
    expect(r.vars).toEqual({
      AZURE_CLIENT_ID: CLIENT,
      AZURE_TENANT_ID: TENANT,
      AZURE_FEDERATED_TOKEN_FILE: file,
      AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com/',
    });
    const bytes = readFileSync(file, 'utf8');
    // No trailing newline: Entra ID refuses the assertion with one (AADSTS50027).
    expect(bytes).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const { header, claims } = decode(bytes);
    expect(header.alg).toBe('RS256');
    expect(claims).toMatchObject({ aud: 'api://AzureADTokenExchange', sub: 'user-42', run_id: 'run-az' });
    expect(claims.exp).toBe(Math.floor(deadline.getTime() / 1000));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['azure-federated-token', 'oz-token-files.json']);
  });

  it('keeps a long run\'s token within the day Entra ID accepts, counted from nbf', async () => {
    const r = await prepareJson(AZURE, { OZ_MAX_RUN_DURATION: '24h', OZ_RUN_DEADLINE: new Date(Date.now() + 30 * 3600_000).toISOString() });
    expect(r.code, r.stderr).toBe(0);
    const { claims } = decode(readFileSync(r.vars!.AZURE_FEDERATED_TOKEN_FILE!, 'utf8'));
    expect((claims.exp as number) - (claims.nbf as number)).toBe(86_400);
    expect((claims.exp as number) - (claims.iat as number)).toBe(86_400);
  });

  it('takes everything from the environment, a sovereign cloud\'s authority host and a domain as the tenant', async () => {
    const r = await prepareJson([], { OZ_AZURE_CLIENT_ID: CLIENT, OZ_AZURE_TENANT_ID: 'contoso.onmicrosoft.us', OZ_AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.us' });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.vars).toMatchObject({ AZURE_TENANT_ID: 'contoso.onmicrosoft.us', AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.us/' });
  });

  it('notes on stderr that an authority host of its own needs instance discovery off', async () => {
    const r = await prepareJson([...AZURE, '--azure-authority-host', 'https://127.0.0.1:9443']);
    expect(r.code).toBe(0);
    expect(r.vars!.AZURE_AUTHORITY_HOST).toBe('https://127.0.0.1:9443/');
    expect(r.stderr).toMatch(/^oz: note: https:\/\/127\.0\.0\.1:9443\/ is not one of Microsoft's authority hosts: @azure\/identity's WorkloadIdentityCredential needs \{ disableInstanceDiscovery: true \} to use it\n$/);
  });

  it('refuses an ES256 issuer with one line, writing nothing', async () => {
    expect((await oz(['issuer', 'init', '--alg', 'ES256'], { env })).code).toBe(0);
    const r = await oz(['federate', 'prepare', '--dir', dir, ...AZURE, '--aws-role-arn', 'arn:aws:iam::123456789012:role/r'], { env });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('oz: cannot prepare Azure: Entra ID accepts RS256 tokens only, and the embedded issuer\'s key is "ES256": run `oz issuer rotate --alg RS256` (and publish the new JWKS), or drop the Azure settings\n');
    expect(existsSync(dir)).toBe(false);
    // The AWS file alone is still fine with ES256.
    const aws = await oz(['federate', 'prepare', '--dir', dir, '--aws-role-arn', 'arn:aws:iam::123456789012:role/r'], { env });
    expect(aws.code).toBe(0);
  });
});

describe('prepare --token NAME=AUDIENCE', () => {
  it('is enough on its own: one file per relying party, exported as OZ_TOKEN_FILE_<NAME>', async () => {
    const r = await prepareJson(['--token', 'vault=https://vault.example.com', '--token', 'Saas_2=api://saas?x=1']);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.vars).toEqual({ OZ_TOKEN_FILE_VAULT: join(dir, 'token-vault'), OZ_TOKEN_FILE_SAAS_2: join(dir, 'token-saas_2') });
    for (const [name, aud] of [['token-vault', 'https://vault.example.com'], ['token-saas_2', 'api://saas?x=1']] as const) {
      const bytes = readFileSync(join(dir, name), 'utf8');
      expect(bytes).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
      expect(decode(bytes).claims).toMatchObject({ aud, sub: 'user-42' });
      expect(statSync(join(dir, name)).mode & 0o777).toBe(0o600);
    }
  });

  it('reads OZ_TOKEN_FILES, and the flags win over it', async () => {
    const fromEnv = await prepareJson([], { OZ_TOKEN_FILES: 'vault=https://vault.example.com,gitlab=https://gitlab.example.com' });
    expect(Object.keys(fromEnv.vars!)).toEqual(['OZ_TOKEN_FILE_VAULT', 'OZ_TOKEN_FILE_GITLAB']);
    const flag = await prepareJson(['--token', 'other=x'], { OZ_TOKEN_FILES: 'vault=https://vault.example.com' });
    expect(Object.keys(flag.vars!)).toEqual(['OZ_TOKEN_FILE_OTHER']);
  });
});

describe('refused input writes nothing and prints nothing on stdout', () => {
  it.each([
    ['a client ID that is no GUID', ['--azure-client-id', 'my-app', '--azure-tenant-id', TENANT], {}, 2, /^oz: invalid --azure-client-id "my-app": expected the application \(client\) ID, a GUID/],
    ['a multi-tenant authority from the environment', ['--azure-client-id', CLIENT], { OZ_AZURE_TENANT_ID: 'common' }, 3, /^oz: invalid OZ_AZURE_TENANT_ID "common": "common" names no single tenant/],
    ['a tenant that is neither GUID nor domain', ['--azure-client-id', CLIENT, '--azure-tenant-id', 'contoso'], {}, 2, /^oz: invalid --azure-tenant-id "contoso"/],
    ['an authority host with a path', [...AZURE, '--azure-authority-host', `https://login.microsoftonline.com/${TENANT}`], {}, 2, /^oz: invalid --azure-authority-host .*no path, query/],
    ['an http authority host', [...AZURE], { OZ_AZURE_AUTHORITY_HOST: 'http://login.microsoftonline.com' }, 3, /^oz: invalid OZ_AZURE_AUTHORITY_HOST .*https only/],
    ['a client ID without a tenant', ['--azure-client-id', CLIENT], {}, 2, /^oz: incomplete Azure federation settings: missing --azure-tenant-id/],
    ['a bad --token name', ['--token', 'my-vault=https://v'], {}, 2, /^oz: invalid --token "my-vault=https:\/\/v": the name "my-vault" must be 1-64 letters, digits or _/],
    ['a --token with no audience', ['--token', 'vault='], {}, 2, /^oz: invalid --token "vault=": the audience "" cannot be a token's "aud": it is empty/],
    ['a --token name twice', ['--token', 'vault=a', '--token', 'VAULT=b'], {}, 2, /^oz: invalid --token: the name VAULT is given twice/],
    ['a bad OZ_TOKEN_FILES', [], { OZ_TOKEN_FILES: 'vault' }, 3, /^oz: invalid OZ_TOKEN_FILES "vault": "vault": expected NAME=AUDIENCE/],
    ['a good Azure setting with a bad --token', [...AZURE, '--token', 'x'], {}, 2, /^oz: invalid --token "x"/],
  ])('%s', async (_n, args, extra, code, message) => {
    const r = await oz(['federate', 'prepare', '--dir', dir, ...args], { env: { ...env, ...extra } });
    expect(r.code).toBe(code);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr.split('\n')).toHaveLength(2);
    expect(existsSync(dir)).toBe(false);
  });
});

describe('every shell kind', () => {
  const args = [...AZURE, '--token', 'vault=https://vault.example.com'];
  const expected = () => ({
    AZURE_CLIENT_ID: CLIENT,
    AZURE_TENANT_ID: TENANT,
    AZURE_FEDERATED_TOKEN_FILE: join(dir, 'azure-federated-token'),
    AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com/',
    OZ_TOKEN_FILE_VAULT: join(dir, 'token-vault'),
  });

  it.each(SOURCING_SHELLS)('%s sources the Azure and token-file variables', async (_shell, bin, script) => {
    const shell = _shell;
    const r = await run(bin, ['-c', script(`'${OZ_BIN}' federate prepare --dir '${dir}' ${args.join(' ')} --shell ${shell}`)], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(parseEnv0(r.stdout)).toMatchObject(expected());
  });

  it('powershell and dotenv name them too', async () => {
    const ps = await oz(['federate', 'prepare', '--dir', dir, ...args, '--shell', 'powershell'], { env });
    expect(ps.stdout.trim().split('\n')).toEqual(Object.entries(expected()).map(([k, v]) => `$env:${k} = '${v}'`));
    const dotenv = await oz(['federate', 'prepare', '--dir', dir, ...args, '--shell', 'dotenv'], { env });
    expect(dotenv.stdout.trim().split('\n')).toEqual(Object.entries(expected()).map(([k, v]) => `${k}=${v}`));
  });
});

describe('cleanup', () => {
  it('removes the Azure file and every token-* file, and unsets their variables', async () => {
    const flags = `${AZURE.join(' ')} --token vault=https://v --token saas=https://s --aws-role-arn arn:aws:iam::123456789012:role/r`;
    const script = `eval "$('${OZ_BIN}' federate prepare --dir '${dir}' ${flags})" && test -s "$OZ_TOKEN_FILE_SAAS" && eval "$('${OZ_BIN}' federate cleanup --dir '${dir}')" && env -0`;
    const r = await run('/bin/sh', ['-c', script], { env });
    expect(r.code, r.stderr).toBe(0);
    const after = parseEnv0(r.stdout);
    expect(Object.keys(after).filter((k) => /^(AWS_|AZURE_|OZ_TOKEN_FILE_)/.test(k))).toEqual([]);
    expect(r.stderr).toMatch(/^oz: removed 5 file\(s\) from /m);
    expect(existsSync(dir)).toBe(false);
  });

  it('unsets token-file variables of the caller that point into the directory, even once their files are gone', async () => {
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    const r = await oz(['federate', 'cleanup', '--dir', dir], {
      env: { ...env, OZ_TOKEN_FILE_GONE: join(dir, 'token-gone'), OZ_TOKEN_FILE_ELSEWHERE: join(home, 'token-elsewhere') },
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('unset -v OZ_TOKEN_FILE_GONE\n');
    expect(r.stdout).not.toContain('ELSEWHERE');
    expect(r.stdout).toContain('unset -v AZURE_FEDERATED_TOKEN_FILE\n');
    expect(readdirSync(dir)).toEqual(['notes.txt']);
  });
});

describe('whoami', () => {
  it('lists the files prepare would write and what each exports', async () => {
    const r = await oz(['federate', 'whoami', '--json'], { env: { ...env, OZ_AZURE_CLIENT_ID: CLIENT, OZ_AZURE_TENANT_ID: TENANT, OZ_TOKEN_FILES: 'vault=https://v' } });
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(summary.prepare_files).toEqual([
      { file: 'azure-federated-token', audience: 'api://AzureADTokenExchange', variables: ['AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_FEDERATED_TOKEN_FILE', 'AZURE_AUTHORITY_HOST'] },
      { file: 'token-vault', audience: 'https://v', variables: ['OZ_TOKEN_FILE_VAULT'] },
    ]);
    expect(summary.prepare).toMatchObject({ 'azure-client-id': { value: CLIENT, variable: 'OZ_AZURE_CLIENT_ID' }, token: { value: 'VAULT=https://v', variable: 'OZ_TOKEN_FILES' } });
    const text = await oz(['federate', 'whoami'], { env: { ...env, OZ_TOKEN_FILES: 'vault=https://v' } });
    expect(text.stdout).toMatch(/^ {2}prepare +token-vault \(aud https:\/\/v\) +sets OZ_TOKEN_FILE_VAULT$/m);
  });
});
