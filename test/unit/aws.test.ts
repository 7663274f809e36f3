import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { thrown } from '../helpers/thrown.js';
import { AWS_STS_AUDIENCE, parseRoleArn, type RoleArn } from '../../src/sandbox/aws.js';
import { sessionNameForRun } from '../../src/sandbox/aws-session.js';
import { OzError } from '../../src/core/errors.js';

const STS_SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const EXPECTED = 'expected arn:aws:iam::123456789012:role/NAME';


function sha12(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 12);
}

it('AWS_STS_AUDIENCE is the audience STS expects', () => {
  expect(AWS_STS_AUDIENCE).toBe('sts.amazonaws.com');
});

describe('parseRoleArn', () => {
  const longPath = `/${'p'.repeat(510)}/`;
  it.each<[string, RoleArn]>([
    ['arn:aws:iam::123456789012:role/oz', { partition: 'aws', accountId: '123456789012', path: '/', roleName: 'oz' }],
    [
      'arn:aws:iam::000000000001:role/a/b/MyRole',
      { partition: 'aws', accountId: '000000000001', path: '/a/b/', roleName: 'MyRole' },
    ],
    ['arn:aws-cn:iam::123456789012:role/r', { partition: 'aws-cn', accountId: '123456789012', path: '/', roleName: 'r' }],
    [
      'arn:aws-us-gov:iam::123456789012:role/r',
      { partition: 'aws-us-gov', accountId: '123456789012', path: '/', roleName: 'r' },
    ],
    ['arn:aws-iso:iam::123456789012:role/r', { partition: 'aws-iso', accountId: '123456789012', path: '/', roleName: 'r' }],
    ['arn:aws-iso-b:iam::123456789012:role/r', { partition: 'aws-iso-b', accountId: '123456789012', path: '/', roleName: 'r' }],
    ['arn:aws-iso-e:iam::123456789012:role/r', { partition: 'aws-iso-e', accountId: '123456789012', path: '/', roleName: 'r' }],
    ['arn:aws-iso-f:iam::123456789012:role/r', { partition: 'aws-iso-f', accountId: '123456789012', path: '/', roleName: 'r' }],
    ['arn:aws-eusc:iam::123456789012:role/r', { partition: 'aws-eusc', accountId: '123456789012', path: '/', roleName: 'r' }],
    [
      `arn:aws:iam::123456789012:role/${'n'.repeat(64)}`,
      { partition: 'aws', accountId: '123456789012', path: '/', roleName: 'n'.repeat(64) },
    ],
    [
      'arn:aws:iam::123456789012:role/Name_+=,.@-09',
      { partition: 'aws', accountId: '123456789012', path: '/', roleName: 'Name_+=,.@-09' },
    ],
    [
      'arn:aws:iam::123456789012:role/!~:*"{}/r',
      { partition: 'aws', accountId: '123456789012', path: '/!~:*"{}/', roleName: 'r' },
    ],
    [
      `arn:aws:iam::123456789012:role${longPath}r`,
      { partition: 'aws', accountId: '123456789012', path: longPath, roleName: 'r' },
    ],
  ])('%s', (arn, expected) => {
    expect(parseRoleArn(arn)).toEqual(expected);
  });

  it.each<[string, string, string]>([
    ['', '""', ''],
    ['oz-role', '"oz-role"', ' (give the full ARN of the role, not just its name)'],
    [' arn:aws:iam::123456789012:role/oz', '" arn:aws:iam::123456789012:role/oz"', ' (remove the whitespace around it)'],
    ['arn:aws:iam::123456789012:role/oz\n', '"arn:aws:iam::123456789012:role/oz\\n"', ' (remove the whitespace around it)'],
    ['arn:aws:iam::123456789012', '"arn:aws:iam::123456789012"', ''],
    ['ARN:aws:iam::123456789012:role/oz', '"ARN:aws:iam::123456789012:role/oz"', ''],
    [
      'arn:azure:iam::123456789012:role/oz',
      '"arn:azure:iam::123456789012:role/oz"',
      ' (unknown partition "azure"; one of aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc)',
    ],
    [
      'arn:aws:sts::123456789012:assumed-role/oz/session',
      '"arn:aws:sts::123456789012:assumed-role/oz/session"',
      ' (that is the ARN of an STS session; give the ARN of the IAM role it assumed)',
    ],
    ['arn:aws:s3:::bucket:role/x', '"arn:aws:s3:::bucket:role/x"', ' (the service must be iam)'],
    [
      'arn:aws:iam:us-east-1:123456789012:role/oz',
      '"arn:aws:iam:us-east-1:123456789012:role/oz"',
      ' (IAM ARNs have no region: keep the two colons after iam empty)',
    ],
    ['arn:aws:iam::12345678901:role/oz', '"arn:aws:iam::12345678901:role/oz"', ' (the account ID must be 12 digits)'],
    ['arn:aws:iam::1234567890123:role/oz', '"arn:aws:iam::1234567890123:role/oz"', ' (the account ID must be 12 digits)'],
    ['arn:aws:iam::12345678901a:role/oz', '"arn:aws:iam::12345678901a:role/oz"', ' (the account ID must be 12 digits)'],
    ['arn:aws:iam::١٢٣٤٥٦٧٨٩٠١٢:role/oz', '"arn:aws:iam::١٢٣٤٥٦٧٨٩٠١٢:role/oz"', ' (the account ID must be 12 digits)'],
    ['arn:aws:iam::123456789012:user/oz', '"arn:aws:iam::123456789012:user/oz"', ' (the resource must be role/NAME)'],
    ['arn:aws:iam::123456789012:assumed-role/oz/s', '"arn:aws:iam::123456789012:assumed-role/oz/s"', ' (the resource must be role/NAME)'],
    ['arn:aws:sts::123456789012:role/oz', '"arn:aws:sts::123456789012:role/oz"', ' (the service must be iam)'],
    ['arn:aws:iam::123456789012:role', '"arn:aws:iam::123456789012:role"', ' (the resource must be role/NAME)'],
    [
      'arn:aws:iam::123456789012:role/',
      '"arn:aws:iam::123456789012:role/"',
      ' (the role name must be 1-64 characters of letters, digits and _+=,.@-)',
    ],
    [
      `arn:aws:iam::123456789012:role/${'n'.repeat(65)}`,
      `"arn:aws:iam::123456789012:role/${'n'.repeat(49)}…"`,
      ' (the role name must be 1-64 characters of letters, digits and _+=,.@-)',
    ],
    [
      'arn:aws:iam::123456789012:role/my role',
      '"arn:aws:iam::123456789012:role/my role"',
      ' (the role name must be 1-64 characters of letters, digits and _+=,.@-)',
    ],
    [
      'arn:aws:iam::123456789012:role/rôle',
      '"arn:aws:iam::123456789012:role/rôle"',
      ' (the role name must be 1-64 characters of letters, digits and _+=,.@-)',
    ],
    [
      'arn:aws:iam::123456789012:role/a;$(reboot)',
      '"arn:aws:iam::123456789012:role/a;$(reboot)"',
      ' (the role name must be 1-64 characters of letters, digits and _+=,.@-)',
    ],
    [
      'arn:aws:iam::123456789012:role//oz',
      '"arn:aws:iam::123456789012:role//oz"',
      ' (the role path must be / or /PATH/ of printable ASCII without spaces, at most 512 characters)',
    ],
    [
      'arn:aws:iam::123456789012:role/a b/oz',
      '"arn:aws:iam::123456789012:role/a b/oz"',
      ' (the role path must be / or /PATH/ of printable ASCII without spaces, at most 512 characters)',
    ],
    [
      'arn:aws:iam::123456789012:role/é/oz',
      '"arn:aws:iam::123456789012:role/é/oz"',
      ' (the role path must be / or /PATH/ of printable ASCII without spaces, at most 512 characters)',
    ],
    [
      `arn:aws:iam::123456789012:role/${'p'.repeat(511)}/oz`,
      `"arn:aws:iam::123456789012:role/${'p'.repeat(49)}…"`,
      ' (the role path must be / or /PATH/ of printable ASCII without spaces, at most 512 characters)',
    ],
    [
      'arn:aws:iam::123456789012:role/a\u001b[2Jb',
      '"arn:aws:iam::123456789012:role/a\\u001b[2Jb"',
      ' (the role name must be 1-64 characters of letters, digits and _+=,.@-)',
    ],
    [
      'arn:aws:iam::123456789012:role/x\u202eevil',
      '"arn:aws:iam::123456789012:role/x\\u202eevil"',
      ' (the role name must be 1-64 characters of letters, digits and _+=,.@-)',
    ],
  ])('refuses %j', (arn, quoted, why) => {
    const e = thrown(() => parseRoleArn(arn));
    expect(e).toBeInstanceOf(OzError);
    expect((e as OzError).code).toBe('usage');
    expect((e as OzError).message).toBe(`invalid AWS role ARN ${quoted}: ${EXPECTED}${why}`);
  });

  it('keeps a huge value out of the message', () => {
    const e = thrown(() => parseRoleArn('x'.repeat(1_000_000))) as OzError;
    expect(e.message.length).toBeLessThan(200);
    expect(e.message).not.toMatch(/[\n\r]/);
  });
});

