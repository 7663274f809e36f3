import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { decode, oz, run, scrubbedEnv, tempDir } from '../helpers/oz.js';
import { OZ_BIN_IS_SINGLE_FILE } from '../helpers/oz.js';
import { useTokenService, GCP_AUD, grant, sandbox, problem } from '../helpers/token-service.js';
// The benchmark's proxy, so that the proxied path is tested through the one it is timed through.
import { forwardProxy as loopbackProxy } from '../../bench/lib/forward-proxy.cjs';

/**
 * The sandbox's client against misbehaving services (503s, 429s, a dead port, a service that
 * never answers, a forward proxy): small servers in this process, all on 127.0.0.1.
 */

const ts = useTokenService();

// ---------------------------------------------------------------------------------------
// A client that survives a bad network: scripted services, a dead port, a hang, a proxy.

interface Recorded {
  /** The client's port: the same for requests on one kept-alive connection. */
  port: number | undefined;
  method: string;
  url: string;
  authorization: string | undefined;
  body: string;
}

type Script = (n: number, body: Record<string, unknown>) => { status: number; headers?: Record<string, string>; body?: unknown };

const servers: { close(): void }[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function listen(server: Server | ReturnType<typeof createNetServer>): Promise<number> {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
}

/** A token service that answers from a script, recording every request. */
async function scripted(script: Script): Promise<{ url: string; requests: Recorded[] }> {
  const requests: Recorded[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      requests.push({ port: req.socket.remotePort, method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body });
      const answer = script(requests.length, JSON.parse(body || '{}'));
      const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body ?? {});
      res.writeHead(answer.status, { 'content-type': answer.status === 200 ? 'application/json' : 'application/problem+json', ...answer.headers });
      res.end(text);
    });
  });
  const port = await listen(server);
  servers.push({ close: () => server.close() });
  return { url: `http://127.0.0.1:${port}/v1/token`, requests };
}

/** What a token service answers: a JWT-shaped token for the audience asked for. */
function tokenAnswer(body: Record<string, unknown>) {
  const exp = Math.floor(Date.now() / 1000) + 600;
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return { status: 200, body: { token: `${part({ alg: 'RS256', typ: 'JWT', kid: 'k' })}.${part({ sub: 'user-7', aud: body.audience, exp })}.c2ln`, expires_at: new Date(exp * 1000).toISOString() } };
}

const problemBody = (status: number, title: string, detail: string, type = 'about:blank') => ({ type, title, status, detail });

/** A sandbox pointed at `tokenUrl`, with a real (unexpired) run token. */
async function clientEnvDirect(tokenUrl: string, extra: Record<string, string> = {}) {
  return sandbox(await grant(), { OZ_TOKEN_URL: tokenUrl, ...extra }).env;
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t = Date.now();
  const r = await f();
  return [r, Date.now() - t];
}

/** A forward proxy on loopback that records what it is asked and refuses anything off loopback. */
async function forwardProxy(): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  const proxy = loopbackProxy((line) => seen.push(line));
  const port = await listen(proxy);
  servers.push({ close: () => proxy.close() });
  return { url: `http://127.0.0.1:${port}`, seen };
}


/**
 * Everything above the transport runs over both: node:http when no proxy applies, undici when
 * one does. `via` adds what routes a sandbox one way or the other.
 */
const ROUTES: [string, boolean, () => Promise<Record<string, string>>][] = [
  ['direct (node:http)', true, async () => ({})],
  ['through a proxy (undici)', false, async () => ({ HTTP_PROXY: (await forwardProxy()).url })],
];

