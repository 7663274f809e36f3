// Mutation testing of oz's core: `npm run mutate`. See equivalent.md beside this file for the mutants
// that survive on purpose and README.md (Development) for the scores.
import { coreMutatePatterns } from './core-modules.mjs';

/**
 * The core: every pure module that decides security or correctness. A file listed with `true`
 * is mutated whole; one listed with function names only in those functions, so that the
 * plumbing around them (reading the environment, local defaults) does not water the score
 * down. To put a module under mutation testing, add it here.
 */
export const CORE_MODULES = {
  'src/core/duration.ts': true,
  'src/sandbox/aws.ts': true,
  'src/sandbox/aws-session.ts': true,
  'src/sandbox/gcp.ts': true,
  'src/sandbox/shell.ts': true,
  'src/core/claims.ts': true,
  'src/core/jwt.ts': true,
  'src/core/jws.ts': true,
  'src/core/url.ts': true,
  'src/platform/rate-limit.ts': true,
  'src/sandbox/sources/retry.ts': true,
  'src/platform/grant-verify.ts': ['verifyGrant', 'grantShapeProblem', 'grantedLifetime'],
  'src/core/context.ts': ['parseDeadline', 'readRunLimits', 'computeLifetime', 'secondsLeft'],
  'src/core/claim-formats.ts': true,
  'src/cloud/aws-policy.ts': true,
  'src/cloud/gcp-provider.ts': true,
};

/** Every module must reach this score; `scores.mjs` fails the run otherwise. */
export const MODULE_TARGET = 90;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  // Unit tests only: they run in milliseconds, and the end-to-end tests, which spawn the built
  // binary, would not see a mutant in src/ anyway.
  vitest: { configFile: 'test/mutation/vitest.unit.config.ts', related: false },
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
