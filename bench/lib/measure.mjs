// Measurement helpers for bench/run.mjs: interleaved wall-clock timing of whole processes,
// peak memory through /usr/bin/time -v, and small statistics. No timing assertion lives here:
// benchmarks report, they do not test.
import { spawnSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

export function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const i = Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))));
  return s[i];
}

/** Median absolute deviation: a spread figure that one slow outlier does not move. */
export function mad(xs) {
  const m = median(xs);
  return median(xs.map((x) => Math.abs(x - m)));
}

/**
 * Run one command to completion and return its wall time in ms. The command is exec'd
 * directly (no shell), like Google's libraries and `eval "$(oz …)"` do, so the figure is
 * what a caller waits for: exec, Node's start-up, the work, exit.
 */
export function timeOnce(cmd) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd.file, cmd.args, {
    env: cmd.env,
    cwd: cmd.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 1 << 20,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) throw r.error;
  if (r.status !== 0 || (cmd.check && !cmd.check(r.stdout.toString('utf8')))) {
    throw new Error(
      `${cmd.name}: exit ${r.status}${r.signal ? ` (${r.signal})` : ''}; stdout ${JSON.stringify(r.stdout.toString().slice(0, 200))}; stderr ${JSON.stringify(r.stderr.toString().slice(0, 400))}`,
    );
  }
  if (cmd.after) cmd.after();
  return ms;
}

const shellWord = (w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);
export const haveHyperfine = () => spawnSync('hyperfine', ['--version']).status === 0;

/**
 * One round timed by hyperfine: each command once, in the order given, with no shell (-N).
 * hyperfine's own fork/exec/wait costs about 0.7 ms a run here against about 2 ms for Node's
 * spawnSync, and that cost lands on oz and the floor alike, so the lower it is the less it
 * flatters the ratio. The commands share one environment (hyperfine's own). Their stdout is a
 * pipe that hyperfine reads and discards, as Google's libraries and `$(oz …)` read oz: with
 * hyperfine's default, /dev/null, Node writes to a file instead of building a pipe's stream.
 */
function hyperfineRound(cmds, scratch) {
  const out = `${scratch}/round.json`;
  const argv = ['-N', '--output', 'pipe', '--runs', '1', '--warmup', '0', '--style', 'none', '--export-json', out];
  for (const c of cmds) argv.push([c.file, ...c.args].map(shellWord).join(' '));
  const r = spawnSync('hyperfine', argv, { env: cmds[0].env, cwd: cmds[0].cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`hyperfine: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  const times = JSON.parse(readFileSync(out, 'utf8')).results.map((x) => x.times[0] * 1000);
  for (const c of cmds) if (c.after) c.after();
  return times;
}

/**
 * Interleaved timing: every round runs each command once, the order reversed on every other
 * round (A B, B A, A B, …) so that neither side always runs first after the other. Drift in
 * the machine's speed (frequency scaling, a noisy neighbour) then lands on both sides alike.
 * With engine 'hyperfine' each round is one hyperfine invocation (the commands must share one
 * environment); with 'spawn', Node's spawnSync times each run. Every command is run once
 * first through spawnSync and its output checked, so a broken command fails loudly.
 * Returns per-command samples and the per-round ratio of every command to the first.
 */
export function interleave(cmds, { warmup = 5, runs = 30, engine = 'spawn', scratch } = {}) {
  for (const c of cmds) timeOnce(c);
  const once = (picked) => (engine === 'hyperfine' ? hyperfineRound(picked, scratch) : picked.map((c) => timeOnce(c)));
  const round = (order) => {
    const picked = order.map((i) => cmds[i]);
    let t;
    try {
      t = once(picked);
    } catch (e) {
      // One retry: a rebuild of dist/ running beside the benchmark fails a run or two.
      console.warn(`\n  warning: a run failed (${e.message.split('\n')[0]}); retrying the round once`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
      t = once(picked);
    }
    const byCmd = [];
    order.forEach((i, k) => (byCmd[i] = t[k]));
    return byCmd;
  };
  const idx = cmds.map((_, i) => i);
  for (let i = 0; i < warmup; i++) round(i % 2 ? [...idx].reverse() : idx);
  const samples = cmds.map(() => []);
  for (let r = 0; r < runs; r++) {
    const t = round(r % 2 ? [...idx].reverse() : idx);
    t.forEach((x, i) => samples[i].push(x));
  }
  return cmds.map((c, i) => ({
    name: c.name,
    samples: samples[i],
    median: median(samples[i]),
    mad: mad(samples[i]),
    p10: quantile(samples[i], 0.1),
    p90: quantile(samples[i], 0.9),
    // The ratio of each round's pair, whose median is robust to drift between rounds.
    pairedRatio: median(samples[i].map((x, r) => x / samples[0][r])),
  }));
}

export const TIME_V = '/usr/bin/time';
export const haveTimeV = () => existsSync(TIME_V);

/** Peak resident set size (KiB) of one run, from GNU time's "Maximum resident set size". */
export function maxRssOnce(cmd) {
  const r = spawnSync(TIME_V, ['-v', cmd.file, ...cmd.args], {
    env: cmd.env,
    cwd: cmd.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error) throw r.error;
  const err = r.stderr.toString('utf8');
  if (r.status !== 0) throw new Error(`${cmd.name} under ${TIME_V}: exit ${r.status}: ${err.slice(0, 600)}`);
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(err);
  if (!m) throw new Error(`${TIME_V} -v printed no maximum resident set size`);
  if (cmd.after) cmd.after();
  return Number(m[1]);
}

/** Interleaved peak-RSS samples, like interleave() but for memory. */
export function interleaveRss(cmds, { runs = 10 } = {}) {
  const samples = cmds.map(() => []);
  for (let r = 0; r < runs; r++) {
    const order = cmds.map((_, i) => i);
    if (r % 2) order.reverse();
    for (const i of order) {
      let kib;
      try {
        kib = maxRssOnce(cmds[i]);
      } catch (e) {
        console.warn(`\n  warning: a run failed (${e.message.split('\n')[0]}); retrying it once`);
        kib = maxRssOnce(cmds[i]);
      }
      samples[i].push(kib);
    }
  }
  return cmds.map((c, i) => ({ name: c.name, samples: samples[i], median: median(samples[i]) }));
}

/**
 * The issuer and run context a platform sets, given to oz and the floor alike so that both
 * sign the same claims (the floor's are fixed to these values).
 */
export const RUN_CONTEXT = {
  OZ_ISSUER_URL: 'http://127.0.0.1:8787',
  OZ_RUN_ID: 'run-1',
  OZ_SUBJECT: 'user-1',
  OZ_TEAMS: 'team-1',
  OZ_ENVIRONMENT_ID: 'env-1',
  OZ_AGENT_NAME: 'a',
  OZ_SKILL_SPEC: 's',
  OZ_HOST: 'warp',
};

/** oz's stored key as the PKCS#8 PEM the floors read (oz keeps a JWK, which imports faster). */
export function pemOf(stored) {
  const key = stored.private_jwk ? createPrivateKey({ key: stored.private_jwk, format: 'jwk' }) : createPrivateKey(stored.private_key);
  return key.export({ type: 'pkcs8', format: 'pem' });
}
