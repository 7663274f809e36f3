import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ChalkInstance } from 'chalk';
import { EXIT_CODES } from '../core/errors.js';
import { dataDir } from '../core/paths.js';
import { openSigningKey, SIGNING_KEY_FILE } from '../core/keys.js';
import { runDoctor, type Check, type Status } from '../sandbox/doctor.js';
import { preparedDir } from '../sandbox/prepare.js';
import { getJson } from '../http/get-json.js';
import { probeTokenService } from '../sandbox/sources/probe.js';
import { painter } from './colour.js';
import { out } from './output.js';
import type { DOCTOR, OptionsOf } from './spec.js';

/** Each network check's bound: the checks run side by side, so doctor answers within about twice this. */
export const CHECK_TIMEOUT_MS = 4000;

const MARKS: Record<Status, string> = { ok: '✓', warn: '!', fail: '✗' };

export async function doctorCommand(opts: OptionsOf<typeof DOCTOR>, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const cwd = process.cwd();
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  const report = await runDoctor({
    env,
    now: new Date(),
    prepareDir: preparedDir(opts.dir, env, cwd, uid),
    async localKey() {
      const dir = await dataDir(env, cwd);
      // Doctor looks and never creates: a key made here would be one nobody has published.
      if (!existsSync(join(dir, SIGNING_KEY_FILE))) return undefined;
      const { key } = openSigningKey(dir, { create: false });
      return { kid: key.kid, alg: key.alg, dir };
    },
    fetchJson: (url) => getJson(url, env, CHECK_TIMEOUT_MS),
    probeTokenService: (audience) => probeTokenService(env, audience, CHECK_TIMEOUT_MS),
  });
  const counts = { ok: 0, warn: 0, fail: 0 };
  for (const c of report.checks) counts[c.status]++;
  if (counts.fail > 0) process.exitCode = EXIT_CODES.doctor_failed;
  if (opts.json) {
    const checks = report.checks.map((c) => ({ id: c.id, status: c.status, finding: c.finding, fix: c.fix ?? null }));
    out(`${JSON.stringify({ ok: counts.fail === 0, mode: report.mode, checks, counts }, null, 2)}\n`);
    return;
  }
  out(render(report.checks, counts, await colours()));
}

/** Colour is a nicety: if it cannot be had, the report goes out plain. */
async function colours(): Promise<ChalkInstance | undefined> {
  try {
    return await painter(process.stdout);
  } catch {
    return undefined;
  }
}

function render(checks: readonly Check[], counts: Record<Status, number>, paint: ChalkInstance | undefined): string {
  const tint: Record<Status, (s: string) => string> = paint
    ? { ok: (s) => paint.green(s), warn: (s) => paint.yellow(s), fail: (s) => paint.red.bold(s) }
    : { ok: (s) => s, warn: (s) => s, fail: (s) => s };
  const dim = paint ? (s: string) => paint.dim(s) : (s: string) => s;
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${tint[c.status](MARKS[c.status])} ${c.id}: ${c.finding}`);
    if (c.fix) lines.push(`  ${dim('fix:')} ${c.fix}`);
  }
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  lines.push('', `${plural(counts.ok, 'check')} ok, ${plural(counts.warn, 'warning')}, ${plural(counts.fail, 'failure')}`);
  return `${lines.join('\n')}\n`;
}
