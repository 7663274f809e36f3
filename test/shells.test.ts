// Sources renderEnv's and unsetEnv's output in the real shells and reads the environment
// back with `env -0`, so that what is proved is what a child process of that shell sees.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OzError } from '../src/core/errors.js';
import { renderEnv, unsetEnv, type ShellKind } from '../src/sandbox/shell.js';

const HOSTILE_VALUES: readonly (readonly [label: string, value: string])[] = [
  ['command substitution', '$(touch CANARY)'],
  ['backquotes', '`touch CANARY`'],
  ['quote break-out', "'; touch CANARY; '"],
  ['double-quoted substitution', '"$(touch CANARY)"'],
  ['single-quoted substitution', "'$(touch CANARY)'"],
  ['fish command substitution', '(touch CANARY)'],
  ['fish dollar substitution', '$(touch CANARY; echo x)'],
  ['semicolon', 'x; touch CANARY'],
  ['and-and', 'x && touch CANARY'],
  ['pipe', 'x | touch CANARY'],
  ['newline then command', 'x\ntouch CANARY\n'],
  ['trailing backslash', 'ends with backslash\\'],
  ['only a backslash', '\\'],
  ['backslash quote', "\\'"],
  ['backslash backslash quote', "\\\\'"],
  ['lone quote', "'"],
  ['three quotes', "'''"],
  ['double quotes', '"a" ""'],
  ['percent', '100% %s %n %%'],
  ['newline in the middle', 'line1\nline2'],
  ['newline at the end', 'trailing newline\n'],
  ['only newlines', '\n\n'],
  ['carriage return', 'a\rb'],
  ['CRLF', 'a\r\nb\r\n'],
  ['tab', 'tab\there'],
  ['non-ASCII', 'é漢字🙂'],
  ['Unicode separators', 'a\u2028b\u2029c\u0085d\u00a0e'],
  ['typographic quotes', '\u2018x\u2019 \u201cy\u201d'],
  ['ANSI escape', '\u001b[31mred\u001b[0m\u0007'],
  ['$HOME', '$HOME'],
  ['${HOME}', '${HOME}'],
  ['fish {$HOME}', '{$HOME}'],
  ['$argv', '$argv $1 $@ $*'],
  ['history !', '!'],
  ['history !!', '!!'],
  ['glob *', '*'],
  ['glob ?', '?'],
  ['glob [a]', '[a]*'],
  ['tilde', '~'],
  ['tilde path', '~/x'],
  ['brace expansion', '{a,b}'],
  ['zsh equals expansion', '=ls'],
  ['zsh caret', '^x'],
  ['comment', '# not a comment'],
  ['hash inside', 'a#b'],
  ['leading and trailing spaces', '  padded  '],
  ['leading dash', '-e'],
  ['double dash', '--'],
  ['equals', 'a=b=c'],
  ['empty', ''],
  ['200 characters', 'x'.repeat(200)],
  ['200 hostile characters', `a'b"c\\d$e\`f\n!g(h)i;j|k&l*m{n}o~p%q\r`.repeat(10).slice(0, 200)],
];

const ENTRIES = HOSTILE_VALUES.map(([, value], i) => [`OZ_T${i}`, value] as const);

interface Shell {
  name: string;
  kind: ShellKind;
  program: string;
  /** Flags that keep the user's start-up files out of the test. */
  flags: readonly string[];
  /** Sources the file named by the first argument, then prints the environment. */
  source: string;
  /** The same through the documented one-liner: eval, or for fish a pipe into source. */
  evaluate: string;
}

