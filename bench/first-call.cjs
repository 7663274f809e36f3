#!/usr/bin/env node
// First-call costs of the operations on oz's start-up path, each timed inside a fresh Node
// process (first calls pay for lazy loading of Node's internals, which is what a CLI that
// runs once pays). Prints the median over --runs processes per operation.
//
//   node bench/first-call.cjs --key FILE.pem [--runs 25]
//
// With --child NAME it is one such process: it times NAME and prints microseconds.
'use strict';
const { spawnSync } = require('node:child_process');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};

// Each operation runs after node:crypto and node:fs are loaded (the floor loads them too),
// so a figure is what the operation adds on top of the floor.
const OPS = {
  'require node:os': () => require('node:os'),
  'os.userInfo()': () => require('node:os').userInfo(),
  'os.hostname()': () => require('node:os').hostname(),
  'os.homedir() + os.tmpdir()': () => {
    const os = require('node:os');
    os.homedir();
    os.tmpdir();
  },
  'require node:util (parseArgs)': () => require('node:util').parseArgs({ args: ['--audience', 'x'], options: { audience: { type: 'string' } } }),
  'crypto.randomUUID()': () => require('node:crypto').randomUUID(),
  'crypto.randomBytes(6)': () => require('node:crypto').randomBytes(6),
  'createPrivateKey(PEM)': (ctx) => require('node:crypto').createPrivateKey(ctx.pem),
  'createPrivateKey(DER)': (ctx) => require('node:crypto').createPrivateKey({ key: ctx.der, format: 'der', type: 'pkcs8' }),
  'createPrivateKey(JWK)': (ctx) => require('node:crypto').createPrivateKey({ key: ctx.jwk, format: 'jwk' }),
  'sign RS256 (key parsed)': (ctx) => require('node:crypto').sign('sha256', Buffer.from('a.b'), ctx.key),
  'JSON.parse(signing-key.json)': (ctx) => JSON.parse(ctx.json),
  'lstat + open/fstat/read/close': (ctx) => {
    const fs = require('node:fs');
    fs.lstatSync(ctx.dir);
    const fd = fs.openSync(`${ctx.dir}/signing-key.json`, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    fs.fstatSync(fd);
    fs.readFileSync(fd);
    fs.closeSync(fd);
  },
  // What loading a key adds to check it (src/keys.ts keyPairMismatch): the RFC 7638
  // thumbprint of the derived public key, then n = p·q and the CRT exponents, or d·G for EC.
  'check key pair RS256 (key parsed)': (ctx) => checkKeyPair(ctx.key, ctx.jwk),
  'check key pair ES256 (key parsed)': (ctx) => checkKeyPair(ctx.ecKey, ctx.ecJwk),
  // In context: what the check adds to loading a key and signing once, as issue-token does.
  'JWK import + sign RS256': (ctx) => importAndSign(ctx.jwk, false),
  'JWK import + check + sign RS256': (ctx) => importAndSign(ctx.jwk, true),
  'JWK import + sign ES256': (ctx) => importAndSign(ctx.ecJwk, false),
  'JWK import + check + sign ES256': (ctx) => importAndSign(ctx.ecJwk, true),
  'new URL(issuer)': () => new URL('http://127.0.0.1:8787'),
  'write file atomically (tmp+rename)': (ctx) => {
    const fs = require('node:fs');
    const tmp = `${ctx.dir}/out.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    fs.writeSync(fd, 'x'.repeat(900));
    fs.closeSync(fd);
    fs.renameSync(tmp, `${ctx.dir}/out.json`);
  },
};

function checkKeyPair(key, priv) {
  const crypto = require('node:crypto');
  const pub = crypto.createPublicKey(key).export({ format: 'jwk' });
  const big = (b) => BigInt(`0x${Buffer.from(b, 'base64url').toString('hex')}`);
  let ok;
  if (pub.kty === 'RSA') {
    const [n, e, p, q, dp, dq, qi] = [pub.n, pub.e, priv.p, priv.q, priv.dp, priv.dq, priv.qi].map(big);
    ok = n === p * q && (e * dp) % (p - 1n) === 1n && (e * dq) % (q - 1n) === 1n && (q * qi) % p === 1n;
  } else {
    const ecdh = crypto.createECDH('prime256v1');
    ecdh.setPrivateKey(Buffer.from(priv.d, 'base64url'));
    ok = ecdh.getPublicKey().subarray(1, 33).equals(Buffer.from(pub.x, 'base64url'));
  }
  const members = pub.kty === 'RSA' ? { e: pub.e, kty: pub.kty, n: pub.n } : { crv: pub.crv, kty: pub.kty, x: pub.x, y: pub.y };
  const kid = crypto.hash ? crypto.hash('sha256', JSON.stringify(members), 'base64url') : crypto.createHash('sha256').update(JSON.stringify(members)).digest('base64url');
  if (!ok || !kid) throw new Error('the key pair check failed on a sound key');
}

function importAndSign(jwk, check) {
  const crypto = require('node:crypto');
  const key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
  if (check) checkKeyPair(key, jwk);
  crypto.sign('sha256', Buffer.from('header.payload'), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
}

if (args[0] === '--child') {
  const name = args[1];
  const dir = args[2];
  const crypto = require('node:crypto');
  const fs = require('node:fs');
  // Only raw bytes are read before the clock starts, so that no key parsing is warmed up.
  const read = (f) => fs.readFileSync(`${dir}/${f}`);
  const ctx = { dir, file: `${dir}/key.pem`, pem: read('key.pem'), der: read('key.der'), jwk: JSON.parse(read('key.jwk')), ecJwk: JSON.parse(read('ec.jwk')), json: read('signing-key.json').toString('utf8') };
  if (name.startsWith('sign') || name.startsWith('check')) ctx.key = crypto.createPrivateKey({ key: ctx.jwk, format: 'jwk' });
  if (name.startsWith('check')) ctx.ecKey = crypto.createPrivateKey({ key: ctx.ecJwk, format: 'jwk' });
  const t0 = process.hrtime.bigint();
  OPS[name](ctx);
  const us = Number(process.hrtime.bigint() - t0) / 1000;
  process.stdout.write(`${us}\n`);
} else {
  const keyFile = opt('--key');
  if (!keyFile) {
    console.error('usage: node bench/first-call.cjs --key FILE.pem [--runs N]');
    process.exit(2);
  }
  const runs = Number(opt('--runs', '25'));
  const fs = require('node:fs');
  const crypto = require('node:crypto');
  const dir = fs.mkdtempSync(`${require('node:os').tmpdir()}/oz-first-call-`);
  const pem = fs.readFileSync(keyFile, 'utf8');
  const key = crypto.createPrivateKey(pem);
  fs.writeFileSync(`${dir}/key.pem`, pem, { mode: 0o600 });
  fs.writeFileSync(`${dir}/key.der`, key.export({ type: 'pkcs8', format: 'der' }), { mode: 0o600 });
  fs.writeFileSync(`${dir}/key.jwk`, JSON.stringify(key.export({ format: 'jwk' })), { mode: 0o600 });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  fs.writeFileSync(`${dir}/ec.jwk`, JSON.stringify(ec.export({ format: 'jwk' })), { mode: 0o600 });
  fs.writeFileSync(`${dir}/signing-key.json`, `${JSON.stringify({ kid: 'k', alg: 'RS256', created_at: new Date().toISOString(), private_key: pem }, null, 2)}\n`, { mode: 0o600 });
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  console.log(`first-call cost in a fresh process, median of ${runs} (node ${process.version})`);
  for (const name of Object.keys(OPS)) {
    const xs = [];
    for (let i = 0; i < runs; i++) {
      const r = spawnSync(process.execPath, [__filename, '--child', name, dir], { encoding: 'utf8', env: { PATH: process.env.PATH } });
      if (r.status !== 0) throw new Error(`${name}: ${r.stderr}`);
      xs.push(Number(r.stdout));
    }
    console.log(`${(median(xs) / 1000).toFixed(3).padStart(8)} ms  ${name}`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}
