import { readRunIdentity, readRunLimits, ISSUER_URL, MAX_RUN_DURATION, RUN_DEADLINE, SIGNING_ALG, secondsLeft } from '../core/context.js';
import { RUN_CLAIMS } from '../core/claims.js';
import { describeSource, readSetting, type Setting, type Sourced } from '../core/settings.js';
import { formatDuration } from '../core/duration.js';
import { localFacts } from '../sandbox/sources/embedded.js';
import { AZURE_AUTHORITY_HOST, EXECUTABLE, PREPARE_SETTINGS, RUN_TOKEN, TOKEN_FILES, TOKEN_TIMEOUT, TOKEN_URL } from '../sandbox/settings.js';
import { planPrepare, PREPARED_FILES } from '../sandbox/prepare.js';
import { dataDir } from '../core/paths.js';
import { out } from './output.js';
import { painter } from './colour.js';
import { OzError } from '../core/errors.js';
import { displayUrl, ignoredVariables, readRemoteConfig, runTokenOf } from '../sandbox/sources/remote-config.js';
import type { OptionsOf, WHOAMI } from './spec.js';
import { AWS_SESSION_TAGS, AWS_TAGS_CLAIM, formatClaims, STS_AUDIENCE, SUBJECT_CLAIMS, type ClaimFormats } from '../core/claim-formats.js';
import type { RunClaims } from '../core/claims.js';

/** What a token for AWS would say about the run once the platform's formats are applied. */
interface AwsView {
  sub: string | null;
  session_tags: Record<string, string> | null;
  /** Why AWS would get no token (a limit the formats break), or null. */
  problem: string | null;
}

function awsView(run: RunClaims, formats: ClaimFormats): AwsView {
  const r = formatClaims(run, STS_AUDIENCE, formats);
  if (!r.ok) return { sub: null, session_tags: null, problem: r.problem };
  const tags = r.value[AWS_TAGS_CLAIM]?.principal_tags;
  return {
    sub: r.value.sub ?? (typeof run.sub === 'string' ? run.sub : null),
    session_tags: tags ? Object.fromEntries(Object.entries(tags).map(([k, [v]]) => [k, v])) : null,
    problem: null,
  };
}

function awsRows(view: AwsView, origin: string): Row[] {
  if (view.problem !== null) return [['aws token', `none: ${view.problem}`, origin]];
  const tags = view.session_tags === null ? '(none)' : Object.entries(view.session_tags).map(([k, v]) => `${k}=${v}`).join(' ');
  return [
    ['aws sub', view.sub ?? '(none)', origin],
    ['aws tags', tags, origin],
  ];
}

type Options = OptionsOf<typeof WHOAMI>;

/** Every setting the sandbox side reads, for `--json`'s `settings`: where each value came from. */
const SANDBOX_SETTINGS: readonly Setting<unknown>[] = [
  ISSUER_URL, SIGNING_ALG, RUN_DEADLINE, MAX_RUN_DURATION, AWS_SESSION_TAGS, SUBJECT_CLAIMS,
  RUN_TOKEN, TOKEN_URL, TOKEN_TIMEOUT, ...PREPARE_SETTINGS, AZURE_AUTHORITY_HOST, TOKEN_FILES, EXECUTABLE,
];

/** The settings shown in text only here, when set: the others have rows of their own. */
const OTHER_SETTINGS: readonly Setting<unknown>[] = [SIGNING_ALG, TOKEN_URL, TOKEN_TIMEOUT, EXECUTABLE];

function shown(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  return value === undefined ? null : value;
}

/** Each setting's value and source; a run token is a credential, so only that it is set. */
function settingsOf(env: NodeJS.ProcessEnv): Record<string, { value: unknown; source: string; from: string }> {
  const all: Record<string, { value: unknown; source: string; from: string }> = {};
  for (const s of SANDBOX_SETTINGS) {
    const v = readSetting(s, env);
    const name = s.variable ?? s.flag ?? '';
    all[name] = v ? { value: s === RUN_TOKEN ? '(set)' : shown(v.value), source: v.source, from: v.from } : { value: null, source: 'unset', from: name };
  }
  return all;
}

function otherSettingRows(env: NodeJS.ProcessEnv): Row[] {
  return OTHER_SETTINGS.flatMap((s): Row[] => {
    const v = readSetting(s, env);
    return v?.source === 'env' ? [[s.variable!, String(shown(v.value)), `from ${v.from}`]] : [];
  });
}

/** The settings prepare reads, with where each came from; only those that are set. */
function prepareSettings(env: NodeJS.ProcessEnv): Record<string, { value: string; source: string; variable: string }> {
  const shown: Record<string, { value: string; source: string; variable: string }> = {};
  for (const s of PREPARE_SETTINGS) {
    const v = readSetting(s, env);
    if (v) shown[s.flag!.slice(2)] = { value: v.value, source: v.source, variable: v.from };
  }
  const host = readSetting(AZURE_AUTHORITY_HOST, env);
  if (host.source === 'env') shown['azure-authority-host'] = { value: host.value, source: host.source, variable: host.from };
  const tokens = readSetting(TOKEN_FILES, env);
  if (tokens) shown.token = { value: tokens.value.map((t) => `${t.name}=${t.audience}`).join(','), source: tokens.source, variable: tokens.from };
  return shown;
}

