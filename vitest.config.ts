import { readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

export default defineConfig({
  // What tsup defines at build time, so that unit tests can load any module of src/.
  define: { __OZ_VERSION__: JSON.stringify(version) },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // End-to-end tests spawn the built CLI and real SDKs; two cores do not gain from more.
    maxWorkers: 2,
    // A run of the built CLI has, rarely, not exited: seen a few times in full runs, never in
    // hundreds of runs of the same commands alone. One more try keeps such a run from failing
    // the suite; a test that fails twice still fails, and the retries reporter names every test
    // that needed its retry at the end of each run.
    retry: 1,
    reporters: ['default', './test/helpers/retries-reporter.ts'],
  },
});
