import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { decode, oz, run } from '../helpers/oz.js';
import { serve, type Served } from '../helpers/serve.js';
import { useTokenService, grant, sandbox, rawRequest, tokenRequest, problem } from '../helpers/token-service.js';

/** `oz issuer serve`'s token endpoint: refusals of every kind, the rate limit and the audience allow-list. */

const ts = useTokenService();

describe('oz issuer serve: POST /v1/token refuses bad requests and keeps serving', () => {
  it.each([
    ['garbage', 'this is not json', 400, 'the request body is not valid JSON'],
    ['an empty body', '', 400, 'the request body is empty: send {"audience": "...", "duration_seconds": N}'],
    ['an array', '[]', 400, 'the request body must be a JSON object'],
    ['no audience', '{"duration_seconds": 60}', 400, 'missing "audience": the "aud" the relying party expects'],
    ['an empty audience', '{"audience": ""}', 400, 'invalid "audience" "": it is empty'],
    ['a control character', '{"audience": "a\\u001bb"}', 400, 'invalid "audience" "a\\u001bb": it contains control characters'],
    ['a long audience', JSON.stringify({ audience: 'a'.repeat(1025) }), 400, `invalid "audience" "${'a'.repeat(80)}…": it is 1025 characters long, more than 1024`],
    ['a fractional duration', '{"audience": "a", "duration_seconds": 1.5}', 400, '"duration_seconds" must be a whole number of seconds from 1 to 31622400'],
    ['a string duration', '{"audience": "a", "duration_seconds": "3600"}', 400, '"duration_seconds" must be a whole number of seconds from 1 to 31622400'],
  ])('%s: 400 problem+json', async (_n, body, status, detail) => {
    const a = await tokenRequest(await grant(), body);
    expect(a.status).toBe(status);
    expect(problem(a)).toEqual({ type: 'about:blank', title: 'Bad Request', status, detail });
  });

  it('wrong method, wrong content type, no or bad bearer, oversized bodies: each its status, then a good request works', async () => {
    const runToken = await grant();
    const url = `${ts.service.url}/v1/token`;

    // A path that names a property of every JavaScript object is still just an unknown path.
    expect((await rawRequest(`${ts.service.url}/constructor`, { method: 'GET' })).status).toBe(404);

    const get = await rawRequest(url, { method: 'GET' });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect(problem(get)).toMatchObject({ title: 'Method Not Allowed', status: 405 });

    for (const headers of [{ 'content-type': 'text/plain' }, {}] as Record<string, string>[]) {
      const a = await rawRequest(url, { headers: { ...headers, authorization: `Bearer ${runToken}` }, body: '{"audience":"a"}' });
      expect(a.status).toBe(415);
      expect(problem(a)).toMatchObject({ title: 'Unsupported Media Type', detail: 'the request body must be application/json' });
    }
    // A charset parameter is still JSON.
    const charset = await tokenRequest(runToken, { audience: 'a' }, { 'content-type': 'application/json; charset=utf-8' });
    expect(charset.status).toBe(200);

    const none = await tokenRequest(undefined, { audience: 'a' });
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="oz"');
    expect(problem(none).detail).toBe('send the run token (OZ_RUN_TOKEN) as "Authorization: Bearer <run token>"');
    const basic = await tokenRequest(undefined, { audience: 'a' }, { authorization: 'Basic dXNlcjpwYXNz' });
    expect(basic.status).toBe(401);
    const garbage = await tokenRequest('garbage', { audience: 'a' });
    expect(garbage.status).toBe(401);
    expect(garbage.headers['www-authenticate']).toBe('Bearer realm="oz", error="invalid_token"');
    expect(problem(garbage).detail).toBe('the bearer token is not a JWT: expected 3 dot-separated parts, found 1');
    const [h, p, s] = runToken.split('.');
    const forged = JSON.parse(Buffer.from(p!, 'base64url').toString());
    forged.sub = 'admin';
    const tampered = await tokenRequest(`${h}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${s}`, { audience: 'a' });
    expect(tampered.status).toBe(401);
    expect(problem(tampered).detail).toBe("the run token's signature does not verify");

    const declared = await rawRequest(url, {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${runToken}` },
      body: Buffer.alloc(70 * 1024, 0x20),
    });
    expect(declared.status).toBe(413);
    expect(problem(declared)).toMatchObject({ title: 'Content Too Large', detail: 'the request body is larger than 65536 bytes' });
    // No Content-Length: the stream itself goes over the limit.
    const streamed = await rawRequest(url, {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${runToken}`, 'transfer-encoding': 'chunked' },
      chunks: Array.from({ length: 10 }, () => Buffer.alloc(10 * 1024, 0x20)),
    });
    expect(streamed.status).toBe(413);

    const ok = await tokenRequest(runToken, { audience: 'sts.amazonaws.com', duration_seconds: 600 });
    expect(ok.status).toBe(200);
    expect(ok.headers['cache-control']).toBe('no-store');
    const doc = JSON.parse(ok.body);
    expect(Object.keys(doc).sort()).toEqual(['expires_at', 'token']);
    expect(Date.parse(doc.expires_at) / 1000).toBe(decode(doc.token).claims.exp);
  });

  it('cuts off a request that is sent too slowly, refuses one that is not HTTP, and serves the next one', async () => {
    const { port } = new URL(ts.service.url);
    const started = Date.now();
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8').on('data', (d: string) => (received += d));
    socket.write('POST /v1/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n');
    await new Promise((r) => socket.once('close', r));
    // --request-timeout 1s, enforced by a check every second.
    expect(Date.now() - started).toBeLessThan(4000);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);

    // Bytes that are not HTTP at all.
    const garbage = connect(Number(port), '127.0.0.1');
    let answer = '';
    garbage.setEncoding('utf8').on('data', (d: string) => (answer += d));
    garbage.write('\u0000\u0001 hello\r\n\r\n');
    await new Promise((r) => garbage.once('close', r));
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);

    const ok = await tokenRequest(await grant(), { audience: 'a' });
    expect(ok.status).toBe(200);
  });

  it('never writes a token or an Authorization header to its access log', async () => {
    const runToken = await grant();
    const linesBefore = ts.service.stderr().split('\n').length;
    const r = await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env: sandbox(runToken).env });
    const issued = r.stdout.trim();
    // A token in the path or the query of a request is not logged either.
    await rawRequest(`${ts.service.url}/v1/token/${runToken}?token=${runToken}`, { method: 'GET' });
    await tokenRequest(runToken, 'garbage');
    // Log lines are written once per turn of the server's event loop, then cross a pipe.
    const lines = () => ts.service.stderr().split('\n').length;
    for (let i = 0; i < 50 && lines() < linesBefore + 3; i++) await new Promise((r) => setTimeout(r, 20));
    const log = ts.service.stderr();
    expect(log).toMatch(/^127\.0\.0\.1 POST \/v1\/token 200 [\d.]+ms run_id="run-42" aud="sts.amazonaws.com"$/m);
    expect(log).toMatch(/^127\.0\.0\.1 GET \/v1\/token\/<redacted> 404 [\d.]+ms$/m);
    expect(log).toMatch(/^127\.0\.0\.1 POST \/v1\/token 400 [\d.]+ms run_id="run-42"$/m);
    for (const secret of [runToken, issued, runToken.split('.')[2]!, issued.split('.')[2]!, 'Bearer', 'authorization']) {
      expect(log).not.toContain(secret);
    }
  });
});