interface PreparedFile {
  file: string;
  audience: string | null;
  variables: string[];
}

/** What `prepare` (with no flags) would write in this environment, and the variables each file sets. */
function prepareFiles(env: NodeJS.ProcessEnv): PreparedFile[] {
  const plan = planPrepare({}, env);
  const files: PreparedFile[] = plan.tokenFiles.map((t) => ({ file: t.file, audience: t.audience, variables: [...t.exports] }));
  if (plan.gcp) files.push({ file: PREPARED_FILES.gcpConfig, audience: null, variables: ['GOOGLE_APPLICATION_CREDENTIALS', 'CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE'] });
  return files;
}

function prepareRows(files: PreparedFile[]): Row[] {
  if (files.length === 0) return [['prepare', '(nothing configured)', '']];
  return files.map((f) => ['prepare', f.audience === null ? f.file : `${f.file} (aud ${f.audience})`, `sets ${f.variables.join(', ')}`]);
}

export async function whoamiCommand(opts: Options, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (runTokenOf(env) !== undefined) return remoteWhoami(opts, env);
  const now = new Date();
  const identity = readRunIdentity(env, localFacts);
  const limits = readRunLimits(env);
  const left = secondsLeft(limits, now);
  const issuer = readSetting(ISSUER_URL, env);
  const claims = Object.fromEntries(
    RUN_CLAIMS.map(({ claim }) => {
      const s: Sourced<unknown> = identity[claim];
      return [claim, { value: s.value ?? null, source: s.source, variable: s.from }];
    }),
  );
  const prepare = prepareSettings(env);
  const files = prepareFiles(env);
  const tagsSetting = readSetting(AWS_SESSION_TAGS, env);
  const subjectSetting = readSetting(SUBJECT_CLAIMS, env);
  const formats: ClaimFormats = { ...(tagsSetting ? { sessionTags: tagsSetting.value } : {}), ...(subjectSetting ? { subjectClaims: subjectSetting.value } : {}) };
  const run = Object.fromEntries(Object.entries(claims).filter(([, c]) => c.value !== null).map(([k, c]) => [k, c.value])) as unknown as RunClaims;
  const aws = awsView(run, formats);
  const summary = {
    token_source: 'embedded',
    issuer: issuer.value,
    issuer_source: issuer.source,
    data_dir: await dataDir(env, process.cwd()),
    claims,
    deadline: limits.deadline.value?.toISOString() ?? null,
    max_run_duration_seconds: limits.maxRunSeconds.value,
    seconds_left: left === undefined ? null : Math.max(0, left),
    aws_session_tags: tagsSetting?.value ?? null,
    subject_claims: subjectSetting?.value ?? null,
    aws,
    prepare,
    prepare_files: files,
    settings: settingsOf(env),
  };
  const formatOrigin = [tagsSetting && 'OZ_AWS_SESSION_TAGS', subjectSetting && 'OZ_SUBJECT_CLAIMS'].filter(Boolean).join(', ');
  const extra: Row[] = [
    ...awsRows(aws, formatOrigin ? `from ${formatOrigin}` : 'no OZ_AWS_SESSION_TAGS or OZ_SUBJECT_CLAIMS'),
    ...Object.entries(prepare).map(([name, v]): Row => [name, v.value, `from ${v.variable}`]),
    ...prepareRows(files),
    ...otherSettingRows(env),
  ];
  if (opts.json) printJson(summary);
  else await printEmbedded(summary, claims, issuer, limits, left, extra);
  if (left !== undefined && left <= 0) {
    throw new OzError('run_expired', `the run's deadline (OZ_RUN_DEADLINE) passed ${formatDuration(-left)} ago: no token can be issued for this run`);
  }
}

async function printEmbedded(
  summary: { data_dir: string },
  claims: Record<string, { value: unknown; source: string; variable: string }>,
  issuer: Sourced<string>,
  limits: ReturnType<typeof readRunLimits>,
  left: number | undefined,
  extra: Row[],
): Promise<void> {
  const rows = claimRows(claims, (c) => (c.source === 'env' ? `from ${c.variable}` : `local default (set ${c.variable})`));
  rows.push(['issuer', issuer.value, describeSource(issuer)]);
  rows.push([
    'deadline',
    limits.deadline.value?.toISOString() ?? '(none)',
    limits.deadline.source === 'env' ? 'from OZ_RUN_DEADLINE' : 'no OZ_RUN_DEADLINE',
  ]);
  rows.push([
    'max run',
    formatDuration(limits.maxRunSeconds.value),
    limits.maxRunSeconds.source === 'env' ? 'from OZ_MAX_RUN_DURATION' : 'local default (set OZ_MAX_RUN_DURATION)',
  ]);
  const time =
    left === undefined
      ? `${formatDuration(limits.maxRunSeconds.value)} per token (no deadline)`
      : left > 0
        ? formatDuration(left)
        : `none: the deadline passed ${formatDuration(-left)} ago`;
  rows.push(['time left', time, '']);
  rows.push(...extra);
  out(`Token source: embedded issuer (key in ${summary.data_dir})\n`);
  await printRows(rows);
}

