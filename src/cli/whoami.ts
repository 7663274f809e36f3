import { readIssuerUrl, readRunIdentity, readRunLimits, secondsLeft, type RunIdentity, type Sourced } from '../context.js';
import { formatDuration } from '../duration.js';
import { localFacts } from '../sources/embedded.js';
import { dataDir } from '../paths.js';
import { out } from './output.js';
import { painter } from './colour.js';

const CLAIM_OF: Record<keyof RunIdentity, string> = {
  subject: 'sub',
  email: 'email',
  teams: 'teams',
  runId: 'run_id',
  environment: 'environment',
  agentName: 'agent_name',
  skillSpec: 'skill_spec',
  host: 'host',
};

export async function whoamiCommand(opts: { json?: boolean }, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const now = new Date();
  const identity = readRunIdentity(env, localFacts());
  const limits = readRunLimits(env);
  const left = secondsLeft(limits, now);
  const issuer = readIssuerUrl(env);
  const claims = Object.fromEntries(
    (Object.keys(CLAIM_OF) as (keyof RunIdentity)[]).map((k) => {
      const s: Sourced<unknown> = identity[k];
      return [CLAIM_OF[k], { value: s.value ?? null, source: s.source, variable: s.variable }];
    }),
  );
  const summary = {
    token_source: 'embedded',
    issuer,
    data_dir: dataDir(env, process.cwd()),
    claims,
    deadline: limits.deadline.value?.toISOString() ?? null,
    max_run_duration_seconds: limits.maxRunSeconds.value,
    seconds_left: left === undefined ? null : Math.max(0, left),
  };
  if (opts.json) {
    out(`${JSON.stringify(summary, null, 2)}\n`);
    return;
  }
  const paint = await painter(process.stdout);
  const dim = (s: string) => (paint ? paint.dim(s) : s);
  const rows: [string, string, string][] = Object.entries(claims).map(([claim, c]) => [
    claim,
    c.value === null ? '(none)' : Array.isArray(c.value) ? c.value.join(',') : String(c.value),
    c.source === 'env' ? `from ${c.variable}` : `local default (set ${c.variable})`,
  ]);
  rows.push(['issuer', issuer, 'OZ_ISSUER_URL']);
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
  const w = Math.max(...rows.map((r) => r[0].length));
  const v = Math.max(...rows.map((r) => printable(r[1]).length));
  out(`Token source: embedded issuer (key in ${summary.data_dir})\n`);
  for (const [k, val, src] of rows) out(`  ${k.padEnd(w)}  ${printable(val).padEnd(v)}  ${dim(src)}\n`.replace(/\s+\n$/, '\n'));
}

/** Values come from the environment: show control characters escaped, not raw. */
function printable(s: string): string {
  return /[\u0000-\u001f\u007f]/.test(s) ? JSON.stringify(s) : s;
}
