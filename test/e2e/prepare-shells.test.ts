import { describe, expect, it, beforeAll } from 'vitest';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { OZ_BIN, oz, run, scrubbedEnv, tempDir } from '../helpers/oz.js';
import { parseEnv0, SOURCING_SHELLS } from '../helpers/shells.js';

const ROLE = 'arn:aws:iam::123456789012:role/oz-agent';
const GCP_FLAGS = ['--gcp-project-number', '123456789012', '--gcp-pool-id', 'oz-pool', '--gcp-provider-id', 'oz-provider', '--gcp-project-id', 'my-project'];

/** Values built to break out of any quoting: each would create CANARY if it were executed. */
const HOSTILE = [
  `it's "quoted" $(touch CANARY) \`touch CANARY\` \\ \\' back\\slash`,
  `line one\nline two; touch CANARY\n`,
  `'; touch CANARY; echo '`,
  `é漢字🙂 $HOME !! \${PATH} * ~ {a,b} %s`,
  'x'.repeat(200),
];

let home: string;
beforeAll(() => {
  home = tempDir('oz-shells-');
});

describe.each(HOSTILE.map((v, i) => [i, v] as const))('hostile run ID and directory #%i', (i, value) => {
  it.each(SOURCING_SHELLS)('%s sources prepare output: nothing executes and every value round-trips', async (shell, bin, script) => {
    const work = join(home, `${shell}-${i}`);
    mkdirSync(work);
    const dir = join(work, value.slice(0, 200));
    // A run ID is a claim, and claims hold no control characters (that is refused, exit 3):
    // the run ID gets the value with those replaced, the directory the value itself.
    const runId = value.replace(/[\u0000-\u001f]/g, '_');
    const env = scrubbedEnv(home, { OZ_RUN_ID: runId, OZ_PREPARE_DIR: dir, OZ_DATA_DIR: join(home, 'oz-data') });
    // The reference: the same values as JSON, which involves no shell at all.
    const reference = await oz(['federate', 'prepare', '--aws-role-arn', ROLE, ...GCP_FLAGS, '--shell', 'json'], { env, cwd: work });
    expect(reference.code).toBe(0);
    const expected = JSON.parse(reference.stdout) as Record<string, string>;
    expect(expected.AWS_WEB_IDENTITY_TOKEN_FILE).toBe(join(dir, 'aws-web-identity-token'));

    const cmd = `'${OZ_BIN}' federate prepare --aws-role-arn ${ROLE} ${GCP_FLAGS.join(' ')} --shell ${shell === 'sh' ? 'sh' : shell}`;
    const r = await run(bin, ['-c', script(cmd)], { env, cwd: work });
    expect(r.code).toBe(0);
    const got = parseEnv0(r.stdout);
    for (const [k, v] of Object.entries(expected)) expect(got[k], k).toBe(v);
    expect(existsSync(join(work, 'CANARY'))).toBe(false);
    expect(readdirSync(work)).toEqual([value.slice(0, 200)].filter((n) => !n.includes('/')));
  });
});