/**
 * With a run token the claims are the grant's, whatever this environment says: show them (as
 * decoded here, unverified: only the token service can verify the grant) and name the
 * run-context variables that are set but have no effect.
 */
async function remoteWhoami(opts: Options, env: NodeJS.ProcessEnv): Promise<void> {
  const now = new Date();
  const config = readRemoteConfig(env);
  const grant = config.grant;
  const exp = typeof grant.exp === 'number' ? grant.exp : undefined;
  const left = exp === undefined ? undefined : Math.floor(exp - now.getTime() / 1000);
  const ignored = ignoredVariables(env);
  const claims = Object.fromEntries(
    RUN_CLAIMS.map(({ claim }) => [claim, { value: grant[claim] ?? null, source: 'run_token' }]),
  );
  const list = (v: unknown) => (Array.isArray(v) && v.every((c) => typeof c === 'string') ? (v as ClaimFormats['sessionTags']) : undefined);
  const formats: ClaimFormats = {
    ...(list(grant.aws_session_tags) ? { sessionTags: list(grant.aws_session_tags) } : {}),
    ...(list(grant.subject_claims) ? { subjectClaims: list(grant.subject_claims) } : {}),
  };
  const aws = awsView(grant as unknown as RunClaims, formats);
  const summary = {
    token_source: 'remote',
    token_url: displayUrl(config.tokenUrl),
    issuer: typeof grant.iss === 'string' ? grant.iss : null,
    claims,
    verified: false,
    deadline: exp === undefined ? null : new Date(exp * 1000).toISOString(),
    seconds_left: left === undefined ? null : Math.max(0, left),
    aws_session_tags: formats.sessionTags ?? null,
    subject_claims: formats.subjectClaims ?? null,
    aws,
    ignored_variables: ignored,
    prepare: prepareSettings(env),
    prepare_files: prepareFiles(env),
    settings: settingsOf(env),
  };
  const extra: Row[] = [
    ...awsRows(aws, 'from the run token'),
    ...Object.entries(summary.prepare).map(([name, v]): Row => [name, v.value, `from ${v.variable}`]),
    ...prepareRows(summary.prepare_files),
    ...otherSettingRows(env),
  ];
  if (opts.json) printJson(summary);
  else await printRemote(summary, claims, left, ignored, extra);
  if (left !== undefined && left <= 0) {
    throw new OzError('run_expired', `the run token (OZ_RUN_TOKEN) expired ${formatDuration(-left)} ago: no token can be issued for this run`);
  }
}

async function printRemote(
  summary: { token_url: string; issuer: string | null; deadline: string | null },
  claims: Record<string, { value: unknown; source: string }>,
  left: number | undefined,
  ignored: string[],
  extra: Row[],
): Promise<void> {
  const rows = claimRows(claims, (c) => (c.value === null ? 'not in the run token' : 'from the run token'));
  rows.push(['issuer', summary.issuer ?? '(none)', 'from the run token']);
  rows.push(['deadline', summary.deadline ?? '(none)', "the run token's expiry"]);
  rows.push([
    'time left',
    left === undefined ? '(unknown)' : left > 0 ? formatDuration(left) : `none: the run token expired ${formatDuration(-left)} ago`,
    '',
  ]);
  rows.push(...extra);
  out(`Token source: token service at ${summary.token_url} (OZ_RUN_TOKEN is set; no signing key is used here)\n`);
  await printRows(rows);
  out('These are the claims the token service will sign; the run token is not verified here.\n');
  out(
    ignored.length > 0
      ? `Ignored in this mode: ${ignored.join(', ')} (the run token decides the run's claims)\n`
      : 'The run-context variables (OZ_SUBJECT, OZ_TEAMS, OZ_RUN_DEADLINE, …) are ignored in this mode; none is set.\n',
  );
}

type Row = [name: string, value: string, origin: string];

function printJson(summary: object): void {
  out(`${JSON.stringify(summary, null, 2)}\n`);
}

function claimRows<C extends { value: unknown }>(claims: Record<string, C>, origin: (c: C) => string): Row[] {
  return Object.entries(claims).map(([claim, c]) => [
    claim,
    c.value === null ? '(none)' : Array.isArray(c.value) ? c.value.join(',') : String(c.value),
    origin(c),
  ]);
}

/** Aligned columns; the origin dimmed on a terminal. */
async function printRows(rows: Row[]): Promise<void> {
  const paint = await painter(process.stdout);
  const w = Math.max(...rows.map((r) => r[0].length));
  const v = Math.max(...rows.map((r) => printable(r[1]).length));
  for (const [k, val, src] of rows) {
    out(`  ${k.padEnd(w)}  ${printable(val).padEnd(v)}  ${paint ? paint.dim(src) : src}\n`.replace(/\s+\n$/, '\n'));
  }
}

/** Values come from the environment: show control characters escaped, not raw. */
function printable(s: string): string {
  return /[\u0000-\u001f\u007f]/.test(s) ? JSON.stringify(s) : s;
}
