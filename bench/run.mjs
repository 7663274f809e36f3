#!/usr/bin/env node
// oz's benchmarks (GitHub issue #5), each beside the floor: bench/floor-sign.cjs doing the
// same job with nothing but Node's built-in modules. Figures are medians of runs interleaved
// with the floor's (A B, B A, …; hyperfine times each run), on this machine, in one
// environment; targets are ratios to the floor. Benchmarks report; nothing here is a test,
// and no target fails the exit status (only a broken run does). The README's Performance section explains.
//
//   npm run bench                 build, then every case (about 75 s on 2 cores)
//   node bench/run.mjs --quick    fewer runs and shorter loads (about 30 s)
//   node bench/run.mjs --help     all options
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, statSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { parseFlags } from './lib/flags.mjs';
import { haveHyperfine, haveTimeV, interleave, interleaveRss, pemOf, RUN_CONTEXT, TIME_V } from './lib/measure.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const DEFAULT_OZ = join(ROOT, 'bin', 'oz');
const FLOOR = join(HERE, 'floor-sign.cjs');
const FETCH_FLOOR = join(HERE, 'floor-fetch.cjs');

const USAGE = `usage: node bench/run.mjs [options]
  --quick              15 runs per start-up case, 3 s loads (default: 100 runs, 10 s)
  --runs N             timed rounds per start-up case (each round runs oz and the floor once)
  --warmup N           untimed rounds first (default 5)
  --mem-runs N         /usr/bin/time -v runs per side for peak memory (default 20)
  --seconds S          length of the token service load and of each floor --rate run
  --only LIST          comma-separated: jwt,gcp,prepare,memory,remote,remote-proxy,serve,refresher (and
                       floor-sea with --sea: the floor itself as a single executable, for context)
  --refresher-seconds S  how long the background refresher is watched (default 60; --quick 20)
  --engine E           hyperfine (default when installed) or spawn: what times each run
  --json FILE          write every figure, samples included, to FILE
  --oz PATH            the oz executable to measure (default: bin/oz of this checkout)
  --sea                measure the single executable, dist/sea/oz (npm run build:sea), against
                       its own targets (≤ 0.95× the floor, ≤ +20 MiB), and print its size
  --inherit-env        run oz and the floor in this shell's environment (NODE_OPTIONS
                       removed) instead of a scrubbed one; see the README's Performance section
  --keep               keep the temporary directory`;

const flags = parseFlags(
  {
    quick: { type: 'boolean' },
    runs: { type: 'string' },
    warmup: { type: 'string' },
    'mem-runs': { type: 'string' },
    seconds: { type: 'string' },
    only: { type: 'string' },
    engine: { type: 'string' },
    json: { type: 'string' },
    oz: { type: 'string' },
    sea: { type: 'boolean' },
    'inherit-env': { type: 'boolean' },
    keep: { type: 'boolean' },
    'refresher-seconds': { type: 'string' },
  },
  USAGE,
);
const num = (v, d) => (v === undefined ? d : Number(v));
const RUNS = num(flags.runs, flags.quick ? 15 : 100);
const WARMUP = num(flags.warmup, flags.quick ? 3 : 5);
const MEM_RUNS = num(flags['mem-runs'], flags.quick ? 5 : 20);
const SECONDS = num(flags.seconds, flags.quick ? 3 : 10);
const ONLY = flags.only ? new Set(flags.only.split(',')) : undefined;
let OZ = flags.oz ? resolve(flags.oz) : DEFAULT_OZ;
const ENGINE = flags.engine ?? (haveHyperfine() ? 'hyperfine' : 'spawn');
if (!['hyperfine', 'spawn'].includes(ENGINE)) {
  console.error(USAGE);
  process.exit(2);
}
const want = (c) => !ONLY || ONLY.has(c);
if (flags.sea && flags.oz) {
  console.error('--sea and --oz both name the oz to measure: give one');
  process.exit(2);
}
// The single executable has no Node to find and skips Node's bootstrap (its startup snapshot),
// so it is held to more than the floor; its snapshot heap costs memory (README, Performance).
const TARGETS = flags.sea ? { jwt: 0.95, gcp: 0.95, prepare: 1.3, memMiB: 20 } : { jwt: 1.1, gcp: 1.1, prepare: 1.3, memMiB: 10 };
const SEA = join(ROOT, 'dist', 'sea', 'oz');

