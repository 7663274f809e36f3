import { configDefaults, defineConfig } from 'vitest/config';
import base from '../../vitest.config.js';

/**
 * The unit tests that mutation testing (stryker.config.mjs) runs against each mutant of the
 * core. Not keys.test.ts: it tests the key store, which is not core, and spends seconds making
 * RSA keys, which Stryker would pay again for every mutant that all tests must see.
 */
export default defineConfig({
  ...base,
  test: { ...base.test, include: ['test/unit/**/*.test.ts'], exclude: [...configDefaults.exclude, 'test/unit/keys.test.ts'] },
});
