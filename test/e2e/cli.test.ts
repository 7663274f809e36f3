import { describe, expect, it, beforeEach } from 'vitest';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { oz, run, OZ_BIN, OZ_BIN_IS_SINGLE_FILE, scrubbedEnv, tempDir } from '../helpers/oz.js';
import { colourLevel } from '../../src/cli/colour.js';
import pkg from '../../package.json' with { type: 'json' };

let home: string;
let env: Record<string, string>;
beforeEach(() => {
  home = tempDir();
  env = scrubbedEnv(home);
});

const COMMANDS = [
  ['federate'],
  ['federate', 'issue-token'],
  ['federate', 'prepare'],
  ['federate', 'cleanup'],
  ['federate', 'whoami'],
  ['federate', 'inspect'],
  ['issuer'],
  ['issuer', 'init'],
  ['issuer', 'rotate'],
  ['issuer', 'jwks'],
  ['issuer', 'discovery'],
  ['issuer', 'publish'],
  ['issuer', 'serve'],
  ['issuer', 'grant-run'],
];

describe('the command line', () => {
  it('--version prints the package version', async () => {
    const r = await oz(['--version'], { env });
    expect(r).toMatchObject({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
  });

  it.each(COMMANDS)('%s %s --help shows usage and examples on stdout', async (...cmd) => {
    const r = await oz([...cmd, '--help'], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(new RegExp(`^Usage: oz ${cmd.join(' ')} `));
    expect(r.stdout).toMatch(/\nExamples:\n {2}\$ .*\boz /);
  });

  it('an unknown command is a one-line usage error', async () => {
    const r = await oz(['federate', 'issue-tokens'], { env });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe("oz: unknown command 'issue-tokens' (Did you mean issue-token?) (see `oz federate --help`)\n");
  });

  it('a bad choice is refused with the allowed values', async () => {
    const r = await oz(['federate', 'issue-token', '--audience', 'a', '--format', 'yaml'], { env });
    const choices = "oz: option '--format <format>' argument 'yaml' is invalid. Allowed choices are jwt, json, gcp. (see `oz federate issue-token --help`)\n";
    expect(r).toMatchObject({ code: 2, stdout: '', stderr: choices });
    const viaCommander = await oz(['federate', 'whoami', '--bogus'], { env });
    expect(viaCommander).toMatchObject({ code: 2, stdout: '', stderr: "oz: unknown option '--bogus' (see `oz federate whoami --help`)\n" });
  });
});

describe('colour', () => {
  it.each([
    [{}, false, 0],
    [{}, true, 1],
    [{ NO_COLOR: '1' }, true, 0],
    [{ NO_COLOR: '' }, true, 1],
    [{ TERM: 'dumb' }, true, 0],
    [{ FORCE_COLOR: '1' }, false, 1],
    [{ FORCE_COLOR: '3' }, false, 3],
    [{ FORCE_COLOR: '0' }, true, 0],
    [{ FORCE_COLOR: '1', NO_COLOR: '1' }, false, 1],
  ])('env %j on a TTY=%s → level %d', (e, tty, level) => {
    expect(colourLevel(e, tty)).toBe(level);
  });

  it('errors are plain when piped and red with FORCE_COLOR', async () => {
    const plain = await oz(['federate', 'issue-token'], { env });
    expect(plain.stderr).toMatch(/^oz: missing audience/);
    const forced = await oz(['federate', 'issue-token'], { env: { ...env, FORCE_COLOR: '1' } });
    expect(forced.stderr).toMatch(/^\u001b\[31m\u001b\[1moz:\u001b\[22m\u001b\[39m missing audience/);
  });

  it('on a terminal errors are coloured, and NO_COLOR turns that off', async () => {
    // script(1) gives oz a pseudo-terminal for stdout and stderr.
    const cmd = `'${OZ_BIN}' federate issue-token`;
    const tty = await run('script', ['-qec', cmd, '/dev/null'], { env: { ...env, TERM: 'xterm' } });
    expect(tty.stdout).toContain('\u001b[31m');
    const noColor = await run('script', ['-qec', cmd, '/dev/null'], { env: { ...env, TERM: 'xterm', NO_COLOR: '1' } });
    expect(noColor.stdout).toContain('oz: missing audience');
    expect(noColor.stdout).not.toContain('\u001b[');
  });
});

describe('oz federate whoami', () => {
  it('shows every setting the sandbox reads, with where it came from', async () => {
    const r = await oz(['federate', 'whoami', '--json'], { env: { ...env, OZ_SIGNING_ALG: 'ES256', OZ_TOKEN_TIMEOUT: '20s' } });
    expect(r.code).toBe(0);
    const settings = JSON.parse(r.stdout).settings;
    expect(settings.OZ_SIGNING_ALG).toEqual({ value: 'ES256', source: 'env', from: 'OZ_SIGNING_ALG' });
    expect(settings.OZ_TOKEN_TIMEOUT).toEqual({ value: 20, source: 'env', from: 'OZ_TOKEN_TIMEOUT' });
    expect(settings.OZ_MAX_RUN_DURATION).toEqual({ value: 14400, source: 'default', from: 'OZ_MAX_RUN_DURATION' });
    expect(settings.OZ_AWS_ROLE_ARN).toEqual({ value: null, source: 'unset', from: 'OZ_AWS_ROLE_ARN' });
    const text = await oz(['federate', 'whoami'], { env: { ...env, OZ_SIGNING_ALG: 'ES256' } });
    expect(text.stdout).toMatch(/^ {2}OZ_SIGNING_ALG +ES256 +from OZ_SIGNING_ALG$/m);
  });

  it('shows each claim, where it came from, and the time left', async () => {
    const deadline = new Date(Date.now() + 90 * 60_000).toISOString();
    const r = await oz(['federate', 'whoami', '--json'], { env: { ...env, OZ_SUBJECT: 'user-1', OZ_TEAMS: 't1,t2', OZ_RUN_DEADLINE: deadline } });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.token_source).toBe('embedded');
    expect(doc.claims.sub).toEqual({ value: 'user-1', source: 'env', variable: 'OZ_SUBJECT' });
    expect(doc.claims.teams).toEqual({ value: ['t1', 't2'], source: 'env', variable: 'OZ_TEAMS' });
    expect(doc.claims.environment).toEqual({ value: 'local', source: 'default', variable: 'OZ_ENVIRONMENT_ID' });
    expect(doc.claims.email).toEqual({ value: null, source: 'default', variable: 'OZ_EMAIL' });
    expect(doc.deadline).toBe(new Date(deadline).toISOString());
    expect(doc.seconds_left).toBeGreaterThan(89 * 60);
    expect(doc.seconds_left).toBeLessThanOrEqual(90 * 60);

    const text = await oz(['federate', 'whoami'], { env: { ...env, OZ_SUBJECT: 'user-1', OZ_RUN_DEADLINE: deadline } });
    expect(text.stdout).toMatch(/^ {2}sub +user-1 +from OZ_SUBJECT$/m);
    expect(text.stdout).toMatch(/^ {2}environment +local +local default \(set OZ_ENVIRONMENT_ID\)$/m);
    expect(text.stdout).toMatch(/^ {2}time left +(1h30m|1h29m\d*s?)/m);
  });

  it('shows a run that is over, then exits 4 (run_expired)', async () => {
    const r = await oz(['federate', 'whoami'], { env: { ...env, OZ_RUN_DEADLINE: '2020-01-01T00:00:00Z' } });
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/time left +none: the deadline passed/);
    expect(r.stderr).toMatch(/^oz: the run's deadline \(OZ_RUN_DEADLINE\) passed .* ago: no token can be issued for this run\n$/);
  });

  it('refuses a run-context value with control characters, shown escaped', async () => {
    const r = await oz(['federate', 'whoami'], { env: { ...env, OZ_SUBJECT: 'a\u001b[2Jb' } });
    expect(r).toMatchObject({ code: 3, stdout: '', stderr: 'oz: invalid OZ_SUBJECT "a\\u001b[2Jb": it contains control characters\n' });
  });
});

describe.skipIf(OZ_BIN_IS_SINGLE_FILE)('bin/oz and the code cache', () => {
  // A copy of bin/ and dist/ to break in different ways.
  async function copyOfOz(): Promise<string> {
    const root = join(tempDir('oz-copy-'), 'oz');
    cpSync(resolve(OZ_BIN, '../../bin'), join(root, 'bin'), { recursive: true });
    cpSync(resolve(OZ_BIN, '../../dist'), join(root, 'dist'), { recursive: true });
    return root;
  }

  it.each([
    ['no cache', (cache: string) => rmSync(cache)],
    ['a cache from another build', (cache: string) => writeFileSync(cache, '\n//# oz-build 0000\ngarbage')],
    [
      'a corrupt cache for this build',
      (cache: string) => {
        const bytes = readFileSync(cache);
        const header = bytes.indexOf('\n', 2) + 1;
        writeFileSync(cache, Buffer.concat([bytes.subarray(0, header), Buffer.from('not V8 code at all')]));
      },
    ],
  ])('still works with %s', async (_n, breakIt) => {
    const root = await copyOfOz();
    breakIt(join(root, 'dist', 'cli.cjs.v8cache'));
    const r = await run(join(root, 'bin', 'oz'), ['federate', 'issue-token', '--audience', 'a', '--format', 'json'], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).claims.aud).toBe('a');
    const help = await run(join(root, 'bin', 'oz'), ['issuer', 'jwks'], { env });
    expect(help.code).toBe(0);
  });
});
