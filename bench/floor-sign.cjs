#!/usr/bin/env node
// The floor: the least any Node program can do for each job that oz's benchmarks time.
// bench/run.mjs runs it side by side with oz, interleaved, and reports oz's figures as
// ratios to it. CommonJS on purpose (the package is "type": "module", hence .cjs): loading
// CommonJS is the cheapest way Node starts a program, so the floor gets it.
//
//   floor-sign.cjs [--alg RS256|ES256] [--key FILE] [--audience AUD]
//       load node:crypto, read a PKCS#8 PEM key, sign one JWT, print it and a newline
//   floor-sign.cjs --format gcp            (what Google's libraries call)
//       the same signing for $GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE (//iam… becomes https://iam…),
//       print the executable-sourced credential response, and write it to
//       $GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE when set (temp file + rename, 0600)
//   floor-sign.cjs prepare --dir DIR [--aws-role-arn ARN] [--gcp-project-number N
//                  --gcp-pool-id P --gcp-provider-id V]
//       sign a token for sts.amazonaws.com; create DIR 0700 and refuse it if it is a symlink or
//       someone else's; write the token (no newline) to a 0600 file and the GCP
//       external_account config to another, each by temp file + rename; print `export K='v'`
//   floor-sign.cjs --serve [--port P]      (context only: a minimal HTTP token service)
//   floor-sign.cjs --remote [--audience AUD]   (context only: the remote token source)
//       POST {"audience","duration_seconds"} to $OZ_TOKEN_URL with $OZ_RUN_TOKEN as the bearer,
//       through node:http, and print the token
//   floor-sign.cjs --rate [--seconds S] [--inflight N]
//       tokens per second one process signs, N signatures in flight on libuv's thread pool
//
// Without --key, a key is made once in the temp directory. The claim set is the one an oz
// run token carries, with the values bench/run.mjs gives oz through the run context.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const alg = opt('--alg', 'RS256');
const keyFile = opt('--key', `${require('node:os').tmpdir()}/oz-bench-floor-${alg}.pem`);

function loadKey() {
  try {
    return crypto.createPrivateKey(fs.readFileSync(keyFile));
  } catch {
    // First use without --key.
  }
  const { privateKey } =
    alg === 'ES256'
      ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return privateKey;
}

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const signOpts = (key) => (alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);

function signingInput(aud, lifetime) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg, kid: 'floor', typ: 'JWT' });
  const body = b64({
    iss: 'http://127.0.0.1:8787', sub: 'user-1', aud, iat: now - 30, nbf: now - 30, exp: now + lifetime,
    jti: crypto.randomUUID(), teams: ['team-1'], run_id: 'run-1', environment: 'env-1', agent_name: 'a', skill_spec: 's', host: 'warp',
  });
  return { input: `${head}.${body}`, exp: now + lifetime };
}

function token(key, aud, lifetime = 3600) {
  const { input, exp } = signingInput(aud, lifetime);
  const sig = crypto.sign('sha256', Buffer.from(input), signOpts(key));
  return { jwt: `${input}.${sig.toString('base64url')}`, exp };
}

// Temp file + rename, so a reader sees the old file or the new one; O_EXCL so nothing planted
// at the temp name is followed.
function writeAtomic(path, data) {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  fs.writeSync(fd, data);
  fs.closeSync(fd);
  fs.renameSync(tmp, path);
}

function gcp(key) {
  const configured = process.env.GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE;
  const aud = configured.startsWith('//iam.googleapis.com/') ? `https:${configured}` : configured;
  const { jwt, exp } = token(key, aud);
  const body = JSON.stringify({ version: 1, success: true, token_type: 'urn:ietf:params:oauth:token-type:jwt', id_token: jwt, expiration_time: exp });
  const cache = process.env.GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE;
  if (cache) writeAtomic(cache, body);
  process.stdout.write(`${body}\n`);
}

