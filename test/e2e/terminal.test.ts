import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/spec.js';
import { oz, scrubbedEnv, tempDir } from '../helpers/oz.js';
import { BOLD, DIM, ESC, GREEN, RED_OZ, escapeRe, expectFailure, expectNoTrace, expectSuccess, hasScript, onTerminal, shQuote } from '../helpers/terminal.js';

/**
 * Every command run as a person runs it: on a pseudo-terminal (util-linux `script`), where
 * stdout and stderr are both TTYs, so colour is on. Commands are batched into one shell script
 * per `script` call (one pty start for many commands), each framed by markers with its exit
 * status, and cut apart again here.
 */


describe.skipIf(!hasScript)('every command on a terminal', () => {
  let home: string;
  const covered = new Set<string>();
  const note = (cmd: string) => covered.add(cmd);

  beforeAll(() => {
    home = tempDir('oz-tty-');
    mkdirSync(join(home, 'run'), { mode: 0o700 });
    writeFileSync(
      join(home, 'azure.json'),
      JSON.stringify([{ name: 'oz', issuer: 'https://oidc.example.com', subject: 'user-42', audiences: ['api://AzureADTokenExchange'] }]),
    );
    writeFileSync(
      join(home, 'azure-other.json'),
      JSON.stringify([{ name: 'oz', issuer: 'https://oidc.example.com', subject: 'user-7', audiences: ['api://AzureADTokenExchange'] }]),
    );
  });

  it('the issuer commands, on the full (commander) path, success and failure', async () => {
    const s = await onTerminal(home, [
      'oz issuer jwks', // 0: no key yet: read-only commands never create one
      'oz issuer init',
      'oz issuer init --alg XX256',
      'oz issuer jwks',
      'oz issuer discovery',
      'oz issuer discovery --issuer ftp://x', // 5
      'oz issuer rotate --json',
      'oz issuer rotate --alg nope',
      'oz issuer publish --out site --issuer https://oidc.example.com',
      'oz issuer publish',
      'oz issuer grant-run --run-id run-1 --subject user-1', // 10
      'oz issuer grant-run --subject user-1',
      'oz issuer serve --port 99999',
      // serve until it has printed its URL, then SIGTERM: a clean stop is exit 0. (Not through
      // the oz function: $! would be the subshell running it.)
      '"$OZ" issuer serve --port 0 >serve.out & pid=$!; i=0; while [ ! -s serve.out ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; kill -TERM $pid; wait $pid',
    ].map((c) => `(cd ${shQuote(home)} || exit 99; ${c})`));
    for (const c of ['issuer init', 'issuer rotate', 'issuer jwks', 'issuer discovery', 'issuer publish', 'issuer grant-run', 'issuer serve']) note(c);
    expectFailure(s[0]!, 3, /no signing key .*`oz issuer init`/);
    expectSuccess(s[1]!);
    expect(s[1]!.output).toMatch(/^Created signing key: kid \S+ \(RS256\)/);
    expectFailure(s[2]!, 2, /XX256/);
    expectSuccess(s[3]!);
    expect(JSON.parse(s[3]!.output).keys).toHaveLength(1);
    expectSuccess(s[4]!);
    expect(JSON.parse(s[4]!.output).issuer).toBe('http://127.0.0.1:8787');
    expectFailure(s[5]!, 2, /--issuer "ftp:\/\/x"/);
    expectSuccess(s[6]!);
    expect(s[6]!.output).toMatch(/run `oz issuer publish --out DIR` again/);
    expectFailure(s[7]!, 2, /nope/);
    expectSuccess(s[8]!);
    expect(s[8]!.output).toMatch(/\.well-known\/jwks\.json/);
    expectFailure(s[9]!, 2, /--out/);
    expectSuccess(s[10]!);
    expect(s[10]!.output).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expectFailure(s[11]!, 2, /--run-id/);
    expectFailure(s[12]!, 2, /--port "99999"/);
    expectSuccess(s[13]!);
    // Its notes went to the terminal: the start-up line.
    expect(s[13]!.output).toMatch(/oz: issuer http:\/\/127\.0\.0\.1:\d+ serving on/);
  });

  it('the federate commands: the fast path (issue-token, prepare) and the full path', async () => {
    const token = (await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env: scrubbedEnv(home) })).stdout.trim();
    const gcpAudience = '//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/pool/providers/prov';
    const s = await onTerminal(home, [
      'oz federate issue-token --audience sts.amazonaws.com', // 0: fast path
      'oz federate issue-token --audience sts.amazonaws.com --duration 0', // fast path, handler refuses
      'oz federate issue-token --format yaml', // handed to commander
      `oz federate issue-token --format gcp --audience ${gcpAudience}`,
      'oz federate issue-token --format gcp', // no audience: the gcp failure on stdout, no oz: line
      'oz federate prepare --aws-role-arn arn:aws:iam::123456789012:role/agent --dir prep', // 5
      'oz federate prepare --aws-role-arn not-an-arn',
      'oz federate prepare --shell tcsh',
      'oz federate prepare --shell json',
      'oz federate cleanup --dir prep',
      'oz federate cleanup --shell tcsh', // 10
      'oz federate whoami',
      'oz federate whoami --bogus',
      'OZ_RUN_DEADLINE=1000000000 oz federate whoami',
      `oz federate inspect ${token}`,
      'oz federate inspect not-a-token', // 15
      'oz federate inspect', // stdin is the terminal: no token given
      `oz federate inspect ${token} --verify`, // nothing serves the issuer
      `OZ_ISSUER_URL=https://oidc.example.com OZ_SUBJECT=user-42 oz federate explain --azure-credential ${shQuote(join(home, 'azure.json'))}`,
      `OZ_ISSUER_URL=https://oidc.example.com OZ_SUBJECT=user-42 oz federate explain --azure-credential ${shQuote(join(home, 'azure-other.json'))}`,
      'oz federate explain', // 20: no relying party
      `oz federate issue-token --audience sts.amazonaws.com --format json | oz federate inspect`,
    ].map((c) => `(cd ${shQuote(home)} || exit 99; ${c})`));
    for (const c of ['federate issue-token', 'federate prepare', 'federate cleanup', 'federate whoami', 'federate inspect', 'federate explain']) note(c);

    expectSuccess(s[0]!);
    expect(s[0]!.output).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expectFailure(s[1]!, 2, /--duration "0"/);
    expectFailure(s[2]!, 2, /yaml/);
    expectSuccess(s[3]!);
    expect(JSON.parse(s[3]!.output)).toMatchObject({ version: 1, success: true });
    // gcp: nothing but the response, even on a terminal (Google's libraries merge stderr).
    expect(s[4]!.code).toBe(2);
    expect(JSON.parse(s[4]!.output)).toMatchObject({ version: 1, success: false, code: 'usage' });
    expect(s[4]!.output).not.toContain(ESC);

    expectSuccess(s[5]!);
    expect(s[5]!.output).toMatch(/^export AWS_ROLE_ARN='arn:aws:iam::123456789012:role\/agent'$/m);
    expectFailure(s[6]!, 2, /not-an-arn/);
    expectFailure(s[7]!, 2, /tcsh/);
    expect(s[8]!.code).toBe(0);
    expect(s[8]!.output).toMatch(/^oz: nothing to prepare.*\n\{\}$/);
    expectSuccess(s[9]!);
    expect(s[9]!.output).toMatch(/unset -v AWS_ROLE_ARN/);
    expectFailure(s[10]!, 2, /tcsh/);

    expectSuccess(s[11]!);
    expect(s[11]!.output).toContain(`${DIM}local default (set OZ_SUBJECT)`);
    expectFailure(s[12]!, 2, /unknown option '--bogus'.*oz federate whoami --help/);
    // Past its deadline: the context, then one red line and exit 4.
    expect(s[13]!.code).toBe(4);
    expect(s[13]!.output).toMatch(/time left\s+none: the deadline passed/);
    expect(s[13]!.output.split('\n').at(-1)).toMatch(new RegExp(`^${escapeRe(RED_OZ)} the run's deadline \\(OZ_RUN_DEADLINE\\) passed`));
    expectNoTrace(s[13]!);

    expectSuccess(s[14]!);
    expect(s[14]!.output).toContain(`${BOLD}Header`);
    expect(s[14]!.output).toContain('"aud": "sts.amazonaws.com"');
    expectFailure(s[15]!, 2, /not a JWT/);
    expectFailure(s[16]!, 2, /no token given/);
    // --verify shows the decoded token, then fails on one line.
    expect(s[17]!.code).toBe(7);
    expect(s[17]!.output).toContain(`${BOLD}Header`);
    expect(s[17]!.output.split('\n').at(-1)).toMatch(
      new RegExp(`^${escapeRe(RED_OZ)} cannot fetch the issuer's discovery document http://127\\.0\\.0\\.1:8787/.*\`oz issuer serve\` may not be running`),
    );
    expect(s[17]!.output.match(/oz:/g)).toHaveLength(1);
    expectNoTrace(s[17]!);
    expectSuccess(s[18]!);
    expect(s[18]!.output).toContain(GREEN);
    expect(s[19]!.code).toBe(9);
    expect(s[19]!.output.split('\n').at(-1)).toMatch(new RegExp(`^${escapeRe(RED_OZ)} Microsoft Entra ID would refuse this token: subject \\(sub\\) expected user-7, got user-42$`));
    expectNoTrace(s[19]!);
    expectFailure(s[20]!, 2);
    // oz's own --format json piped in: inspect finds the token in it.
    expectSuccess(s[21]!);
    expect(s[21]!.output).toContain('"aud": "sts.amazonaws.com"');
  });

  it('setup aws, gcp and azure, success and failure', async () => {
    const scope = '--issuer https://oidc.example.com --team abc123';
    const s = await onTerminal(home, [
      `oz setup aws ${scope} --account-id 123456789012 --thumbprint 08745487e891c19e3078c1f2a07e452950ef36f6`,
      `oz setup aws ${scope}`,
      `oz setup gcp ${scope} --project-number 123456789012`,
      `oz setup gcp ${scope} --project-number twelve`,
      `oz setup azure --issuer https://oidc.example.com --subject user-42 --client-id 00000000-0000-0000-0000-000000000001`,
      `oz setup azure ${scope}`,
    ]);
    for (const c of ['setup aws', 'setup gcp', 'setup azure']) note(c);
    expectSuccess(s[0]!);
    expect(s[0]!.output).toMatch(/aws iam create-open-id-connect-provider/);
    expectFailure(s[1]!, 2, /--account-id/);
    expectSuccess(s[2]!);
    expect(s[2]!.output).toMatch(/gcloud iam workload-identity-pools/);
    expectFailure(s[3]!, 2, /twelve/);
    expectSuccess(s[4]!);
    expect(s[4]!.output).toMatch(/az ad app federated-credential create/);
    expectFailure(s[5]!, 2, /--client-id/);
  });

  it('doctor, completion, exec and refresh, success and failure', async () => {
    const s = await onTerminal(home, [
      'oz doctor',
      'OZ_RUN_DEADLINE=1000000000 oz doctor', // a run past its deadline fails a check
      'oz completion bash',
      'oz completion tcsh',
      'oz federate exec --aws-role-arn arn:aws:iam::123456789012:role/agent -- sh -c \'test -s "$AWS_WEB_IDENTITY_TOKEN_FILE" && exit 3\'',
      'oz federate exec --aws-role-arn not-an-arn -- true', // 5
      `oz federate refresh --dir ${shQuote(join(home, 'missing-dir'))}`, // no such directory
      'oz federate refresh',
    ].map((c) => `(cd ${shQuote(home)} || exit 99; ${c})`));
    for (const c of ['doctor', 'completion', 'federate exec', 'federate refresh']) note(c);
    expect(s[0]!.code).toBe(0);
    expect(s[0]!.output).toContain(ESC);
    expectNoTrace(s[0]!);
    expect(s[1]!.code).toBe(10);
    expect(s[1]!.output).toMatch(/run_time|deadline/);
    expectNoTrace(s[1]!);
    expectSuccess(s[2]!);
    expect(s[2]!.output).toMatch(/complete .*oz/);
    expectFailure(s[3]!, 2, /tcsh/);
    // exec passes the command's own status through, on a terminal as in a pipe.
    expect(s[4]!.code).toBe(3);
    expectNoTrace(s[4]!);
    expectFailure(s[5]!, 2, /not-an-arn/);
    expectFailure(s[6]!, 3, /cannot read prepare directory/);
    expectFailure(s[7]!, 2, /--dir/);
  });

  it('version, help for every command (with its examples), and unknown commands', async () => {
    const helps = COMMANDS.map((c) => `oz ${c.path.join(' ')} --help`);
    const s = await onTerminal(home, [
      'oz --version',
      'oz -v',
      'oz version',
      'oz help federate issue-token',
      'oz federate help whoami',
      'oz frobnicate', // 5
      'oz federate',
      ...helps,
    ]);
    const version = s[0]!.output;
    expectSuccess(s[0]!);
    expect(version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(s[1]).toMatchObject({ code: 0, output: version });
    expect(s[2]).toMatchObject({ code: 0, output: version });
    expectSuccess(s[3]!);
    expect(s[3]!.output).toMatch(/^Usage: oz federate issue-token \[options\]/);
    expect(s[3]!.output).toContain('--duration <duration>');
    expectSuccess(s[4]!);
    expect(s[4]!.output).toMatch(/^Usage: oz federate whoami \[options\]/);
    expectFailure(s[5]!, 2, /unknown command 'frobnicate'/);
    // A bare group shows its help and is a usage error, with no stack trace.
    expect(s[6]!.code).toBe(2);
    expectNoTrace(s[6]!);
    COMMANDS.forEach((spec, i) => {
      const h = s[7 + i]!;
      expectSuccess(h);
      expect(h.output).toMatch(new RegExp(`^Usage: oz ${spec.path.join(' ')} `));
      for (const example of spec.examples) expect(h.output.replace(/\n/g, ' '), `${spec.path.join(' ')} --help`).toContain(`$ ${example}`);
      for (const o of spec.options) expect(h.output).toContain(o.flag);
    });
  });

  afterAll(() => {
    // Every command declared in the spec ran on a terminal in one of the tests above.
    if (covered.size > 0) expect([...covered].sort()).toEqual(COMMANDS.map((c) => c.path.join(' ')).sort());
  });
});