describe('oz issuer serve: rate limit and audience allow-list', () => {
  let limited: Served;
  beforeAll(async () => {
    limited = await serve({ ...ts.serverEnv, OZ_ALLOWED_AUDIENCES: 'sts.amazonaws.com, vault' }, ['--rate-limit', '1']);
  });
  afterAll(async () => {
    await limited?.stop('SIGKILL');
  });

  it('answers 429 with Retry-After once a grant exceeds its rate, without slowing other grants', async () => {
    const [one, two] = [await grant(undefined, limited.url), await grant(undefined, limited.url)];
    const ask = (t: string) =>
      rawRequest(`${limited.url}/v1/token`, { headers: { 'content-type': 'application/json', authorization: `Bearer ${t}` }, body: '{"audience":"vault"}' });
    // --rate-limit 1: a burst of 3, then one a second.
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await ask(one)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limitedAnswer = await ask(one);
    expect(limitedAnswer.headers['retry-after']).toBe('1');
    expect(problem(limitedAnswer)).toMatchObject({ status: 429, title: 'Too Many Requests', detail: 'this run asks for tokens faster than 1 a second' });
    expect((await ask(two)).status).toBe(200);
  });

  it.each([
    [['--rate-limit', 'fast'], {}, 2, 'oz: invalid --rate-limit "fast": expected requests per second per run, such as 10 (0 turns the limit off)\n'],
    [[], { OZ_TOKEN_RATE_LIMIT: '-1' }, 3, 'oz: invalid OZ_TOKEN_RATE_LIMIT "-1": expected requests per second per run, such as 10 (0 turns the limit off)\n'],
    [['--request-timeout', 'never'], {}, 2, 'oz: invalid --request-timeout "never": expected a duration like 90s, 15m, 1h30m, 2h or plain seconds\n'],
    [[], { OZ_ALLOWED_AUDIENCES: 'ok,bad\u0007' }, 3, 'oz: invalid OZ_ALLOWED_AUDIENCES "ok,bad\\u0007": audience "bad\\u0007": it contains control characters\n'],
    [[], { OZ_ALLOWED_AUDIENCES: ',' }, 3, 'oz: invalid OZ_ALLOWED_AUDIENCES ",": it names no audience (comma-separated; leave it unset to allow any)\n'],
    [['--allow-audience', ''], {}, 2, 'oz: invalid --allow-audience "": audience "": it is empty\n'],
    [['--host', ''], {}, 2, 'oz: invalid --host "": it is empty; give an address such as 127.0.0.1, or 0.0.0.0 for every interface\n'],
  ])('refuses to start with %j %j', async (args, extra, code, stderr) => {
    const r = await oz(['issuer', 'serve', '--port', '0', ...args], { env: { ...ts.serverEnv, ...extra } });
    expect(r).toMatchObject({ code, stdout: '', stderr });
  });

  it('issues tokens only for the audiences in OZ_ALLOWED_AUDIENCES', async () => {
    const runToken = await grant(undefined, limited.url);
    const { env } = sandbox(runToken, { OZ_ISSUER_URL: limited.url });
    const ok = await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env });
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    const refused = await oz(['federate', 'issue-token', '--audience', 'https://elsewhere.example.com'], { env });
    expect(refused).toMatchObject({
      code: 6,
      stdout: '',
      stderr: `oz: the token service at ${limited.url}/v1/token refused the request: HTTP 403 Forbidden: audience "https://elsewhere.example.com" is not in this token service's allow-list\n`,
    });
  });
});