describe.each(ROUTES)('the client retries what may pass, and only that: %s', (_route, direct, via) => {
  const clientEnv = async (tokenUrl: string, extra: Record<string, string> = {}) => clientEnvDirect(tokenUrl, { ...(await via()), ...extra });

  it('two 503s, then success: three requests, one token', async () => {
    const svc = await scripted((n, body) => (n <= 2 ? { status: 503, body: problemBody(503, 'Service Unavailable', 'warming up') } : tokenAnswer(body)));
    const env = await clientEnv(svc.url);
    const r = await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(decode(r.stdout.trim()).claims.aud).toBe('sts.amazonaws.com');
    expect(svc.requests).toHaveLength(3);
    for (const req of svc.requests) {
      expect(req).toEqual({
        // The proxy here opens a connection per request; oz's own to it is kept alive.
        port: direct ? svc.requests[0]!.port : req.port,
        method: 'POST',
        url: '/v1/token',
        authorization: `Bearer ${env.OZ_RUN_TOKEN}`,
        body: '{"audience":"sts.amazonaws.com","duration_seconds":3600}',
      });
    }
    // All three on one kept-alive connection.
  });

  it('503s until the attempts run out: remote_unavailable (exit 5) with what the service said', async () => {
    const svc = await scripted(() => ({ status: 503, body: problemBody(503, 'Service Unavailable', 'down for maintenance') }));
    const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env: await clientEnv(svc.url) });
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(new RegExp(`^oz: the token service at ${svc.url} failed: HTTP 503 Service Unavailable: down for maintenance \\(5 attempts in \\d+\\.\\ds\\)\\n$`));
    expect(svc.requests).toHaveLength(5);
  });

  it('429 with Retry-After: waits that long, then succeeds', async () => {
    const svc = await scripted((n, body) => (n === 1 ? { status: 429, headers: { 'retry-after': '1' }, body: problemBody(429, 'Too Many Requests', 'slow down') } : tokenAnswer(body)));
    const env = await clientEnv(svc.url);
    const [answer, elapsed] = await timed(() => oz(['federate', 'issue-token', '--audience', 'a'], { env }));
    expect(answer).toMatchObject({ code: 0, stderr: '' });
    expect(svc.requests).toHaveLength(2);
    expect(elapsed).toBeGreaterThanOrEqual(1000);
  });

  it('a Retry-After past the bound fails at once instead of waiting it out', async () => {
    const svc = await scripted(() => ({ status: 429, headers: { 'retry-after': '60' }, body: problemBody(429, 'Too Many Requests', 'slow down') }));
    const [r, elapsed] = await timed(async () => oz(['federate', 'issue-token', '--audience', 'a'], { env: await clientEnv(svc.url, { OZ_TOKEN_TIMEOUT: '3s' }) }));
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(
      new RegExp(`^oz: the token service at ${svc.url} is rate limiting this run: HTTP 429 Too Many Requests: slow down \\(1 attempt in \\d+\\.\\ds; it asked to retry after 60s, past the 3s bound \\(OZ_TOKEN_TIMEOUT\\)\\)\\n$`),
    );
    expect(svc.requests).toHaveLength(1);
    expect(elapsed).toBeLessThan(2500);
  });

  it.each([
    [400, 'Bad Request', 'remote_denied', 6, 'refused the request'],
    [403, 'Forbidden', 'remote_denied', 6, 'refused the request'],
    [401, 'Unauthorized', 'remote_denied', 6, 'refused the run token'],
    [404, 'Not Found', 'remote_denied', 6, 'refused the request'],
  ])('%i is not retried: %s → %s (exit %i)', async (status, title, code, exit, verb) => {
    const svc = await scripted(() => ({ status, body: problemBody(status, title, 'nope') }));
    const env = await clientEnv(svc.url);
    const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env });
    expect(r).toMatchObject({ code: exit, stdout: '', stderr: `oz: the token service at ${svc.url} ${verb}: HTTP ${status} ${title}: nope\n` });
    expect(svc.requests).toHaveLength(1);
    const gcp = await oz(['federate', 'issue-token', '--format', 'gcp', '--audience', GCP_AUD], { env });
    expect(gcp).toMatchObject({ code: exit, stderr: '' });
    expect(JSON.parse(gcp.stdout)).toEqual({ version: 1, success: false, code, message: `the token service at ${svc.url} ${verb}: HTTP ${status} ${title}: nope` });
  });

  it("the service's word that the run is over is run_expired (exit 4)", async () => {
    const svc = await scripted(() => ({ status: 401, body: problemBody(401, 'Unauthorized', 'the grant expired', 'urn:oz:problem:run-expired') }));
    const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env: await clientEnv(svc.url) });
    expect(r).toMatchObject({ code: 4, stderr: `oz: the token service at ${svc.url} says the run is over: HTTP 401 Unauthorized: the grant expired\n` });
  });
});