const SHELLS: readonly Shell[] = [
  {
    name: 'sh (dash)',
    kind: 'sh',
    program: '/bin/sh',
    flags: [],
    source: '. "$1" && exec env -0',
    evaluate: 'eval "$(cat "$1")" && exec env -0',
  },
  {
    name: 'bash',
    kind: 'bash',
    program: 'bash',
    flags: ['--norc', '--noprofile'],
    source: 'source "$1" && exec env -0',
    evaluate: 'eval "$(cat "$1")" && exec env -0',
  },
  {
    // What /bin/sh is on systems where it is bash.
    name: 'bash --posix',
    kind: 'sh',
    program: 'bash',
    flags: ['--norc', '--noprofile', '--posix'],
    source: '. "$1" && exec env -0',
    evaluate: 'eval "$(cat "$1")" && exec env -0',
  },
  {
    name: 'zsh',
    kind: 'zsh',
    program: 'zsh',
    flags: ['-f'],
    source: 'source "$1" && exec env -0',
    evaluate: 'eval "$(cat "$1")" && exec env -0',
  },
  {
    // An interactive zsh may have RC_QUOTES on, where '' inside single quotes means '.
    name: 'zsh with RC_QUOTES',
    kind: 'zsh',
    program: 'zsh',
    flags: ['-f', '-o', 'rcquotes'],
    source: 'source "$1" && exec env -0',
    evaluate: 'eval "$(cat "$1")" && exec env -0',
  },
  {
    name: 'fish',
    kind: 'fish',
    program: 'fish',
    flags: ['--no-config'],
    source: 'source $argv[1]; and exec env -0',
    evaluate: 'cat $argv[1] | source; and exec env -0',
  },
];

function installed(program: string): boolean {
  return spawnSync(program, ['-c', 'exit 0'], { stdio: 'ignore' }).status === 0;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'oz-shells-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface RunOptions {
  env?: Record<string, string>;
  locale?: string;
}

/**
 * Runs `command` in the shell, with the file holding `script` as its first argument, in an
 * empty directory and a scrubbed environment; returns what `env -0` printed.
 */
function run(shell: Shell, command: string, script: string, options: RunOptions = {}): Map<string, Buffer> {
  const root = mkdtempSync(join(dir, 'run-'));
  const cwd = join(root, 'cwd');
  const home = join(root, 'home');
  mkdirSync(cwd);
  mkdirSync(home);
  const file = join(root, 'vars');
  writeFileSync(file, script);
  // sh-like shells take the word after the command as $0; fish puts every word in $argv.
  const args = [...shell.flags, '-c', command, ...(shell.kind === 'fish' ? [] : [shell.kind]), file];
  const result = spawnSync(shell.program, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LC_ALL: options.locale ?? 'C.UTF-8', ...options.env },
    timeout: 20_000,
  });
  expect(result.error).toBeUndefined();
  expect(result.stderr.toString()).toBe('');
  expect(result.status).toBe(0);
  // Every hostile value tries to create CANARY in the working directory: nothing may appear.
  expect(readdirSync(cwd)).toEqual([]);
  expect(existsSync(join(home, 'CANARY'))).toBe(false);

  const env = new Map<string, Buffer>();
  const out = result.stdout;
  let start = 0;
  while (start < out.length) {
    let end = out.indexOf(0, start);
    if (end === -1) end = out.length;
    const entry = out.subarray(start, end);
    const eq = entry.indexOf(0x3d);
    env.set(entry.subarray(0, eq).toString('utf8'), Buffer.from(entry.subarray(eq + 1)));
    start = end + 1;
  }
  return env;
}

