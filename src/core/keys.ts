import { createECDH, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, hash, type JsonWebKey, type KeyObject } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OzError, describeCause, quote } from './errors.js';
import type { SigningAlg } from './jwt.js';
import { createFileExclusive, ensurePrivateDir, assertPrivateDir, readFileNoFollow, tryUnlink, writeFileAtomic } from './securefile.js';

/**
 * The embedded issuer's key store, in the data directory:
 *   signing-key.json   the active key: {kid, alg, created_at, private_jwk}; a PKCS#8 PEM
 *                      `private_key` in place of `private_jwk` is read too (a key brought in)
 *   retired-keys.json  public keys of earlier signing keys, kept until every token they
 *                      signed has expired: {keys: [{jwk, retired_at, keep_until}]}
 * Issuing a token reads one file. The first use creates the key with link(2), so processes
 * racing on an empty directory agree on a single key and never see a half-written one.
 */

export const SIGNING_KEY_FILE = 'signing-key.json';
export const RETIRED_KEYS_FILE = 'retired-keys.json';
const ROTATE_LOCK = 'rotate.lock';

/** No identity token lives longer than this, so a retired key is needed no longer (plus skew). */
export const RETIRED_KEY_GRACE_SECONDS = 24 * 3600 + 300;

export interface SigningKey {
  kid: string;
  alg: SigningAlg;
  createdAt: string;
  privateKey: KeyObject;
}

export interface PublicJwk extends JsonWebKey {
  kid: string;
  alg: SigningAlg;
  use: 'sig';
}

interface StoredKey {
  kid: string;
  alg: SigningAlg;
  created_at: string;
  /** Written by oz: Node imports a JWK in about half the time it takes to parse PEM. */
  private_jwk?: JsonWebKey;
  private_key?: string;
}

interface RetiredKey {
  jwk: PublicJwk;
  retired_at: string;
  keep_until: string;
}

const DATA_DIR_CHECK = {
  code: 'config',
  what: 'data directory',
  instead: 'set OZ_DATA_DIR to a private directory such as ~/.local/share/oz',
} as const;

// crypto.hash is Node 20.12+; for a process that hashes once it costs about half of what a Hash
// object does. The bundles are CommonJS, where this import is a property read that an older
// Node 20 answers with undefined (a namespace import would copy all of node:crypto's exports
// at every start).
const oneShotHash: ((alg: string, data: string, enc: 'base64url') => string) | undefined = typeof hash === 'function' ? hash : undefined;

/** RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order. */
export function jwkThumbprint(jwk: JsonWebKey): string {
  let canonical: string;
  if (jwk.kty === 'RSA') canonical = JSON.stringify({ e: jwk.e, kty: 'RSA', n: jwk.n });
  else if (jwk.kty === 'EC') canonical = JSON.stringify({ crv: jwk.crv, kty: 'EC', x: jwk.x, y: jwk.y });
  else throw new TypeError(`unsupported key type ${String(jwk.kty)}`);
  return oneShotHash ? oneShotHash('sha256', canonical, 'base64url') : createHash('sha256').update(canonical).digest('base64url');
}

export function publicJwk(privateKey: KeyObject, alg: SigningAlg): PublicJwk {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  const members: JsonWebKey =
    jwk.kty === 'RSA' ? { kty: 'RSA', n: jwk.n, e: jwk.e } : { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y };
  return { ...members, kid: jwkThumbprint(members), alg, use: 'sig' };
}

function generate(alg: SigningAlg): StoredKey {
  const { privateKey } =
    alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    kid: publicJwk(privateKey, alg).kid,
    alg,
    created_at: new Date().toISOString(),
    private_jwk: privateKey.export({ format: 'jwk' }),
  };
}

function serialise(k: StoredKey): string {
  return `${JSON.stringify(k, null, 2)}\n`;
}

function corrupt(path: string, why: string, cause?: unknown): OzError {
  return new OzError(
    'config',
    `signing key ${quote(path)} is unusable (${why}); oz will not replace it, since tokens it signed would stop verifying: restore it, or move it away and run \`oz issuer init\``,
    { cause },
  );
}

