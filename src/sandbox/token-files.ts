import { claimValueProblem } from '../core/claims.js';
import { problem, quote, type Parsed } from '../core/errors.js';

/**
 * Token files for other relying parties (Vault, a SaaS API): `prepare --token NAME=AUDIENCE`
 * or `OZ_TOKEN_FILES=NAME=AUD,NAME=AUD`. Each becomes the file `token-<name>` (lower case) and
 * the variable `OZ_TOKEN_FILE_<NAME>` (upper case). The mapping goes both ways, which is what
 * lets `cleanup` find every such file and the variable to unset from the file's name alone.
 */
export interface TokenFileRequest {
  /** Upper case, `[A-Z0-9_]`. */
  name: string;
  audience: string;
}

export const TOKEN_FILE_PREFIX = 'token-';
export const TOKEN_FILE_VARIABLE_PREFIX = 'OZ_TOKEN_FILE_';
const NAME = /^[A-Za-z0-9_]{1,64}$/;
const FILE = /^token-([a-z0-9_]{1,64})$/;

export function tokenFileName(name: string): string {
  return `${TOKEN_FILE_PREFIX}${name.toLowerCase()}`;
}

export function tokenFileVariable(name: string): string {
  return `${TOKEN_FILE_VARIABLE_PREFIX}${name.toUpperCase()}`;
}

/** The variable of a file `prepare` wrote for `--token`, or undefined for any other file name. */
export function variableOfTokenFile(fileName: string): string | undefined {
  const m = FILE.exec(fileName);
  return m ? tokenFileVariable(m[1]!) : undefined;
}

/** One `NAME=AUDIENCE`; the audience is everything after the first `=`, and may hold more. */
export function parseTokenFileRequest(raw: string): Parsed<TokenFileRequest> {
  const eq = raw.indexOf('=');
  if (eq === -1) return problem('expected NAME=AUDIENCE, e.g. vault=https://vault.example.com');
  const name = raw.slice(0, eq);
  const audience = raw.slice(eq + 1);
  if (!NAME.test(name)) {
    return problem(`the name ${quote(name)} must be 1-64 letters, digits or _ (it becomes ${TOKEN_FILE_VARIABLE_PREFIX}<NAME>)`);
  }
  const why = claimValueProblem(audience);
  if (why) return problem(`the audience ${quote(audience)} cannot be a token's "aud": ${why}`);
  return { ok: true, value: { name: name.toUpperCase(), audience } };
}

/** Several requests; the same name twice (in any case) would be one variable for two files. */
export function checkTokenFileRequests(requests: readonly TokenFileRequest[]): Parsed<TokenFileRequest[]> {
  const seen = new Set<string>();
  for (const r of requests) {
    if (seen.has(r.name)) return problem(`the name ${r.name} is given twice (names are case-insensitive): each token file needs its own`);
    seen.add(r.name);
  }
  return { ok: true, value: [...requests] };
}

/** OZ_TOKEN_FILES: comma-separated `NAME=AUDIENCE` entries (an audience cannot hold a comma here). */
export function parseTokenFileList(raw: string): Parsed<TokenFileRequest[]> {
  const entries = raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.length === 0) return problem('expected NAME=AUDIENCE entries, comma-separated');
  const requests: TokenFileRequest[] = [];
  for (const entry of entries) {
    const r = parseTokenFileRequest(entry);
    if (!r.ok) return problem(`${quote(entry)}: ${r.problem}`);
    requests.push(r.value);
  }
  return checkTokenFileRequests(requests);
}
