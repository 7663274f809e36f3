import { painter } from './colour.js';
import { OzError, oneLine, INTERNAL_EXIT_CODE, describeCause } from '../core/errors.js';

/** Everything the CLI prints goes through here, so tests and the gcp mode can reason about it. */
export function out(text: string): void {
  process.stdout.write(text);
}

let stderrSilenced = false;
/** Whether oz opened stderr: asking the stream itself would open it. */
let stderrOpened = false;

/**
 * Google's libraries merge the executable's stderr into its stdout before parsing it as
 * JSON, so in --format gcp mode nothing may reach stderr: not our notes, not Node's warnings.
 */
export function silenceStderr(): void {
  stderrSilenced = true;
  process.removeAllListeners('warning');
  process.on('warning', () => {});
  // Replacing the getter, not the stream's write(): touching process.stderr would open the
  // stream (and load node:net when it is a pipe) only to silence it.
  Object.defineProperty(process, 'stderr', { configurable: true, enumerable: true, get: () => discard });
}

const discard = {
  isTTY: false,
  write: () => true,
  end() {},
  on() {
    return this;
  },
  once() {
    return this;
  },
} as unknown as NodeJS.WriteStream;

/**
 * A token service that holds a shell init script for seconds should not do so in silence, but
 * a script reading oz's output has no one to tell: say it once, and only on a terminal (never
 * in --format gcp, whose stderr is silenced).
 */
export function retryNotice(): ((what: string, boundSeconds: number) => void) | undefined {
  if (stderrSilenced) return undefined;
  // Whether stderr is a terminal is asked only when a retry happens: opening process.stderr to
  // look (building a pipe's stream, say) costs about 0.3 ms that a call with no retry need not pay.
  return (what, boundSeconds) => {
    if (process.stderr.isTTY === true) note(`oz: ${what}; retrying for up to ${boundSeconds}s (OZ_TOKEN_TIMEOUT)`);
  };
}

export function note(text: string): void {
  if (stderrSilenced) return;
  stderrOpened = true;
  process.stderr.write(`${text}\n`);
}

/** Whether something oz printed is still queued in a stream (an asynchronous pipe, say). */
export function outputPending(): boolean {
  return process.stdout.writableLength > 0 || (stderrOpened && process.stderr.writableLength > 0);
}

/** Print a failure as one line on stderr and set the exit status; never a stack trace. */
export async function fail(e: unknown): Promise<void> {
  const { message, exitCode } = failureOf(e);
  process.exitCode = exitCode;
  if (stderrSilenced) return;
  // The failure is what matters: colour that cannot load must not replace it with a stack trace.
  stderrOpened = true;
  const paint = await painter(process.stderr).catch(() => undefined);
  const prefix = paint ? paint.red.bold('oz:') : 'oz:';
  process.stderr.write(`${prefix} ${message}\n`);
}

export function failureOf(e: unknown): { code: string; message: string; exitCode: number } {
  if (e instanceof OzError) return { code: e.code, message: oneLine(e.message), exitCode: e.exitCode };
  return {
    code: 'internal',
    message: `internal error: ${describeCause(e)} (this is a bug in oz; please report it)`,
    exitCode: INTERNAL_EXIT_CODE,
  };
}
