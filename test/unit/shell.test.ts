import { describe, expect, it } from 'vitest';
import { thrown } from '../helpers/thrown.js';
import { OzError } from '../../src/core/errors.js';
import { SHELL_KINDS, renderEnv, unsetEnv, type ShellKind } from '../../src/sandbox/shell.js';
import { quote } from '../../src/core/errors.js';


describe('SHELL_KINDS', () => {
  it('lists every format --shell accepts', () => {
    expect([...SHELL_KINDS].sort()).toEqual(['bash', 'dotenv', 'fish', 'json', 'powershell', 'sh', 'zsh']);
  });
});

describe('renderEnv', () => {
  const vars = [
    ['AWS_ROLE_ARN', 'arn:aws:iam::123456789012:role/oz'],
    ['AWS_ROLE_SESSION_NAME', 'Oz_Run_1'],
  ] as const;

  it.each<[ShellKind, string]>([
    ['sh', "export AWS_ROLE_ARN='arn:aws:iam::123456789012:role/oz'\nexport AWS_ROLE_SESSION_NAME='Oz_Run_1'\n"],
    ['bash', "export AWS_ROLE_ARN='arn:aws:iam::123456789012:role/oz'\nexport AWS_ROLE_SESSION_NAME='Oz_Run_1'\n"],
    ['zsh', "export AWS_ROLE_ARN='arn:aws:iam::123456789012:role/oz'\nexport AWS_ROLE_SESSION_NAME='Oz_Run_1'\n"],
    ['fish', "set -gx AWS_ROLE_ARN 'arn:aws:iam::123456789012:role/oz'\nset -gx AWS_ROLE_SESSION_NAME 'Oz_Run_1'\n"],
    [
      'powershell',
      "$env:AWS_ROLE_ARN = 'arn:aws:iam::123456789012:role/oz'\n$env:AWS_ROLE_SESSION_NAME = 'Oz_Run_1'\n",
    ],
    ['dotenv', 'AWS_ROLE_ARN=arn:aws:iam::123456789012:role/oz\nAWS_ROLE_SESSION_NAME=Oz_Run_1\n'],
    ['json', '{"AWS_ROLE_ARN":"arn:aws:iam::123456789012:role/oz","AWS_ROLE_SESSION_NAME":"Oz_Run_1"}\n'],
  ])('%s', (shell, expected) => {
    expect(renderEnv(vars, shell)).toBe(expected);
  });

  it.each<[ShellKind, string, string]>([
    ['sh', "it's", "export A='it'\\''s'\n"],
    ['sh', "''", "export A=''\\'''\\'''\n"],
    ['sh', '$(x) `y` \\ "z"', "export A='$(x) `y` \\ \"z\"'\n"],
    ['sh', 'a\nb', "export A='a\nb'\n"],
    ['sh', '', "export A=''\n"],
    ['fish', "it's", "set -gx A 'it\\'s'\n"],
    ['fish', 'a\\b', "set -gx A 'a\\\\b'\n"],
    ['fish', '\\', "set -gx A '\\\\'\n"],
    ['fish', "\\'", "set -gx A '\\\\\\''\n"],
    ['fish', '$HOME (echo x) "q"', "set -gx A '$HOME (echo x) \"q\"'\n"],
    ['fish', 'a\nb', "set -gx A 'a\nb'\n"],
    ['powershell', "it's", "$env:A = 'it''s'\n"],
    ['powershell', '\u2018a\u2019\u201a\u201b', "$env:A = '\u2018\u2018a\u2019\u2019\u201a\u201a\u201b\u201b'\n"],
    ['powershell', '$env:HOME `n "x" \\', "$env:A = '$env:HOME `n \"x\" \\'\n"],
    ['json', 'a"b\\c\nd\u0001', '{"A":"a\\"b\\\\c\\nd\\u0001"}\n'],
  ])('%s quotes %j', (shell, value, expected) => {
    expect(renderEnv([['A', value]], shell)).toBe(expected);
  });

  it.each<[string, string]>([
    ['', 'A=\n'],
    ['arn:aws:iam::123456789012:role/a+b=c,d.e@f-g_h', 'A=arn:aws:iam::123456789012:role/a+b=c,d.e@f-g_h\n'],
    ['/run/user/0/oz/gcp.json', 'A=/run/user/0/oz/gcp.json\n'],
    ['100%', 'A=100%\n'],
    ['two words', "A='two words'\n"],
    [' padded ', "A=' padded '\n"],
    ['a#b', "A='a#b'\n"],
    ['$HOME', "A='$HOME'\n"],
    ['say "hi"', "A='say \"hi\"'\n"],
    ['line1\nline2\n', "A='line1\nline2\n'\n"],
    ['C:\\Users\\oz', "A='C:\\Users\\oz'\n"],
    ["it's", 'A="it\'s"\n'],
    ['a\rb\nc', 'A="a\\rb\\nc"\n'],
    ["'quoted'\n", 'A="\'quoted\'\\n"\n'],
    ['ends\\', 'A=ends\\\n'],
    ['a\\\\b', 'A=a\\\\b\n'],
    ['a\u0085\\\\b', 'A=a\u0085\\\\b\n'],
    ["\\'", "A=\\'\n"],
    ['é漢字🙂', "A='é漢字🙂'\n"],
  ])('dotenv writes %j as %j', (value, expected) => {
    expect(renderEnv([['A', value]], 'dotenv')).toBe(expected);
  });

  it.each<[string, string]>([
    ['${HOME}', 'python-dotenv would expand the ${…} in it'],
    ['$' + '{', 'python-dotenv would expand'],
    ['a\'b"c\nd', 'no dotenv quoting keeps its mix'],
    ['a\\b\r', 'no dotenv quoting keeps its mix'],
    [' x\\\\y', 'no dotenv quoting keeps its mix'],
    ['"x\\', 'no dotenv quoting keeps its mix'],
    // Whitespace to Python (python-dotenv strips it from an unquoted value), not to JavaScript.
    ['\u0085\\', 'no dotenv quoting keeps its mix'],
    ['x\\\\\u001f', 'no dotenv quoting keeps its mix'],
    ['\u001c\\\\x', 'no dotenv quoting keeps its mix'],
  ])('dotenv refuses %j', (value, why) => {
    const e = thrown(() => renderEnv([['A', value]], 'dotenv'));
    expect(e).toBeInstanceOf(OzError);
    expect((e as OzError).code).toBe('usage');
    expect((e as OzError).message).toContain('the value of A cannot be written to a dotenv file');
    expect((e as OzError).message).toContain(why);
    expect((e as OzError).message).toContain('use --shell json');
  });

  it.each(SHELL_KINDS)('%s: every line ends with a newline and nothing else is printed', (shell) => {
    const out = renderEnv(vars, shell);
    expect(out.endsWith('\n')).toBe(true);
    expect(out.split('\n').filter((line) => line === '')).toHaveLength(1);
  });

  it.each(SHELL_KINDS)('%s: no variables, nothing to evaluate', (shell) => {
    expect(renderEnv([], shell)).toBe(shell === 'json' ? '{}\n' : '');
  });

  it('json keeps a name that is also an Object.prototype member', () => {
    expect(JSON.parse(renderEnv([['__proto__', 'x']], 'json'))).toHaveProperty('__proto__', 'x');
  });

  it.each(['', '1A', 'A-B', 'A B', 'A=B', 'Ä', 'A\n', '$A', 'A;B'])('refuses the name %j with a TypeError', (name) => {
    for (const shell of SHELL_KINDS) {
      expect(() => renderEnv([[name, 'v']], shell)).toThrow(TypeError);
      expect(() => renderEnv([[name, 'v']], shell)).toThrow(/must match \^\[A-Za-z_\]/);
    }
  });

  it('refuses a name given twice with a TypeError', () => {
    expect(() =>
      renderEnv(
        [
          ['A', '1'],
          ['A', '2'],
        ],
        'sh',
      ),
    ).toThrow(new TypeError('environment variable A is given more than once'));
  });

  it.each(SHELL_KINDS.map((shell) => [shell] as const))('%s: refuses a NUL byte as bad input', (shell) => {
    const e = thrown(() => renderEnv([['OZ_X', 'a\0b']], shell));
    expect(e).toBeInstanceOf(OzError);
    expect((e as OzError).code).toBe('usage');
    expect((e as OzError).message).toBe(
      'the value of OZ_X contains a NUL byte, which no environment variable can hold: remove it from "a\\u0000b"',
    );
  });

  it.each(['\ud800', 'a\udc00b', '🙂'.slice(0, 1)])('refuses the unpaired surrogate in %j', (value) => {
    const e = thrown(() => renderEnv([['OZ_X', value]], 'sh'));
    expect(e).toBeInstanceOf(OzError);
    expect((e as OzError).code).toBe('usage');
    expect((e as OzError).message).toContain('the value of OZ_X is not valid Unicode');
  });
});

