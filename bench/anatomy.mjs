#!/usr/bin/env node
// Where the start-up time of `oz federate issue-token` goes, beside the floor: which of Node's
// built-in modules and which files each loads, and a CPU profile (node --cpu-prof, averaged
// over several runs) grouped by kind of work. An analysis aid for the README's Performance section; it times
// nothing that bench/run.mjs reports (a profiled run is slower than a plain one).
//
//   node bench/anatomy.mjs [--runs 15] [--oz PATH] [--format gcp]
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFlags } from './lib/flags.mjs';
import { pemOf, RUN_CONTEXT } from './lib/measure.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const flags = parseFlags({ runs: { type: 'string' }, oz: { type: 'string' }, format: { type: 'string' } }, 'usage: node bench/anatomy.mjs [--runs 15] [--oz PATH] [--format gcp]');
const RUNS = Number(flags.runs ?? 15);
const OZ = flags.oz ? resolve(flags.oz) : join(HERE, '..', 'bin', 'oz');
const FLOOR = join(HERE, 'floor-sign.cjs');
const gcp = flags.format === 'gcp';

const work = mkdtempSync(join(tmpdir(), 'oz-anatomy-'));
chmodSync(work, 0o700);
const env = {
  PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
  HOME: work,
  LANG: 'C.UTF-8',
  OZ_DATA_DIR: join(work, 'data'),
  ...RUN_CONTEXT,
  ...(gcp
    ? {
        GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: '//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool-1/providers/prov-1',
        GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE: 'urn:ietf:params:oauth:token-type:jwt',
        GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE: '0',
        GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE: join(work, 'out.json'),
      }
    : {}),
};
if (spawnSync(OZ, ['issuer', 'init'], { env }).status !== 0) spawnSync(OZ, ['federate', 'issue-token', '--audience', 'x'], { env });
const keyPem = join(work, 'key.pem');
writeFileSync(keyPem, pemOf(JSON.parse(readFileSync(join(env.OZ_DATA_DIR, 'signing-key.json'), 'utf8'))), { mode: 0o600 });

const sides = [
  { name: 'floor', file: FLOOR, args: ['--key', keyPem, ...(gcp ? ['--format', 'gcp'] : ['--audience', 'sts.amazonaws.com'])] },
  { name: 'oz', file: OZ, args: ['federate', 'issue-token', ...(gcp ? ['--format', 'gcp'] : ['--audience', 'sts.amazonaws.com'])] },
];

// What a run loads: built-ins from process.moduleLoadList, files from the CommonJS cache and,
// when the ESM loader ran, from its resolutions (--experimental-loader is avoided: it would
// add a thread). Written to fd 3's file at exit.
const preload = join(work, 'preload.cjs');
writeFileSync(
  preload,
  `const base = new Set(process.moduleLoadList);
process.on('exit', () => {
  const added = process.moduleLoadList.filter((m) => !base.has(m) && m.startsWith('NativeModule ')).map((m) => m.slice(13));
  require('node:fs').writeFileSync(process.env.OZ_ANATOMY_OUT, JSON.stringify({ builtins: added, files: Object.keys(require.cache) }));
});
`,
);

