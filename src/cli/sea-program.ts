import { runningAsSingleExecutable } from './executable.js';

/**
 * The whole CLI inside the single executable: the `program` asset (sea-assets.ts), run for every
 * command but the hot two, and by the hot path when its fast parser hands a call over. It runs
 * main.ts from the start in a world of its own, as dist/main.cjs does for bin/oz.
 */
runningAsSingleExecutable();
void import('./main.js');