// ---------------------------------------------------------------------------------------
// One scratch directory, one key, one environment for oz and the floor alike.

const work = mkdtempSync(join(tmpdir(), 'oz-bench-'));
chmodSync(work, 0o700);
// Servers this run started, stopped whatever way the run ends.
const children = new Set();
let cleaned = false;
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  cleanup();
});
// Measure a copy of this checkout's build, so that a rebuild of dist/ while the benchmark
// runs (tests, another terminal) cannot pull it from under a run.
if (flags.sea) {
  if (!existsSync(SEA)) die('dist/sea/oz is not built: run `npm run build:sea` first');
  OZ = join(work, 'oz-sea');
  cpSync(SEA, OZ);
} else if (!flags.oz) {
  const copy = join(work, 'oz');
  for (const part of ['bin', 'dist', 'package.json']) cpSync(join(ROOT, part), join(copy, part), { recursive: true });
  OZ = join(copy, 'bin', 'oz');
}
const home = join(work, 'home');
const dataDir = join(work, 'data');
mkdirSync(home, { mode: 0o700 });

// A scrubbed environment: no NODE_OPTIONS or anything else of the caller's that would load
// code into one side. PATH starts with this node's directory so that `#!/usr/bin/env node`
// runs the same node for oz and the floor. The run context is what a platform would set,
// and gives oz the claim values the floor signs.
const inherited = { ...process.env };
delete inherited.NODE_OPTIONS;
const baseEnv = {
  ...(flags['inherit-env'] ? inherited : {}),
  PATH: `${dirname(process.execPath)}:${flags['inherit-env'] ? process.env.PATH : '/usr/local/bin:/usr/bin:/bin'}`,
  HOME: flags['inherit-env'] ? process.env.HOME : home,
  LANG: 'C.UTF-8',
  TMPDIR: work,
  OZ_DATA_DIR: dataDir,
  ...RUN_CONTEXT,
};

function run(file, args, env = baseEnv) {
  const r = spawnSync(file, args, { env, encoding: 'utf8' });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: r.error ? r.error.message : (r.stderr ?? ''), status: r.status };
}

const init = run(OZ, ['issuer', 'init']);
if (!init.ok) {
  // An older or newer oz without `issuer init` still creates its key on first use.
  const first = run(OZ, ['federate', 'issue-token', '--audience', 'sts.amazonaws.com']);
  if (!first.ok) die(`oz cannot issue a token here: ${first.stderr.trim() || init.stderr.trim()}`);
}
const stored = JSON.parse(readFileSync(join(dataDir, 'signing-key.json'), 'utf8'));
const keyPem = join(work, 'key.pem');
writeFileSync(keyPem, pemOf(stored), { mode: 0o600 });

const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.trim().split('.')[1], 'base64url').toString('utf8'));
{
  // Like for like: the same claim names and values apart from times and jti.
  const oz = claimsOf(run(OZ, ['federate', 'issue-token', '--audience', 'sts.amazonaws.com']).stdout);
  const fl = claimsOf(run(FLOOR, ['--key', keyPem, '--audience', 'sts.amazonaws.com']).stdout);
  const strip = (c) => JSON.stringify(Object.keys(c).sort().filter((k) => !['iat', 'nbf', 'exp', 'jti'].includes(k)).map((k) => [k, c[k]]));
  if (strip(oz) !== strip(fl)) console.warn(`warning: oz and the floor sign different claims:\n  oz    ${strip(oz)}\n  floor ${strip(fl)}`);
}

// ---------------------------------------------------------------------------------------

const results = { machine: machine(), startup: [], memory: [], serve: undefined, refresher: undefined };
const rows = [];

