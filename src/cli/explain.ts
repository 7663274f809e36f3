import { readFile } from 'node:fs/promises';
import { OzError, describeCause, quote } from '../core/errors.js';
import { decodeJwt, type DecodedJwt } from '../core/jwt.js';
import { AWS_STS_AUDIENCE } from '../sandbox/aws.js';
import { gcpTokenAudienceClaim } from '../sandbox/gcp.js';
import { DEFAULT_TOKEN_SECONDS } from '../core/claims.js';
import type { Check, Verdict } from '../cloud/verdict.js';
import { out } from './output.js';
import type { EXPLAIN, OptionsOf } from './spec.js';
import { painter } from './colour.js';

export type ExplainOptions = OptionsOf<typeof EXPLAIN>;

const FILE_FLAGS = [
  ['awsTrustPolicy', '--aws-trust-policy'],
  ['gcpProvider', '--gcp-provider'],
  ['azureCredential', '--azure-credential'],
] as const;

/**
 * `oz federate explain`: would this relying party accept the token, and if not, why. The
 * decision is made here, from the file the cloud's CLI printed; nothing is asked of the
 * cloud. With no token given, one is issued for the relying party's audience, as a run
 * would get it.
 */
export async function explainCommand(opts: ExplainOptions, arg?: string): Promise<void> {
  const given = FILE_FLAGS.filter(([key]) => opts[key] !== undefined);
  if (given.length !== 1) {
    throw new OzError(
      'usage',
      given.length === 0
        ? 'say which relying party to explain against: --aws-trust-policy FILE, --gcp-provider FILE or --azure-credential FILE'
        : `give one of ${given.map(([, flag]) => flag).join(', ')}, not several`,
    );
  }
  const [key, flag] = given[0] as (typeof FILE_FLAGS)[number];
  const path = opts[key] as string;
  const what = `${flag} ${path}`;
  const text = await readInput(path, what);
  const now = new Date();

  // The file is read and checked before any token is issued: a bad file is a usage error.
  let verdict: Verdict;
  let token: { text: string; decoded: DecodedJwt };
  // Each evaluator is loaded only for its cloud: the GCP one brings a CEL implementation.
  if (key === 'awsTrustPolicy') {
    const { evaluateAwsTrustPolicy, parseTrustPolicy } = await import('../cloud/aws-policy.js');
    const policy = parseTrustPolicy(text, what);
    token = await obtainToken(arg, AWS_STS_AUDIENCE, now);
    verdict = evaluateAwsTrustPolicy(policy, token.decoded, { now, tokenText: token.text });
  } else if (key === 'gcpProvider') {
    const { evaluateGcpProvider, parseGcpProvider } = await import('../cloud/gcp-provider.js');
    const provider = parseGcpProvider(text, what);
    const audience = provider.allowedAudiences[0] ?? `//iam.googleapis.com/${provider.name ?? ''}`;
    token = await obtainToken(arg, gcpTokenAudienceClaim(audience), now);
    verdict = evaluateGcpProvider(provider, token.decoded, { now });
  } else {
    const { AZURE_AUDIENCE, evaluateAzureCredentials, parseFederatedCredentials } = await import('../cloud/azure-credential.js');
    const credentials = parseFederatedCredentials(text, what);
    token = await obtainToken(arg, AZURE_AUDIENCE, now);
    verdict = evaluateAzureCredentials(credentials, token.decoded, { now });
  }
  const claims = token.decoded.payload;

  if (opts.json) {
    out(
      `${JSON.stringify(
        {
          relying_party: verdict.relyingParty,
          accepted: verdict.accepted,
          token: { source: arg === undefined ? 'issued' : 'given', iss: claims.iss, sub: claims.sub, aud: claims.aud },
          checks: verdict.checks,
          ...(verdict.outcome ? { outcome: verdict.outcome } : {}),
        },
        null,
        2,
      )}\n`,
    );
  } else {
    out(await renderText(verdict, what, claims, arg === undefined));
  }
  if (!verdict.accepted) {
    const first = decisive(verdict)[0];
    throw new OzError(
      'refused',
      `${NAMES[verdict.relyingParty]} would refuse this token` +
        (first ? `: ${first.group ? `${first.group}: ` : ''}${first.name} expected ${first.expected}, got ${first.actual}` : ''),
    );
  }
}

