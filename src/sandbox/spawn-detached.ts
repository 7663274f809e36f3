import { spawn } from 'node:child_process';

/** Start a process in a session of its own, stdio on /dev/null, and let this one exit without it. */
export function spawnDetached(file: string, args: readonly string[], env: NodeJS.ProcessEnv): number | undefined {
  const child = spawn(file, args, { detached: true, stdio: 'ignore', env });
  child.unref();
  return child.pid;
}
