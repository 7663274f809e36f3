// Random values, control and non-ASCII characters included, through renderEnv and the real
// shells: what a child of the shell sees must be the value, byte for byte. Each shell runs once
// per batch of values, not once per value.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { renderEnv, type ShellKind } from '../../src/sandbox/shell.js';
import { envValue } from './arbitraries.js';

interface Shell {
  name: string;
  kind: ShellKind;
  program: string;
  args(file: string): string[];
}

const SHELLS: readonly Shell[] = [
  { name: 'dash', kind: 'sh', program: 'dash', args: (f) => ['-c', '. "$1" && exec env -0', 'sh', f] },
  { name: 'bash', kind: 'bash', program: 'bash', args: (f) => ['--norc', '--noprofile', '-c', 'source "$1" && exec env -0', 'bash', f] },
  { name: 'zsh', kind: 'zsh', program: 'zsh', args: (f) => ['-f', '-c', 'source "$1" && exec env -0', 'zsh', f] },
  { name: 'fish', kind: 'fish', program: 'fish', args: (f) => ['--no-config', '-c', 'source $argv[1]; and exec env -0', f] },
];

const installed = (program: string) => spawnSync(program, ['-c', 'exit 0'], { stdio: 'ignore' }).status === 0;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'oz-shell-property-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Sources `script` in the shell and returns the environment its child sees, as bytes. */
function environmentAfter(shell: Shell, script: string): Map<string, Buffer> {
  const file = join(dir, `${shell.name}.vars`);
  writeFileSync(file, script);
  const result = spawnSync(shell.program, shell.args(file), {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, LC_ALL: 'C.UTF-8' },
    timeout: 20_000,
  });
  expect(result.error).toBeUndefined();
  expect(result.stderr.toString()).toBe('');
  expect(result.status).toBe(0);
  const env = new Map<string, Buffer>();
  for (let start = 0; start < result.stdout.length; ) {
    let end = result.stdout.indexOf(0, start);
    if (end === -1) end = result.stdout.length;
    const entry = result.stdout.subarray(start, end);
    const eq = entry.indexOf(0x3d);
    env.set(entry.subarray(0, eq).toString('utf8'), Buffer.from(entry.subarray(eq + 1)));
    start = end + 1;
  }
  return env;
}

describe.each(SHELLS)('$name (property)', (shell) => {
  it.skipIf(!installed(shell.program))('exports random values byte for byte', () => {
    fc.assert(
      fc.property(fc.array(envValue, { minLength: 1, maxLength: 40 }), (values) => {
        const vars = values.map((v, i) => [`OZ_P${i}`, v] as const);
        const env = environmentAfter(shell, renderEnv(vars, shell.kind));
        for (const [name, value] of vars) {
          expect(env.get(name)?.toString('hex'), `${name} = ${JSON.stringify(value)}`).toBe(Buffer.from(value, 'utf8').toString('hex'));
        }
      }),
      { numRuns: 15 },
    );
  });
});

describe('values no environment can hold (property)', () => {
  // Any UTF-16 string, lone surrogates and NUL included: refused exactly when it has a NUL or
  // an unpaired surrogate (String.prototype.isWellFormed, in Node 20's V8), whatever the shell.
  it('refuses a value exactly when it has a NUL byte or an unpaired surrogate', () => {
    const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();
    // Code units, not code points: surrogate halves alone, in pairs and in the wrong order.
    const unit = fc.oneof(fc.integer({ min: 0xd800, max: 0xdfff }), fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0, 0x41));
    const utf16 = fc.oneof(
      fc.array(unit, { maxLength: 12 }).map((units) => String.fromCharCode(...units)),
      fc.array(fc.constantFrom('a', '\u{1F642}', '\ud83d', '\ude42', '\0'), { maxLength: 6 }).map((parts) => parts.join('')),
    );
    fc.assert(
      fc.property(utf16, fc.constantFrom<ShellKind>('sh', 'fish', 'dotenv'), (value, kind) => {
        const holdable = !value.includes('\0') && wellFormed(value);
        let refused = false;
        try {
          renderEnv([['OZ_P', value]], kind);
        } catch {
          refused = true;
        }
        expect(refused, JSON.stringify(value)).toBe(!holdable);
      }),
      { numRuns: 2000 },
    );
  });
});
