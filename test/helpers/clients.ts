// Runs the real cloud clients (AWS SDK for JavaScript v3, boto3, google-auth-library for Node,
// gcloud) in child processes with a scrubbed environment, so a test proves that the environment
// variables and files it hands over are enough on their own: no ambient credentials, no
// ~/.aws or gcloud configuration, nothing inherited from the developer's shell.
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);

export const SYSTEM_PYTHON = '/usr/bin/python3';

export interface ChildOutput {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface ClientError {
  /** Exception class or error name as the client reported it. */
  name: string;
  message: string;
  /** Service error code when the client exposes one (e.g. STS `InvalidIdentityToken`). */
  code?: string;
  /** HTTP status of the failing response, when known. */
  status?: number;
}

export type ClientResult<T> =
  | ({ ok: true; value: T } & ChildOutput)
  | ({ ok: false; error: ClientError } & ChildOutput);

export interface RunOptions {
  /** Variables for the child, on top of the scrubbed base (PATH, HOME, locale). */
  env?: Record<string, string | undefined>;
  /** HOME for the child; a fresh temporary directory when absent. */
  home?: string;
  timeoutMs?: number;
}

/** A private temporary directory and a function that removes it. */
export async function makeTempDir(prefix = 'oz-clients-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The environment every client child starts from: nothing that could carry credentials. */
export function scrubbedEnv(home: string, extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    LANG: 'C.UTF-8',
    TMPDIR: tmpdir(),
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/**
 * Variables that make every metadata service and public host unreachable: anything not for
 * 127.0.0.1 goes to `proxy` (a proxy trap, or a closed port) and fails at once.
 */
export function networkTrapEnv(proxy = 'http://127.0.0.1:9'): Record<string, string> {
  return {
    AWS_EC2_METADATA_DISABLED: 'true',
    GCE_METADATA_HOST: '127.0.0.1:9',
    HTTPS_PROXY: proxy,
    HTTP_PROXY: proxy,
    NO_PROXY: '127.0.0.1',
  };
}

export function runChild(
  command: string,
  args: string[],
  opts: { env: Record<string, string>; cwd?: string; timeoutMs?: number },
): Promise<ChildOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: opts.env, cwd: opts.cwd ?? opts.env.HOME, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

export const RESULT_MARK = '@@client-result@@ ';

/** Parses the one line a client script prints with the outcome, keeping the raw output alongside. */
export function collect<T>(out: ChildOutput): ClientResult<T> {
  const line = out.stdout.split('\n').reverse().find((l) => l.startsWith(RESULT_MARK));
  if (!line) {
    const why = out.timedOut ? 'timed out' : `exited with ${out.code ?? out.signal}`;
    return { ...out, ok: false, error: { name: 'NoResult', message: `client ${why} without a result; stderr: ${out.stderr.slice(-2000)}` } };
  }
  const parsed = JSON.parse(line.slice(RESULT_MARK.length)) as { ok: true; value: T } | { ok: false; error: ClientError };
  return { ...out, ...parsed };
}

export async function withHome<T>(opts: RunOptions, fn: (home: string) => Promise<T>): Promise<T> {
  if (opts.home) return fn(opts.home);
  const { dir, cleanup } = await makeTempDir('oz-home-');
  try {
    return await fn(dir);
  } finally {
    await cleanup();
  }
}

// ---------------------------------------------------------------------------------------------
// AWS SDK for JavaScript v3

export interface AwsCredentialsResult {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: string;
  accountId?: string;
}

export interface AwsJsOptions extends RunOptions {
  provider: 'fromTokenFile' | 'fromNodeProviderChain';
  /** Passed as the provider's `clientConfig` (e.g. `{ endpoint }`), for callers that cannot use AWS_ENDPOINT_URL_STS. */
  clientConfig?: Record<string, unknown>;
}

/**
 * Resolves credentials with @aws-sdk/credential-providers. AWS_EC2_METADATA_DISABLED is set so
 * that a default chain that falls through can never reach for the instance metadata service.
 */
export async function resolveAwsJs(opts: AwsJsOptions): Promise<ClientResult<AwsCredentialsResult>> {
  const modulePath = require.resolve('@aws-sdk/credential-providers');
  const script = `
const { createRequire } = require('node:module');
const providers = createRequire(${JSON.stringify(modulePath)})(${JSON.stringify(modulePath)});
const mark = ${JSON.stringify(RESULT_MARK)};
const init = ${JSON.stringify(opts.clientConfig ? { clientConfig: opts.clientConfig } : {})};
(async () => {
  try {
    const c = await providers[${JSON.stringify(opts.provider)}](init)();
    console.log(mark + JSON.stringify({ ok: true, value: {
      accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken,
      expiration: c.expiration ? c.expiration.toISOString() : undefined, accountId: c.accountId } }));
  } catch (e) {
    console.log(mark + JSON.stringify({ ok: false, error: { name: String(e && e.name), message: String(e && e.message),
      code: e && (e.Code || e.code), status: e && e.$metadata ? e.$metadata.httpStatusCode : undefined } }));
  }
})();
`;
  return withHome(opts, async (home) =>
    collect<AwsCredentialsResult>(
      await runChild(process.execPath, ['-e', script], {
        env: scrubbedEnv(home, { AWS_EC2_METADATA_DISABLED: 'true', ...opts.env }),
        timeoutMs: opts.timeoutMs ?? 30_000,
      }),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// boto3 / botocore (the Debian build, under /usr/bin/python3)

export interface Boto3Result {
  /** The credential provider botocore picked, e.g. `assume-role-with-web-identity`. */
  method: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** Whether the AWS_ENDPOINT_URL_STS shim had to be installed (botocore older than 1.31). */
  endpointShim: boolean;
  botocoreVersion: string;
  identity?: { Arn: string; Account: string; UserId: string };
}

const BOTO3_SCRIPT = String.raw`
import json, os, sys
MARK = sys.argv[1]
WANT_IDENTITY = sys.argv[2] == '1'

def emit(obj):
    print(MARK + json.dumps(obj), flush=True)

try:
    import botocore, botocore.configprovider, botocore.session
    import boto3
    from botocore.exceptions import ClientError

    def honour_endpoint_url_sts():
        # botocore learned AWS_ENDPOINT_URL_<SERVICE> in 1.31 (together with the
        # ignore_configured_endpoint_urls setting); older releases ignore it, so emulate
        # exactly that behaviour for STS and nothing else.
        if 'ignore_configured_endpoint_urls' in botocore.configprovider.BOTOCORE_DEFAUT_SESSION_VARIABLES:
            return False
        url = os.environ.get('AWS_ENDPOINT_URL_STS') or os.environ.get('AWS_ENDPOINT_URL')
        if not url:
            return False
        original = botocore.session.Session.create_client
        def create_client(self, service_name, *args, **kwargs):
            if service_name == 'sts' and not args[4:5] and kwargs.get('endpoint_url') is None:
                kwargs['endpoint_url'] = url
            return original(self, service_name, *args, **kwargs)
        botocore.session.Session.create_client = create_client
        return True

    shim = honour_endpoint_url_sts()
    session = boto3.Session()
    creds = session.get_credentials()
    if creds is None:
        emit({'ok': False, 'error': {'name': 'NoCredentials', 'message': 'botocore found no credentials'}})
        sys.exit(0)
    frozen = creds.get_frozen_credentials()
    value = {'method': creds.method, 'accessKeyId': frozen.access_key, 'secretAccessKey': frozen.secret_key,
             'sessionToken': frozen.token, 'endpointShim': shim, 'botocoreVersion': botocore.__version__}
    if WANT_IDENTITY:
        ident = session.client('sts').get_caller_identity()
        value['identity'] = {k: ident[k] for k in ('Arn', 'Account', 'UserId')}
    emit({'ok': True, 'value': value})
except Exception as e:
    err = {'name': type(e).__name__, 'message': str(e)}
    response = getattr(e, 'response', None)
    if isinstance(response, dict):
        err['code'] = response.get('Error', {}).get('Code')
        err['status'] = response.get('ResponseMetadata', {}).get('HTTPStatusCode')
    emit({'ok': False, 'error': err})
`;

/**
 * Resolves credentials through boto3's default chain and, with `getCallerIdentity`, signs a
 * GetCallerIdentity call with them.
 */
export async function resolveBoto3(opts: RunOptions & { getCallerIdentity?: boolean }): Promise<ClientResult<Boto3Result>> {
  return withHome(opts, async (home) =>
    collect<Boto3Result>(
      await runChild(SYSTEM_PYTHON, ['-c', BOTO3_SCRIPT, RESULT_MARK, opts.getCallerIdentity ? '1' : '0'], {
        env: scrubbedEnv(home, { AWS_EC2_METADATA_DISABLED: 'true', PYTHONDONTWRITEBYTECODE: '1', ...opts.env }),
        timeoutMs: opts.timeoutMs ?? 30_000,
      }),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Google: credential configuration and executable

export interface ExternalAccountConfigInput {
  audience: string;
  tokenUrl: string;
  tokenInfoUrl?: string;
  serviceAccountImpersonationUrl?: string;
  /** The executable's command line; the libraries split it on whitespace. */
  command: string;
  timeoutMillis?: number;
  outputFile?: string;
  subjectTokenType?: string;
}

/** An `external_account` credential configuration with an executable credential source. */
export function externalAccountConfig(input: ExternalAccountConfigInput): Record<string, unknown> {
  const executable: Record<string, unknown> = { command: input.command, timeout_millis: input.timeoutMillis ?? 30_000 };
  if (input.outputFile) executable.output_file = input.outputFile;
  const config: Record<string, unknown> = {
    type: 'external_account',
    audience: input.audience,
    subject_token_type: input.subjectTokenType ?? 'urn:ietf:params:oauth:token-type:jwt',
    token_url: input.tokenUrl,
    credential_source: { executable },
  };
  if (input.tokenInfoUrl) config.token_info_url = input.tokenInfoUrl;
  if (input.serviceAccountImpersonationUrl) config.service_account_impersonation_url = input.serviceAccountImpersonationUrl;
  return config;
}

export async function writeExternalAccountConfig(file: string, input: ExternalAccountConfigInput): Promise<string> {
  await writeFile(file, `${JSON.stringify(externalAccountConfig(input), null, 2)}\n`, { mode: 0o600 });
  return file;
}

/** The executable-sourced credential response for a successfully obtained JWT. */
export function executableSuccess(idToken: string, expirationTime: number): Record<string, unknown> {
  return { version: 1, success: true, token_type: 'urn:ietf:params:oauth:token-type:jwt', id_token: idToken, expiration_time: expirationTime };
}

export interface FakeExecutable {
  /** Absolute path of the script (usable as `command`). */
  path: string;
  /** One line per run: `audience|token type|interactive|output file`, from the variables the library set. */
  callsLog: string;
}

/**
 * Writes a shell script that prints `response` on stdout, standing in for `oz federate
 * issue-token --format gcp` until that exists. Each run is logged with the
 * GOOGLE_EXTERNAL_ACCOUNT_* variables it received, so tests can check what the library passed.
 */
export async function writeFakeExecutable(
  dir: string,
  response: Record<string, unknown> | string,
  opts: { name?: string; exitCode?: number; stderr?: string } = {},
): Promise<FakeExecutable> {
  const file = path.join(dir, opts.name ?? 'fake-oz.sh');
  const callsLog = path.join(dir, `${path.basename(file)}.calls`);
  const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const body = typeof response === 'string' ? response : JSON.stringify(response);
  const lines = [
    '#!/bin/sh',
    `printf '%s|%s|%s|%s\\n' "$GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE" "$GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE" "$GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE" "$GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE" >> ${sq(callsLog)}`,
  ];
  if (opts.stderr !== undefined) lines.push(`printf '%s' ${sq(opts.stderr)} >&2`);
  lines.push(`printf '%s' ${sq(body)}`, `exit ${opts.exitCode ?? 0}`);
  await writeFile(file, `${lines.join('\n')}\n`, { mode: 0o700 });
  await chmod(file, 0o700);
  return { path: file, callsLog };
}

// ---------------------------------------------------------------------------------------------
// google-auth-library for Node

export interface GoogleAuthResult {
  token: string;
  /** Class of the client ADC produced, e.g. `PluggableAuthClient`. */
  clientType: string;
  projectId?: string;
}

/**
 * Application Default Credentials from GOOGLE_APPLICATION_CREDENTIALS, then an access token.
 * The project ID is asked for only when GOOGLE_CLOUD_PROJECT is set: otherwise the library
 * would go to Cloud Resource Manager on the internet.
 */
export async function googleAuthNodeAccessToken(
  opts: RunOptions & { scopes?: string[] },
): Promise<ClientResult<GoogleAuthResult>> {
  const modulePath = require.resolve('google-auth-library');
  const scopes = opts.scopes ?? ['https://www.googleapis.com/auth/cloud-platform'];
  const script = `
const { createRequire } = require('node:module');
const { GoogleAuth } = createRequire(${JSON.stringify(modulePath)})(${JSON.stringify(modulePath)});
const mark = ${JSON.stringify(RESULT_MARK)};
(async () => {
  try {
    const auth = new GoogleAuth({ scopes: ${JSON.stringify(scopes)} });
    const client = await auth.getClient();
    const { token } = await client.getAccessToken();
    const projectId = process.env.GOOGLE_CLOUD_PROJECT ? await auth.getProjectId() : undefined;
    console.log(mark + JSON.stringify({ ok: true, value: { token, clientType: client.constructor.name, projectId } }));
  } catch (e) {
    const res = e && e.response;
    console.log(mark + JSON.stringify({ ok: false, error: { name: String(e && e.name), message: String(e && e.message),
      code: res && res.data && typeof res.data.error === 'string' ? res.data.error : (e && e.code ? String(e.code) : undefined),
      status: res ? res.status : undefined } }));
  }
})();
`;
  return withHome(opts, async (home) =>
    collect<GoogleAuthResult>(
      await runChild(process.execPath, ['-e', script], {
        env: scrubbedEnv(home, { NO_GCE_CHECK: 'true', ...opts.env }),
        timeoutMs: opts.timeoutMs ?? 30_000,
      }),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// gcloud

/** Properties that keep gcloud from prompting or reaching for the network on its own. */
export const GCLOUD_QUIET_ENV: Record<string, string> = {
  CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
  CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
  CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: 'true',
  CLOUDSDK_SURVEY_DISABLE_PROMPTS: 'true',
  CLOUDSDK_CORE_CHECK_GCE_METADATA: 'false',
};

/**
 * `gcloud auth print-access-token` with a fresh CLOUDSDK_CONFIG. The value is the token gcloud
 * printed; a failure carries gcloud's stderr as the message.
 */
export async function gcloudPrintAccessToken(opts: RunOptions & { configDir?: string; args?: string[] }): Promise<ClientResult<{ token: string }>> {
  return withHome(opts, async (home) => {
    const configDir = opts.configDir ?? path.join(home, 'gcloud');
    const out = await runChild('gcloud', ['auth', 'print-access-token', ...(opts.args ?? [])], {
      env: scrubbedEnv(home, { CLOUDSDK_CONFIG: configDir, ...GCLOUD_QUIET_ENV, ...opts.env }),
      timeoutMs: opts.timeoutMs ?? 60_000,
    });
    const token = out.stdout.trim();
    if (out.code === 0 && token && !token.includes('\n')) return { ...out, ok: true, value: { token } };
    const message = out.timedOut ? 'gcloud timed out' : out.stderr.trim() || `gcloud exited with ${out.code}`;
    return { ...out, ok: false, error: { name: 'GcloudError', message } };
  });
}

// ---------------------------------------------------------------------------------------------
// AWS web identity token file

/** Writes a web identity token file exactly as given: the SDKs send its bytes untrimmed. */
export async function writeWebIdentityTokenFile(file: string, token: string): Promise<string> {
  await writeFile(file, token, { mode: 0o600 });
  return file;
}

/** The variables `oz federate prepare` is to export for AWS, with STS pointed at `stsUrl`. */
export function awsWebIdentityEnv(input: { roleArn: string; tokenFile: string; sessionName?: string; stsUrl?: string; region?: string }): Record<string, string> {
  const env: Record<string, string> = {
    AWS_ROLE_ARN: input.roleArn,
    AWS_WEB_IDENTITY_TOKEN_FILE: input.tokenFile,
    AWS_REGION: input.region ?? 'us-east-1',
  };
  if (input.sessionName !== undefined) env.AWS_ROLE_SESSION_NAME = input.sessionName;
  if (input.stsUrl !== undefined) env.AWS_ENDPOINT_URL_STS = input.stsUrl;
  return env;
}
