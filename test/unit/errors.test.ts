import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_CODES, EXIT_CODE_DESCRIPTIONS, INTERNAL_EXIT_CODE, OzError, oneLine } from '../../src/core/errors.js';

describe('the exit code table', () => {
  const readme = readFileSync(join(__dirname, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Exit codes'));
  const rows = [...section.matchAll(/^\| (\d+) \| ?(\w*) ?\| (.+) \|$/gm)].map((m) => ({ exit: Number(m[1]), code: m[2], meaning: m[3] }));

  it('the README prints every code with its exit status and meaning, and nothing else', () => {
    const expected = [
      { exit: 0, code: '', meaning: 'success' },
      { exit: INTERNAL_EXIT_CODE, code: 'internal', meaning: 'a bug in oz' },
      ...Object.entries(EXIT_CODES).map(([code, exit]) => ({ exit, code, meaning: EXIT_CODE_DESCRIPTIONS[code as keyof typeof EXIT_CODES] })),
    ].sort((a, b) => a.exit - b.exit);
    expect(rows).toEqual(expected);
  });

  it('exit statuses are distinct, and usage errors exit 2', () => {
    const all = [0, INTERNAL_EXIT_CODE, ...Object.values(EXIT_CODES)];
    expect(new Set(all).size).toBe(all.length);
    expect(new OzError('usage', 'x').exitCode).toBe(2);
  });

  it('messages are kept to one line', () => {
    expect(oneLine('a\nb\r\n\tc\u001b[0m')).toBe('a b c [0m');
  });
});
