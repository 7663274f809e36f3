import { chmodSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { OzError, describeCause, quote } from '../core/errors.js';
import { readIssuerUrl, SIGNING_ALG } from '../core/context.js';
import { readSetting } from '../core/settings.js';
import { loadSigningKey, openSigningKey, publishedKeys, rotateSigningKey } from '../core/keys.js';
import { discoveryDocument, jwksDocument } from '../platform/issuer.js';
import { DISCOVERY_PATH, JWKS_PATH } from '../core/wire.js';
import { dataDir } from '../core/paths.js';
import { writeFileAtomic } from '../core/securefile.js';
import { publicIssuerWarning } from '../core/url.js';
import { out, note } from './output.js';
import type { DISCOVERY, INIT, OptionsOf, PUBLISH, ROTATE } from './spec.js';

const env = process.env;
const dir = () => dataDir(env, process.cwd());
const json = (v: unknown) => out(`${JSON.stringify(v, null, 2)}\n`);

export async function initCommand(opts: OptionsOf<typeof INIT>): Promise<void> {
  const d = await dir();
  const { key, created } = openSigningKey(d, { alg: readSetting(SIGNING_ALG, env, opts.alg)?.value });
  const existed = !created;
  if (existed && opts.alg && opts.alg !== key.alg) {
    note(`oz: a ${key.alg} key already exists; use \`oz issuer rotate --alg ${opts.alg}\` to change algorithm`);
  }
  if (opts.json) return json({ created: !existed, kid: key.kid, alg: key.alg, data_dir: d });
  out(`${existed ? 'Signing key already present' : 'Created signing key'}: kid ${key.kid} (${key.alg}) in ${d}\n`);
}

export async function rotateCommand(opts: OptionsOf<typeof ROTATE>): Promise<void> {
  const r = rotateSigningKey(await dir(), new Date(), opts.alg);
  // The JWKS that `serve` answers with follows the key files; a static copy does not.
  note('oz: if the issuer\'s files are hosted statically, run `oz issuer publish --out DIR` again so that relying parties see the new key');
  if (opts.json) {
    return json({
      previous: { kid: r.previous.kid, alg: r.previous.alg, keep_until: r.previous.keepUntil },
      current: { kid: r.current.kid, alg: r.current.alg },
    });
  }
  out(`New signing key: kid ${r.current.kid} (${r.current.alg})\n`);
  out(`Old key ${r.previous.kid} stays in the JWKS until ${r.previous.keepUntil}\n`);
}

// The commands that only read the keys never create one: on an empty or mistyped data
// directory a fresh key would be published that has signed nothing and that no relying party
// has seen, while the real key sits elsewhere.
const READ_ONLY = { create: false } as const;

export async function jwksCommand(): Promise<void> {
  json(jwksDocument(publishedKeys(await dir(), new Date(), READ_ONLY)));
}

export async function discoveryCommand(opts: OptionsOf<typeof DISCOVERY>): Promise<void> {
  const issuer = readIssuerUrl(env, opts.issuer);
  loadSigningKey(await dir(), READ_ONLY);
  json(discoveryDocument(issuer));
}

/**
 * Create `dir` and its missing parents 0755 whatever the umask: 0777 under umask 000 would let
 * another user replace the JWKS, and 0700 under umask 077 would hide it from the web server.
 * Directories that existed are left as they are.
 */
function makePublicDirs(dir: string): void {
  const first = mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (first === undefined) return;
  for (let d = dir; ; d = dirname(d)) {
    chmodSync(d, 0o755);
    if (d === first || d === dirname(d)) break;
  }
}

/**
 * Static files for hosting the issuer on any web server or bucket: AWS and GCP fetch
 * `${issuer}/.well-known/openid-configuration` and the JWKS it names over public https.
 * They are public documents, so they are written world-readable.
 */
export async function publishCommand(opts: OptionsOf<typeof PUBLISH>): Promise<void> {
  const issuer = readIssuerUrl(env, opts.issuer);
  const root = resolve(opts.out!);
  const files: [string, unknown][] = [
    [DISCOVERY_PATH, discoveryDocument(issuer)],
    [JWKS_PATH, jwksDocument(publishedKeys(await dir(), new Date(), READ_ONLY))],
  ];
  // After the keys are found: a publish that fails says one thing, why it failed.
  const warning = publicIssuerWarning(issuer, 'publish with --issuer https://… naming where the files will be hosted');
  if (warning) note(warning);
  for (const [rel, doc] of files) {
    const path = join(root, rel);
    try {
      makePublicDirs(dirname(path));
      writeFileAtomic(path, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o644 });
    } catch (e) {
      throw new OzError('io', `cannot write ${quote(path)}: ${describeCause(e)}`, { cause: e });
    }
    out(`${path}\n`);
  }
}