function machine() {
  const cpu = cpus();
  return {
    node: process.version,
    cpus: cpu.length,
    cpu: cpu[0]?.model ?? 'unknown',
    kernel: release(),
    loadavg: loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}

function die(msg) {
  console.error(`bench: ${msg}`);
  process.exit(1);
}

function cleanup() {
  if (cleaned) return;
  cleaned = true;
  if (!flags.keep) rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}

const fmtMs = (x) => `${x.toFixed(1)} ms`;

function startupCase({ id, title, target, oz, floor }) {
  process.stdout.write(`· ${title}: ${WARMUP} + ${RUNS} interleaved rounds… `);
  const [f, o] = interleave([floor, oz], { warmup: WARMUP, runs: RUNS, engine: ENGINE, scratch: work });
  const ratio = o.median / f.median;
  console.log(`oz ${fmtMs(o.median)}, floor ${fmtMs(f.median)}`);
  results.startup.push({ id, title, target, oz: o, floor: f, ratio, pairedRatio: o.pairedRatio });
  rows.push({
    title,
    oz: `${fmtMs(o.median)} ±${o.mad.toFixed(1)}`,
    floor: `${fmtMs(f.median)} ±${f.mad.toFixed(1)}`,
    ratio: `${ratio.toFixed(3)}× (paired ${o.pairedRatio.toFixed(3)}×)`,
    target: `≤ ${target.toFixed(2)}×`,
    pass: ratio <= target,
  });
}

const jwtPair = {
  oz: { name: 'oz', file: OZ, args: ['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], env: baseEnv, check: (s) => s.split('.').length === 3 },
  floor: { name: 'floor', file: FLOOR, args: ['--key', keyPem, '--audience', 'sts.amazonaws.com'], env: baseEnv, check: (s) => s.split('.').length === 3 },
};

// As Google's libraries run an executable-sourced credential: the command line from the
// credential config, these variables, and the response parsed from stdout.
const gcpEnv = (outputFile) => ({
  ...baseEnv,
  GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: '//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool-1/providers/prov-1',
  GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE: 'urn:ietf:params:oauth:token-type:jwt',
  GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE: '0',
  GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE: outputFile,
});
const gcpOk = (s) => JSON.parse(s).success === true;
// One environment for both (hyperfine runs a round's commands in one): each run replaces the
// cache file atomically, so sharing it changes nothing.
const gcpEnvironment = gcpEnv(join(work, 'gcp-executable-output.json'));
const gcpPair = {
  oz: { name: 'oz', file: OZ, args: ['federate', 'issue-token', '--format', 'gcp'], env: gcpEnvironment, check: gcpOk },
  floor: { name: 'floor', file: FLOOR, args: ['--key', keyPem, '--format', 'gcp'], env: gcpEnvironment, check: gcpOk },
};

const prepareArgs = (dir) => [
  '--aws-role-arn', 'arn:aws:iam::123456789012:role/r',
  '--gcp-project-number', '123', '--gcp-pool-id', 'pool-1', '--gcp-provider-id', 'prov-1',
  '--dir', dir,
];
const prepareOk = (s) => s.includes('AWS_WEB_IDENTITY_TOKEN_FILE') && s.includes('GOOGLE_APPLICATION_CREDENTIALS');
const preparePair = {
  oz: { name: 'oz', file: OZ, args: ['federate', 'prepare', ...prepareArgs(join(work, 'oz-prepared'))], env: baseEnv, check: prepareOk },
  floor: { name: 'floor', file: FLOOR, args: ['--key', keyPem, 'prepare', ...prepareArgs(join(work, 'floor-prepared'))], env: baseEnv, check: prepareOk },
};

const skipped = [];
function skip(title, why) {
  console.log(`· ${title}: not available (${why})`);
  skipped.push(title);
  rows.push({ title, oz: 'n/a', floor: '', ratio: '', target: '', pass: undefined, note: why });
}

console.log(`oz benchmarks — node ${results.machine.node}, ${results.machine.cpus} × ${results.machine.cpu}, Linux ${results.machine.kernel}, load ${results.machine.loadavg}`);
const MiB = (file) => `${(statSync(file).size / 2 ** 20).toFixed(1)} MiB`;
const measured = flags.sea ? `a copy of ${SEA} (single executable, ${MiB(SEA)}; node itself is ${MiB(process.execPath)})` : flags.oz ? OZ : `a copy of ${DEFAULT_OZ} and dist/`;
console.log(`oz: ${measured}; runs timed by ${ENGINE === 'hyperfine' ? 'hyperfine -N --output=pipe, one invocation per round' : "Node's spawnSync (about 2 ms of its own per run, on both sides)"}; ${flags['inherit-env'] ? "this shell's environment" : 'a scrubbed environment'}`);
if (ENGINE === 'spawn') console.log('note: hyperfine is not installed (Debian: apt-get install hyperfine); spawnSync adds the same constant to both sides, which flatters the ratios a little');
if (loadavg()[0] > 0.5 * cpus().length) console.log('note: the machine is busy; ratios hold up better than absolute times, but expect noise');

if (flags.sea) {
  results.sea = { file: SEA, bytes: statSync(SEA).size, nodeBytes: statSync(process.execPath).size };
  rows.push({ title: 'file size, dist/sea/oz', oz: MiB(SEA), floor: `node: ${MiB(process.execPath)}`, ratio: '', target: '', pass: undefined });
}
if (want('jwt')) startupCase({ id: 'jwt', title: 'issue-token --audience (jwt)', target: TARGETS.jwt, ...jwtPair });
if (want('gcp')) startupCase({ id: 'gcp', title: 'issue-token --format gcp', target: TARGETS.gcp, ...gcpPair });
if (want('prepare')) {
  const help = run(OZ, ['federate', 'prepare', '--help']);
  const probe = help.ok ? run(OZ, preparePair.oz.args) : help;
  if (help.ok && probe.ok && prepareOk(probe.stdout)) startupCase({ id: 'prepare', title: 'prepare (AWS + GCP)', target: TARGETS.prepare, ...preparePair });
  else skip('prepare (AWS + GCP)', help.ok ? `it failed: ${probe.stderr.trim().split('\n')[0]}` : '`oz federate prepare --help` failed: the command has not landed');
}

if (want('memory')) {
  if (!haveTimeV()) skip('peak memory', `${TIME_V} not found (Debian: apt-get install time)`);
  else {
    for (const [label, pair] of [['issue-token (jwt)', jwtPair], ['issue-token (gcp)', gcpPair]]) memoryCase(label, pair);
  }
}

if (flags.sea && want('floor-sea')) await floorSeaCase();
if (want('remote') || want('remote-proxy')) await remoteCase();
if (want('refresher')) await refresherCase();
if (want('serve')) await serveCase();

printTable();
if (flags.json) writeFileSync(flags.json, `${JSON.stringify(results, null, 2)}\n`);
cleanup();

// ---------------------------------------------------------------------------------------
// The background refresher of `prepare --refresh`, in its steady state: one process per
// directory that looks at the directory once a second and replaces each token file at 80 % of
// its life. Its resident memory (VmRSS, and the peak VmHWM) comes from /proc/PID/status and
// its CPU time (utime + stime) from /proc/PID/stat, sampled over a window after start-up.
// Tokens of 10 s make it refresh two files every 8 s: busier than any real run (1 h tokens).

async function refresherCase() {
  const title = 'refresher (prepare --refresh), steady state';
  if (!run(OZ, ['federate', 'refresh', '--help']).ok) return skip(title, '`oz federate refresh --help` failed: the command has not landed');
  const window = num(flags['refresher-seconds'], flags.quick ? 20 : 60);
  const dir = join(work, 'refreshed');
  const args = ['federate', 'prepare', '--dir', dir, '--refresh', '--duration', '10s', '--aws-role-arn', 'arn:aws:iam::123456789012:role/bench',
    '--gcp-project-number', '123456789012', '--gcp-pool-id', 'bench-pool', '--gcp-provider-id', 'bench-provider', '--gcp-credential-source', 'file'];
  const p = run(OZ, args);
  if (!p.ok) return skip(title, `prepare --refresh failed: ${p.stderr.trim().split('\n')[0]}`);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  let pid;
  for (let i = 0; i < 100 && !pid; i++) {
    try {
      pid = Number(readFileSync(join(dir, 'oz-refresher.pid'), 'utf8').trim());
    } catch {
      await sleep(100);
    }
  }
  if (!pid) return skip(title, 'no refresher started within 10 s');
  const ticks = 100; // USER_HZ on Linux
  const status = () => {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1]);
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  };
  const cpu = () => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / ticks; // utime, stime (fields 14 and 15)
  };
  const mtimes = () => ['aws-web-identity-token', 'gcp-subject-token'].map((f) => readFileSync(join(dir, f), 'utf8'));
  process.stdout.write(`· ${title}: watching pid ${pid} for ${window} s … `);
  await sleep(3000); // past start-up
  const cpu0 = cpu();
  const t0 = Date.now();
  const rssSamples = [];
  let refreshes = 0;
  let last = mtimes();
  while (Date.now() - t0 < window * 1000) {
    await sleep(1000);
    rssSamples.push(status().rss);
    const now = mtimes();
    refreshes += now.filter((t, i) => t !== last[i]).length;
    last = now;
  }
  const seconds = (Date.now() - t0) / 1000;
  const cpuSeconds = cpu() - cpu0;
  const { hwm } = status();
  rssSamples.sort((a, b) => a - b);
  const rss = rssSamples[Math.floor(rssSamples.length / 2)];
  run(OZ, ['federate', 'cleanup', '--dir', dir]);
  const share = (100 * cpuSeconds) / seconds;
  console.log(`RSS ${(rss / 1024).toFixed(1)} MiB (peak ${(hwm / 1024).toFixed(1)} MiB), CPU ${cpuSeconds.toFixed(2)} s in ${seconds.toFixed(0)} s (${share.toFixed(2)} %), ${refreshes} file refreshes`);
  results.refresher = { pid, windowSeconds: seconds, rssKiB: rss, peakRssKiB: hwm, cpuSeconds, cpuPercent: share, refreshes };
  rows.push({
    title: `${title}, ${seconds.toFixed(0)} s, 10 s tokens`,
    oz: `${(rss / 1024).toFixed(1)} MiB RSS, ${share.toFixed(2)} % CPU`,
    floor: '',
    ratio: '',
    target: '',
    pass: undefined,
  });
}

