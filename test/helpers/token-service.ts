import { afterAll, beforeAll, expect } from 'vitest';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { oz, run, scrubbedEnv, tempDir } from './oz.js';
import { serve, type Served } from './serve.js';

/**
 * The remote issuer end to end, shared by the test files that need it: `oz issuer grant-run`
 * mints a run token where the key lives, `oz issuer serve` trades it for identity tokens, and
 * the built CLI runs in a sandbox-like environment that holds the run token.
 */

const PYJWT = join(__dirname, '../helpers/pyjwt_verify.py');
export const GCP_AUD = '//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool-1/providers/prov-1';

/** What the sandbox's environment claims; in remote mode none of it may reach a token. */
export const SANDBOX_LIES = {
  OZ_RUN_ID: 'forged-run',
  OZ_SUBJECT: 'admin',
  OZ_EMAIL: 'root@example.com',
  OZ_TEAMS: 'platform-admins',
  OZ_ENVIRONMENT_ID: 'prod',
  OZ_AGENT_NAME: 'evil',
  OZ_SKILL_SPEC: 'evil/repo:x',
  OZ_HOST: 'elsewhere',
  OZ_RUN_DEADLINE: '2099-01-01T00:00:00Z',
  OZ_MAX_RUN_DURATION: '24h',
};

export const GRANT_ARGS = [
  '--run-id', 'run-42', '--subject', 'user-7', '--email', 'dev@example.com', '--teams', 'team-a',
  '--environment', 'env-9', '--agent-name', 'deployer', '--skill-spec', 'org/repo:.warp/skills/deployer/SKILL.md', '--host', 'warp',
];
export const GRANTED_CLAIMS = {
  sub: 'user-7', email: 'dev@example.com', teams: ['team-a'], run_id: 'run-42', environment: 'env-9',
  agent_name: 'deployer', skill_spec: 'org/repo:.warp/skills/deployer/SKILL.md', host: 'warp',
};

let serverHome: string;
let serverEnv: Record<string, string>;
let service: Served;

/**
 * One `oz issuer serve` for a test file (no rate limit, a 1 s request timeout), started before
 * its tests and stopped after; the functions below talk to it.
 */
export function useTokenService(): { readonly service: Served; readonly serverEnv: Record<string, string>; readonly serverHome: string } {
  beforeAll(async () => {
    serverHome = tempDir();
    serverEnv = scrubbedEnv(serverHome);
    service = await serve(serverEnv, ['--rate-limit', '0', '--request-timeout', '1s']);
  });
  afterAll(async () => {
    await service?.stop('SIGKILL');
  });
  return {
    get service() {
      return service;
    },
    get serverEnv() {
      return serverEnv;
    },
    get serverHome() {
      return serverHome;
    },
  };
}

/** `oz issuer grant-run` where the key lives, for the service's issuer. */
export async function grant(args: string[] = GRANT_ARGS, issuerUrl = service.url): Promise<string> {
  const r = await oz(['issuer', 'grant-run', ...args], { env: { ...serverEnv, OZ_ISSUER_URL: issuerUrl } });
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  return r.stdout.trim();
}

/** A sandbox: its own empty home, the run token, where the service is, and whatever else. */
export function sandbox(runToken: string, extra: Record<string, string> = {}) {
  const home = tempDir('oz-sandbox-');
  return { home, env: scrubbedEnv(home, { OZ_RUN_TOKEN: runToken, OZ_ISSUER_URL: service.url, ...extra }) };
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTP request with full control over headers and body; no keep-alive, no retries. */
export function rawRequest(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; chunks?: Buffer[] } = {}): Promise<Answer> {
  return new Promise((resolvePromise, reject) => {
    const req = httpRequest(url, { method: opts.method ?? 'POST', headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    // The service may answer and close before an oversized body is all sent; the answer counts.
    req.on('error', (e) => reject(e));
    if (opts.chunks) {
      for (const c of opts.chunks) req.write(c);
      req.end();
    } else {
      req.end(opts.body);
    }
  });
}

export function tokenRequest(bearer: string | undefined, body: unknown, headers: Record<string, string> = {}) {
  return rawRequest(`${service.url}/v1/token`, {
    headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export function problem(a: Answer): Record<string, unknown> {
  expect(a.headers['content-type']).toBe('application/problem+json');
  return JSON.parse(a.body) as Record<string, unknown>;
}

export async function verifyWithPyJwt(token: string, audience: string) {
  const r = await run('/usr/bin/python3', [PYJWT, audience], { input: token, env: { PATH: process.env.PATH ?? '' } });
  return { ok: r.code === 0, out: r.stdout, claims: r.code === 0 ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined };
}