describe.each(ROUTES)('the client answers in time whatever the network does: %s', (_route, direct, via) => {
  const clientEnv = async (tokenUrl: string, extra: Record<string, string> = {}) => clientEnvDirect(tokenUrl, { ...(await via()), ...extra });

  it('a dead port: remote_unavailable after a few quick retries, as text and as gcp JSON', async () => {
    const probe = createNetServer();
    const port = await listen(probe);
    await new Promise((r) => probe.close(r));
    const url = `http://127.0.0.1:${port}/v1/token`;
    const env = await clientEnv(url);
    const [r, elapsed] = await timed(() => oz(['federate', 'issue-token', '--audience', 'a'], { env }));
    expect(r.code).toBe(5);
    expect(r.stdout).toBe('');
    // Through a proxy, it is the proxy that cannot connect, and says so with a 502.
    const why = direct ? `cannot reach the token service at ${url}: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}` : `the token service at ${url} failed: HTTP 502 Bad Gateway`;
    expect(r.stderr).toMatch(new RegExp(`^oz: ${why} \\(5 attempts in \\d+\\.\\ds\\)\\n$`));
    expect(elapsed).toBeLessThan(10_000);
    const gcp = await oz(['federate', 'issue-token', '--format', 'gcp'], { env: { ...env, GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: GCP_AUD } });
    expect(gcp).toMatchObject({ code: 5, stderr: '' });
    expect(JSON.parse(gcp.stdout)).toMatchObject({ version: 1, success: false, code: 'remote_unavailable' });
  });

  /** A service that accepts connections and never answers. */
  async function blackHole(): Promise<string> {
    const sockets = new Set<Socket>();
    const server = createNetServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
    });
    const port = await listen(server);
    servers.push({
      close: () => {
        for (const s of sockets) s.destroy();
        server.close();
      },
    });
    return `http://127.0.0.1:${port}/v1/token`;
  }

  it('a TLS handshake that never completes: the bound cuts it (OZ_TOKEN_TIMEOUT=4s: oz is out in about 4 s)', async () => {
    const url = (await blackHole()).replace('http:', 'https:');
    const env = await clientEnv(url, { OZ_TOKEN_TIMEOUT: '4s' });
    const [r, elapsed] = await timed(() => oz(['federate', 'issue-token', '--audience', 'a'], { env }));
    expect(r.code).toBe(5);
    // Inside oz the bound is kept to within a few hundred ms…
    expect(r.stderr).toMatch(new RegExp(`^oz: the token service at ${url} did not answer within 4s \\(OZ_TOKEN_TIMEOUT; [12] attempts in 4\\.[0-3]s(, last: no connection within 3s)?\\)\\n$`));
    expect(elapsed).toBeGreaterThanOrEqual(3900);
    // …and the process exits soon after: nothing left connecting keeps it alive (before the fix
    // it took 7.3 s). The margin is for starting Node and, through a proxy, loading undici on a
    // busy machine; the bound itself is checked to the 100 ms above.
    expect(elapsed).toBeLessThan(direct ? 5500 : 6000);
  });

  it('a service that never answers: --format gcp still answers success:false within OZ_TOKEN_TIMEOUT, stderr empty', async () => {
    const url = await blackHole();
    const env = await clientEnv(url, { OZ_TOKEN_TIMEOUT: '2s', GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: GCP_AUD });
    const [r, elapsed] = await timed(() => oz(['federate', 'issue-token', '--format', 'gcp'], { env }));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(5);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ version: 1, success: false, code: 'remote_unavailable' });
    expect(doc.message).toMatch(new RegExp(`^the token service at ${url} did not answer within 2s \\(OZ_TOKEN_TIMEOUT; 1 attempt in 2\\.\\ds(, last: .*)?\\)$`));
    expect(elapsed).toBeGreaterThanOrEqual(1900);
    expect(elapsed).toBeLessThan(5000);
  });

  it('a service that never answers, with the default bound: well inside Google\'s 30 s executable timeout', async () => {
    const url = await blackHole();
    const env = await clientEnv(url, { GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: GCP_AUD });
    const [r, elapsed] = await timed(() => oz(['federate', 'issue-token', '--format', 'gcp'], { env, timeoutMs: 40_000 }));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(5);
    expect(JSON.parse(r.stdout)).toMatchObject({ version: 1, success: false, code: 'remote_unavailable' });
    // The last attempt may have had only what was left of the bound to wait.
    expect(JSON.parse(r.stdout).message).toMatch(/did not answer within 15s \(OZ_TOKEN_TIMEOUT; [23] attempts in 15\.\ds, last: no answer within (6|\d\.\d+)s\)$/);
    expect(elapsed).toBeGreaterThanOrEqual(14_500);
    expect(elapsed).toBeLessThan(25_000);
  });
});

