/**
 * Each shell a platform's init script may be: it sources `oz federate prepare`'s output for its
 * own syntax, then dumps its environment with `env -0`. `[name, program, script for a command]`.
 */
export const SOURCING_SHELLS: [string, string, (cmd: string) => string][] = [
  ['sh', '/bin/sh', (cmd) => `eval "$(${cmd})" || exit 9; env -0`],
  ['bash', 'bash', (cmd) => `eval "$(${cmd})" || exit 9; env -0`],
  ['zsh', 'zsh', (cmd) => `eval "$(${cmd})" || exit 9; env -0`],
  ['fish', 'fish', (cmd) => `${cmd} | source; or exit 9; env -0`],
];

/** The output of `env -0`: every variable, values with newlines and `=` kept whole. */
export function parseEnv0(out: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of out.split('\0')) {
    const i = entry.indexOf('=');
    if (i > 0) env[entry.slice(0, i)] = entry.slice(i + 1);
  }
  return env;
}
