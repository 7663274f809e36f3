import { createPublicKey } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { loadSigningKey, publishedKeys, RETIRED_KEYS_FILE, SIGNING_KEY_FILE, type PublicJwk, type SigningKey } from '../core/keys.js';
import type { VerificationKey } from './grant-verify.js';
import { describeCause } from '../core/errors.js';

/**
 * The token service's view of the key store, kept in memory: the active signing key and the
 * public keys of the published set (to verify run tokens). Reading files per request would
 * cost more than signing, so the files are stat'ed at most once a second and re-read only
 * when one has changed (`oz issuer rotate` replaces them by rename).
 */
export interface KeyCache {
  signingKey(): SigningKey;
  verificationKey(kid: string): VerificationKey | undefined;
  /** The published set, for the JWKS document. */
  publishedKeys(): readonly PublicJwk[];
  /** Changes whenever the keys are reloaded, so that what was verified with them can be dropped. */
  version(): number;
}

export interface KeyCacheOptions {
  dataDir: string;
  now?: () => Date;
  /** Told when a reload fails; the previous keys stay in use. */
  onReloadError?: (message: string) => void;
  checkIntervalMs?: number;
}

export function createKeyCache(opts: KeyCacheOptions): KeyCache {
  const now = opts.now ?? (() => new Date());
  const interval = opts.checkIntervalMs ?? 1000;
  const files = [join(opts.dataDir, SIGNING_KEY_FILE), join(opts.dataDir, RETIRED_KEYS_FILE)];
  let stamp = '';
  let checkedAt = -Infinity;
  let signing: SigningKey | undefined;
  let loads = 0;
  let verifying = new Map<string, VerificationKey>();
  let published: PublicJwk[] = [];

  const fingerprint = () =>
    files
      .map((f) => {
        try {
          const st = statSync(f);
          return `${st.ino}:${st.size}:${st.mtimeMs}`;
        } catch {
          return '-';
        }
      })
      .join('|');

  const load = () => {
    const key = loadSigningKey(opts.dataDir, { create: false });
    const keys = new Map<string, VerificationKey>();
    // Retired keys whose time is up drop out at the next change of the key files; by then no
    // token or grant they signed is still valid.
    const jwks = publishedKeys(opts.dataDir, now(), { create: false });
    for (const jwk of jwks) {
      keys.set(jwk.kid, { key: createPublicKey({ key: jwk, format: 'jwk' }), alg: jwk.alg });
    }
    signing = key;
    verifying = keys;
    published = jwks;
    loads++;
  };

  const refresh = (force: boolean) => {
    const t = Date.now();
    if (!force && signing && t - checkedAt < interval) return;
    if (force && t - checkedAt < interval) return;
    checkedAt = t;
    const current = fingerprint();
    if (current === stamp && signing) return;
    try {
      load();
      stamp = current;
    } catch (e) {
      // A key store that breaks under a running service keeps the keys it had; the first
      // load has nothing to fall back on and fails loudly.
      if (!signing) throw e;
      opts.onReloadError?.(`oz: cannot reload the signing keys, still using the previous ones: ${describeCause(e)}`);
    }
  };

  return {
    signingKey() {
      refresh(false);
      return signing!;
    },
    verificationKey(kid) {
      refresh(false);
      const found = verifying.get(kid);
      if (found) return found;
      // A kid we have not seen may be from a rotation in the last second.
      refresh(true);
      return verifying.get(kid);
    },
    publishedKeys() {
      refresh(false);
      return published;
    },
    version() {
      refresh(false);
      return loads;
    },
  };
}