describe.each(SHELLS)('$name', (shell) => {
  const available = installed(shell.program);

  it.skipIf(!available).each([
    ['sourced', 'source', 'C.UTF-8'],
    ['evaluated', 'evaluate', 'C.UTF-8'],
    ['sourced in the C locale', 'source', 'C'],
  ] as const)('%s: every value is exported byte for byte and nothing runs', (_how, mode, locale) => {
    const env = run(shell, shell[mode], renderEnv(ENTRIES, shell.kind), { locale });
    ENTRIES.forEach(([name, value], i) => {
      const got = env.get(name);
      const label = HOSTILE_VALUES[i]?.[0];
      expect(got, `${name} (${label}) is missing`).toBeDefined();
      expect(got?.equals(Buffer.from(value, 'utf8')), `${name} (${label}): got ${JSON.stringify(got?.toString())}`).toBe(
        true,
      );
    });
  });

  it.skipIf(!available).each(HOSTILE_VALUES)('%s alone round-trips', (_label, value) => {
    const env = run(shell, shell.source, renderEnv([['OZ_ONE', value]], shell.kind));
    expect(env.get('OZ_ONE')?.equals(Buffer.from(value, 'utf8'))).toBe(true);
  });

  it.skipIf(!available)('unsetEnv removes set variables and is quiet about unset ones', () => {
    const script = unsetEnv(['OZ_SET_A', 'OZ_SET_B', 'OZ_NEVER_SET'], shell.kind);
    const env = run(shell, shell.source, script, { env: { OZ_SET_A: 'a', OZ_SET_B: '', OZ_KEEP: 'k' } });
    expect(env.has('OZ_SET_A')).toBe(false);
    expect(env.has('OZ_SET_B')).toBe(false);
    expect(env.has('OZ_NEVER_SET')).toBe(false);
    expect(env.get('OZ_KEEP')?.toString()).toBe('k');
  });

  it.skipIf(!available)('a later unsetEnv undoes an earlier renderEnv', () => {
    const names = ENTRIES.map(([name]) => name);
    const env = run(shell, shell.source, renderEnv(ENTRIES, shell.kind) + unsetEnv(names, shell.kind));
    for (const name of names) expect(env.has(name)).toBe(false);
  });

  it.skipIf(!available || shell.kind === 'fish')('unsetEnv leaves a function of the same name alone', () => {
    const env = run(shell, `OZ_FN() { echo ran; }; . "$1"; exec env -0 OZ_FN_RESULT="$(OZ_FN)"`, unsetEnv(['OZ_FN'], shell.kind));
    expect(env.get('OZ_FN_RESULT')?.toString()).toBe('ran');
  });
});

describe('json', () => {
  it('JSON.parse gives back every value', () => {
    expect(JSON.parse(renderEnv(ENTRIES, 'json'))).toEqual(Object.fromEntries(ENTRIES));
  });

  it('unset is null for each name', () => {
    expect(JSON.parse(unsetEnv(['A', 'B'], 'json'))).toEqual({ A: null, B: null });
  });
});

describe('dotenv', () => {
  // Values no dotenv quoting carries unchanged through both readers; renderEnv refuses them.
  const REFUSED = new Set(['${HOME}', '200 hostile characters']);
  // renderEnv refuses the whole set if any value is refused, so each value gets its own file.
  const writable = HOSTILE_VALUES.filter(([label]) => !REFUSED.has(label));

  it.each(HOSTILE_VALUES)('%s: written, or refused as bad input', (label, value) => {
    if (REFUSED.has(label)) {
      expect(() => renderEnv([['A', value]], 'dotenv')).toThrow(OzError);
    } else {
      expect(renderEnv([['A', value]], 'dotenv')).toMatch(/^A=/);
    }
  });

  const python = spawnSync('python3', ['-c', 'import dotenv'], { stdio: 'ignore' }).status === 0;
  // python-dotenv is not a dependency of this project; the check runs where it is installed.
  it.skipIf(!python)('python-dotenv reads back every value it was given', () => {
    const file = join(dir, 'python.env');
    writeFileSync(file, writable.map(([label, value]) => renderEnv([[envName(label), value]], 'dotenv')).join(''));
    const result = spawnSync(
      'python3',
      ['-c', 'import dotenv, json, sys; print(json.dumps(dotenv.dotenv_values(sys.argv[1], encoding="utf-8")))', file],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir } },
    );
    expect(result.stderr.toString()).toBe('');
    const parsed = JSON.parse(result.stdout.toString()) as Record<string, string>;
    expect(parsed).toEqual(Object.fromEntries(writable.map(([label, value]) => [envName(label), value])));
  });

  // The dotenv npm package is not in this project's dependencies; the check runs once it is.
  const require = createRequire(import.meta.url);
  const npmDotenv = (() => {
    try {
      return require('dotenv') as { parse(src: string): Record<string, string> };
    } catch {
      return undefined;
    }
  })();
  it.skipIf(npmDotenv === undefined)('the dotenv npm package reads back every value it was given', () => {
    const text = writable.map(([label, value]) => renderEnv([[envName(label), value]], 'dotenv')).join('');
    expect(npmDotenv?.parse(text)).toEqual(Object.fromEntries(writable.map(([label, value]) => [envName(label), value])));
  });
});

function envName(label: string): string {
  return `OZ_${label.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase()}_${HOSTILE_VALUES.findIndex(([l]) => l === label)}`;
}
