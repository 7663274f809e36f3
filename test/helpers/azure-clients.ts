// Runs Azure's real clients in scrubbed child processes, like clients.ts does for AWS and Google:
// @azure/identity (WorkloadIdentityCredential, DefaultAzureCredential) and, when installed, the
// az CLI. Every child gets the network traps below, so nothing it tries can leave loopback.
import { createRequire } from 'node:module';
import path from 'node:path';
import { collect, networkTrapEnv, RESULT_MARK, runChild, scrubbedEnv, withHome } from './clients.js';
import type { ChildOutput, ClientResult, RunOptions } from './clients.js';

const require = createRequire(import.meta.url);

/** The variables `oz federate prepare --azure-*` is to export: the WorkloadIdentityCredential contract. */
export function azureWorkloadIdentityEnv(input: { clientId: string; tenantId: string; tokenFile: string; authorityHost?: string }): Record<string, string> {
  const env: Record<string, string> = {
    AZURE_CLIENT_ID: input.clientId,
    AZURE_TENANT_ID: input.tenantId,
    AZURE_FEDERATED_TOKEN_FILE: input.tokenFile,
  };
  if (input.authorityHost !== undefined) env.AZURE_AUTHORITY_HOST = input.authorityHost;
  return env;
}

export interface AzureTokenResult {
  token: string;
  expiresOnTimestamp: number;
  tokenType?: string;
  /** Class of the credential that produced the token (for the default chain, the one that answered). */
  credential: string;
}

export interface AzureIdentityOptions extends RunOptions {
  credential: 'WorkloadIdentityCredential' | 'DefaultAzureCredential';
  /** Constructor options, e.g. `{ disableInstanceDiscovery: true }`. */
  options?: Record<string, unknown>;
  scope?: string;
  /** The CA file the child trusts on top of Node's own (NODE_EXTRA_CA_CERTS). */
  caFile?: string;
  /** HTTPS_PROXY and HTTP_PROXY for the child; a closed loopback port by default. */
  proxy?: string;
}

/**
 * Gets a token with @azure/identity. A failure carries the AADSTS code of the refusal as `code`
 * (from the error's `errorResponse` or its message) and the HTTP status as `status`.
 */
export async function azureIdentityToken(opts: AzureIdentityOptions): Promise<ClientResult<AzureTokenResult>> {
  const modulePath = require.resolve('@azure/identity');
  const script = `
const { createRequire } = require('node:module');
const identity = createRequire(${JSON.stringify(modulePath)})(${JSON.stringify(modulePath)});
const mark = ${JSON.stringify(RESULT_MARK)};
(async () => {
  try {
    const credential = new identity[${JSON.stringify(opts.credential)}](${JSON.stringify(opts.options ?? {})});
    const t = await credential.getToken(${JSON.stringify(opts.scope ?? 'https://management.azure.com/.default')});
    console.log(mark + JSON.stringify({ ok: true, value: { token: t.token, expiresOnTimestamp: t.expiresOnTimestamp, tokenType: t.tokenType } }));
  } catch (e) {
    const r = e && e.errorResponse;
    const text = String(e && e.message);
    const aadsts = /AADSTS(\\d+)/.exec((r && r.errorDescription) || text);
    console.log(mark + JSON.stringify({ ok: false, error: { name: String(e && e.name), message: text,
      code: aadsts ? 'AADSTS' + aadsts[1] : (r && r.error) || undefined, status: e && e.statusCode } }));
  }
})();
`;
  return withHome(opts, async (home) => {
    const r = collect<AzureTokenResult>(
      await runChild(process.execPath, ['-e', script], {
        // The library's info log names each credential it tries and the one that answered
        // (never a token), which is how a test learns what the default chain did.
        env: scrubbedEnv(home, { ...networkTrapEnv(opts.proxy), NODE_EXTRA_CA_CERTS: opts.caFile, AZURE_LOG_LEVEL: 'info', ...opts.env }),
        timeoutMs: opts.timeoutMs ?? 60_000,
      }),
    );
    if (r.ok) r.value.credential = /Result for (\w+): SUCCESS/.exec(r.stderr)?.[1] ?? opts.credential;
    return r;
  });
}

/** Runs `az` with a fresh AZURE_CONFIG_DIR, the traps, and the test CA as requests' CA bundle. */
export async function runAz(args: string[], opts: RunOptions & { configDir: string; caFile?: string; proxy?: string }): Promise<ChildOutput> {
  return withHome(opts, async (home) =>
    runChild('az', args, {
      env: scrubbedEnv(home, {
        ...networkTrapEnv(opts.proxy),
        AZURE_CONFIG_DIR: opts.configDir,
        AZURE_CORE_COLLECT_TELEMETRY: 'false',
        AZURE_CORE_ONLY_SHOW_ERRORS: 'true',
        AZURE_CORE_NO_COLOR: 'true',
        REQUESTS_CA_BUNDLE: opts.caFile,
        PYTHONDONTWRITEBYTECODE: '1',
        ...opts.env,
      }),
      cwd: path.dirname(opts.configDir),
      timeoutMs: opts.timeoutMs ?? 90_000,
    }),
  );
}
