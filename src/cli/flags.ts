import { SHELL_KINDS } from '../sandbox/shell.js';

/**
 * Flags of the commands that Google's libraries and shell init scripts run on every refresh.
 * Declared once: commander renders them in --help and rejects bad ones with its own messages,
 * while the fast path parses them itself (see parseFlags) without loading commander.
 */
export interface FlagSpec {
  name: string;
  /** Commander's flag syntax, e.g. `--audience <aud>`. */
  flags: string;
  help: string;
  choices?: readonly string[];
}

export const FORMATS = ['jwt', 'json', 'gcp'] as const;
export type TokenFormat = (typeof FORMATS)[number];

export const ISSUE_TOKEN_FLAGS: readonly FlagSpec[] = [
  { name: 'audience', flags: '--audience <aud>', help: 'the "aud" claim the relying party expects (with --format gcp: default $GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE)' },
  { name: 'duration', flags: '--duration <duration>', help: 'requested lifetime: 90s, 15m, 1h30m, 2h or seconds (default 1h; capped by the run)' },
  { name: 'format', flags: '--format <format>', help: 'output: jwt, json, or gcp (the executable-sourced credential response)', choices: FORMATS },
];

/**
 * `--name value` and `--name=value` for the given flags, the last one winning; undefined for
 * anything else (an unknown flag, a positional argument, a missing value or one that starts
 * with a dash), which the caller hands to commander for its full handling and messages.
 * node:util's parseArgs would do, but loading it costs more than this.
 */
export function parseFlags(args: readonly string[], specs: readonly FlagSpec[]): Record<string, string> | undefined {
  const values: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) return undefined;
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (!specs.some((s) => s.name === name)) return undefined;
    const value = eq === -1 ? args[++i] : arg.slice(eq + 1);
    if (value === undefined || (eq === -1 && value.startsWith('-'))) return undefined;
    values[name] = value;
  }
  return values;
}

/** True when the arguments ask for the gcp format, in either spelling, before any parsing. */
export function wantsGcpFormat(args: readonly string[]): boolean {
  return args.some((a, i) => a === '--format=gcp' || (a === '--format' && args[i + 1] === 'gcp'));
}

export const PREPARE_FLAGS: readonly FlagSpec[] = [
  { name: 'aws-role-arn', flags: '--aws-role-arn <arn>', help: 'AWS role to assume with web identity (default $OZ_AWS_ROLE_ARN)' },
  { name: 'gcp-project-number', flags: '--gcp-project-number <n>', help: 'GCP project number of the workload identity pool (default $OZ_GCP_PROJECT_NUMBER)' },
  { name: 'gcp-pool-id', flags: '--gcp-pool-id <id>', help: 'workload identity pool ID (default $OZ_GCP_POOL_ID)' },
  { name: 'gcp-provider-id', flags: '--gcp-provider-id <id>', help: 'workload identity pool provider ID (default $OZ_GCP_PROVIDER_ID)' },
  { name: 'gcp-service-account', flags: '--gcp-service-account <email>', help: 'service account to impersonate (default $OZ_GCP_SERVICE_ACCOUNT)' },
  { name: 'gcp-project-id', flags: '--gcp-project-id <id>', help: 'project for gcloud and ADC (default $OZ_GCP_PROJECT_ID)' },
  { name: 'dir', flags: '--dir <dir>', help: 'private directory for the files (default $OZ_PREPARE_DIR, else $XDG_RUNTIME_DIR/oz, else $TMPDIR/oz-<uid>)' },
  { name: 'shell', flags: '--shell <shell>', help: 'output syntax', choices: SHELL_KINDS },
];

export const CLEANUP_FLAGS: readonly FlagSpec[] = [
  { name: 'dir', flags: '--dir <dir>', help: 'the directory prepare used (same default as prepare)' },
  { name: 'shell', flags: '--shell <shell>', help: 'output syntax for the unset lines', choices: SHELL_KINDS },
];
