import { join } from 'node:path';
import { OzError, describeCause, quote } from '../core/errors.js';
import type { Env } from '../core/settings.js';
import { readFileNoFollow, writeFileAtomic } from '../core/securefile.js';
import { issueToken, type IssuedToken } from './sources/index.js';

/**
 * The token files of a prepared directory as the refresher sees them: one list, each entry a
 * file name and the audience its token is for. Prepare writes it beside the files (from its
 * own list of token files, prepare.ts), the refresher (and `exec`'s timer) re-issues every
 * entry, and cleanup removes every entry.
 */
export interface ManifestEntry {
  /** A bare name inside the directory. */
  file: string;
  audience: string;
}

/** What the refresher needs to keep a directory fresh, written by prepare beside the files. */
export interface Manifest {
  version: 1;
  /** The lifetime each token is requested with (capped by the run as usual). */
  duration_seconds: number;
  files: ManifestEntry[];
}

export const MANIFEST_FILE = 'oz-token-files.json';

export function writeManifest(dir: string, manifest: Manifest): void {
  writeIn(dir, MANIFEST_FILE, `${JSON.stringify(manifest, null, 2)}\n`);
}

/** The manifest, or undefined when it is gone (cleanup ran) or is not one prepare wrote. */
export function readManifest(dir: string): Manifest | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileNoFollow(join(dir, MANIFEST_FILE)).toString('utf8'));
  } catch {
    return undefined;
  }
  const m = parsed as Partial<Manifest>;
  if (m?.version !== 1 || !Number.isFinite(m.duration_seconds) || !Array.isArray(m.files)) return undefined;
  const files = m.files.filter((f): f is ManifestEntry => typeof f?.file === 'string' && typeof f.audience === 'string' && isBareName(f.file));
  return { version: 1, duration_seconds: m.duration_seconds!, files };
}

/** A manifest names files in its own directory only: never a path that climbs out of it. */
function isBareName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

/** Write `data` to `dir/name` atomically, 0600; a failure is an io error naming the path. */
export function writeIn(dir: string, name: string, data: string): string {
  const path = join(dir, name);
  try {
    writeFileAtomic(path, data, { mode: 0o600 });
  } catch (e) {
    throw new OzError('io', `cannot write ${quote(path)}: ${describeCause(e)}`, { cause: e });
  }
  return path;
}

/** Issue one token per entry, in order; nothing is written. */
export async function issueAll(files: readonly ManifestEntry[], env: Env, cwd: string, now: Date, seconds: number): Promise<IssuedToken[]> {
  const issued: IssuedToken[] = [];
  for (const f of files) issued.push(await issueToken(env, cwd, now, { audience: f.audience, requestedSeconds: seconds }));
  return issued;
}

/** The token as a file holds it: the JWT's bytes with no trailing newline (the SDKs send it as is). */
export function tokenFileContent(t: IssuedToken): string {
  return t.token;
}

/** When the JWT in a token file expires (its `exp`, in ms), or undefined if it is not a readable JWT. */
export function tokenExpiryMs(content: string): number | undefined {
  const payload = content.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
