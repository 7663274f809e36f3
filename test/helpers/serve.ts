import { spawn, type ChildProcess } from 'node:child_process';
import { OZ_BIN } from './oz.js';

export interface Served {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  /** Send a signal and wait for the exit status. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Start `oz issuer serve` on a free loopback port; resolves once it prints its URL. */
export function serve(env: Record<string, string>, args: string[] = []): Promise<Served> {
  return new Promise((resolve, reject) => {
    const child = spawn(OZ_BIN, ['issuer', 'serve', '--port', '0', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`oz issuer serve did not start: ${err}`));
    }, 15_000);
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      resolve({
        url: out.slice(0, nl),
        child,
        stderr: () => err,
        stop: (signal = 'SIGTERM') => {
          child.kill(signal);
          return exited;
        },
      });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`oz issuer serve exited with ${code}: ${err}`));
    });
  });
}