// ---------------------------------------------------------------------------------------
// The remote token source, the production path: issue-token, --format gcp and prepare beside
// bench/floor-fetch.cjs, which makes the same POST over node:http and prints the token. Both
// ask the same oz issuer serve on loopback. With no proxy the targets hold; through a proxy
// (bench/lib/forward-proxy.cjs, undici doing the proxying) the figures are for context.

function serviceAvailable() {
  const serveHelp = run(OZ, ['issuer', 'serve', '--help']);
  const grantHelp = run(OZ, ['issuer', 'grant-run', '--help']);
  if (!serveHelp.ok || !grantHelp.ok) return { why: `\`oz issuer ${serveHelp.ok ? 'grant-run' : 'serve'} --help\` failed: the command has not landed` };
  const grant = run(OZ, ['issuer', 'grant-run', '--run-id', 'run-1', '--subject', 'user-1', '--teams', 'team-1']);
  if (!grant.ok) return { why: `grant-run failed: ${grant.stderr.trim().split('\n')[0]}` };
  // The per-grant rate limit guards a real service against a runaway sandbox; here one grant
  // stands for many runs, so it is turned off to measure what the service can do.
  const serveArgs = ['issuer', 'serve', '--host', '127.0.0.1', '--port', '0'];
  if (serveHelp.stdout.includes('--rate-limit')) serveArgs.push('--rate-limit', '0');
  return { runToken: grant.stdout.trim().split('\n').pop(), serveArgs };
}

