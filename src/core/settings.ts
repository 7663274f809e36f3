import { OzError, quote, type Parsed } from './errors.js';
import { debug, debugEnabled, showValue } from './debug.js';

/**
 * Settings: each declared once, with the flag and the environment variable that set it, the
 * parser that checks it and its default. Reading one is then the same everywhere: a flag wins
 * over its variable, an empty variable counts as unset (platforms often export every name,
 * some blank), and a bad value is an OzError that names where it came from, with the code that
 * follows from that: `usage` for a flag, `config` for a variable. `whoami` shows the source.
 */

/** The environment as oz reads it: passed in, so the core never touches process.env. */
export type Env = Readonly<Record<string, string | undefined>>;

export type Source = 'flag' | 'env' | 'default';

export interface Sourced<T> {
  value: T;
  source: Source;
  /** The flag or variable the value came from; for a default, the variable that would set it. */
  from: string;
}

export interface Setting<T> {
  /** The environment variable that sets it. */
  variable?: string;
  /** The flag that sets it for one command, winning over the variable. */
  flag?: string;
  parse(raw: string): Parsed<T>;
  /** The value when neither the flag nor the variable gives one; without it the setting is unset. */
  fallback?: () => T;
  /** One line for help texts and `whoami`. */
  help?: string;
}

/** A variable's value, or undefined when it is unset or empty. */
export function envValue(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** The value or the OzError that says where the bad text came from. */
export function parseFrom<T>(parse: (raw: string) => Parsed<T>, raw: string, from: string, code: 'usage' | 'config'): T {
  const r = parse(raw);
  if (!r.ok) throw new OzError(code, `invalid ${from} ${quote(raw)}: ${r.problem}`);
  return r.value;
}

/** The flag's text (undefined when the flag was not given), else the variable, else the default. */
export function readSetting<T>(s: Setting<T> & { fallback: () => T }, env: Env, flagValue?: string): Sourced<T>;
export function readSetting<T>(s: Setting<T>, env: Env, flagValue?: string): Sourced<T> | undefined;
export function readSetting<T>(s: Setting<T>, env: Env, flagValue?: string): Sourced<T> | undefined {
  const read = readSettingQuietly(s, env, flagValue);
  if (debugEnabled()) traceSetting(s, read);
  return read;
}

function readSettingQuietly<T>(s: Setting<T>, env: Env, flagValue?: string): Sourced<T> | undefined {
  if (flagValue !== undefined && s.flag !== undefined) {
    return { value: parseFrom(s.parse, flagValue, s.flag, 'usage'), source: 'flag', from: s.flag };
  }
  const raw = s.variable === undefined ? undefined : envValue(env, s.variable);
  if (raw !== undefined) return { value: parseFrom(s.parse, raw, s.variable!, 'config'), source: 'env', from: s.variable! };
  if (s.fallback === undefined) return undefined;
  return { value: s.fallback(), source: 'default', from: s.variable ?? s.flag ?? '' };
}

function traceSetting<T>(s: Setting<T>, read: Sourced<T> | undefined): void {
  const name = s.variable ?? s.flag ?? '?';
  const where = read === undefined || read.value === undefined ? '' : read.source === 'default' ? ' (default)' : ` (from ${read.from})`;
  debug(`setting ${name} = ${showValue(name, read?.value)}${where}`);
}

/** Where a value came from, in words: `from OZ_TEAMS`, `--dir`, `default (set OZ_TEAMS)`. */
export function describeSource(s: { source: Source; from: string }): string {
  if (s.source === 'default') return s.from ? `default (set ${s.from})` : 'default';
  return `from ${s.from}`;
}

/** Text as it is: for settings whose value is any non-empty string. */
export function anyText(raw: string): Parsed<string> {
  return { ok: true, value: raw };
}
