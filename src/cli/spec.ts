import type { Setting } from '../core/settings.js';
import { RUN_CLAIMS } from '../core/claims.js';
import { SHELL_KINDS } from '../sandbox/shell.js';
import * as S from '../sandbox/settings.js';
import { ISSUER_URL, SIGNING_ALG } from '../core/context.js';

/**
 * Every command, its arguments and its options, declared once. The commander program
 * (program.ts: help, messages, every command) and the fast parser (fast-args.ts: the commands
 * that run on every credential refresh, without loading commander) are both derived from this
 * table, and a test runs the same arguments through both. Handlers receive `OptionsOf<spec>`:
 * camelCase keys, strings, booleans, string arrays for repeatable options, unions for choices.
 *
 * Nothing here may import commander or anything heavy: the hot path loads this file.
 */

export interface OptionSpec {
  /** `--name`; the handler's key is its camelCase form. */
  readonly flag: `--${string}`;
  /** The value's placeholder, e.g. `<aud>`; an option without one is a boolean switch. */
  readonly value?: `<${string}>`;
  readonly help: string;
  readonly choices?: readonly string[];
  /** Given more than once, its values are collected in order. */
  readonly repeatable?: true;
  readonly required?: true;
  /** The value when the option is not given. */
  readonly default?: string;
  /** The setting it overrides; help then names the setting's variable. */
  readonly setting?: Setting<unknown>;
}

export interface ArgumentSpec {
  readonly name: string;
  readonly help: string;
  /** The only values it takes; commander checks them and completion offers them. */
  readonly choices?: readonly string[];
  /** Takes every remaining argument (after `--`, options included): the handler gets a string array. */
  readonly variadic?: true;
}

export interface CommandSpec {
  /** `federate issue-token`: the group and the command; `doctor`: a command of its own. */
  readonly path: readonly [group: string, name: string] | readonly [name: string];
  readonly summary: string;
  readonly argument?: ArgumentSpec;
  readonly options: readonly OptionSpec[];
  readonly examples: readonly string[];
}

export interface GroupSpec {
  readonly name: string;
  readonly summary: string;
  readonly examples: readonly string[];
}

type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
type KeyOf<F> = F extends `--${infer N}` ? Camel<N> : never;
type ValueOf<O> = O extends { value: string }
  ? O extends { repeatable: true }
    ? string[]
    : O extends { choices: readonly (infer C)[] }
      ? C
      : string
  : boolean;

type Always = { default: string } | { required: true };

/**
 * What a command's handler receives: every option by its camelCase name; absent when not given,
 * unless it has a default or is required (commander and the fast parser both see to that).
 */
export type OptionsOf<C extends { options: readonly OptionSpec[] }> = {
  [O in C['options'][number] as O extends Always ? never : KeyOf<O['flag']>]?: ValueOf<O>;
} & {
  [O in C['options'][number] as O extends Always ? KeyOf<O['flag']> : never]: ValueOf<O>;
};

