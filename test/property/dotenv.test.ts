// renderEnv's dotenv lines, read back by both readers the format is written for: the dotenv
// npm package and python-dotenv (Debian's python3-dotenv, which .ci/run installs). Every value
// renderEnv writes must come back unchanged from both; python runs once per batch.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import dotenv from 'dotenv';
import { OzError } from '../../src/core/errors.js';
import { renderEnv } from '../../src/sandbox/shell.js';
import { envValue } from './arbitraries.js';

const PYTHON = '/usr/bin/python3';
const python = spawnSync(PYTHON, ['-c', 'import dotenv'], { stdio: 'ignore' }).status === 0;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'oz-dotenv-property-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The values renderEnv can write as dotenv, each on its own line; the others it refuses. */
function writable(values: string[]): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [];
  values.forEach((value, i) => {
    try {
      renderEnv([['X', value]], 'dotenv');
      out.push([`OZ_P${i}`, value]);
    } catch (e) {
      // Refusing is allowed, but only as bad input and only for a value that needs it.
      expect(e).toBeInstanceOf(OzError);
      expect(value).toMatch(/['"\\\r\n#]|\$\{|^\s|\s$/);
    }
  });
  return out;
}

function pythonDotenv(text: string): Record<string, string> {
  const file = join(dir, 'batch.env');
  writeFileSync(file, text);
  const result = spawnSync(PYTHON, ['-c', 'import dotenv, json, sys; print(json.dumps(dotenv.dotenv_values(sys.argv[1], encoding="utf-8")))', file], {
    env: { PATH: '/usr/bin:/bin', HOME: dir },
  });
  expect(result.stderr.toString()).toBe('');
  return JSON.parse(result.stdout.toString()) as Record<string, string>;
}

// Values near the edges between the four forms: the characters each form stops at, among
// the ones that are safe unquoted.
const nearEdges = fc
  .array(fc.constantFrom('a', 'Z', '0', '_', '.', '/', ':', '@', '%', '+', ',', '=', '-', ' ', '\t', '#', "'", '"', '`', '\\', '\n', '\r', '$', '{', '}'), { maxLength: 12 })
  .map((chars) => chars.join(''));
const values = fc.array(fc.oneof(envValue, nearEdges, fc.string({ unit: 'grapheme', maxLength: 20 })), { minLength: 1, maxLength: 100 });

describe('dotenv (property)', () => {
  it('the dotenv npm package reads back every value renderEnv writes', () => {
    fc.assert(
      fc.property(values, (batch) => {
        const vars = writable(batch);
        expect(dotenv.parse(renderEnv(vars, 'dotenv'))).toEqual(Object.fromEntries(vars));
      }),
      { numRuns: 300 },
    );
  });

  it.skipIf(!python)('python-dotenv reads back every value renderEnv writes', () => {
    fc.assert(
      fc.property(values, (batch) => {
        const vars = writable(batch);
        expect(pythonDotenv(renderEnv(vars, 'dotenv'))).toEqual(Object.fromEntries(vars));
      }),
      { numRuns: 10 },
    );
  });

  it('writes most values: refusals are the exception', () => {
    const sample = fc.sample(fc.string({ unit: 'grapheme', maxLength: 20 }), { numRuns: 500, seed: 17 });
    expect(writable(sample).length).toBeGreaterThan(450);
  });
});