function readStoredKey(path: string): SigningKey | undefined {
  let raw: Buffer;
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO planted at the path would otherwise wait for a writer forever.
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw corrupt(path, 'it is a symbolic link', e);
    throw new OzError('config', `cannot read signing key ${quote(path)}: ${describeCause(e)}`, { cause: e });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw corrupt(path, 'it is not a regular file');
    if (st.mode & 0o077) {
      throw new OzError('config', `signing key ${quote(path)} is readable by other users (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${path}`);
    }
    raw = readFileSync(fd);
  } catch (e) {
    if (e instanceof OzError) throw e;
    throw new OzError('config', `cannot read signing key ${quote(path)}: ${describeCause(e)}`, { cause: e });
  } finally {
    closeSync(fd);
  }
  let stored: Partial<StoredKey>;
  try {
    stored = JSON.parse(raw.toString('utf8')) as Partial<StoredKey>;
  } catch (e) {
    throw corrupt(path, 'not valid JSON', e);
  }
  const material = stored?.private_jwk ?? stored?.private_key;
  if (!stored || typeof stored !== 'object' || typeof stored.kid !== 'string' || (typeof material !== 'object' && typeof material !== 'string')) {
    throw corrupt(path, 'missing kid or private key');
  }
  if (stored.alg !== 'RS256' && stored.alg !== 'ES256') throw corrupt(path, `unsupported alg ${quote(String(stored.alg))}`);
  let privateKey: KeyObject;
  try {
    privateKey = typeof material === 'string' ? createPrivateKey(material) : createPrivateKey({ key: material, format: 'jwk' });
  } catch (e) {
    throw corrupt(path, 'the private key does not parse', e);
  }
  const expectedType = stored.alg === 'ES256' ? 'ec' : 'rsa';
  if (privateKey.asymmetricKeyType !== expectedType) throw corrupt(path, `the key is not an ${expectedType.toUpperCase()} key`);
  const mismatch = keyPairMismatch(privateKey, typeof material === 'object' ? material : undefined, stored.kid);
  if (mismatch) throw corrupt(path, mismatch);
  return { kid: stored.kid, alg: stored.alg, createdAt: String(stored.created_at ?? ''), privateKey };
}

const bigint = (b64url: string | undefined): bigint => {
  const hex = Buffer.from(b64url ?? '', 'base64url').toString('hex');
  return hex === '' ? 0n : BigInt(`0x${hex}`);
};

/**
 * Why the stored key would sign tokens that do not verify, or undefined when it is sound.
 * Node imports a private JWK without checking that its parts belong together: with one
 * character of `n` changed it signs happily, and what it signs verifies under no published
 * key. Run on every load, so it is arithmetic rather than a trial signature: 0.4 to 0.5 ms of
 * CPU in a CLI process that loads the key once (half of it the first SHA-256), 50 to 90 µs
 * warm, where a trial signature would double the cost of every token issued. Checked:
 * - the kid must be the RFC 7638 thumbprint of the public key Node derives from the private
 *   one (what the JWKS publishes), so that tokens name a key the JWKS lists;
 * - RSA: Node signs by the CRT with p, q, dp, dq and qi, and OpenSSL checks the result against
 *   n and e, falling back to d alone when it does not match. With n = p·q, e·dp ≡ 1 (mod p−1),
 *   e·dq ≡ 1 (mod q−1) and q·qi ≡ 1 (mod p) the CRT result is the signature that n and e
 *   verify, whatever d holds. That p and q are prime is not checked (it would cost
 *   milliseconds): no change of a character or two makes a composite pass the checks above;
 * - EC: the public point must be d·G. Node checks that it is on the curve, not that it is d's.
 */
export function keyPairMismatch(privateKey: KeyObject, privateJwk: JsonWebKey | undefined, kid: string): string | undefined {
  const pub = createPublicKey(privateKey).export({ format: 'jwk' });
  // A PEM brought in by hand has the same members once exported; oz's own keys are JWKs already.
  const priv = privateJwk ?? privateKey.export({ format: 'jwk' });
  if (pub.kty === 'RSA') {
    const [n, e, p, q] = [bigint(pub.n), bigint(pub.e), bigint(priv.p), bigint(priv.q)];
    if (p < 2n || q < 2n || n !== p * q) return 'its public modulus n is not the product of its primes p and q';
    const [dp, dq, qi] = [bigint(priv.dp), bigint(priv.dq), bigint(priv.qi)];
    if ((e * dp) % (p - 1n) !== 1n || (e * dq) % (q - 1n) !== 1n || (q * qi) % p !== 1n) {
      return 'its public exponent e does not match its private exponents';
    }
  } else {
    const ecdh = createECDH('prime256v1');
    try {
      ecdh.setPrivateKey(Buffer.from(priv.d ?? '', 'base64url'));
    } catch {
      return 'its private scalar d is out of range';
    }
    const point = ecdh.getPublicKey();
    const [x, y] = [Buffer.from(pub.x ?? '', 'base64url'), Buffer.from(pub.y ?? '', 'base64url')];
    if (!point.subarray(1, 33).equals(x) || !point.subarray(33).equals(y)) return 'its public point x, y is not the one its private scalar d gives';
  }
  const thumbprint = jwkThumbprint(pub);
  if (thumbprint !== kid) return `its kid ${quote(kid)} is not the key's RFC 7638 thumbprint ${quote(thumbprint)}`;
  return undefined;
}