describe('sessionNameForRun', () => {
  it.each<[string, string]>([
    ['run-1', 'Oz_Run_run-1'],
    ['0f6c2b8e-4b1a-4c3e-9d2f-1a2b3c4d5e6f', 'Oz_Run_0f6c2b8e-4b1a-4c3e-9d2f-1a2b3c4d5e6f'],
    ['a', 'Oz_Run_a'],
    ['', 'Oz_Run_'],
    ['A_b+c=d,e.f@g-h', 'Oz_Run_A_b+c=d,e.f@g-h'],
    ['x'.repeat(57), `Oz_Run_${'x'.repeat(57)}`],
  ])('%j is used as it is: %s', (runId, expected) => {
    expect(sessionNameForRun(runId)).toBe(expected);
  });

  it.each<[string, string]>([
    ['run/1', `Oz_Run_run-1.${sha12('run/1')}`],
    ['run 1', `Oz_Run_run-1.${sha12('run 1')}`],
    ['run:1', `Oz_Run_run-1.${sha12('run:1')}`],
    ['é漢🙂', `Oz_Run_---.${sha12('é漢🙂')}`],
    ['../../etc', `Oz_Run_..-..-etc.${sha12('../../etc')}`],
    ['a\nb', `Oz_Run_a-b.${sha12('a\nb')}`],
    ['x'.repeat(58), `Oz_Run_${'x'.repeat(44)}.${sha12('x'.repeat(58))}`],
    ['y'.repeat(200), `Oz_Run_${'y'.repeat(44)}.${sha12('y'.repeat(200))}`],
    // Looks like a hashed name, so it is hashed too and cannot equal some other run's name.
    ['abc.0123456789ab', `Oz_Run_abc.0123456789ab.${sha12('abc.0123456789ab')}`],
  ])('%j is sanitised and hashed: %s', (runId, expected) => {
    const name = sessionNameForRun(runId);
    expect(name).toBe(expected);
    expect(name).toMatch(STS_SESSION_NAME);
  });

  it('is stable for one run', () => {
    expect(sessionNameForRun('run/1')).toBe(sessionNameForRun('run/1'));
  });

  it.each<[string, string]>([
    ['run/1', 'run 1'],
    ['run/1', 'run-1'],
    ['x'.repeat(58), 'x'.repeat(59)],
    ['x'.repeat(100) + 'a', 'x'.repeat(100) + 'b'],
    ['é', 'è'],
  ])('%j and %j get distinct names', (a, b) => {
    expect(sessionNameForRun(a)).not.toBe(sessionNameForRun(b));
  });

  it('a run ID crafted to look like another run’s hashed name still gets its own name', () => {
    const hashed = sessionNameForRun('run 1');
    const impostor = hashed.slice('Oz_Run_'.length);
    expect(sessionNameForRun(impostor)).not.toBe(hashed);
    expect(sessionNameForRun(impostor)).toMatch(STS_SESSION_NAME);
  });

  it('gives valid, stable and distinct names for many random run IDs', () => {
    // A fixed seed keeps a failure reproducible.
    let seed = 0x6f7a;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const alphabet = Array.from('abcXYZ019_+=,.@-/ :\n\t\'"$\\é漢🙂\u0000\u202e');
    const byName = new Map<string, string>();
    for (let i = 0; i < 5000; i++) {
      const length = [0, 1, 2, 56, 57, 58, 64, 200][random(8)] ?? 0;
      const runId = Array.from({ length: random(length + 1) }, () => alphabet[random(alphabet.length)]).join('');
      const name = sessionNameForRun(runId);
      expect(name, JSON.stringify(runId)).toMatch(STS_SESSION_NAME);
      expect(sessionNameForRun(runId)).toBe(name);
      const earlier = byName.get(name);
      if (earlier !== undefined) expect(earlier, `${JSON.stringify(runId)} and ${JSON.stringify(earlier)}`).toBe(runId);
      byName.set(name, runId);
    }
    expect(byName.size).toBeGreaterThan(3000);
  });
});
