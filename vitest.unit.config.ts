import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// The unit tests alone: what mutation testing (stryker.config.mjs) runs against each mutant.
export default defineConfig({ ...base, test: { ...base.test, include: ['test/unit/**/*.test.ts'] } });