describe('the client goes through a forward proxy', () => {
  it('HTTP_PROXY carries the request; NO_PROXY bypasses it', async () => {
    const proxy = await forwardProxy();
    const runToken = await grant();
    const target = `${ts.service.url}/v1/token`;
    const viaProxy = await oz(['federate', 'issue-token', '--audience', 'a'], { env: sandbox(runToken, { HTTP_PROXY: proxy.url }).env });
    expect(viaProxy).toMatchObject({ code: 0, stderr: '' });
    expect(decode(viaProxy.stdout.trim()).claims.sub).toBe('user-7');
    expect(proxy.seen).toEqual([`POST ${target}`]);

    const lower = await oz(['federate', 'issue-token', '--audience', 'a'], { env: sandbox(runToken, { http_proxy: proxy.url }).env });
    expect(lower.code).toBe(0);
    expect(proxy.seen).toHaveLength(2);

    const bypass = await oz(['federate', 'issue-token', '--audience', 'a'], { env: sandbox(runToken, { HTTP_PROXY: proxy.url, NO_PROXY: 'localhost,127.0.0.1' }).env });
    expect(bypass).toMatchObject({ code: 0, stderr: '' });
    expect(proxy.seen).toHaveLength(2);
  });

  it('takes a proxy as curl does: no scheme means http://, a path is ignored', async () => {
    const proxy = await forwardProxy();
    const runToken = await grant();
    const hostPort = proxy.url.replace('http://', '');
    for (const value of [hostPort, `${proxy.url}/some/path`]) {
      const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env: sandbox(runToken, { HTTPS_PROXY: 'unused', HTTP_PROXY: value }).env });
      expect(r).toMatchObject({ code: 0, stderr: '' });
    }
    expect(proxy.seen).toEqual([`POST ${ts.service.url}/v1/token`, `POST ${ts.service.url}/v1/token`]);
  });

  it.each([
    ['garbage', 'not a proxy', 'expected a proxy such as http://proxy.example.com:3128'],
    ['an unsupported scheme', 'socks5://127.0.0.1:1080', 'oz speaks to http:// and https:// proxies only'],
  ])('a proxy value that is %s is a configuration error (exit 3) naming the variable, before any request', async (_n, value, why) => {
    const { env } = sandbox(await grant(), { HTTP_PROXY: value });
    const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env });
    expect(r).toMatchObject({ code: 3, stdout: "", stderr: `oz: invalid HTTP_PROXY ${JSON.stringify(value)}: ${why}\n` });
    const gcp = await oz(['federate', 'issue-token', '--format', 'gcp', '--audience', GCP_AUD], { env });
    expect(gcp).toMatchObject({ code: 3, stderr: '' });
    expect(JSON.parse(gcp.stdout)).toEqual({ version: 1, success: false, code: 'config', message: `invalid HTTP_PROXY ${JSON.stringify(value)}: ${why}` });
  });

  it('inspect --verify fetches discovery and the JWKS through the proxy too', async () => {
    const proxy = await forwardProxy();
    const runToken = await grant();
    const { env } = sandbox(runToken);
    const token = (await oz(['federate', 'issue-token', '--audience', 'a'], { env })).stdout.trim();
    const r = await oz(['federate', 'inspect', token, '--verify', '--json'], { env: { ...env, HTTP_PROXY: proxy.url } });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout).verification).toMatchObject({ verified: true });
    expect(proxy.seen).toEqual([`GET ${ts.service.url}/.well-known/openid-configuration`, `GET ${ts.service.url}/.well-known/jwks.json`]);
  });
});

// The single executable is one bundle in a snapshot: there is no undici file to see loaded.
describe.skipIf(OZ_BIN_IS_SINGLE_FILE)('start-up budget', () => {
  /** Which HTTP clients a run of oz loaded: node:http (a built-in) and the bundled undici (a file). */
  async function clientsLoaded(args: string[], env: Record<string, string>): Promise<{ http: boolean; undici: boolean }> {
    const dir = tempDir('oz-preload-');
    const log = join(dir, 'loaded.json');
    const preload = join(dir, 'check.cjs');
    writeFileSync(
      preload,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(log)}, JSON.stringify({
        http: process.moduleLoadList.includes('NativeModule http'),
        undici: Object.keys(require.cache).some((f) => f.includes('undici')),
      })));\n`,
    );
    const r = await oz(args, { env: { ...env, NODE_OPTIONS: `--require ${preload}` } });
    expect(r.code).toBe(0);
    return JSON.parse(readFileSync(log, 'utf8')) as { http: boolean; undici: boolean };
  }

  it('the embedded path loads no HTTP client; the remote path node:http, and undici only when a proxy applies', async () => {
    const issue = ['federate', 'issue-token', '--audience', 'a'];
    expect(await clientsLoaded(issue, scrubbedEnv(tempDir()))).toEqual({ http: false, undici: false });
    expect(await clientsLoaded(['federate', 'whoami'], sandbox(await grant()).env)).toEqual({ http: false, undici: false });
    expect(await clientsLoaded(issue, sandbox(await grant()).env)).toEqual({ http: true, undici: false });
    const proxy = await forwardProxy();
    expect(await clientsLoaded(issue, sandbox(await grant(), { HTTP_PROXY: proxy.url }).env)).toEqual({ http: true, undici: true });
    expect(proxy.seen).toHaveLength(1);
  });
});
