#!/usr/bin/env node
// The availability figures of the README: `oz issuer serve` on loopback under a pipelining flood
// (connections that each write many pipelined GETs of the JWKS in one write and never read),
// with good requests (a JWKS GET, a token POST) on fresh connections meanwhile. Bounded: it
// floods for --seconds, opens at most 20 × --connections connections, then stops the server.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseFlags } from './lib/flags.mjs';
import { flood, memoryOf, mib, probe, watch } from './lib/flood.mjs';
import { quantile } from './lib/measure.mjs';

const args = parseFlags(
  {
    connections: { type: 'string', default: '300' },
    pipeline: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '5' },
    oz: { type: 'string', default: resolve(import.meta.dirname, '../bin/oz') },
    'serve-arg': { type: 'string', multiple: true, default: [] },
    json: { type: 'boolean', default: false },
  },
  'usage: node bench/flood.mjs [--connections 300] [--pipeline 2000] [--seconds 5] [--oz PATH] [--serve-arg ARG]... [--json]',
);

const home = mkdtempSync(join(tmpdir(), 'oz-flood-'));
const env = { PATH: process.env.PATH, HOME: home, OZ_DATA_DIR: join(home, 'data'), TMPDIR: home, LANG: 'C.UTF-8' };
const logFile = join(home, 'serve.log');
const child = spawn(args.oz, ['issuer', 'serve', '--port', '0', ...args['serve-arg']], { env, stdio: ['ignore', 'pipe', openSync(logFile, 'w')] });
try {
  const url = await new Promise((res, rej) => {
    let out = '';
    const early = (code) => rej(new Error(`oz issuer serve exited with ${code}: ${readFileSync(logFile, 'utf8')}`));
    child.once('exit', early);
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      if (!out.includes('\n')) return;
      child.off('exit', early);
      res(out.split('\n')[0]);
    });
  });
  const grant = spawnSync(args.oz, ['issuer', 'grant-run', '--run-id', 'flood', '--subject', 'flood', '--max-duration', '1h'], {
    env: { ...env, OZ_ISSUER_URL: url },
    encoding: 'utf8',
  });
  if (grant.status !== 0) throw new Error(`grant-run failed: ${grant.stderr}`);
  const runToken = grant.stdout.trim();
  const cpuSeconds = () => {
    const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  };
  const before = memoryOf(child.pid);
  const cpuBefore = cpuSeconds();
  const good = {
    jwks: () => probe(`${url}/.well-known/jwks.json`),
    token: () =>
      probe(`${url}/v1/token`, {
        method: 'POST',
        headers: { authorization: `Bearer ${runToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ audience: 'sts.amazonaws.com' }),
      }),
  };
  const connections = Number(args.connections);
  const watched = await watch(child.pid, good, flood({ url, connections, pipeline: Number(args.pipeline), seconds: Number(args.seconds) }));
  const during = memoryOf(child.pid);
  const serverCpuSeconds = cpuSeconds() - cpuBefore;
  // After the flood: does it still serve?
  const after = { jwks: await good.jwks(), token: await good.token() };
  const logLines = readFileSync(logFile, 'utf8').split('\n').length - 1;
  const summary = (rs) => {
    const ok = rs.filter((r) => r.status === 200);
    const ms = ok.map((r) => r.ms);
    return { requests: rs.length, ok: ok.length, p50Ms: quantile(ms, 0.5), p99Ms: quantile(ms, 0.99), maxMs: Math.max(...rs.map((r) => r.ms)) };
  };
  const figures = {
    flood: { connections, pipeline: Number(args.pipeline), seconds: Number(args.seconds), ...watched.value },
    rssBefore: before.rss,
    rssPeakDuringFlood: during.peak,
    rssMaxSampled: Math.max(...watched.samples),
    serverCpuSeconds,
    good: { jwks: summary(watched.results.jwks), token: summary(watched.results.token) },
    servesAfter: after.jwks.status === 200 && after.token.status === 200,
    accessLogLines: logLines,
  };
  if (args.json) console.log(JSON.stringify(figures, null, 2));
  else {
    const f = figures.flood;
    console.log(`flood: ${f.connections} connections × ${f.pipeline} pipelined GETs for ${f.seconds} s: ${f.opened} opened, ${f.cutByServer} cut by the server, ${f.refused} refused, at most ${f.peakOpen} open at once`);
    console.log(`server RSS: ${mib(figures.rssBefore)} before, peak ${mib(figures.rssPeakDuringFlood)} (VmHWM); CPU during the flood ${serverCpuSeconds.toFixed(2)} s`);
    for (const [k, s] of Object.entries(figures.good)) {
      console.log(`good ${k} requests during the flood: ${s.ok}/${s.requests} answered 200, p50 ${s.p50Ms?.toFixed(1)} ms, p99 ${s.p99Ms?.toFixed(1)} ms, slowest ${s.maxMs.toFixed(1)} ms`);
    }
    console.log(`after the flood: ${figures.servesAfter ? 'serving' : `NOT serving (${JSON.stringify(after)})`}; access log: ${logLines} lines`);
  }
} finally {
  child.kill('SIGKILL');
  rmSync(home, { recursive: true, force: true });
}
