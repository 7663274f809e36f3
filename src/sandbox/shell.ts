import { OzError, quote } from '../core/errors.js';

/**
 * The formats `oz federate prepare --shell` can print. The shell kinds are meant to be run as
 * `eval "$(oz federate prepare)"` (sh, bash, zsh), `oz federate prepare --shell fish | source`
 * and `oz federate prepare --shell powershell | Out-String | Invoke-Expression` (without
 * Out-String each line runs on its own, which splits a value that holds a newline); dotenv
 * and json are for tools that read variables from a file or from data.
 */
export type ShellKind = 'sh' | 'bash' | 'zsh' | 'fish' | 'powershell' | 'dotenv' | 'json';

export const SHELL_KINDS: readonly ShellKind[] = Object.freeze([
  'sh',
  'bash',
  'zsh',
  'fish',
  'powershell',
  'dotenv',
  'json',
]);

export type EnvAssignment = readonly [name: string, value: string];

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Assignments that, once evaluated by `shell`, set and export exactly these values. Every
 * value is quoted so that nothing in it (`$(...)`, backquotes, quotes, newlines) can run
 * or end the statement early.
 *
 * - sh, bash, zsh: `export NAME='value'`, a `'` written as `'\''`. Single quotes are the one
 *   quoting that all three shells read literally, newlines included, and this never puts
 *   two quotes side by side inside a quoted run, so zsh's RC_QUOTES option changes nothing.
 * - fish: `set -gx NAME 'value'`, with `\` and `'` escaped as `\\` and `\'` (the only escapes
 *   fish knows inside single quotes). Read it with `| source`: `eval (…)` would split the
 *   output at newlines and join it again with spaces.
 * - powershell: `$env:NAME = 'value'`, every single-quote character doubled; PowerShell also
 *   ends a single-quoted string at the typographic quotes U+2018–U+201B, so those are doubled
 *   too.
 * - dotenv: see {@link dotenvLine}.
 * - json: one object `{"NAME":"value",…}` on one line.
 *
 * A wrong name or a repeated name is the caller's mistake (TypeError). A value that no
 * environment can hold (a NUL byte, unpaired UTF-16 surrogates) or that the dotenv format
 * cannot carry faithfully is bad input (OzError `usage`).
 */
export function renderEnv(vars: ReadonlyArray<EnvAssignment>, shell: ShellKind): string {
  checkNames(vars.map(([name]) => name));
  for (const [name, value] of vars) checkValue(name, value);

  switch (shell) {
    case 'sh':
    case 'bash':
    case 'zsh':
      return vars.map(([name, value]) => `export ${name}=${posixQuote(value)}\n`).join('');
    case 'fish':
      return vars.map(([name, value]) => `set -gx ${name} ${fishQuote(value)}\n`).join('');
    case 'powershell':
      return vars.map(([name, value]) => `$env:${name} = ${powershellQuote(value)}\n`).join('');
    case 'dotenv':
      return vars.map(([name, value]) => dotenvLine(name, value)).join('');
    case 'json':
      return `{${vars.map(([name, value]) => `${JSON.stringify(name)}:${JSON.stringify(value)}`).join(',')}}\n`;
    default:
      return unknownShell(shell);
  }
}

/**
 * Lines that remove these variables from the environment.
 *
 * - sh, bash, zsh: `unset -v NAME`. Without `-v`, bash unsets a function of that name when
 *   no such variable exists.
 * - fish: `if set -q NAME; set -e NAME; end`. A bare `set -e` of a variable that is not set
 *   exits 4, and that status would be the status of `… | source` and fail a following `and`.
 * - powershell: `Remove-Item Env:NAME -ErrorAction SilentlyContinue`, quiet when it is not set.
 * - dotenv: nothing. An env file can only assign, and `NAME=` would set an empty value rather
 *   than remove it; leaving the name out is the closest a file can come.
 * - json: the same object shape as {@link renderEnv} with `null` for each name, e.g.
 *   `{"AWS_ROLE_ARN":null}`: null cannot be confused with an empty string, and a reader that
 *   merges the object into an environment can delete the null entries.
 */
export function unsetEnv(names: ReadonlyArray<string>, shell: ShellKind): string {
  checkNames(names);
  switch (shell) {
    case 'sh':
    case 'bash':
    case 'zsh':
      return names.map((name) => `unset -v ${name}\n`).join('');
    case 'fish':
      return names.map((name) => `if set -q ${name}; set -e ${name}; end\n`).join('');
    case 'powershell':
      return names.map((name) => `Remove-Item Env:${name} -ErrorAction SilentlyContinue\n`).join('');
    case 'dotenv':
      return '';
    case 'json':
      return `{${names.map((name) => `${JSON.stringify(name)}:null`).join(',')}}\n`;
    default:
      return unknownShell(shell);
  }
}