export interface LoadOptions {
  /** Algorithm for a key created on first use. */
  alg?: SigningAlg;
  /** Create the key if there is none (issue-token, serve); false for read-only commands. */
  create?: boolean;
}

/** The active signing key, created on first use. */
export function loadSigningKey(dataDir: string, opts: LoadOptions = {}): SigningKey {
  return openSigningKey(dataDir, opts).key;
}

/** The active signing key, and whether this call created it (it won the race to). */
export function openSigningKey(dataDir: string, opts: LoadOptions = {}): { key: SigningKey; created: boolean } {
  const path = join(dataDir, SIGNING_KEY_FILE);
  let dirChecked = false;
  try {
    assertPrivateDir(dataDir, DATA_DIR_CHECK);
    dirChecked = true;
  } catch (e) {
    // A missing directory is the first use; anything else about it is a refusal. Judged by
    // the error itself: another process may create the directory a moment later.
    if (!(e instanceof OzError) || (e.cause as NodeJS.ErrnoException | undefined)?.code !== 'ENOENT') throw e;
  }
  const existing = dirChecked ? readStoredKey(path) : undefined;
  if (existing) return { key: existing, created: false };
  if (opts.create === false) {
    throw new OzError('config', `no signing key in ${quote(dataDir)}: run \`oz issuer init\` first (or set OZ_DATA_DIR to the directory that holds the key)`);
  }
  ensurePrivateDir(dataDir, DATA_DIR_CHECK);
  const fresh = generate(opts.alg ?? 'RS256');
  let created: boolean;
  try {
    created = createFileExclusive(path, serialise(fresh));
  } catch (e) {
    throw new OzError('config', `cannot create signing key in ${quote(dataDir)}: ${describeCause(e)}`, { cause: e });
  }
  // Whether we won the race or another process did, the file on disk is the key.
  const key = readStoredKey(path);
  if (!key) throw new OzError('config', `signing key ${quote(path)} vanished while it was being created`);
  return { key, created };
}

