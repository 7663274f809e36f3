import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { COMMANDS, EXEC, GROUPS, ISSUE_TOKEN, PREPARE, optionKey, type CommandSpec } from '../../src/cli/spec.js';
import { parseFast, winningFormat } from '../../src/cli/fast-args.js';
import { runProgram } from '../../src/cli/program.js';
import { RUN_CLAIMS, CLAIMS_SUPPORTED } from '../../src/core/claims.js';
import { discoveryDocument } from '../../src/platform/issuer.js';

/** What commander hands the handler for these arguments, or undefined when it refuses them. */
async function viaCommander(spec: CommandSpec, args: string[]): Promise<Record<string, unknown> | undefined> {
  let got: Record<string, unknown> | undefined;
  const exitCode = process.exitCode;
  const write = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    await runProgram([...spec.path, ...args], async (_s, opts) => {
      got = { ...opts };
    });
  } finally {
    process.stderr.write = write;
    process.exitCode = exitCode;
  }
  return got;
}

describe('the fast parser and commander read the same arguments the same way', () => {
  const cases: [CommandSpec, string[]][] = [
    [ISSUE_TOKEN, []],
    [ISSUE_TOKEN, ['--audience', 'sts.amazonaws.com']],
    [ISSUE_TOKEN, ['--audience=sts.amazonaws.com', '--duration', '15m', '--format', 'json']],
    [ISSUE_TOKEN, ['--format', 'json', '--format=gcp']],
    [ISSUE_TOKEN, ['--audience', 'a', '--audience', 'b']],
    [ISSUE_TOKEN, ['--audience=', '--duration=90s']],
    [ISSUE_TOKEN, ['--audience', 'x=y']],
    [PREPARE, ['--aws-role-arn', 'arn:aws:iam::123456789012:role/r', '--gcp-project-number', '1', '--gcp-pool-id', 'pool', '--gcp-provider-id', 'prov']],
    [PREPARE, ['--dir', '/tmp/x y', '--shell', 'fish', '--gcp-service-account=a@b.iam.gserviceaccount.com', '--gcp-project-id', 'my-project']],
    [PREPARE, ['--shell=json']],
    [PREPARE, ['--azure-client-id', '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', '--azure-tenant-id=contoso.onmicrosoft.com', '--azure-authority-host', 'https://login.microsoftonline.us']],
    [PREPARE, ['--token', 'vault=https://vault.example.com', '--token=saas=api://x=y', '--token', 'vault=again']],
    [PREPARE, ['--refresh', '--duration', '10s', '--gcp-credential-source=file']],
  ];
  it.each(cases.map(([spec, args]) => [spec.path[1], args, spec] as const))('%s %j', async (_name, args, spec) => {
    const fast = parseFast(spec, args);
    expect(fast).toBeDefined();
    expect(await viaCommander(spec, args)).toEqual(fast);
  });

  const handedOver: [CommandSpec, string[]][] = [
    [ISSUE_TOKEN, ['--format', 'yaml']],
    [ISSUE_TOKEN, ['--audience']],
    [ISSUE_TOKEN, ['--bogus']],
    [ISSUE_TOKEN, ['positional']],
    [PREPARE, ['--shell', 'tcsh']],
    [PREPARE, ['--gcp-credential-source', 'url']],
  ];
  it.each(handedOver.map(([spec, args]) => [spec.path[1], args, spec] as const))('%s %j is left to commander, which refuses it too', async (_name, args, spec) => {
    expect(parseFast(spec, args)).toBeUndefined();
    expect(await viaCommander(spec, args)).toBeUndefined();
  });

  it('reads a value that starts with a dash only in the --name=value form, as commander does', async () => {
    expect(parseFast(ISSUE_TOKEN, ['--audience', '-x'])).toBeUndefined();
    expect(parseFast(ISSUE_TOKEN, ['--audience=-x'])).toEqual({ audience: '-x' });
    expect(await viaCommander(ISSUE_TOKEN, ['--audience=-x'])).toEqual({ audience: '-x' });
  });

  it('decides the gcp format by the --format that wins', () => {
    expect(winningFormat(['--format', 'gcp', '--format', 'json'])).toBe('json');
    expect(winningFormat(['--format=json', '--format', 'gcp'])).toBe('gcp');
    expect(winningFormat(['--audience', 'a'])).toBeUndefined();
  });
});