function checkNames(names: ReadonlyArray<string>): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (typeof name !== 'string' || !ENV_NAME.test(name)) {
      throw new TypeError(
        `environment variable name ${typeof name === 'string' ? quote(name) : String(name)} must match ${ENV_NAME.source}`,
      );
    }
    if (seen.has(name)) throw new TypeError(`environment variable ${name} is given more than once`);
    seen.add(name);
  }
}

function checkValue(name: string, value: string): void {
  if (typeof value !== 'string') {
    throw new TypeError(`the value of ${name} must be a string, not ${typeof value}`);
  }
  if (value.includes('\0')) {
    throw new OzError(
      'usage',
      `the value of ${name} contains a NUL byte, which no environment variable can hold: remove it from ${quote(value)}`,
    );
  }
  // An unpaired surrogate has no UTF-8 form: it would be printed as U+FFFD and read back
  // as a different value. In a Unicode-mode pattern a range of surrogates matches only
  // unpaired ones (a pair is one code point), as \p{Cs} does, without building a property class.
  if (/[\uD800-\uDFFF]/u.test(value)) {
    throw new OzError(
      'usage',
      `the value of ${name} is not valid Unicode (it has an unpaired UTF-16 surrogate): ${quote(value)}`,
    );
  }
}

function posixQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function fishQuote(value: string): string {
  return `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

function powershellQuote(value: string): string {
  return `'${value.replace(/['\u2018-\u201b]/g, (c) => c + c)}'`;
}

/** Values every dotenv reader, docker's --env-file included, takes as they are unquoted. */
const DOTENV_PLAIN = /^[A-Za-z0-9_./:@%+,=-]*$/;

/**
 * Form 4 below: one line, no `#`, no quote first, and nothing at either end that a reader trims
 * from an unquoted value. The npm package trims JavaScript's whitespace (`\s`); python-dotenv
 * trims Python's, which also counts the separators U+001C–U+001F and NEL (U+0085).
 */
const DOTENV_BARE = /^(?![\s\x1c-\x1f\x85'"`#])[^#\r\n]*$/;
const DOTENV_TRIMMED_END = /[\s\x1c-\x1f\x85]$/;

/**
 * One `NAME=value` line in the first of four forms that carries the value unchanged
 * through both the `dotenv` npm package and python-dotenv (default options):
 *
 * 1. unquoted, for values made only of letters, digits and `_ . / : @ % + , = -` (ARNs,
 *    paths, IDs). docker's `--env-file`, which has no quoting at all, reads these too;
 *    it reads the other forms with their quotes and escapes left in.
 * 2. `NAME='value'` when the value has no `'`, no carriage return, no `\\` pair and no
 *    trailing `\` (python-dotenv decodes `\\` and `\'` inside single quotes; the npm
 *    package turns every CR into LF before parsing). Newlines are written as they are:
 *    both readers accept multi-line single-quoted values.
 * 3. `NAME="value"` with newline and CR written as `\n` and `\r` (the only escapes the npm
 *    package decodes) when the value has no `\` and no `"`.
 * 4. unquoted again when the value is on one line, has no `#`, does not start with a quote
 *    and has no whitespace at either end (Python's included, {@link DOTENV_BARE}): neither
 *    reader decodes anything in an unquoted value, so this keeps backslashes that forms 2 and
 *    3 cannot.
 *
 * python-dotenv expands `${…}` in every form, so a value containing `${` fits none. What
 * fits none is refused with a usage error that points at `--shell json`, rather than
 * written in a form that one of the readers would change.
 */
function dotenvLine(name: string, value: string): string {
  if (DOTENV_PLAIN.test(value)) return `${name}=${value}\n`;
  if (!value.includes('${')) {
    if (!/['\r]|\\\\|\\$/.test(value)) return `${name}='${value}'\n`;
    if (!/[\\"]/.test(value)) {
      return `${name}="${value.replaceAll('\n', '\\n').replaceAll('\r', '\\r')}"\n`;
    }
    if (DOTENV_BARE.test(value) && !DOTENV_TRIMMED_END.test(value)) return `${name}=${value}\n`;
  }
  throw new OzError(
    'usage',
    `the value of ${name} cannot be written to a dotenv file so that both dotenv and python-dotenv read it back unchanged (${
      value.includes('${')
        ? 'python-dotenv would expand the ${…} in it'
        : 'no dotenv quoting keeps its mix of quotes, backslashes and line breaks'
    }): use --shell json or a shell format instead`,
  );
}

function unknownShell(shell: never): never {
  throw new TypeError(`unknown shell ${JSON.stringify(shell)}: expected one of ${SHELL_KINDS.join(', ')}`);
}
