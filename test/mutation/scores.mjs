#!/usr/bin/env node
// Per-module mutation scores from Stryker's JSON report (mutation-testing-report-schema).
// `node test/mutation/scores.mjs [report.json] [--survivors]`; exits 1 when a module of the
// report is below the target of stryker.config.mjs.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { CORE_MODULES, MODULE_TARGET } from './stryker.config.mjs';

export const DEFAULT_REPORT = 'reports/mutation/mutation.json';

const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);

/** Stryker's own definition: detected / (detected + undetected); compile and runtime errors do not count. */
export function moduleScores(report) {
  return Object.entries(report.files)
    .map(([file, { mutants }]) => {
      const detected = mutants.filter((m) => DETECTED.has(m.status)).length;
      const undetected = mutants.filter((m) => UNDETECTED.has(m.status));
      const counted = detected + undetected.length;
      return { file, mutants: mutants.length, detected, undetected, score: counted === 0 ? 100 : (100 * detected) / counted };
    })
    .sort((a, b) => order(a.file) - order(b.file) || a.file.localeCompare(b.file));
}

function order(file) {
  const i = Object.keys(CORE_MODULES).indexOf(file);
  return i === -1 ? Infinity : i;
}

export function printScores(reportPath = DEFAULT_REPORT, { survivors = false } = {}) {
  const report = JSON.parse(readFileSync(reportPath, 'utf8'));
  const scores = moduleScores(report);
  const width = Math.max(...scores.map((s) => s.file.length), 'module'.length);
  const rows = [`${'module'.padEnd(width)}  score   killed  survived  mutants`];
  let detected = 0;
  let counted = 0;
  for (const s of scores) {
    const mark = s.score < MODULE_TARGET ? `  below ${MODULE_TARGET} %` : '';
    rows.push(
      `${s.file.padEnd(width)}  ${s.score.toFixed(1).padStart(5)} %  ${String(s.detected).padStart(6)}  ${String(s.undetected.length).padStart(8)}  ${String(s.mutants).padStart(7)}${mark}`,
    );
    detected += s.detected;
    counted += s.detected + s.undetected.length;
  }
  rows.push(`${'all'.padEnd(width)}  ${(counted === 0 ? 100 : (100 * detected) / counted).toFixed(1).padStart(5)} %`);
  const missing = Object.keys(CORE_MODULES).filter((f) => !(f in report.files));
  if (missing.length > 0) rows.push(`not in this report: ${missing.join(', ')}`);
  console.log(rows.join('\n'));
  if (survivors) {
    for (const s of scores) {
      for (const m of s.undetected) {
        const at = `${s.file}:${m.location.start.line}:${m.location.start.column}`;
        console.log(`${m.status.padEnd(10)} ${at} ${m.mutatorName}: ${JSON.stringify(m.replacement ?? '')}`);
      }
    }
  }
  return scores.every((s) => s.score >= MODULE_TARGET);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const ok = printScores(args.find((a) => !a.startsWith('--')) ?? DEFAULT_REPORT, { survivors: args.includes('--survivors') });
  process.exitCode = ok ? 0 : 1;
}
