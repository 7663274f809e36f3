import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * The oz the end-to-end tests run: bin/oz of this checkout, or OZ_TEST_BIN, for example the
 * single executable (`OZ_TEST_BIN=dist/sea/oz`, as .ci/run does).
 */
export const OZ_BIN = process.env.OZ_TEST_BIN ? resolve(process.env.OZ_TEST_BIN) : resolve(__dirname, '../../bin/oz');

/** Whether OZ_BIN is one self-contained file (the single executable) rather than bin/oz beside dist/. */
export const OZ_BIN_IS_SINGLE_FILE = isBinary(OZ_BIN);

function isBinary(file: string): boolean {
  const head = Buffer.alloc(2);
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    readSync(fd, head, 0, 2, 0);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return head.toString('latin1') !== '#!';
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  input?: string;
  cwd?: string;
  timeoutMs?: number;
}

/** A temp directory for one test: its own HOME and data directory. */
export function tempDir(prefix = 'oz-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * The environment a test runs oz with: nothing inherited but PATH, so that no OZ_*, AWS_*,
 * GOOGLE_* or proxy variable of the machine running the tests leaks in.
 */
export function scrubbedEnv(home: string, extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: home,
    OZ_DATA_DIR: join(home, 'oz-data'),
    XDG_RUNTIME_DIR: join(home, 'run'),
    TMPDIR: home,
    LANG: 'C.UTF-8',
    ...extra,
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env as NodeJS.ProcessEnv,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      // Generous: a first use creates and fsyncs a key, which a busy CI disk can make slow.
      timeout: opts.timeoutMs ?? 45_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
    // A command that exits before it reads its input closes the pipe: that is its business (the
    // exit code and output say what happened), not an error of the test's.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

export function oz(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(OZ_BIN, args, opts);
}

/** Decode a JWT's parts without verifying, for assertions. */
export function decode(token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  const [h, p] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h!, 'base64url').toString()),
    claims: JSON.parse(Buffer.from(p!, 'base64url').toString()),
  };
}
