#!/usr/bin/env node
// `npm run mutate [-- MODULE…] [-- --stryker-option …]`: Stryker over the core modules of
// test/mutation/stryker.config.mjs (or only the ones named), then the score of each module.
import { spawnSync } from 'node:child_process';
import { CORE_MODULES } from './stryker.config.mjs';
import { coreMutatePatterns } from './core-modules.mjs';
import { printScores } from './scores.mjs';

const args = process.argv.slice(2);
const named = args.filter((a) => a.startsWith('src/'));
const options = args.filter((a) => !a.startsWith('src/'));
for (const file of named) {
  if (!(file in CORE_MODULES)) throw new Error(`${file} is not a core module; add it to CORE_MODULES in stryker.config.mjs`);
}
const only = named.length === 0 ? [] : ['--mutate', coreMutatePatterns(Object.fromEntries(named.map((f) => [f, CORE_MODULES[f]]))).join(',')];

const stryker = spawnSync('npx', ['--no-install', 'stryker', 'run', 'test/mutation/stryker.config.mjs', ...only, ...options], { stdio: 'inherit' });
if (stryker.status !== 0) {
  process.exitCode = stryker.status ?? 1;
} else {
  console.log('');
  process.exitCode = printScores() ? 0 : 1;
}