describe('exec: the command after -- is its argument, options and all', () => {
  async function execArgs(args: string[]): Promise<{ opts: Record<string, unknown>; arg: unknown } | undefined> {
    let got: { opts: Record<string, unknown>; arg: unknown } | undefined;
    const exitCode = process.exitCode;
    const write = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      await runProgram([...EXEC.path, ...args], async (_s, opts, arg) => {
        got = { opts: { ...opts }, arg };
      });
    } finally {
      process.stderr.write = write;
      process.exitCode = exitCode;
    }
    return got;
  }

  it('hands the handler prepare\'s options and the command as an array', async () => {
    expect(await execArgs(['--aws-role-arn', 'arn:aws:iam::123456789012:role/r', '--duration', '15m', '--', 'aws', 's3', 'ls', '--dir', 'x'])).toEqual({
      opts: { awsRoleArn: 'arn:aws:iam::123456789012:role/r', duration: '15m' },
      arg: ['aws', 's3', 'ls', '--dir', 'x'],
    });
  });

  it('takes prepare\'s options less --shell and --refresh', () => {
    const flags = (spec: CommandSpec) => spec.options.map((o) => o.flag as string);
    expect(flags(EXEC)).toEqual(flags(PREPARE).filter((f) => f !== '--shell' && f !== '--refresh'));
  });

  it('refuses a missing command', async () => {
    expect(await execArgs(['--aws-role-arn', 'arn:aws:iam::123456789012:role/r'])).toBeUndefined();
  });
});

describe('the command spec', () => {
  it('names each option once per command, with a key that is its camelCase form', () => {
    for (const spec of COMMANDS) {
      const flags = spec.options.map((o) => o.flag);
      expect(new Set(flags).size, spec.path.join(' ')).toBe(flags.length);
    }
    expect(optionKey('--gcp-project-number')).toBe('gcpProjectNumber');
  });

  it("gives an option the same flag as the setting it overrides", () => {
    for (const spec of COMMANDS as readonly CommandSpec[]) {
      for (const o of spec.options) if (o.setting?.flag !== undefined) expect(o.flag, `${spec.path.join(' ')} ${o.flag}`).toBe(o.setting.flag);
    }
  });

  it("is the README's command list: every command with every one of its options", () => {
    const readme = readFileSync('README.md', 'utf8');
    const block = /## Commands\n\n```\n([\s\S]*?)```/.exec(readme)![1]!;
    const listed = new Map<string, string[]>();
    // `[scope]` stands for the options the setup commands share, listed once after them.
    const scope = [...(/scope: ([^\n]*\n[^\n]*)/.exec(block)?.[1] ?? '').matchAll(/--[a-z-]+/g)].map((f) => f[0]);
    for (const entry of block.split(/\n(?=oz )/)) {
      // `oz federate prepare …` is a group's command; `oz doctor …`, a command of its own.
      const m = /^oz ([a-z]+)(?: ([a-z][\w-]*))?/.exec(entry);
      if (!m) continue;
      const id = m[1]! in GROUPS ? `${m[1]} ${m[2]}` : m[1]!;
      const own = entry.replace(/scope:[\s\S]*/, '');
      const flags = [...own.matchAll(/--[a-z-]+/g)].map((f) => f[0]);
      listed.set(id, [...flags, ...(own.includes('[scope]') ? scope : [])].sort());
    }
    const declared = new Map(COMMANDS.map((c) => [c.path.join(' '), c.options.map((o) => o.flag as string).sort()]));
    expect(Object.fromEntries(listed)).toEqual(Object.fromEntries(declared));
  });
});

describe('the run-claim registry', () => {
  it("is what discovery's claims_supported lists, after the standard claims and before the formats' claims", () => {
    expect(discoveryDocument('https://i').claims_supported).toEqual([...CLAIMS_SUPPORTED]);
    expect(CLAIMS_SUPPORTED).toEqual([
      'iss', 'sub', 'aud', 'iat', 'nbf', 'exp', 'jti',
      ...RUN_CLAIMS.filter((c) => c.claim !== 'sub').map((c) => c.claim),
      'oz_sub', 'https://aws.amazon.com/tags',
    ]);
  });

  it("is the README's run-context table, row for row", () => {
    const readme = readFileSync('README.md', 'utf8');
    const rows = [...readme.matchAll(/^\| `(OZ_[A-Z_]+)` \| `([a-z_]+)`[^|]*\| ([^|]+) \|$/gm)].map((m) => [m[1], m[2], m[3]!.trim()]);
    expect(rows).toEqual(RUN_CLAIMS.map((c) => [c.variable, c.claim, c.localText]));
  });

  it("gives grant-run one flag per claim", () => {
    const grant = COMMANDS.find((c) => c.path[1] === 'grant-run')!;
    for (const c of RUN_CLAIMS) expect(grant.options.some((o) => o.flag === c.flag && o.value !== undefined)).toBe(true);
  });
});
