// The npm package as a user installs it: `npm pack`, then `npm install -g` of the tarball into
// a fresh prefix. The package has no dependencies (dist/ bundles them), so the install runs
// with --offline and reaches no registry.
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { run, scrubbedEnv, tempDir } from './helpers/oz.js';

const ROOT = resolve(__dirname, '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; dependencies?: object };

describe('npm pack, then npm install -g of the tarball', () => {
  let prefix: string;
  let files: string[];
  let home: string;

  beforeAll(async () => {
    const work = tempDir('oz-pack-');
    const npmEnv = { PATH: process.env.PATH ?? '', HOME: work, npm_config_cache: join(work, 'npm-cache'), npm_config_update_notifier: 'false' };
    // --ignore-scripts: packing must not rebuild dist/ under the other tests' feet.
    const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { env: npmEnv, cwd: ROOT, timeoutMs: 120_000 });
    expect(pack.code, pack.stderr).toBe(0);
    const [info] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    files = info!.files.map((f) => f.path);
    prefix = join(work, 'prefix');
    const install = await run('npm', ['install', '-g', '--offline', '--no-audit', '--no-fund', '--prefix', prefix, join(work, info!.filename)], {
      env: npmEnv,
      timeoutMs: 120_000,
    });
    expect(install.code, install.stderr).toBe(0);
    home = tempDir('oz-pack-home-');
  }, 240_000);

  it('has a publishable scoped name, no run-time dependencies, and no single executable inside', () => {
    expect(pkg.name).toBe('@oz-oidc/oz');
    expect(pkg.dependencies).toBeUndefined();
    expect(files).toContain('bin/oz');
    expect(files).toContain('dist/cli.cjs');
    expect(files.filter((f) => f.startsWith('dist/sea/') || f.includes('node_modules/'))).toEqual([]);
  });

  it('installs a command named oz that issues a token', async () => {
    expect(readdirSync(join(prefix, 'bin'))).toEqual(['oz']);
    const env = scrubbedEnv(home, { PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}` });
    const r = await run('oz', ['federate', 'issue-token', '--audience', 'sts.amazonaws.com', '--format', 'json'], { env });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout).claims.aud).toBe('sts.amazonaws.com');
    const v = await run('oz', ['--version'], { env });
    expect(v.stdout).toBe(`${pkg.version}\n`);
    expect(existsSync(join(prefix, 'lib', 'node_modules', ...pkg.name.split('/'), 'dist', 'main.cjs'))).toBe(true);
  });
});
