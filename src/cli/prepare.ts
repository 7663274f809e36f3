import { readSetting } from '../core/settings.js';
import { cleanup, prepare } from '../sandbox/prepare.js';
import { EXECUTABLE } from '../sandbox/settings.js';
import { renderEnv, unsetEnv } from '../sandbox/shell.js';
import type { CLEANUP, OptionsOf, PREPARE } from './spec.js';
import { note, out, retryNotice } from './output.js';
import { ownExecutable } from './executable.js';

export type PrepareOptions = OptionsOf<typeof PREPARE>;

/** The executable the GCP config names: this oz, unless OZ_EXECUTABLE says where it is installed. */
function ozPath(): string {
  return readSetting(EXECUTABLE, process.env)?.value ?? ownExecutable();
}

/**
 * On any failure stdout stays empty, so `eval "$(oz federate prepare)"` evaluates nothing;
 * the reason goes to stderr and the exit status says what kind of failure it was.
 */
export async function prepareCommand(opts: PrepareOptions): Promise<void> {
  const result = await prepare(opts, {
    env: process.env,
    cwd: process.cwd(),
    now: new Date(),
    ozPath: ozPath(),
    uid: process.getuid?.(),
    onRetry: retryNotice(),
  });
  for (const n of result.notes) note(n);
  // A shell evaluates an empty output as nothing, but a JSON reader needs an object.
  const shell = opts.shell ?? 'sh';
  if (result.vars.length > 0 || shell === 'json') out(renderEnv(result.vars, shell));
}

export async function cleanupCommand(opts: OptionsOf<typeof CLEANUP>): Promise<void> {
  const r = cleanup(opts.dir, { env: process.env, cwd: process.cwd(), uid: process.getuid?.() });
  note(r.removed.length ? `oz: removed ${r.removed.length} file(s) from ${r.dir}` : `oz: nothing to remove in ${r.dir}`);
  out(unsetEnv(r.unset, opts.shell ?? 'sh'));
}
