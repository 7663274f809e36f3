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
}

export interface CommandSpec {
  /** `federate issue-token`: the group and the command. */
  readonly path: readonly [group: string, name: string];
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

/** What a command's handler receives: every option by its camelCase name, absent when not given. */
export type OptionsOf<C extends { options: readonly OptionSpec[] }> = {
  [O in C['options'][number] as KeyOf<O['flag']>]?: ValueOf<O>;
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

export const PREPARE = {
  path: ['federate', 'prepare'],
  summary: 'write the AWS web identity token file and the GCP credential config, and print the variables to export',
  options: [
    { flag: '--aws-role-arn', value: '<arn>', setting: S.AWS_ROLE_ARN, help: S.AWS_ROLE_ARN.help! },
    { flag: '--gcp-project-number', value: '<n>', setting: S.GCP_PROJECT_NUMBER, help: S.GCP_PROJECT_NUMBER.help! },
    { flag: '--gcp-pool-id', value: '<id>', setting: S.GCP_POOL_ID, help: S.GCP_POOL_ID.help! },
    { flag: '--gcp-provider-id', value: '<id>', setting: S.GCP_PROVIDER_ID, help: S.GCP_PROVIDER_ID.help! },
    { flag: '--gcp-service-account', value: '<email>', setting: S.GCP_SERVICE_ACCOUNT, help: S.GCP_SERVICE_ACCOUNT.help! },
    { flag: '--gcp-project-id', value: '<id>', setting: S.GCP_PROJECT_ID, help: S.GCP_PROJECT_ID.help! },
    { flag: '--dir', value: '<dir>', setting: S.PREPARE_DIR, help: S.PREPARE_DIR.help! },
    shell,
  ],
  examples: [
    'eval "$(oz federate prepare --aws-role-arn arn:aws:iam::123456789012:role/agent)"',
    'eval "$(oz federate prepare --gcp-project-number 123456789012 --gcp-pool-id oz-pool --gcp-provider-id oz-provider)"',
    'oz federate prepare --shell fish | source',
    'oz federate prepare --shell json',
  ],
} as const satisfies CommandSpec;

export const CLEANUP = {
  path: ['federate', 'cleanup'],
  summary: 'remove the files prepare wrote and print the lines that unset its variables (for the end of a run)',
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
    { flag: '--max-duration', value: '<duration>', help: "the run's maximum runtime from now (default 4h, at most 24h)" },
    { flag: '--deadline', value: '<time>', help: "when the run's maximum runtime ends: RFC 3339 or Unix seconds (instead of --max-duration)" },
    { ...issuer, help: 'issuer URL; the token service must serve it' },
    { flag: '--json', help: 'print {run_token, expires_at, claims}' },
  ],
  examples: [
    'oz issuer grant-run --run-id run-42 --subject user-7 --email dev@example.com --teams team-a --host warp',
    'OZ_RUN_TOKEN="$(oz issuer grant-run --run-id run-42 --subject sa-3 --max-duration 2h)"',
  ],
} as const satisfies CommandSpec;

export const COMMANDS = [ISSUE_TOKEN, PREPARE, CLEANUP, WHOAMI, INSPECT, INIT, ROTATE, JWKS, DISCOVERY, PUBLISH, SERVE, GRANT_RUN] as const satisfies readonly CommandSpec[];

/** An option's help as shown: its own words, then the variable it overrides. */
export function optionHelp(o: OptionSpec): string {
  const variable = o.setting?.variable;
  return variable && !o.help.includes(`$${variable}`) ? `${o.help} (default $${variable})` : o.help;
}