/**
 * Context for --sea: the floor program itself as a single executable with a startup snapshot
 * (node:crypto, node:fs, node:os and node:net loaded, then the floor run as the deserialised
 * main function), built the way build-sea.mjs builds oz, against the floor as usual.
 * It is what a single executable gains on this machine for the same work.
 */
async function floorSeaCase() {
  const title = 'context: the floor as a single executable, issue-token';
  const dir = join(work, 'floor-sea');
  mkdirSync(dir);
  const source = readFileSync(FLOOR, 'utf8').replace(/^#!.*\n/, '');
  writeFileSync(
    join(dir, 'main.cjs'),
    "for (const m of ['node:crypto', 'node:fs', 'node:os', 'node:net']) require(m);\n" +
      `require('node:v8').startupSnapshot.setDeserializeMainFunction(() => {\n${source}\n});\n`,
  );
  writeFileSync(join(dir, 'sea.json'), JSON.stringify({ main: join(dir, 'main.cjs'), output: join(dir, 'blob'), useSnapshot: true, disableExperimentalSEAWarning: true }));
  const made = spawnSync(process.execPath, ['--experimental-sea-config', join(dir, 'sea.json')], { encoding: 'utf8' });
  if (made.status !== 0) return skip(title, `the snapshot failed: ${made.stderr.trim().split('\n').pop()}`);
  const exe = join(dir, 'floor');
  cpSync(process.execPath, exe);
  chmodSync(exe, 0o755);
  const { inject } = createRequire(join(ROOT, 'package.json'))('postject');
  const { log, warn } = console;
  console.log = console.warn = () => {};
  try {
    await inject(exe, 'NODE_SEA_BLOB', readFileSync(join(dir, 'blob')), { sentinelFuse: 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2' });
  } finally {
    console.log = log;
    console.warn = warn;
  }
  const sea = { ...jwtPair.floor, name: 'floor (single executable)', file: exe };
  process.stdout.write(`· ${title}: ${WARMUP} + ${RUNS} interleaved rounds… `);
  const [f, o] = interleave([jwtPair.floor, sea], { warmup: WARMUP, runs: RUNS, engine: ENGINE, scratch: work });
  console.log(`floor as a single executable ${fmtMs(o.median)}, floor ${fmtMs(f.median)}`);
  results.startup.push({ id: 'floor-sea', title, oz: o, floor: f, ratio: o.median / f.median, pairedRatio: o.pairedRatio });
  rows.push({
    title: `${title}`,
    oz: `${fmtMs(o.median)} ±${o.mad.toFixed(1)}`,
    floor: `${fmtMs(f.median)} ±${f.mad.toFixed(1)}`,
    ratio: `${(o.median / f.median).toFixed(3)}× (paired ${o.pairedRatio.toFixed(3)}×)`,
    target: '',
    pass: undefined,
  });
}

async function remoteCase() {
  const title = 'remote token source';
  const svc = serviceAvailable();
  if (svc.why) return skip(title, svc.why);
  const server = await startServer(OZ, svc.serveArgs, join(work, 'remote-serve.log'));
  try {
    const env = { ...baseEnv, OZ_RUN_TOKEN: svc.runToken, OZ_TOKEN_URL: `${server.url}/v1/token` };
    // The floor for all three: one POST /v1/token over node:http, print the token. It runs in
    // oz's environment (hyperfine gives a round's commands one), whose other variables it ignores.
    const floor = (oz) => ({ name: 'floor', file: FETCH_FLOOR, args: ['--audience', 'sts.amazonaws.com'], env: oz.env, check: isJwt });
    const cases = remoteCases(env, 'remote-prepared');
    if (want('remote')) {
      startupCase({ id: 'remote-jwt', title: 'remote issue-token --audience (jwt)', target: 1.25, oz: cases.jwt, floor: floor(cases.jwt) });
      startupCase({ id: 'remote-gcp', title: 'remote issue-token --format gcp', target: 1.25, oz: cases.gcp, floor: floor(cases.gcp) });
      startupCase({ id: 'remote-prepare', title: 'remote prepare (AWS + GCP)', target: 1.4, oz: cases.prepare, floor: floor(cases.prepare) });
      if (!haveTimeV()) skip('peak memory, remote', `${TIME_V} not found (Debian: apt-get install time)`);
      else memoryCase('remote issue-token (jwt)', { floor: floor(cases.jwt), oz: cases.jwt });
    }
    if (want('remote-proxy')) {
      // undici does the proxying: figures for context, no target.
      const proxy = await startServer(join(HERE, 'lib', 'forward-proxy.cjs'), [], join(work, 'forward-proxy.log'));
      try {
        const proxied = remoteCases({ ...env, HTTP_PROXY: proxy.url }, 'remote-proxied-prepared');
        for (const [id, label] of [['jwt', 'issue-token (jwt)'], ['gcp', 'issue-token --format gcp'], ['prepare', 'prepare (AWS + GCP)']]) {
          contextCase({ id: `remote-proxy-${id}`, title: `remote ${label} through a proxy`, oz: proxied[id], floor: floor(proxied[id]) });
        }
      } finally {
        await proxy.stop();
      }
    }
  } finally {
    await server.stop();
  }
}

function memoryCase(label, pair) {
  process.stdout.write(`· peak memory, ${label}: ${MEM_RUNS} interleaved runs each under ${TIME_V} -v… `);
  const [f, o] = interleaveRss([pair.floor, pair.oz], { runs: MEM_RUNS });
  const diffMiB = (o.median - f.median) / 1024;
  console.log(`oz ${(o.median / 1024).toFixed(1)} MiB, floor ${(f.median / 1024).toFixed(1)} MiB`);
  results.memory.push({ label, ozKiB: o.samples, floorKiB: f.samples, diffMiB });
  rows.push({
    title: `peak RSS, ${label}`,
    oz: `${(o.median / 1024).toFixed(1)} MiB`,
    floor: `${(f.median / 1024).toFixed(1)} MiB`,
    ratio: `${diffMiB >= 0 ? '+' : ''}${diffMiB.toFixed(1)} MiB`,
    target: `≤ +${TARGETS.memMiB} MiB`,
    pass: diffMiB <= TARGETS.memMiB,
  });
}

function isJwt(s) {
  return s.trim().split('.').length === 3;
}

function remoteCases(env, dir) {
  const gcpEnvRemote = { ...gcpEnv(join(work, `${dir}-gcp-output.json`)), OZ_RUN_TOKEN: env.OZ_RUN_TOKEN, OZ_TOKEN_URL: env.OZ_TOKEN_URL, ...(env.HTTP_PROXY ? { HTTP_PROXY: env.HTTP_PROXY } : {}) };
  return {
    jwt: { name: 'oz', file: OZ, args: ['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], env, check: isJwt },
    gcp: { name: 'oz', file: OZ, args: ['federate', 'issue-token', '--format', 'gcp'], env: gcpEnvRemote, check: gcpOk },
    prepare: { name: 'oz', file: OZ, args: ['federate', 'prepare', ...prepareArgs(join(work, dir))], env, check: prepareOk },
  };
}

/** Side by side like startupCase, with no target. */
function contextCase({ id, title, oz, floor }) {
  const runs = Math.max(5, Math.round(RUNS / 3));
  process.stdout.write(`· ${title} (context): ${WARMUP} + ${runs} interleaved rounds… `);
  const [f, o] = interleave([floor, oz], { warmup: WARMUP, runs, engine: ENGINE, scratch: work });
  console.log(`oz ${fmtMs(o.median)}, floor ${fmtMs(f.median)}`);
  results.startup.push({ id, title, oz: o, floor: f, ratio: o.median / f.median, pairedRatio: o.pairedRatio });
  rows.push({
    title: `${title} (context)`,
    oz: `${fmtMs(o.median)} ±${o.mad.toFixed(1)}`,
    floor: `${fmtMs(f.median)} ±${f.mad.toFixed(1)}`,
    ratio: `${(o.median / f.median).toFixed(3)}× (paired ${o.pairedRatio.toFixed(3)}×)`,
    target: '',
    pass: undefined,
  });
}

// ---------------------------------------------------------------------------------------
// The token service: oz issuer serve under 32 keep-alive connections, beside the floor's
// signing rate with 32 signatures in flight, measured right before and right after.

async function serveCase() {
  const title = 'token service POST /v1/token';
  const svc = serviceAvailable();
  if (svc.why) return skip(title, svc.why);
  const runToken = svc.runToken;

  let autocannon;
  try {
    autocannon = createRequire(import.meta.url)('autocannon');
  } catch {
    return skip(title, 'autocannon is not installed (npm ci installs it as a devDependency)');
  }

  const floorRate = () => {
    const r = run(FLOOR, ['--key', keyPem, '--rate', '--inflight', '32', '--seconds', String(Math.max(2, Math.round(SECONDS / 2)))]);
    if (!r.ok) die(`floor --rate failed: ${r.stderr}`);
    return Number(r.stdout.trim());
  };

  const body = JSON.stringify({ audience: 'sts.amazonaws.com', duration_seconds: 900 });
  const load = async (url, bearer, seconds) => {
    // One request first: a wrong answer should say why, not show up as a million non-2xx.
    const probe = await fetch(`${url}/v1/token`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body,
    });
    const text = await probe.text();
    if (probe.status !== 200 || !JSON.parse(text).token) throw new Error(`POST /v1/token answered ${probe.status}: ${text.slice(0, 300)}`);
    const opts = {
      url: `${url}/v1/token`,
      method: 'POST',
      connections: 32,
      pipelining: 1,
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body,
    };
    await autocannon({ ...opts, duration: 1 }); // warm-up: JIT, connection set-up
    return autocannon({ ...opts, duration: seconds });
  };

  process.stdout.write(`· ${title}: floor --rate, ${SECONDS} s of autocannon -c 32, floor --rate… `);
  const before = floorRate();
  const server = await startServer(OZ, svc.serveArgs, join(work, 'serve.log'));
  let ac;
  try {
    ac = await load(server.url, runToken, SECONDS);
  } catch (e) {
    await server.stop();
    return skip(title, `load failed: ${e.message}`);
  }
  await server.stop();
  const after = floorRate();
  const floor = (before + after) / 2;
  const rps = ac.requests.average;
  const bad = ac.errors + ac.timeouts + ac.non2xx;
  console.log(`oz ${rps.toFixed(0)} req/s (p99 ${ac.latency.p99} ms), floor ${before}/${after} tokens/s`);

  // Context: the least an HTTP token service does on this machine, under the same load.
  process.stdout.write('· floor HTTP token service (context)… ');
  const floorServer = await startServer(FLOOR, ['--key', keyPem, '--serve'], join(work, 'floor-serve.log'));
  const floorBearer = run(FLOOR, ['--key', keyPem, '--audience', 'oz-run']).stdout.trim();
  const fac = await load(floorServer.url, floorBearer, SECONDS);
  await floorServer.stop();
  console.log(`${fac.requests.average.toFixed(0)} req/s (p99 ${fac.latency.p99} ms)`);

  results.serve = {
    oz: summarise(ac),
    floorRate: { before, after },
    floorHttp: summarise(fac),
    ratio: rps / floor,
  };
  rows.push({
    title: `${title} (req/s)`,
    oz: `${rps.toFixed(0)} req/s`,
    floor: `${floor.toFixed(0)} tok/s`,
    ratio: `${(rps / floor).toFixed(3)}×`,
    target: '≥ 0.70×',
    pass: rps / floor >= 0.7,
  });
  rows.push({
    title: `${title} (p99, errors)`,
    oz: `p99 ${ac.latency.p99} ms, ${bad} bad`,
    floor: '',
    ratio: '',
    target: '< 50 ms, 0',
    pass: ac.latency.p99 < 50 && bad === 0,
  });
  rows.push({
    title: 'floor HTTP token service (context)',
    oz: '',
    floor: `${fac.requests.average.toFixed(0)} req/s, p99 ${fac.latency.p99} ms`,
    ratio: `${(fac.requests.average / floor).toFixed(3)}×`,
    target: '',
    pass: undefined,
  });
}

function summarise(r) {
  return {
    requestsPerSecond: r.requests.average,
    latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max },
    total: r.requests.total,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    duration: r.duration,
  };
}

/** Start a server that prints its URL as the first line of stdout; its stderr goes to a log file. */
function startServer(file, args, logFile) {
  return new Promise((resolveStart, rejectStart) => {
    writeFileSync(logFile, '');
    const log = openSync(logFile, 'a');
    const child = spawn(file, args, { env: baseEnv, stdio: ['ignore', 'pipe', log] });
    children.add(child);
    let buf = '';
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      rejectStart(new Error(`${file} ${args.join(' ')} printed no URL within 10 s; see ${logFile}`));
    }, 10_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      rejectStart(new Error(`${file} ${args.join(' ')} exited (${code}): ${readFileSync(logFile, 'utf8').slice(0, 400)}`));
    });
    child.stdout.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      const url = /https?:\/\/\S+/.exec(buf.slice(0, nl))?.[0]?.replace(/\/+$/, '');
      if (!url) return rejectStart(new Error(`unexpected first line from ${file}: ${buf.slice(0, nl)}`));
      child.stdout.resume();
      child.removeAllListeners('exit');
      resolveStart({
        url,
        stop: () =>
          new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 5000).unref();
          }),
      });
    });
  });
}

function printTable() {
  const head = ['case', 'oz (median)', 'floor (median)', 'oz / floor', 'target', ''];
  const body = rows.map((r) => [r.title, r.oz, r.floor, r.ratio, r.target, r.pass === undefined ? (r.note ? 'skipped' : '') : r.pass ? 'pass' : 'FAIL']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  console.log();
  console.log(line(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const b of body) console.log(line(b));
  console.log();
  console.log(
    `Start-up: ${RUNS} rounds after ${WARMUP} warm-up rounds, oz and the floor alternating (A B, B A, …), wall time from exec to exit (${ENGINE}); ± is the median absolute deviation. ` +
      `"paired" is the median of each round's oz/floor ratio. Memory: median peak RSS over ${MEM_RUNS} runs each. ` +
      `Token service: autocannon, 32 connections, pipelining 1, ${SECONDS} s, against the floor's signatures/s with 32 in flight (mean of the runs before and after).`,
  );
  if (skipped.length) console.log(`Not measured: ${skipped.join('; ')}.`);
}
