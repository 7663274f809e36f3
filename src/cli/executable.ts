import { resolve } from 'node:path';

let singleExecutable: (() => string | undefined) | undefined;

/**
 * Called by the single executable's entries (sea.ts, sea-program.ts) when they start. Its path
 * is asked of node:sea only when a command needs it, so issue-token does not load node:sea at
 * every start (and node:sea is not one of the built-ins Node has vetted for snapshots).
 */
export function runningAsSingleExecutable(): void {
  singleExecutable = () => ((require('node:sea') as typeof import('node:sea')).isSea() ? process.execPath : undefined);
}

/**
 * The path of this oz, for configs that run it again (the GCP credential config). The single
 * executable is the program itself: its argv[1] is only the name it was started by (`oz`,
 * found on PATH), which Google's libraries could not run from another directory.
 */
export function ownExecutable(): string {
  return singleExecutable?.() ?? resolve(process.argv[1] ?? 'oz');
}
