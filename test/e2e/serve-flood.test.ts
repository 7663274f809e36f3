import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { oz, scrubbedEnv, tempDir } from '../helpers/oz.js';
import { serve, type Served } from '../helpers/serve.js';
import { flood, memoryOf, mib, probe, watch, type ProbeResult } from '../../bench/lib/flood.mjs';

/**
 * Availability of `oz issuer serve` under an unauthenticated flood (issue #9): connections that
 * each pipeline thousands of GETs in one write and read the answers slowly once grew the server
 * to gigabytes and held good requests for seconds. Loopback only, bounded in count and time.
 */

let env: Record<string, string>;
let server: Served | undefined;
beforeEach(() => {
  env = scrubbedEnv(tempDir());
});
afterEach(async () => {
  await server?.stop('SIGKILL');
  server = undefined;
});

const JWKS = '/.well-known/jwks.json';

async function runToken(url: string): Promise<string> {
  const g = await oz(['issuer', 'grant-run', '--run-id', 'run-flood', '--subject', 'user-1', '--max-duration', '1h'], { env: { ...env, OZ_ISSUER_URL: url } });
  expect(g.code).toBe(0);
  return g.stdout.trim();
}

function tokenRequest(url: string, token: string): Promise<ProbeResult> {
  return probe(`${url}/v1/token`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ audience: 'sts.amazonaws.com' }),
    timeoutMs: 8000,
  });
}

function summary(rs: ProbeResult[]): string {
  const ms = rs.map((r) => r.ms).sort((a, b) => a - b);
  return `${rs.filter((r) => r.status === 200).length}/${rs.length} answered 200, median ${ms[Math.floor(ms.length / 2)]?.toFixed(0)} ms, slowest ${ms.at(-1)?.toFixed(0)} ms`;
}

describe('oz issuer serve under a pipelining flood', () => {
  it('300 connections × 2000 pipelined GETs, read slowly, for 4 s: memory stays bounded and good requests keep succeeding', async () => {
    server = await serve(env);
    const { url } = server;
    const pid = server.child.pid!;
    const token = await runToken(url);
    const before = memoryOf(pid);

    const watched = await watch(
      pid,
      { jwks: () => probe(`${url}${JWKS}`, { timeoutMs: 8000 }), token: () => tokenRequest(url, token) },
      flood({ url, connections: 300, pipeline: 2000, seconds: 4, maxTotal: 6000 }),
    );
    const { peak } = memoryOf(pid);
    const stats = watched.value;
    const logLines = server.stderr().split('\n').length - 1;
    console.log(
      [
        `flood: ${stats.opened} connections opened (at most ${stats.peakOpen} at once), ${stats.cutByServer} cut off by the server`,
        `server RSS: ${mib(before.rss)} before, peak ${mib(peak)} during the flood`,
        `good JWKS requests during the flood: ${summary(watched.results.jwks!)}`,
        `good token requests during the flood: ${summary(watched.results.token!)}`,
        `access log: ${logLines} lines`,
      ].join('\n'),
    );

    expect(peak).toBeLessThan(300 * 1024 * 1024);
    for (const kind of ['jwks', 'token']) {
      const results = watched.results[kind]!;
      expect(results.length).toBeGreaterThan(0);
      // Each one answered, 200, within its 8 s bound: none timed out or was refused.
      expect(results.filter((r) => r.status !== 200).map((r) => r.error ?? r.status)).toEqual([]);
    }
    // The flooding connections were cut off, not served: a thousand lines a second at most.
    expect(stats.cutByServer).toBeGreaterThan(0);
    expect(logLines).toBeLessThan(1000 * 8);

    // And after the flood, it serves as before.
    const jwks = await probe(`${url}${JWKS}`);
    expect(jwks.status).toBe(200);
    expect(JSON.parse(jwks.body!).keys).toHaveLength(1);
    expect((await tokenRequest(url, token)).status).toBe(200);
  }, 30_000);

  it('answers 16 pipelined requests in order; cuts off a connection that pipelines more, without answering them all', async () => {
    server = await serve(env);
    const { port } = new URL(server.url);
    const pipelined = async (n: number) => {
      const s = connect(Number(port), '127.0.0.1');
      s.on('error', () => {});
      let text = '';
      s.setEncoding('latin1').on('data', (d: string) => (text += d));
      await new Promise((r) => s.once('connect', r));
      // The last one asks to close, so that the connection ends once all are answered.
      s.write(`GET ${JWKS} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(n - 1) + `GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      await new Promise((r) => s.once('close', r));
      return text.match(/HTTP\/1\.1 \d{3}/g) ?? [];
    };
    expect(await pipelined(16)).toEqual([...Array(15).fill('HTTP/1.1 200'), 'HTTP/1.1 404']);
    const cut = await pipelined(2000);
    expect(cut.length).toBeLessThanOrEqual(16);
    expect(cut).not.toContain('HTTP/1.1 404');
    // Still serving.
    expect((await probe(`${server.url}${JWKS}`)).status).toBe(200);
  });

  it('--max-connections: past it a connection is closed at once, and the idle ones make room', async () => {
    server = await serve(env, ['--max-connections', '4']);
    const { url } = server;
    const { port } = new URL(url);
    const held: Socket[] = [];
    // Four keep-alive connections, each idle after one answered request.
    for (let i = 0; i < 4; i++) {
      const s = connect(Number(port), '127.0.0.1');
      s.on('error', () => {});
      await new Promise((r) => s.once('connect', r));
      s.write(`GET ${JWKS} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      await new Promise((r) => s.once('data', r));
      held.push(s);
    }
    const closed = Promise.all(held.map((s) => new Promise((r) => s.once('close', r)))).then(() => 'closed');
    const refused = await probe(`${url}${JWKS}`, { timeoutMs: 5000 });
    expect(refused.status).toBeUndefined();
    expect(refused.error).toMatch(/socket hang up|ECONNRESET/);
    // Idle, they made room when the fifth was refused (not 65 s later, at the keep-alive
    // timeout), and the next client is served.
    expect(await Promise.race([closed, new Promise((r) => setTimeout(r, 5000, 'still open'))])).toBe('closed');
    expect((await probe(`${url}${JWKS}`)).status).toBe(200);
    expect(server.stderr()).toMatch(/connection refused: 4 connections held/);
    expect(server.stderr()).toMatch(/at most 4 connections/);
  });

  it.each(['0', '-1', 'many', '1.5'])('--max-connections %s is a usage error', async (n) => {
    const r = await oz(['issuer', 'serve', '--port', '0', '--max-connections', n], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`invalid --max-connections "${n}": expected a whole number of connections, at least 1`);
  });
});