const q = (v) => `'${String(v).replace(/'/g, `'\\''`)}'`;

function prepare(key) {
  const dir = opt('--dir');
  const roleArn = opt('--aws-role-arn');
  const [project, pool, provider] = [opt('--gcp-project-number'), opt('--gcp-pool-id'), opt('--gcp-provider-id')];
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory() || st.uid !== process.getuid() || st.mode & 0o077) throw new Error(`unsafe ${dir}`);
  const lines = [];
  if (roleArn) {
    const file = `${dir}/aws-web-identity-token`;
    writeAtomic(file, token(key, 'sts.amazonaws.com', 4 * 3600).jwt);
    lines.push(`export AWS_ROLE_ARN=${q(roleArn)}`, `export AWS_WEB_IDENTITY_TOKEN_FILE=${q(file)}`, `export AWS_ROLE_SESSION_NAME=${q('Oz_Run_run-1')}`);
  }
  if (project) {
    const file = `${dir}/gcp-credentials.json`;
    const output = `${dir}/gcp-executable-output.json`;
    try {
      fs.unlinkSync(output);
    } catch {
      // No cached response from an earlier run.
    }
    const config = {
      universe_domain: 'googleapis.com',
      type: 'external_account',
      audience: `//iam.googleapis.com/projects/${project}/locations/global/workloadIdentityPools/${pool}/providers/${provider}`,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: 'https://sts.googleapis.com/v1/token',
      credential_source: { executable: { command: `${process.argv[1]} federate issue-token --format gcp`, timeout_millis: 30000, output_file: output } },
    };
    writeAtomic(file, `${JSON.stringify(config, null, 2)}\n`);
    lines.push(`export GOOGLE_APPLICATION_CREDENTIALS=${q(file)}`, `export CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE=${q(file)}`, "export GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES='1'");
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function rate(key) {
  const seconds = Number(opt('--seconds', '5'));
  const inflight = Number(opt('--inflight', '32'));
  const o = signOpts(key);
  const signAsync = () => {
    const { input } = signingInput('sts.amazonaws.com', 900);
    return new Promise((res, rej) => crypto.sign('sha256', Buffer.from(input), o, (e, s) => (e ? rej(e) : res(`${input}.${s.toString('base64url')}`))));
  };
  const end = Date.now() + seconds * 1000;
  let n = 0;
  const worker = async () => {
    while (Date.now() < end) {
      await signAsync();
      n++;
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: inflight }, worker));
  process.stdout.write(`${(n / ((Date.now() - t0) / 1000)).toFixed(0)}\n`);
}

// For context only (bench/run.mjs prints it beside the token service, but the target is a
// ratio to --rate): the least an HTTP token service does per request. Keep-alive HTTP/1.1,
// the bearer checked as a JWS signed by this key and not expired, the JSON body parsed,
// one token signed on the thread pool, a JSON answer.
function serve(key) {
  const http = require('node:http');
  const pub = crypto.createPublicKey(key);
  const o = signOpts(key);
  const verifyOpts = alg === 'ES256' ? { key: pub, dsaEncoding: 'ieee-p1363' } : pub;
  const deny = (res, status) => {
    res.writeHead(status, { 'content-type': 'application/problem+json' });
    res.end(`{"status":${status}}`);
  };
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/token') return deny(res, 404);
    const m = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/.exec(req.headers.authorization ?? '');
    if (!m) return deny(res, 401);
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      let grant;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        grant = JSON.parse(Buffer.from(m[2], 'base64url').toString('utf8'));
      } catch {
        return deny(res, 400);
      }
      const sig = Buffer.from(m[3], 'base64url');
      if (!crypto.verify('sha256', Buffer.from(`${m[1]}.${m[2]}`), verifyOpts, sig) || grant.exp <= Date.now() / 1000) return deny(res, 401);
      const { input, exp } = signingInput(String(body.audience), Number(body.duration_seconds) || 3600);
      crypto.sign('sha256', Buffer.from(input), o, (e, s) => {
        if (e) return deny(res, 500);
        const answer = JSON.stringify({ token: `${input}.${s.toString('base64url')}`, expires_at: new Date(exp * 1000).toISOString() });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(answer);
      });
    });
  });
  server.listen(Number(opt('--port', '0')), '127.0.0.1', () => {
    process.stdout.write(`http://127.0.0.1:${server.address().port}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

function remote() {
  const http = require('node:http');
  const body = JSON.stringify({ audience: opt('--audience', 'sts.amazonaws.com'), duration_seconds: 3600 });
  const req = http.request(process.env.OZ_TOKEN_URL, {
    method: 'POST',
    headers: { authorization: `Bearer ${process.env.OZ_RUN_TOKEN}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  });
  req.on('response', (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => {
      const answer = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
      process.stdout.write(`${answer.token}\n`);
    });
  });
  req.end(body);
}

if (args.includes('--remote')) remote();
else {
  const key = loadKey();
  if (args.includes('--rate')) rate(key);
  else if (args.includes('--serve')) serve(key);
  else if (args.includes('prepare')) prepare(key);
  else if (opt('--format') === 'gcp') gcp(key);
  else process.stdout.write(`${token(key, opt('--audience', 'sts.amazonaws.com')).jwt}\n`);
}
