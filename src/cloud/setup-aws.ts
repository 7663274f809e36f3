import { OzError, quote } from '../core/errors.js';
import { AWS_STS_AUDIENCE } from '../sandbox/aws.js';
import { ASSUME_ROLE_WITH_WEB_IDENTITY, TAG_SESSION } from './aws-policy.js';
import { issuerHostPath } from './token-checks.js';
import { hcl } from './hcl.js';
import { checkScope, shellWord, subjectPatterns, type Scope, type TeamBy } from './scope.js';

export interface AwsSetupInput {
  issuer: string;
  scope: Scope;
  teamBy: TeamBy;
  /** The platform's subject format (grant-run --subject-claims), for teamBy 'subject'. */
  subjectClaims: readonly string[];
  accountId: string;
  roleName: string;
  /** SHA-1 of the top certificate of the issuer's TLS chain, 40 lower-case hex digits. */
  thumbprint: string;
}

export interface AwsSetup {
  provider: { url: string; arn: string; client_ids: string[]; thumbprints: string[] };
  role: { name: string; arn: string };
  trust_policy: Record<string, unknown>;
  /** How the policy tells the team (and environment) apart, when it does. */
  team_by?: TeamBy;
  session_tags: boolean;
}

const ACCOUNT_ID = /^\d{12}$/;
const ROLE_NAME = /^[\w+=,.@-]{1,64}$/;

export function parseThumbprint(text: string): string {
  const hex = text.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{40}$/.test(hex)) {
    throw new OzError('usage', `invalid --thumbprint ${quote(text)}: expected the SHA-1 fingerprint, 40 hex digits (colons allowed)`);
  }
  return hex;
}

/**
 * The IAM OIDC provider and the role's trust policy for runs in `scope`. The audience is
 * always pinned, and never alone: subjects go in StringEquals on `<issuer>:sub`, a team or
 * environment in `aws:RequestTag/…` (which needs sts:TagSession) or in a StringLike pattern
 * on the subject format.
 */
export function awsSetup(input: AwsSetupInput): AwsSetup {
  checkScope(input.scope);
  if (!ACCOUNT_ID.test(input.accountId)) throw new OzError('usage', `invalid --account-id ${quote(input.accountId)}: expected the 12-digit AWS account ID`);
  if (!ROLE_NAME.test(input.roleName)) throw new OzError('usage', `invalid --role-name ${quote(input.roleName)}: 1-64 characters of letters, digits and _+=,.@-`);
  const hostPath = issuerHostPath(input.issuer);
  const providerArn = `arn:aws:iam::${input.accountId}:oidc-provider/${hostPath}`;
  const { scope } = input;
  const equals: Record<string, string | string[]> = { [`${hostPath}:aud`]: AWS_STS_AUDIENCE };
  const like: Record<string, string | string[]> = {};
  const scopesTeam = scope.team !== undefined || scope.environment !== undefined;
  const byTags = scopesTeam && input.teamBy === 'tags';
  // With subject formats on, every token's sub is formatted, so subjects are matched through it too.
  if (input.teamBy === 'subject') {
    const { patterns } = subjectPatterns(scope, input.subjectClaims);
    like[`${hostPath}:sub`] = one(patterns);
  } else if (scope.subjects.length > 0) {
    equals[`${hostPath}:sub`] = one(scope.subjects);
  }
  if (byTags) {
    if (scope.team !== undefined) equals['aws:RequestTag/teams'] = scope.team;
    if (scope.environment !== undefined) equals['aws:RequestTag/environment'] = scope.environment;
  }
  const statement = {
    Sid: 'OzRuns',
    Effect: 'Allow',
    Principal: { Federated: providerArn },
    Action: byTags ? [ASSUME_ROLE_WITH_WEB_IDENTITY, TAG_SESSION] : ASSUME_ROLE_WITH_WEB_IDENTITY,
    Condition: { StringEquals: equals, ...(Object.keys(like).length > 0 ? { StringLike: like } : {}) },
  };
  return {
    provider: { url: input.issuer, arn: providerArn, client_ids: [AWS_STS_AUDIENCE], thumbprints: [input.thumbprint] },
    role: { name: input.roleName, arn: `arn:aws:iam::${input.accountId}:role/${input.roleName}` },
    trust_policy: { Version: '2012-10-17', Statement: [statement] },
    ...(scopesTeam || input.teamBy === 'subject' ? { team_by: input.teamBy } : {}),
    session_tags: byTags,
  };
}

function one(values: string[]): string | string[] {
  return values.length === 1 ? (values[0] as string) : values;
}

/** The commands, ready to paste into a POSIX shell. */
export function awsSetupText(s: AwsSetup): string {
  const policy = JSON.stringify(s.trust_policy, null, 2);
  return [
    '# 1. The IAM OIDC provider: AWS trusts tokens from the issuer for the audience sts.amazonaws.com.',
    `aws iam create-open-id-connect-provider --url ${shellWord(s.provider.url)} \\`,
    `  --client-id-list ${shellWord(AWS_STS_AUDIENCE)} --thumbprint-list ${shellWord(s.provider.thumbprints[0] as string)}`,
    '',
    '# 2. The role runs assume, with its trust policy.',
    "cat > oz-trust-policy.json <<'OZ_TRUST_POLICY'",
    policy,
    'OZ_TRUST_POLICY',
    `aws iam create-role --role-name ${shellWord(s.role.name)} --assume-role-policy-document file://oz-trust-policy.json`,
    '',
    '# 3. What the runs may do: attach permission policies, for example:',
    `aws iam attach-role-policy --role-name ${shellWord(s.role.name)} --policy-arn arn:aws:iam::aws:policy/ReadOnlyAccess`,
    '',
    `# Runs then use: oz federate prepare --aws-role-arn ${s.role.arn}`,
    ...(s.session_tags
      ? ['# The policy matches session tags: grant runs with --aws-session-tags teams (OZ_AWS_SESSION_TAGS=teams), adding environment when it is scoped.']
      : s.team_by === 'subject'
        ? ['# The policy matches the subject format: grant runs with the same --subject-claims (OZ_SUBJECT_CLAIMS).']
        : []),
    '',
  ].join('\n');
}

export function awsSetupTerraform(s: AwsSetup): string {
  return [
    'resource "aws_iam_openid_connect_provider" "oz" {',
    `  url             = ${hcl(s.provider.url)}`,
    `  client_id_list  = ${hcl(s.provider.client_ids)}`,
    `  thumbprint_list = ${hcl(s.provider.thumbprints)}`,
    '}',
    '',
    'resource "aws_iam_role" "oz" {',
    `  name               = ${hcl(s.role.name)}`,
    `  assume_role_policy = jsonencode(${hcl(s.trust_policy, 2)})`,
    '}',
    '',
  ].join('\n');
}
