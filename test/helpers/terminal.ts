import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { OZ_BIN, run, scrubbedEnv } from './oz.js';

export const SCRIPT = '/usr/bin/script';
export const RED_OZ = '\u001b[31m\u001b[1moz:\u001b[22m\u001b[39m';
export const DIM = '\u001b[2m';
export const BOLD = '\u001b[1m';
export const GREEN = '\u001b[32m';
export const ESC = '\u001b[';

export interface Section {
  command: string;
  output: string;
  code: number;
}

export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Run each shell command line on one pseudo-terminal, in order; `oz` is the built bin/oz. */
export async function onTerminal(home: string, commands: readonly string[], env: Record<string, string> = {}): Promise<Section[]> {
  const body = commands
    .map((c, i) => `printf '@@@begin ${i}\\n'; ${c}; printf '\\n@@@end ${i} %d\\n' "$?"`)
    .join('\n');
  const file = join(home, `batch-${Math.random().toString(36).slice(2)}.sh`);
  writeFileSync(file, `OZ=${shQuote(OZ_BIN)}\noz() { "$OZ" "$@"; }\n${body}\n`);
  const r = await run(SCRIPT, ['-qefc', `sh ${shQuote(file)}`, '/dev/null'], {
    env: scrubbedEnv(home, { TERM: 'xterm-256color', ...env }),
    timeoutMs: 120_000,
  });
  expect(r.code).toBe(0);
  const text = r.stdout.replace(/\r\n/g, '\n');
  return commands.map((command, i) => {
    const m = new RegExp(`@@@begin ${i}\\n([\\s\\S]*?)\\n@@@end ${i} (\\d+)\\n`).exec(text);
    if (!m) throw new Error(`no output for ${command} in:\n${text}`);
    // The command's own last newline, before the end marker's.
    return { command, output: m[1]!.replace(/\n$/, ''), code: Number(m[2]) };
  });
}

/** A failure on a terminal: one red `oz:` line, nothing else, the documented code. */
export function expectFailure(s: Section, code: number, message?: RegExp): void {
  expect({ command: s.command, code: s.code }).toEqual({ command: s.command, code });
  const lines = s.output.split('\n').filter((l) => l !== '');
  expect(lines, s.command).toHaveLength(1);
  expect(lines[0]!.startsWith(`${RED_OZ} `), `${s.command}: ${JSON.stringify(lines[0])}`).toBe(true);
  if (message) expect(lines[0]).toMatch(message);
  expectNoTrace(s);
}

export function expectNoTrace(s: Section): void {
  expect(s.output, s.command).not.toMatch(/\n\s+at |TypeError|ReferenceError|internal error|Node\.js v\d/);
}

export function expectSuccess(s: Section): void {
  expect({ command: s.command, code: s.code }).toEqual({ command: s.command, code: 0 });
  expectNoTrace(s);
}

export const hasScript = existsSync(SCRIPT);

export function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
