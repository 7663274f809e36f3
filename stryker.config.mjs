// Mutation testing of oz's core: `npm run mutate`. See stryker.equivalent.md for the mutants
// that survive on purpose and README.md (Development) for the scores.
import { coreMutatePatterns } from './scripts/core-modules.mjs';

/**
 * The core: every pure module that decides security or correctness. A file listed with `true`
 * is mutated whole; one listed with function names only in those functions, so that the
 * plumbing around them (reading the environment, local defaults) does not water the score
 * down. To put a module under mutation testing, add it here.
 */
export const CORE_MODULES = {
  'src/duration.ts': true,
  'src/aws.ts': true,
  'src/gcp.ts': true,
  'src/shell.ts': true,
  'src/token.ts': true,
  'src/jwt.ts': true,
  'src/rate-limit.ts': true,
  'src/sources/retry.ts': true,
  'src/grant.ts': ['verifyGrant', 'grantShapeProblem', 'grantedLifetime'],
  'src/context.ts': ['parseTeams', 'parseDeadline', 'readRunLimits', 'parseHttpUrl', 'normaliseIssuerUrl', 'secondsLeft'],
};

/** Every module must reach this score; `scripts/mutation-scores.mjs` fails the run otherwise. */
export const MODULE_TARGET = 90;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  // Unit tests only: they run in milliseconds, and the end-to-end tests, which spawn the built
  // binary, would not see a mutant in src/ anyway.
  vitest: { configFile: 'vitest.unit.config.ts', related: false },
  coverageAnalysis: 'perTest',
  mutate: coreMutatePatterns(CORE_MODULES),
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  clearTextReporter: { allowColor: false, reportTests: false, reportMutants: true, reportScoreTable: true },
  // The machine is shared; raise it with `npm run mutate -- --concurrency N` on a free one.
  concurrency: 1,
  timeoutMS: 10_000,
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
