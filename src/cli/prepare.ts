import { OzError, quote } from '../errors.js';
import { cleanup, prepare, PREPARED_VARIABLES, type PrepareFlags } from '../prepare.js';
import { renderEnv, unsetEnv, SHELL_KINDS, type ShellKind } from '../shell.js';
import { ownExecutable } from './executable.js';
import { PREPARE_FLAGS, parseFlags } from './flags.js';
import { fail, note, out } from './output.js';

export type PrepareOptions = PrepareFlags & { shell?: string };

const camel = (s: string) => s.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

/** Parse without commander, as issue-token does; false sends odd arguments to commander. */
export async function runFast(args: string[]): Promise<boolean> {
  const values = parseFlags(args, PREPARE_FLAGS);
  if (values === undefined) return false;
  await prepareCommand(Object.fromEntries(Object.entries(values).map(([k, v]) => [camel(k), v])) as PrepareOptions);
  return true;
}

function parseShell(shell: string | undefined): ShellKind {
  if (shell === undefined) return 'sh';
  if ((SHELL_KINDS as readonly string[]).includes(shell)) return shell as ShellKind;
  throw new OzError('usage', `invalid --shell ${quote(shell)}: use one of ${SHELL_KINDS.join(', ')}`);
}

/** The executable the GCP config names: this oz, unless OZ_EXECUTABLE says where it is installed. */
function ozPath(): string {
  return process.env.OZ_EXECUTABLE || ownExecutable();
}

/**
 * On any failure stdout stays empty, so `eval "$(oz federate prepare)"` evaluates nothing;
 * the reason goes to stderr and the exit status says what kind of failure it was.
 */
export async function prepareCommand(opts: PrepareOptions): Promise<void> {
  try {
    const shell = parseShell(opts.shell);
    const result = await prepare(opts, {
      env: process.env,
      cwd: process.cwd(),
      now: new Date(),
      ozPath: ozPath(),
      uid: process.getuid?.(),
    });
    for (const n of result.notes) note(n);
    if (result.vars.length > 0) out(renderEnv(result.vars, shell));
  } catch (e) {
    await fail(e);
  }
}

export async function cleanupCommand(opts: { dir?: string; shell?: string }): Promise<void> {
  try {
    const shell = parseShell(opts.shell);
    const r = cleanup(opts.dir, { env: process.env, cwd: process.cwd(), uid: process.getuid?.() });
    note(r.removed.length ? `oz: removed ${r.removed.length} file(s) from ${r.dir}` : `oz: nothing to remove in ${r.dir}`);
    out(unsetEnv(PREPARED_VARIABLES, shell));
  } catch (e) {
    await fail(e);
  }
}