function loads(side) {
  const out = join(work, `${side.name}-loads.json`);
  const r = spawnSync(side.file, side.args, { env: { ...env, NODE_OPTIONS: `--require ${preload}`, OZ_ANATOMY_OUT: out }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${side.name}: ${r.stderr}`);
  const data = JSON.parse(readFileSync(out, 'utf8'));
  data.files = data.files.filter((f) => f !== preload);
  return data;
}

// A self-time frame's kind of work.
function kind(frame) {
  const { functionName: fn, url } = frame.callFrame;
  if (fn === '(idle)' || fn === '(program)' || fn === '(garbage collector)' || fn === '(root)') return fn;
  if (url.includes('internal/modules/esm/') || fn === 'compileSourceTextModule') return 'ESM loader';
  if (fn === 'compileForInternalLoader') return "compiling Node's own JS";
  if (fn === 'wrapSafe' || fn === 'compileFunction') return 'compiling the program (CommonJS)';
  if (['createPrivateKey', 'signOneShot', 'randomUUID', 'getHexBytes', 'secureBuffer'].includes(fn)) return 'crypto (key parse, sign, random)';
  if (url.startsWith('file://') || url.startsWith('/')) return 'the program itself';
  if (url.startsWith('node:internal/modules/')) return 'CommonJS loader';
  return 'Node runtime (other)';
}

function profile(side) {
  const dir = join(work, `${side.name}-prof`);
  mkdirSync(dir);
  for (let i = 0; i < RUNS; i++) {
    const r = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval', '50', side.file, ...side.args], { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${side.name}: ${r.stderr}`);
  }
  const byKind = new Map();
  let span = 0;
  const files = readdirSync(dir);
  for (const f of files) {
    const p = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    span += (p.endTime - p.startTime) / 1000;
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    p.samples.forEach((id, i) => {
      const k = kind(nodes.get(id));
      byKind.set(k, (byKind.get(k) ?? 0) + (p.timeDeltas[i + 1] ?? 0) / 1000);
    });
  }
  for (const [k, v] of byKind) byKind.set(k, v / files.length);
  return { byKind, span: span / files.length };
}

const size = (f) => {
  try {
    return statSync(f).size;
  } catch {
    return 0;
  }
};

console.log(`start-up anatomy: ${gcp ? 'issue-token --format gcp' : 'issue-token --audience'}, node ${process.version}, ${RUNS} profiled runs each\n`);
const seen = sides.map(loads);
const [floorLoads, ozLoads] = seen;
const onlyOz = ozLoads.builtins.filter((b) => !floorLoads.builtins.includes(b));
const onlyFloor = floorLoads.builtins.filter((b) => !ozLoads.builtins.includes(b));
console.log(`built-in modules loaded: floor ${floorLoads.builtins.length}, oz ${ozLoads.builtins.length}`);
console.log(`  only oz:    ${onlyOz.join(' ') || '—'}`);
console.log(`  only floor: ${onlyFloor.join(' ') || '—'}`);
for (const [i, s] of sides.entries()) {
  const files = seen[i].files;
  const total = files.reduce((a, f) => a + size(f), 0);
  console.log(`CommonJS files loaded by ${s.name}: ${files.length}, ${(total / 1024).toFixed(1)} KiB: ${files.map((f) => `${f.split('/').slice(-2).join('/')} (${(size(f) / 1024).toFixed(1)})`).join(', ')}`);
}
if (ozLoads.builtins.some((b) => b.startsWith('internal/modules/esm/loader'))) {
  console.log('oz started the ESM loader (its files are not listed above)');
}

const profiles = sides.map(profile);
const kinds = [...new Set(profiles.flatMap((p) => [...p.byKind.keys()]))].sort(
  (a, b) => (profiles[1].byKind.get(b) ?? 0) - (profiles[0].byKind.get(b) ?? 0) - ((profiles[1].byKind.get(a) ?? 0) - (profiles[0].byKind.get(a) ?? 0)),
);
console.log(`\nCPU profile, mean ms per run by kind of work (profiled: slower than a plain run)`);
console.log(`${'kind'.padEnd(36)} ${'floor'.padStart(7)} ${'oz'.padStart(7)} ${'oz-floor'.padStart(9)}`);
for (const k of kinds) {
  const f = profiles[0].byKind.get(k) ?? 0;
  const o = profiles[1].byKind.get(k) ?? 0;
  console.log(`${k.padEnd(36)} ${f.toFixed(2).padStart(7)} ${o.toFixed(2).padStart(7)} ${(o - f >= 0 ? '+' : '') + (o - f).toFixed(2).padStart(8)}`);
}
console.log(`${'profile span'.padEnd(36)} ${profiles[0].span.toFixed(2).padStart(7)} ${profiles[1].span.toFixed(2).padStart(7)}`);
rmSync(work, { recursive: true, force: true });
