import { createHash } from 'node:crypto';
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

const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const SESSION_PREFIX = 'Oz_Run_';
const HASH_LENGTH = 12;
const HASH_SUFFIX = new RegExp(`\\.[0-9a-f]{${HASH_LENGTH}}$`);
const MAX_SESSION_NAME = 64;

/**
 * The STS role session name for a run: `Oz_Run_<run-id>` when that is already a valid
 * session name (2-64 characters of `[\w+=,.@-]`), which it is for the usual run IDs.
 *
 * Otherwise each character STS refuses becomes `-`, the result is cut to fit, and
 * `.` plus the first 12 hex digits of the SHA-256 of the original run ID is appended, so
 * that run IDs which sanitise alike still get distinct names. A run ID that already ends
 * in `.` and 12 hex digits goes through the hashed form too; that way a hashed name can
 * never equal the plain name of some other run. Only a collision in those 48 bits of
 * SHA-256 could give two runs the same name. The hash is over the run ID's UTF-8 bytes, so
 * `printf %s "$OZ_RUN_ID" | sha256sum | cut -c1-12` shows it.
 */
export function sessionNameForRun(runId: string): string {
  const plain = `${SESSION_PREFIX}${runId}`;
  if (SESSION_NAME.test(plain) && !HASH_SUFFIX.test(plain)) return plain;

  const hash = createHash('sha256').update(runId, 'utf8').digest('hex').slice(0, HASH_LENGTH);
  const room = MAX_SESSION_NAME - SESSION_PREFIX.length - 1 - HASH_LENGTH;
  // Per code point, so that one emoji becomes one `-`, not two.
  const sanitised = Array.from(runId, (c) => (/^[\w+=,.@-]$/.test(c) ? c : '-'))
    .slice(0, room)
    .join('');
  return `${SESSION_PREFIX}${sanitised}.${hash}`;
}
