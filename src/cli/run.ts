import { failureOf, fail, out } from './output.js';

/**
 * The one place a command's failure becomes output, for the fast path and commander alike:
 * one line on stderr and the exit status, or, in the gcp format, the executable-sourced
 * failure response on stdout (Google's libraries read nothing else).
 */
export async function runCommand(body: () => Promise<void>, gcpFormat = false): Promise<void> {
  try {
    await body();
  } catch (e) {
    if (gcpFormat) writeGcpFailure(e);
    else await fail(e);
  }
}

export function writeGcpFailure(e: unknown): void {
  const f = failureOf(e);
  process.exitCode = f.exitCode;
  out(`${JSON.stringify({ version: 1, success: false, code: f.code, message: f.message })}\n`);
}