describe('unsetEnv', () => {
  it.each<[ShellKind, string]>([
    ['sh', 'unset -v A\nunset -v B_2\n'],
    ['bash', 'unset -v A\nunset -v B_2\n'],
    ['zsh', 'unset -v A\nunset -v B_2\n'],
    ['fish', 'if set -q A; set -e A; end\nif set -q B_2; set -e B_2; end\n'],
    [
      'powershell',
      'Remove-Item Env:A -ErrorAction SilentlyContinue\nRemove-Item Env:B_2 -ErrorAction SilentlyContinue\n',
    ],
    ['dotenv', ''],
    ['json', '{"A":null,"B_2":null}\n'],
  ])('%s', (shell, expected) => {
    expect(unsetEnv(['A', 'B_2'], shell)).toBe(expected);
  });

  it.each(['', '9', 'A B', 'A;rm -rf /', 'A\nB'])('refuses the name %j with a TypeError', (name) => {
    for (const shell of SHELL_KINDS) expect(() => unsetEnv([name], shell)).toThrow(TypeError);
  });
});

describe('quote', () => {
  it.each<[string, string]>([
    ['plain', '"plain"'],
    ['say "hi"\\', '"say \\"hi\\"\\\\"'],
    ['a\nb\r\tc\u001b[31m', '"a\\nb\\r\\tc\\u001b[31m"'],
    ['\u007f\u0085\u200b\u202e\u2066\ufeff', '"\\u007f\\u0085\\u200b\\u202e\\u2066\\ufeff"'],
    ['é漢字🙂', '"é漢字🙂"'],
    ['\ud800', '"\\ud800"'],
  ])('%j → %s', (value, expected) => {
    expect(quote(value)).toBe(expected);
  });

  it.each<[string, number, string]>([
    ['x'.repeat(80), 80, `"${'x'.repeat(80)}"`],
    ['x'.repeat(81), 80, `"${'x'.repeat(80)}…"`],
    ['x'.repeat(100_000), 80, `"${'x'.repeat(80)}…"`],
    ['🙂'.repeat(100), 10, `"${'🙂'.repeat(10)}…"`],
    ['abcdef', 3, '"abc…"'],
  ])('cuts a %#: long value', (value, max, expected) => {
    expect(quote(value, max)).toBe(expected);
  });
});

