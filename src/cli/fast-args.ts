import type { CommandSpec, OptionsOf } from './spec.js';
import { optionKey } from './spec.js';

/**
 * The options of a command as the fast path reads them, from the same spec as commander:
 * `--name value` and `--name=value` (the last one winning, or all of them for a repeatable
 * option), `--switch` for a boolean. Anything else — an unknown option, a positional argument,
 * a missing value or one that starts with a dash, a value outside the choices, a required
 * option left out — returns undefined, and the caller hands the arguments to commander for
 * its full handling and messages. node:util's parseArgs would do, but loading it costs more.
 */
export function parseFast<C extends CommandSpec>(spec: C, args: readonly string[]): OptionsOf<C> | undefined {
  const values: Record<string, string | boolean | string[]> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--') || arg === '--') return undefined;
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const option = spec.options.find((o) => o.flag === flag);
    if (!option) return undefined;
    const key = optionKey(flag);
    if (option.value === undefined) {
      if (eq !== -1) return undefined;
      values[key] = true;
      continue;
    }
    const value = eq === -1 ? args[++i] : arg.slice(eq + 1);
    if (value === undefined || (eq === -1 && value.startsWith('-'))) return undefined;
    if (option.choices && !option.choices.includes(value)) return undefined;
    if (option.repeatable) values[key] = [...((values[key] as string[] | undefined) ?? []), value];
    else values[key] = value;
  }
  for (const o of spec.options) {
    const key = optionKey(o.flag);
    if (values[key] !== undefined) continue;
    if (o.required) return undefined;
    if (o.default !== undefined) values[key] = o.default;
  }
  return values as OptionsOf<C>;
}

/**
 * The value of the last `--format` in the arguments, in either spelling: the one that wins,
 * so that the gcp format's silence on stderr starts before anything else runs.
 */
export function winningFormat(args: readonly string[]): string | undefined {
  let format: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--format') format = args[++i];
    else if (a.startsWith('--format=')) format = a.slice('--format='.length);
  }
  return format;
}
