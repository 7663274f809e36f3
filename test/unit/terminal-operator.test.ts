import { describe, expect, it } from 'vitest';
import { OzError } from '../../src/core/errors.js';
import { issuerNotPublic } from '../../src/core/url.js';
import { normaliseArgv } from '../../src/cli/program.js';
import { tokenOf } from '../../src/cli/inspect.js';
import { capNotice } from '../../src/cli/issue-token.js';

describe('spellings commander does not know', () => {
  it.each([
    [['version'], ['--version']],
    [['-V'], ['--version']],
    [['-v'], ['-v']],
    [['help'], ['--help']],
    [['help', 'federate'], ['federate', '--help']],
    [['help', 'federate', 'issue-token'], ['federate', 'issue-token', '--help']],
    [['federate', 'help', 'issue-token'], ['federate', 'issue-token', '--help']],
    [['issuer', 'help'], ['issuer', '--help']],
    [['federate', 'inspect', 'help'], ['federate', 'inspect', 'help']],
    [['federate', 'issue-token', 'version'], ['federate', 'issue-token', 'version']],
  ])('%j → %j', (argv, expected) => {
    expect(normaliseArgv(argv)).toEqual(expected);
  });
});

describe('an issuer AWS, GCP and Azure can use', () => {
  it.each([
    ['https://oidc.example.com', undefined],
    ['https://oidc.example.com/tenant', undefined],
    ['http://oidc.example.com', 'plain http'],
    ['http://127.0.0.1:8787', 'a local address (127.0.0.1:8787) that they cannot reach'],
    ['https://localhost', 'a local address (localhost) that they cannot reach'],
    ['https://[::1]:8443', 'a local address ([::1]:8443) that they cannot reach'],
    ['https://10.1.2.3', 'a local address (10.1.2.3) that they cannot reach'],
    ['https://192.168.1.10', 'a local address (192.168.1.10) that they cannot reach'],
    ['https://172.20.0.1', 'a local address (172.20.0.1) that they cannot reach'],
    ['https://172.32.0.1', undefined],
  ])('%s: %s', (issuer, why) => {
    expect(issuerNotPublic(issuer)).toBe(why);
  });
});

describe("inspect's input", () => {
  const jwt = 'aGVhZGVy.cGF5bG9hZA.c2ln';
  it.each([
    [jwt, jwt],
    [JSON.stringify({ token: jwt, expires_at: 'x', claims: {} }), jwt],
    [JSON.stringify({ version: 1, success: true, id_token: jwt, expiration_time: 1 }), jwt],
    [JSON.stringify({ run_token: jwt }), jwt],
    [JSON.stringify({ token: ` ${jwt}\n` }, null, 2), jwt],
  ])('%s', (input, token) => {
    expect(tokenOf(input)).toBe(token);
  });

  it.each([
    ['{not json', 'the input starts with "{" but is not JSON: give a JWT, or the JSON that `oz federate issue-token --format json` or `--format gcp` prints'],
    ['{"token": 5}', 'the JSON holds no "token", "id_token" or "run_token" string'],
    ['{"version":1,"success":false,"code":"usage","message":"missing audience"}', 'the input is a failed --format gcp response, with no token: missing audience'],
  ])('refuses %s as a usage error', (input, message) => {
    let e: unknown;
    try {
      tokenOf(input);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(OzError);
    expect({ code: (e as OzError).code, message: (e as OzError).message }).toEqual({ code: 'usage', message });
  });
});

describe('the note when --duration is capped', () => {
  const at = Date.UTC(2030, 0, 1);
  const issued = (seconds: number, lifetime?: { seconds: number; cappedBy: 'requested' | 'deadline' | 'max_run_duration' | 'max_token_lifetime' }) => ({
    token: 't',
    claims: {},
    expiresAt: new Date(at + seconds * 1000),
    ...(lifetime ? { lifetime } : {}),
  });

  it.each([
    [issued(3600, { seconds: 3600, cappedBy: 'requested' }), 3600, undefined],
    [issued(600, { seconds: 600, cappedBy: 'deadline' }), 7200, "oz: the token is valid for 10m, not the 2h asked for: capped by the time left before the run's deadline (OZ_RUN_DEADLINE)"],
    [issued(3600), 3600, undefined],
    [issued(3597), 3600, undefined],
    [issued(600), 7200, "oz: the token is valid for about 10m, not the 2h asked for: the token service capped it (the run's deadline or maximum duration)"],
  ])('%#', (token, requested, note) => {
    expect(capNotice(token, requested, at)).toBe(note);
  });
});
