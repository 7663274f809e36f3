import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MANIFEST_FILE, readManifest, tokenExpiryMs, writeManifest } from '../../src/sandbox/token-manifest.js';
import { LOCK_FILE, acquireLock, holdsLock, releaseLock, runningRefresher } from '../../src/sandbox/refresher-lock.js';

const made: string[] = [];
const fresh = () => {
  const dir = mkdtempSync(join(tmpdir(), 'oz-token-files-'));
  made.push(dir);
  return dir;
};
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('the list of token files', () => {
  it('reads back what prepare wrote', () => {
    const dir = fresh();
    const manifest = { version: 1 as const, duration_seconds: 600, files: [{ file: 'aws-web-identity-token', audience: 'sts.amazonaws.com' }] };
    writeManifest(dir, manifest);
    expect(readManifest(dir)).toEqual(manifest);
  });

  it('names files in its own directory only: a path that leaves it is dropped', () => {
    const dir = fresh();
    const files = [
      { file: '../escape', audience: 'a' },
      { file: '/etc/passwd', audience: 'a' },
      { file: '..', audience: 'a' },
      { file: 'ok', audience: 'a' },
      { file: 'x', audience: 7 },
    ];
    writeFileSync(join(dir, MANIFEST_FILE), JSON.stringify({ version: 1, duration_seconds: 60, files }));
    expect(readManifest(dir)?.files).toEqual([{ file: 'ok', audience: 'a' }]);
  });

  it('is undefined when missing or not one prepare wrote', () => {
    const dir = fresh();
    expect(readManifest(dir)).toBeUndefined();
    writeFileSync(join(dir, MANIFEST_FILE), '{"version":2,"files":[]}');
    expect(readManifest(dir)).toBeUndefined();
  });

  it("reads a token file's expiry from its JWT, and nothing from anything else", () => {
    const payload = Buffer.from(JSON.stringify({ exp: 1700000000 })).toString('base64url');
    expect(tokenExpiryMs(`e30.${payload}.sig`)).toBe(1700000000_000);
    expect(tokenExpiryMs('')).toBeUndefined();
    expect(tokenExpiryMs('not.a-jwt.at-all')).toBeUndefined();
  });
});

describe('one refresher per directory', () => {
  it('takes a free lock, and releases only its own', () => {
    const dir = fresh();
    expect(acquireLock(dir)).toBe(true);
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe(`${process.pid}\n`);
    expect(holdsLock(dir)).toBe(true);
    releaseLock(dir);
    expect(holdsLock(dir)).toBe(false);
  });

  it('replaces a lock left by a process that is gone, or by one that is not a refresher (a recycled pid)', () => {
    for (const stale of ['999999999', String(process.pid === 1 ? 2 : 1)]) {
      const dir = fresh();
      writeFileSync(join(dir, LOCK_FILE), `${stale}\n`);
      expect(runningRefresher(dir)).toBeUndefined();
      expect(acquireLock(dir)).toBe(true);
      expect(holdsLock(dir)).toBe(true);
    }
  });
});
