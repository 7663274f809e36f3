import { OzError, quote, type Parsed } from '../core/errors.js';

/** The audience AWS STS expects in a web identity token from an IAM OIDC provider. */
export const AWS_STS_AUDIENCE = 'sts.amazonaws.com';

export const AWS_PARTITIONS = [
  'aws',
  'aws-cn',
  'aws-us-gov',
  'aws-iso',
  'aws-iso-b',
  'aws-iso-e',
  'aws-iso-f',
  'aws-eusc',
] as const;

export type AwsPartition = (typeof AWS_PARTITIONS)[number];

export interface RoleArn {
  partition: AwsPartition;
  /** 12 digits, leading zeros kept. */
  accountId: string;
  /** `/` or `/a/b/`, as IAM stores it. */
  path: string;
  roleName: string;
}

const EXPECTED_ARN = 'expected arn:aws:iam::123456789012:role/NAME';
// IAM's own patterns for RoleName and Path (CreateRole API reference).
const ROLE_NAME = /^[\w+=,.@-]{1,64}$/;
const ROLE_PATH = /^(?:\/|\/[\x21-\x7e]+\/)$/;
const MAX_PATH_LENGTH = 512;

/**
 * Splits an IAM role ARN, `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`, refusing anything
 * AWS would refuse so that a typo is reported here rather than as an opaque
 * AssumeRoleWithWebIdentity failure later.
 */
export function parseRoleArn(arn: string): RoleArn {
  const r = checkRoleArn(arn);
  if (!r.ok) throw new OzError('usage', `invalid AWS role ARN ${quote(arn)}: ${r.problem}`);
  return r.value;
}

/** {@link parseRoleArn} as a parser: the ARN's parts, or what is wrong with it. */
export function checkRoleArn(arn: string): Parsed<RoleArn> {
  const fail = (why?: string): { ok: false; problem: string } => ({
    ok: false,
    problem: `${EXPECTED_ARN}${why === undefined ? '' : ` (${why})`}`,
  });

  if (arn !== arn.trim()) return fail('remove the whitespace around it');
  const parts = arn.split(':');
  const [prefix, partition, service, region, accountId] = parts;
  if (prefix !== 'arn' || parts.length < 6) {
    return fail(ROLE_NAME.test(arn) ? 'give the full ARN of the role, not just its name' : undefined);
  }
  if (!isPartition(partition)) {
    return fail(`unknown partition ${quote(partition ?? '', 20)}; one of ${AWS_PARTITIONS.join(', ')}`);
  }
  const resource = parts.slice(5).join(':');
  if (service === 'sts' && resource.startsWith('assumed-role/')) {
    return fail('that is the ARN of an STS session; give the ARN of the IAM role it assumed');
  }
  if (service !== 'iam') return fail('the service must be iam');
  if (region !== '') return fail('IAM ARNs have no region: keep the two colons after iam empty');
  if (accountId === undefined || !/^\d{12}$/.test(accountId)) {
    return fail('the account ID must be 12 digits');
  }
  if (!resource.startsWith('role/')) return fail('the resource must be role/NAME');

  const pathAndName = resource.slice('role'.length);
  const lastSlash = pathAndName.lastIndexOf('/');
  const path = pathAndName.slice(0, lastSlash + 1);
  const roleName = pathAndName.slice(lastSlash + 1);
  if (!ROLE_NAME.test(roleName)) {
    return fail('the role name must be 1-64 characters of letters, digits and _+=,.@-');
  }
  if (path.length > MAX_PATH_LENGTH || !ROLE_PATH.test(path)) {
    return fail(
      `the role path must be / or /PATH/ of printable ASCII without spaces, at most ${MAX_PATH_LENGTH} characters`,
    );
  }
  return { ok: true, value: { partition, accountId, path, roleName } };
}

function isPartition(value: string | undefined): value is AwsPartition {
  return (AWS_PARTITIONS as readonly (string | undefined)[]).includes(value);
}