const NAMES: Record<Verdict['relyingParty'], string> = { aws: 'AWS STS', gcp: "Google's STS", azure: 'Microsoft Entra ID' };

async function obtainToken(arg: string | undefined, audience: string, now: Date): Promise<{ text: string; decoded: DecodedJwt }> {
  let text: string;
  if (arg === undefined) {
    const { issueToken } = await import('../sandbox/sources/index.js');
    const issued = await issueToken(process.env, process.cwd(), now, { audience, requestedSeconds: DEFAULT_TOKEN_SECONDS });
    text = issued.token;
  } else {
    text = (arg === '-' ? await readStdin() : arg).trim();
  }
  if (text === '') throw new OzError('usage', 'the token is empty');
  const decoded = decodeJwt(text);
  if (!decoded.ok) throw new OzError('usage', `not a JWT: ${decoded.problem}`);
  return { text, decoded: decoded.value };
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new OzError('usage', 'no token on stdin: pipe one in, pass it as an argument, or give none to have oz issue one');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function readInput(path: string, what: string): Promise<string> {
  if (path === '') throw new OzError('usage', `${what.trim()}: the file name is empty`);
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new OzError('usage', `cannot read ${what}: ${describeCause(e)}`, { cause: e });
  }
}

/** The failed checks that decide the verdict (for AWS, not the statements that merely did not apply). */
function decisive(verdict: Verdict): Check[] {
  const failed = verdict.checks.filter((c) => !c.ok);
  const top = failed.filter((c) => c.group === undefined);
  const inStatements = failed.filter((c) => c.group !== undefined && c.group.endsWith('Allow'));
  return verdict.relyingParty === 'aws' ? [...top.filter((c) => !c.name.endsWith(' allowed')), ...inStatements, ...top] : failed;
}

async function renderText(verdict: Verdict, what: string, claims: Record<string, unknown>, issued: boolean): Promise<string> {
  const paint = await painter(process.stdout);
  const green = (s: string) => (paint ? paint.green(s) : s);
  const red = (s: string) => (paint ? paint.red.bold(s) : s);
  const bold = (s: string) => (paint ? paint.bold(s) : s);
  const lines = [
    bold(`${NAMES[verdict.relyingParty]}, as configured by ${what}`),
    `token (${issued ? 'issued now' : 'given'}): iss ${show(claims.iss)}, sub ${show(claims.sub)}, aud ${show(claims.aud)}`,
    '',
  ];
  let group: string | undefined;
  for (const c of verdict.checks) {
    if (c.group !== group) {
      group = c.group;
      if (group !== undefined) lines.push('', bold(group));
      else lines.push('');
    }
    // In a Deny statement a condition that holds is what refuses, so pass/FAIL would mislead.
    const deny = c.group?.endsWith(': Deny') === true;
    const mark = deny ? (c.ok ? 'hit ' : 'miss') : c.ok ? green('pass') : red('FAIL');
    lines.push(`  ${mark}  ${c.name}`);
    lines.push(`        expected: ${c.expected}`);
    if (c.actual !== c.expected || !c.ok) lines.push(`        actual:   ${c.actual}`);
    if (c.note) lines.push(`        note:     ${c.note}`);
  }
  lines.push('');
  if (verdict.accepted) {
    const extra = verdict.outcome && Object.keys(verdict.outcome).length > 0 ? ` (${Object.entries(verdict.outcome).map(([k, v]) => `${k}: ${show(v)}`).join('; ')})` : '';
    lines.push(green(`Verdict: accepted${extra}`));
  } else {
    const reasons = decisive(verdict).map((c) => `${c.group ? `${c.group}: ` : ''}${c.name}`);
    lines.push(red(`Verdict: refused`) + ` — ${[...new Set(reasons)].join('; ')}`);
  }
  return `${lines.join('\n')}\n`;
}

function show(v: unknown): string {
  return typeof v === 'string' ? quote(v, 200) : JSON.stringify(v) ?? '(absent)';
}