function readRetired(dataDir: string): RetiredKey[] {
  const path = join(dataDir, RETIRED_KEYS_FILE);
  let text: string;
  try {
    text = readFileNoFollow(path).toString('utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new OzError('config', `cannot read ${quote(path)}: ${describeCause(e)}`, { cause: e });
  }
  try {
    const parsed = JSON.parse(text) as { keys?: unknown } | null;
    if (!parsed || !Array.isArray(parsed.keys)) throw new Error('no "keys" array');
    return parsed.keys.map((entry, i) => {
      try {
        return retiredEntry(entry);
      } catch (e) {
        throw new Error(`entry ${i}: ${describeCause(e)}`);
      }
    });
  } catch (e) {
    throw new OzError('config', `retired key list ${quote(path)} is corrupt (${describeCause(e)}); restore it or remove it (retired keys will then stop being published)`, { cause: e });
  }
}

/**
 * One entry of retired-keys.json, rebuilt from its public members only: whatever else the
 * file holds (a private member, a stray field) is never published, and a key that does not
 * import, is not RSA or P-256, or whose kid is not its thumbprint is refused.
 */
function retiredEntry(entry: unknown): RetiredKey {
  if (!entry || typeof entry !== 'object') throw new Error(`expected an object, found ${entry === null ? 'null' : typeof entry}`);
  const { jwk, retired_at, keep_until } = entry as Partial<Record<keyof RetiredKey, unknown>>;
  if (typeof keep_until !== 'string' || Number.isNaN(Date.parse(keep_until))) throw new Error('"keep_until" is not a date');
  if (!jwk || typeof jwk !== 'object') throw new Error('no "jwk" object');
  const { kty, alg, kid } = jwk as Record<string, unknown>;
  const str = (name: string) => {
    const v = (jwk as Record<string, unknown>)[name];
    if (typeof v !== 'string' || !/^[A-Za-z0-9_-]+$/.test(v)) throw new Error(`"${name}" is not a base64url string`);
    return v;
  };
  let members: JsonWebKey;
  if (kty === 'RSA' && alg === 'RS256') members = { kty, n: str('n'), e: str('e') };
  else if (kty === 'EC' && alg === 'ES256' && (jwk as JsonWebKey).crv === 'P-256') members = { kty, crv: 'P-256', x: str('x'), y: str('y') };
  else throw new Error('not an RS256 RSA key or an ES256 P-256 key');
  let derived: JsonWebKey;
  try {
    derived = createPublicKey({ key: members, format: 'jwk' }).export({ format: 'jwk' });
  } catch (e) {
    throw new Error(`the key does not import: ${describeCause(e)}`);
  }
  const thumbprint = jwkThumbprint(derived);
  if (kid !== thumbprint) throw new Error(`its kid ${quote(String(kid))} is not the key's RFC 7638 thumbprint ${quote(thumbprint)}`);
  const published = { ...(kty === 'RSA' ? { kty, n: derived.n, e: derived.e } : { kty, crv: derived.crv, x: derived.x, y: derived.y }), kid: thumbprint, alg, use: 'sig' } as PublicJwk;
  return { jwk: published, retired_at: String(retired_at ?? ''), keep_until };
}

/** Public keys to publish: the active key and every retired key whose tokens may still be valid. */
export function publishedKeys(dataDir: string, now: Date, opts: LoadOptions = {}): PublicJwk[] {
  const active = loadSigningKey(dataDir, opts);
  const keys = [publicJwk(active.privateKey, active.alg)];
  for (const r of readRetired(dataDir)) {
    if (Date.parse(r.keep_until) > now.getTime() && r.jwk.kid !== active.kid) keys.push(r.jwk);
  }
  return keys;
}

export interface RotateResult {
  previous: { kid: string; alg: SigningAlg; keepUntil: string };
  current: { kid: string; alg: SigningAlg };
}

/**
 * Replace the active key. The old public key is recorded as retired before the new key takes
 * over, so at every instant the published set holds every key that may have signed a live token.
 */
export function rotateSigningKey(dataDir: string, now: Date, alg?: SigningAlg): RotateResult {
  const old = loadSigningKey(dataDir, { create: false });
  const lock = join(dataDir, ROTATE_LOCK);
  let locked: boolean;
  try {
    locked = createFileExclusive(lock, `${process.pid}\n`, { durable: false });
  } catch (e) {
    throw new OzError('io', `cannot rotate the signing key: cannot write in the data directory ${quote(dataDir)}: ${describeCause(e)}`, { cause: e });
  }
  if (!locked) {
    throw new OzError('config', `another \`oz issuer rotate\` is running (lock ${quote(lock)}); if none is, remove the lock file`);
  }
  try {
    const keepUntil = new Date(now.getTime() + RETIRED_KEY_GRACE_SECONDS * 1000).toISOString();
    const retired = readRetired(dataDir).filter((r) => Date.parse(r.keep_until) > now.getTime() && r.jwk.kid !== old.kid);
    retired.push({ jwk: publicJwk(old.privateKey, old.alg), retired_at: now.toISOString(), keep_until: keepUntil });
    writeFileAtomic(join(dataDir, RETIRED_KEYS_FILE), `${JSON.stringify({ keys: retired }, null, 2)}\n`, { durable: true });
    const fresh = generate(alg ?? old.alg);
    writeFileAtomic(join(dataDir, SIGNING_KEY_FILE), serialise(fresh), { durable: true });
    return { previous: { kid: old.kid, alg: old.alg, keepUntil }, current: { kid: fresh.kid, alg: fresh.alg } };
  } catch (e) {
    if (e instanceof OzError) throw e;
    throw new OzError('io', `key rotation failed in ${quote(dataDir)}: ${describeCause(e)}`, { cause: e });
  } finally {
    tryUnlink(lock);
  }
}
