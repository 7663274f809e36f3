import { resolve } from 'node:path';

let singleExecutable: (() => string | undefined) | undefined;

/**
 * Called by the single executable's entry (sea.ts) when it starts from its snapshot, with how
 * to find its own path: asked only when a command needs it, so issue-token does not load
 * node:sea at every start.
 */
export function runningAsSingleExecutable(path: () => string | undefined): void {
  singleExecutable = path;
}

/**
 * The path of this oz, for configs that run it again (the GCP credential config). The single
 * executable is the program itself: its argv[1] is only the name it was started by (`oz`,
 * found on PATH), which Google's libraries could not run from another directory.
 */
export function ownExecutable(): string {
  return singleExecutable?.() ?? resolve(process.argv[1] ?? 'oz');
}
