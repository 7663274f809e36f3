import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { pbkdf2 } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { loadSigningKey } from '../../src/core/keys.js';
import { createKeyCache } from '../../src/platform/key-cache.js';
import { grantClaims, mintGrant } from '../../src/platform/grant-mint.js';
import { createIssuerServer } from '../../src/platform/server.js';
import { tokenRoute } from '../../src/platform/token-service.js';
import { TOKEN_PATH } from '../../src/core/wire.js';
import { tempDir } from '../helpers/oz.js';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r) ?? r(undefined));
  server = undefined;
});

function post(url: string, runToken: string): Promise<{ status: number; retryAfter?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', agent: false, headers: { authorization: `Bearer ${runToken}`, 'content-type': 'application/json' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'], body }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ audience: 'sts.amazonaws.com' }));
  });
}

describe('the token service under a flood of valid requests', () => {
  it('queues at most maxSigningsInFlight signatures; past it answers 503 with Retry-After, and serves again after', async () => {
    const dataDir = tempDir();
    loadSigningKey(dataDir);
    const keys = createKeyCache({ dataDir });
    let issuer = '';
    const route = tokenRoute({ issuer: () => issuer, keys, rateLimit: 0, maxSigningsInFlight: 2 });
    server = createIssuerServer({ issuer: () => issuer, keys, routes: { [TOKEN_PATH]: route } });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const now = new Date();
    const runToken = mintGrant(
      grantClaims({ issuer, run: { sub: 'user-1', run_id: 'run-1' }, deadline: new Date(now.getTime() + 3600_000), now }),
      keys.signingKey(),
    );

    // Signatures run on libuv's thread pool: keep its threads busy for a while, so that the
    // signings queue up there however slowly this machine sends the requests.
    const busy = Array.from({ length: 4 }, () => new Promise((r) => pbkdf2('x', 'y', 300_000, 32, 'sha256', r)));
    const answers = await Promise.all(Array.from({ length: 40 }, () => post(`${issuer}${TOKEN_PATH}`, runToken)));
    await Promise.all(busy);
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2);
    const refused = answers.find((a) => a.status === 503);
    expect(refused).toBeDefined();
    expect(refused!.retryAfter).toBe('1');
    expect(JSON.parse(refused!.body)).toMatchObject({ status: 503, title: 'Service Unavailable', detail: '2 tokens are being signed already; ask again in a second' });

    // Once the queue has drained, requests are signed again.
    expect((await post(`${issuer}${TOKEN_PATH}`, runToken)).status).toBe(200);
  });
});