export function optionKey(flag: string): string {
  return flag.slice(2).replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

export const FORMATS = ['jwt', 'json', 'gcp'] as const;
export type TokenFormat = (typeof FORMATS)[number];
export const ALGS = ['RS256', 'ES256'] as const;

const json = { flag: '--json', help: 'print JSON' } as const;
const issuer = { flag: '--issuer', value: '<url>', help: 'issuer URL', setting: ISSUER_URL } as const;
const shell = { flag: '--shell', value: '<shell>', choices: SHELL_KINDS, help: 'output syntax (default sh)' } as const;

export const GROUPS = {
  federate: {
    name: 'federate',
    summary: 'identity tokens for this run, and the cloud SDK set-up that uses them',
    examples: ['oz federate issue-token --audience sts.amazonaws.com', 'eval "$(oz federate prepare)"', 'oz federate whoami'],
  },
  setup: {
    name: 'setup',
    summary: 'print what an administrator runs once so that AWS, GCP or Azure trusts the issuer for a scope of runs',
    examples: ['oz setup aws --issuer https://oidc.example.com --team abc123 --account-id 123456789012', 'oz setup gcp --team abc123 --project-number 123456789012', 'oz setup azure --subject user-42 --client-id 00000000-0000-0000-0000-000000000001'],
  },
  issuer: {
    name: 'issuer',
    summary: "the embedded issuer's keys and its OIDC endpoints",
    examples: ['oz issuer init --alg ES256', 'oz issuer serve --port 8787', 'oz issuer publish --out ./site --issuer https://oidc.example.com'],
  },
} as const satisfies Record<string, GroupSpec>;

export const ISSUE_TOKEN = {
  path: ['federate', 'issue-token'],
  summary: 'print a signed identity token (JWT) for this run',
  options: [
    { flag: '--audience', value: '<aud>', help: 'the "aud" claim the relying party expects (with --format gcp: default $GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE)' },
    { flag: '--duration', value: '<duration>', help: 'requested lifetime: 90s, 15m, 1h30m, 2h or seconds (default 1h; capped by the run)' },
    { flag: '--format', value: '<format>', choices: FORMATS, help: 'output: jwt, json, or gcp (the executable-sourced credential response)' },
  ],
  examples: [
    'oz federate issue-token --audience sts.amazonaws.com',
    'oz federate issue-token --audience https://vault.example.com --duration 15m --format json',
    'GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE=//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q oz federate issue-token --format gcp',
  ],
} as const satisfies CommandSpec;

/** What prepare sets up; `exec` takes the same, less what only makes sense for a shell. */
const PREPARE_SETUP_OPTIONS = [
  { flag: '--aws-role-arn', value: '<arn>', setting: S.AWS_ROLE_ARN, help: S.AWS_ROLE_ARN.help! },
  { flag: '--gcp-project-number', value: '<n>', setting: S.GCP_PROJECT_NUMBER, help: S.GCP_PROJECT_NUMBER.help! },
  { flag: '--gcp-pool-id', value: '<id>', setting: S.GCP_POOL_ID, help: S.GCP_POOL_ID.help! },
  { flag: '--gcp-provider-id', value: '<id>', setting: S.GCP_PROVIDER_ID, help: S.GCP_PROVIDER_ID.help! },
  { flag: '--gcp-service-account', value: '<email>', setting: S.GCP_SERVICE_ACCOUNT, help: S.GCP_SERVICE_ACCOUNT.help! },
  { flag: '--gcp-project-id', value: '<id>', setting: S.GCP_PROJECT_ID, help: S.GCP_PROJECT_ID.help! },
  { flag: '--azure-client-id', value: '<id>', setting: S.AZURE_CLIENT_ID, help: S.AZURE_CLIENT_ID.help! },
  { flag: '--azure-tenant-id', value: '<id>', setting: S.AZURE_TENANT_ID, help: S.AZURE_TENANT_ID.help! },
  { flag: '--azure-authority-host', value: '<url>', setting: S.AZURE_AUTHORITY_HOST, help: S.AZURE_AUTHORITY_HOST.help },
  { flag: '--token', value: '<name=aud>', repeatable: true, setting: S.TOKEN_FILES, help: S.TOKEN_FILES.help! },
  { flag: '--gcp-credential-source', value: '<source>', choices: S.GCP_CREDENTIAL_SOURCES, help: "how Google's libraries get the token: run oz (executable, the default) or read a token file oz keeps (file, for Go and .NET)" },
  { flag: '--duration', value: '<duration>', help: "the token files' lifetime: 90s, 15m, 1h (default: the rest of the run; with --refresh or exec, 1h)" },
  { flag: '--dir', value: '<dir>', setting: S.PREPARE_DIR, help: S.PREPARE_DIR.help! },
] as const satisfies readonly OptionSpec[];

export const PREPARE = {
  path: ['federate', 'prepare'],
  summary: 'write the AWS and Azure token files, the GCP credential config and any other token files, and print the variables to export',
  options: [
    ...PREPARE_SETUP_OPTIONS,
    { flag: '--refresh', help: 'keep the token files fresh with short tokens, from a background refresher, until the run ends or cleanup' },
    shell,
  ],
  examples: [
    'eval "$(oz federate prepare --aws-role-arn arn:aws:iam::123456789012:role/agent)"',
    'eval "$(oz federate prepare --refresh --duration 15m --gcp-credential-source file)"',
    'eval "$(oz federate prepare --gcp-project-number 123456789012 --gcp-pool-id oz-pool --gcp-provider-id oz-provider)"',
    'eval "$(oz federate prepare --azure-client-id 00000000-0000-0000-0000-000000000001 --azure-tenant-id contoso.onmicrosoft.com)"',
    'eval "$(oz federate prepare --token vault=https://vault.example.com)"   # then: cat "$OZ_TOKEN_FILE_VAULT"',
    'oz federate prepare --shell fish | source',
    'oz federate prepare --shell json',
  ],
} as const satisfies CommandSpec;

export const EXEC = {
  path: ['federate', 'exec'],
  summary: "run one command with the credentials in its environment only, kept fresh, from a private directory removed when it ends; exits with the command's status",
  argument: { name: 'command', help: 'the command and its arguments, after --', variadic: true },
  options: PREPARE_SETUP_OPTIONS,
  examples: [
    'oz federate exec --aws-role-arn arn:aws:iam::123456789012:role/agent -- aws s3 ls',
    'oz federate exec --gcp-credential-source file -- terraform apply',
  ],
} as const satisfies CommandSpec;

export const REFRESH = {
  path: ['federate', 'refresh'],
  summary: 'keep the token files of a prepared directory fresh until the run ends (what prepare --refresh starts in the background)',
  options: [{ flag: '--dir', value: '<dir>', required: true, help: 'the directory prepare wrote' }],
  examples: ['oz federate refresh --dir "$XDG_RUNTIME_DIR/oz"'],
} as const satisfies CommandSpec;

export const CLEANUP = {
  path: ['federate', 'cleanup'],
  summary: 'remove the files prepare wrote (every token-* file included) and print the lines that unset its variables (for the end of a run)',
  options: [{ flag: '--dir', value: '<dir>', setting: S.PREPARE_DIR, help: 'the directory prepare used (same default as prepare)' }, shell],
  examples: ['eval "$(oz federate cleanup)"', 'oz federate cleanup --shell fish | source'],
} as const satisfies CommandSpec;

export const WHOAMI = {
  path: ['federate', 'whoami'],
  summary: 'show the run context that tokens would carry, where each value comes from, and the time left',
  options: [json],
  examples: ['oz federate whoami', 'OZ_SUBJECT=user-123 oz federate whoami --json'],
} as const satisfies CommandSpec;

export const INSPECT = {
  path: ['federate', 'inspect'],
  summary: 'decode a token for a person; with --verify, check it as a relying party would',
  argument: { name: 'token', help: 'the token, or - (the default) to read it from stdin' },
  options: [
    { flag: '--verify', help: "fetch the issuer's discovery document and JWKS and verify the signature and times" },
    { flag: '--audience', value: '<aud>', help: 'with --verify: also require this "aud"' },
    json,
  ],
  examples: [
    'oz federate issue-token --audience sts.amazonaws.com | oz federate inspect',
    'oz federate inspect "$(cat "$AWS_WEB_IDENTITY_TOKEN_FILE")" --verify --audience sts.amazonaws.com',
  ],
} as const satisfies CommandSpec;

export const EXPLAIN = {
  path: ['federate', 'explain'],
  summary: 'say, offline, whether AWS, GCP or Azure would accept a token, check by check, and why not (exit 9 when refused)',
  argument: { name: 'token', help: "the token, or - to read it from stdin; none: issue one now for the relying party's audience" },
  options: [
    { flag: '--aws-trust-policy', value: '<file>', help: 'an IAM trust policy document, or `aws iam get-role` output' },
    { flag: '--gcp-provider', value: '<file>', help: '`gcloud iam workload-identity-pools providers describe --format=json` output' },
    { flag: '--azure-credential', value: '<file>', help: '`az ad app federated-credential list` output (or one credential)' },
    json,
  ],
  examples: [
    'aws iam get-role --role-name oz-agents > role.json && oz federate explain --aws-trust-policy role.json',
    'gcloud iam workload-identity-pools providers describe oz-provider --workload-identity-pool=oz-pool --location=global --format=json > provider.json && oz federate explain --gcp-provider provider.json',
    'az ad app federated-credential list --id "$APP_ID" > creds.json && oz federate explain --azure-credential creds.json',
    'oz federate explain "$(cat "$AWS_WEB_IDENTITY_TOKEN_FILE")" --aws-trust-policy role.json --json',
  ],
} as const satisfies CommandSpec;

/** The scope every `oz setup` command takes: who may federate, and how the output looks. */
export const SETUP_SCOPE_OPTIONS = [
  { flag: '--issuer', value: '<url>', setting: ISSUER_URL, help: 'the issuer URL, https' },
  { flag: '--subject', value: '<id>', repeatable: true, help: 'let in runs with this sub; repeat for more' },
  { flag: '--team', value: '<uid>', help: 'let in runs of this team' },
  { flag: '--environment', value: '<id>', help: 'let in runs of this environment only (with --team or --subject)' },
  { flag: '--team-by', value: '<method>', choices: ['tags', 'subject'], default: 'tags', help: 'how AWS and Azure tell the team and environment apart: session tags or the subject format' },
  { flag: '--subject-claims', value: '<list>', help: 'with --team-by subject: the subject format the platform grants with (default teams,environment,sub)' },
  { flag: '--format', value: '<format>', choices: ['text', 'json', 'terraform'], default: 'text', help: 'text: commands to paste; json; terraform' },
] as const satisfies readonly OptionSpec[];

export const SETUP_AWS = {
  path: ['setup', 'aws'],
  summary: 'the IAM OIDC provider and the role trust policy, with the aws commands that create them',
  options: [
    ...SETUP_SCOPE_OPTIONS,
    { flag: '--account-id', value: '<n>', required: true, help: 'the 12-digit AWS account ID' },
    { flag: '--role-name', value: '<name>', default: 'oz-agents', help: 'the role to create' },
    { flag: '--thumbprint', value: '<hex>', help: "the SHA-1 thumbprint of the issuer's top TLS certificate (default: computed by connecting to the issuer)" },
  ],
  examples: [
    'oz setup aws --issuer https://oidc.example.com --team abc123 --account-id 123456789012',
    'oz setup aws --subject user-42 --subject user-7 --account-id 123456789012 --thumbprint 08745487e891c19e3078c1f2a07e452950ef36f6',
    'oz setup aws --team abc123 --team-by subject --subject-claims teams,sub --account-id 123456789012 --format json',
  ],
} as const satisfies CommandSpec;

export const SETUP_GCP = {
  path: ['setup', 'gcp'],
  summary: 'the gcloud commands for the workload identity pool, its OIDC provider and the IAM binding',
  options: [
    ...SETUP_SCOPE_OPTIONS,
    { flag: '--project-number', value: '<n>', required: true, help: 'the project number (digits)' },
    { flag: '--pool-id', value: '<id>', default: 'oz-agent-pool', help: 'the workload identity pool ID' },
    { flag: '--provider-id', value: '<id>', default: 'oz-oidc-provider', help: 'the provider ID' },
    { flag: '--service-account', value: '<email>', help: 'let the runs impersonate this service account' },
    { flag: '--jwk-json-path', value: '<file>', help: 'for an issuer Google cannot reach: upload its JWKS from this file' },
  ],
  examples: [
    'oz setup gcp --issuer https://oidc.example.com --team abc123 --project-number 123456789012',
    'oz setup gcp --team abc123 --project-number 123456789012 --service-account agents@my-project.iam.gserviceaccount.com --format json',
  ],
} as const satisfies CommandSpec;

export const SETUP_AZURE = {
  path: ['setup', 'azure'],
  summary: 'the federated identity credential for an Entra ID application, and the az command that creates it',
  options: [
    ...SETUP_SCOPE_OPTIONS,
    { flag: '--client-id', value: '<id>', required: true, help: 'the application (client) ID' },
    { flag: '--tenant-id', value: '<id>', help: 'the directory (tenant) ID, for the prepare line' },
  ],
  examples: ['oz setup azure --issuer https://oidc.example.com --subject user-42 --client-id 00000000-0000-0000-0000-000000000001'],
} as const satisfies CommandSpec;

export const INIT = {
  path: ['issuer', 'init'],
  summary: 'create the signing key if there is none (it is also created on first use)',
  options: [{ flag: '--alg', value: '<alg>', choices: ALGS, setting: SIGNING_ALG, help: 'signing algorithm (default RS256)' }, json],
  examples: ['oz issuer init', 'oz issuer init --alg ES256'],
} as const satisfies CommandSpec;

export const ROTATE = {
  path: ['issuer', 'rotate'],
  summary: 'replace the signing key; the old public key stays published until its tokens have expired',
  options: [{ flag: '--alg', value: '<alg>', choices: ALGS, help: "signing algorithm (default: the current key's)" }, json],
  examples: ['oz issuer rotate', 'oz issuer rotate --alg ES256 --json'],
} as const satisfies CommandSpec;

export const JWKS = {
  path: ['issuer', 'jwks'],
  summary: 'print the public JWK Set (active and still-needed retired keys)',
  options: [],
  examples: ['oz issuer jwks', 'oz issuer jwks | jq -r ".keys[].kid"'],
} as const satisfies CommandSpec;

export const DISCOVERY = {
  path: ['issuer', 'discovery'],
  summary: 'print the OpenID Provider configuration document',
  options: [issuer],
  examples: ['oz issuer discovery', 'oz issuer discovery --issuer https://oidc.example.com'],
} as const satisfies CommandSpec;

export const PUBLISH = {
  path: ['issuer', 'publish'],
  summary: 'write the discovery document and JWKS as static files to host at the issuer URL',
  options: [{ flag: '--out', value: '<dir>', required: true, help: 'directory to write .well-known/ into' }, issuer],
  examples: ['oz issuer publish --out ./site --issuer https://oidc.example.com'],
} as const satisfies CommandSpec;

export const SERVE = {
  path: ['issuer', 'serve'],
  summary: 'serve discovery, the JWKS and the token service over HTTP until SIGTERM or SIGINT',
  options: [
    { flag: '--host', value: '<host>', default: '127.0.0.1', help: 'address to listen on' },
    { flag: '--port', value: '<port>', default: '8787', help: 'port to listen on (0 picks a free one)' },
    { ...issuer, help: 'issuer URL (default $OZ_ISSUER_URL, else the address served)', setting: undefined },
    { flag: '--allow-audience', value: '<aud>', repeatable: true, help: 'issue tokens only for this audience; repeat for more (default $OZ_ALLOWED_AUDIENCES, comma-separated; none: any)' },
    { flag: '--rate-limit', value: '<n>', help: 'token requests per second per run grant, bursts of 3x; 0 turns it off (default $OZ_TOKEN_RATE_LIMIT or 10)' },
    { flag: '--request-timeout', value: '<duration>', default: '15s', help: 'time a client has to send a whole request before it is cut off' },
    { flag: '--max-connections', value: '<n>', default: '1024', help: 'connections held at once; past it a new one is closed as soon as it is accepted' },
  ],
  examples: [
    'oz issuer serve',
    'OZ_ISSUER_URL=https://oidc.example.com oz issuer serve --host 0.0.0.0 --port 8080',
    'oz issuer serve --allow-audience sts.amazonaws.com --allow-audience https://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/p/providers/q',
  ],
} as const satisfies CommandSpec;

/** grant-run's claim flags come from the claim registry, one per run claim. */
const CLAIM_OPTIONS = RUN_CLAIMS.map((c) => ({
  flag: c.flag,
  value: c.placeholder,
  help: `claim ${c.claim}: ${c.help}`,
  ...('required' in c ? { required: true as const } : {}),
})) as unknown as readonly { readonly flag: (typeof RUN_CLAIMS)[number]['flag']; readonly value: '<value>'; readonly help: string }[];

export const GRANT_RUN = {
  path: ['issuer', 'grant-run'],
  summary: "mint a run token (the sandbox's OZ_RUN_TOKEN) that binds the run's claims until its deadline",
  options: [
    ...CLAIM_OPTIONS,
    { flag: '--aws-session-tags', value: '<list>', help: 'run claims that tokens for sts.amazonaws.com carry as AWS session tags, comma-separated, e.g. teams,environment' },
    { flag: '--subject-claims', value: '<list>', help: 'run claims that sub is made of, in order, e.g. teams,environment,sub (the identity moves to oz_sub)' },
    { flag: '--max-duration', value: '<duration>', help: "the run's maximum runtime from now (default 4h, at most 24h)" },
    { flag: '--deadline', value: '<time>', help: "when the run's maximum runtime ends: RFC 3339 or Unix seconds (instead of --max-duration)" },
    { ...issuer, help: 'issuer URL; the token service must serve it' },
    { flag: '--json', help: 'print {run_token, expires_at, claims}' },
  ],
  examples: [
    'oz issuer grant-run --run-id run-42 --subject user-7 --email dev@example.com --teams team-a --host warp',
    'OZ_RUN_TOKEN="$(oz issuer grant-run --run-id run-42 --subject sa-3 --max-duration 2h)"',
    'oz issuer grant-run --run-id run-42 --subject user-7 --teams abc123 --aws-session-tags teams --subject-claims teams,environment,sub',
  ],
} as const satisfies CommandSpec;

export const DOCTOR = {
  path: ['doctor'],
  summary: 'check what would make this run fail (issuer, keys, token service, deadline, cloud variables, prepared files) and say how to fix each',
  options: [{ flag: '--dir', value: '<dir>', setting: S.PREPARE_DIR, help: 'the directory prepare used (same default as prepare)' }, json],
  examples: ['oz doctor', 'oz doctor --json | jq \'.checks[] | select(.status != "ok")\''],
} as const satisfies CommandSpec;

export const COMPLETION_SHELLS = ['bash', 'zsh', 'fish'] as const;

export const COMPLETION = {
  path: ['completion'],
  summary: 'print a shell completion script for bash, zsh or fish',
  argument: { name: 'shell', help: 'bash, zsh or fish', choices: COMPLETION_SHELLS },
  options: [],
  examples: ['oz completion bash > ~/.local/share/bash-completion/completions/oz', 'oz completion zsh > "${fpath[1]}/_oz"', 'oz completion fish > ~/.config/fish/completions/oz.fish'],
} as const satisfies CommandSpec;

export const COMMANDS = [ISSUE_TOKEN, PREPARE, EXEC, REFRESH, CLEANUP, WHOAMI, INSPECT, EXPLAIN, SETUP_AWS, SETUP_GCP, SETUP_AZURE, INIT, ROTATE, JWKS, DISCOVERY, PUBLISH, SERVE, GRANT_RUN, DOCTOR, COMPLETION] as const satisfies readonly CommandSpec[];

/** An option's help as shown: its own words, then the variable it overrides. */
export function optionHelp(o: OptionSpec): string {
  const variable = o.setting?.variable;
  return variable && !o.help.includes(`$${variable}`) ? `${o.help} (default $${variable})` : o.help;
}