describe('colour outside a terminal', () => {
  it('FORCE_COLOR=1 in a pipe colours the commander path and its failures, with no stack trace', async () => {
    const home = tempDir('oz-force-');
    const env = scrubbedEnv(home, { FORCE_COLOR: '1' });
    const jwks = await oz(['issuer', 'jwks'], { env });
    expect(jwks).toMatchObject({ code: 3, stdout: '' });
    expect(jwks.stderr).toMatch(new RegExp(`^${escapeRe(RED_OZ)} no signing key`));
    expect(jwks.stderr.trimEnd().split('\n')).toHaveLength(1);
    const whoami = await oz(['federate', 'whoami'], { env });
    expect(whoami).toMatchObject({ code: 0, stderr: '' });
    expect(whoami.stdout).toContain(`${DIM}local default`);
  });

  it('a pipe gets no colour, and NO_COLOR turns it off on a terminal', async () => {
    const home = tempDir('oz-nocolour-');
    const plain = await oz(['issuer', 'jwks'], { env: scrubbedEnv(home) });
    expect(plain.stderr).toMatch(/^oz: no signing key/);
    if (!hasScript) return;
    const [s] = await onTerminal(home, ['oz issuer jwks'], { NO_COLOR: '1' });
    expect(s!.code).toBe(3);
    expect(s!.output).toMatch(/^oz: no signing key/);
    expect(s!.output).not.toContain(ESC);
  });
});

