import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { OzError, describeCause, quote } from '../core/errors.js';
import { readIssuerUrl, SIGNING_ALG } from '../core/context.js';
import { readSetting } from '../core/settings.js';
import { loadSigningKey, publishedKeys, rotateSigningKey, SIGNING_KEY_FILE } from '../core/keys.js';
import { discoveryDocument, jwksDocument } from '../platform/issuer.js';
import { DISCOVERY_PATH, JWKS_PATH } from '../core/wire.js';
import { dataDir } from '../core/paths.js';
import { writeFileAtomic } from '../core/securefile.js';
import { out, note } from './output.js';
import type { DISCOVERY, INIT, OptionsOf, PUBLISH, ROTATE } from './spec.js';

const env = process.env;
const dir = () => dataDir(env, process.cwd());
const json = (v: unknown) => out(`${JSON.stringify(v, null, 2)}\n`);

export async function initCommand(opts: OptionsOf<typeof INIT>): Promise<void> {
  const d = await dir();
  const existed = existsSync(join(d, SIGNING_KEY_FILE));
  const key = loadSigningKey(d, { alg: readSetting(SIGNING_ALG, env, opts.alg)?.value });
  if (existed && opts.alg && opts.alg !== key.alg) {
    note(`oz: a ${key.alg} key already exists; use \`oz issuer rotate --alg ${opts.alg}\` to change algorithm`);
  }
  if (opts.json) return json({ created: !existed, kid: key.kid, alg: key.alg, data_dir: d });
  out(`${existed ? 'Signing key already present' : 'Created signing key'}: kid ${key.kid} (${key.alg}) in ${d}\n`);
}

export async function rotateCommand(opts: OptionsOf<typeof ROTATE>): Promise<void> {
  const r = rotateSigningKey(await dir(), new Date(), opts.alg);
  if (opts.json) return json(r);
  out(`New signing key: kid ${r.current.kid} (${r.current.alg})\n`);
  out(`Old key ${r.previous.kid} stays in the JWKS until ${r.previous.keepUntil}\n`);
}

export async function jwksCommand(): Promise<void> {
  json(jwksDocument(publishedKeys(await dir(), new Date())));
}

export async function discoveryCommand(opts: OptionsOf<typeof DISCOVERY>): Promise<void> {
  json(discoveryDocument(readIssuerUrl(env, opts.issuer)));
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
    [JWKS_PATH, jwksDocument(publishedKeys(await dir(), new Date()))],
  ];
  for (const [rel, doc] of files) {
    const path = join(root, rel);
    try {
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileAtomic(path, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o644 });
    } catch (e) {
      throw new OzError('io', `cannot write ${quote(path)}: ${describeCause(e)}`, { cause: e });
    }
    out(`${path}\n`);
  }
}