describe('dotenv values with inner spaces', () => {
  it.each<[string, string]>([
    ['a  b\tc', "A='a  b\tc'\n"],
    ["it's C:\\My Files\\x", "A=it's C:\\My Files\\x\n"],
    ["\\\\srv\\share name's", "A=\\\\srv\\share name's\n"],
  ])('%j → %j', (value, line) => {
    expect(renderEnv([['A', value]], 'dotenv')).toBe(line);
  });

  it.each(["it's a\\b ", "it's a\\b\t", " it's a\\b", "it's a\\b #c", "'it' a\\b"])('refuses %j, which no form carries', (value) => {
    const e = thrown(() => renderEnv([['A', value]], 'dotenv'));
    expect(e).toBeInstanceOf(OzError);
    expect((e as OzError).message).toContain('no dotenv quoting keeps its mix of quotes, backslashes and line breaks');
  });
});

describe('programming errors are TypeErrors', () => {
  const vars = [['A', 'x']] as const;
  const ONE_OF = 'expected one of sh, bash, zsh, fish, powershell, dotenv, json';
  it.each<[string, () => unknown]>([
    [`unknown shell "tcsh": ${ONE_OF}`, () => renderEnv(vars, 'tcsh' as ShellKind)],
    [`unknown shell "cmd": ${ONE_OF}`, () => unsetEnv(['A'], 'cmd' as ShellKind)],
    ['environment variable name 5 must match ^[A-Za-z_][A-Za-z0-9_]*$', () => renderEnv([[5 as unknown as string, 'x']], 'sh')],
    // Not a string, though its text would pass for a name.
    ['environment variable name null must match ^[A-Za-z_][A-Za-z0-9_]*$', () => unsetEnv([null as unknown as string], 'sh')],
    ['environment variable name "1A" must match ^[A-Za-z_][A-Za-z0-9_]*$', () => unsetEnv(['1A'], 'sh')],
    ['environment variable A is given more than once', () => unsetEnv(['A', 'A'], 'fish')],
    ['the value of A must be a string, not number', () => renderEnv([['A', 5 as unknown as string]], 'json')],
  ])('%s', (message, f) => {
    expect(f).toThrow(new TypeError(message));
  });
});
