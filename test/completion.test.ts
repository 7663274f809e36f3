// Loads `oz completion bash|zsh|fish` into the real shells, as their users install it, and asks
// each for completions, so that what is proved is what a person pressing Tab gets.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { oz, tempDir } from './helpers/oz.js';
import { COMMANDS, GROUPS } from '../src/cli/spec.js';

const scripts: Record<string, string> = {};
let dir: string;

beforeAll(async () => {
  dir = tempDir('oz-completion-');
  for (const shell of ['bash', 'zsh', 'fish']) {
    const r = await oz(['completion', shell], { env: { PATH: process.env.PATH!, HOME: dir } });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    scripts[shell] = r.stdout;
  }
});

function sh(cmd: string, args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { PATH: process.env.PATH!, HOME: dir, ...env }, timeout: 20_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '');
const topLevel = [...Object.keys(GROUPS), ...COMMANDS.filter((c) => c.path.length === 1).map((c) => c.path[0])];

describe('oz completion bash', () => {
  /** What _oz offers for these words, the last being the one under the cursor. */
  function complete(...words: string[]): string[] {
    const file = join(dir, 'oz.bash');
    writeFileSync(file, scripts.bash!);
    const array = words.map((w) => `'${w}'`).join(' ');
    return lines(sh('bash', ['--norc', '--noprofile', '-c', `source ${file}; complete -p oz; COMP_WORDS=(${array}); COMP_CWORD=${words.length - 1}; _oz; printf '%s\\n' "\${COMPREPLY[@]}"`]));
  }

  it('registers _oz for oz, with file names as the fallback', () => {
    expect(complete('oz', '')[0]).toBe('complete -o default -F _oz oz');
  });

  it.each([
    [['oz', ''], [...topLevel, '--help', '--version']],
    [['oz', 'fe'], ['federate']],
    [['oz', 'federate', 'issue'], ['issue-token']],
    [['oz', 'federate', 'issue-token', '--format', ''], ['jwt', 'json', 'gcp']],
    [['oz', 'federate', 'prepare', '--shell', 'p'], ['powershell']],
    [['oz', 'setup', 'aws', '--team-by', ''], ['tags', 'subject']],
    [['oz', 'doctor', '--'], ['--dir', '--json', '--help']],
    [['oz', 'completion', ''], ['bash', 'zsh', 'fish']],
    // A value with no choices: nothing from oz, so bash completes file names.
    [['oz', 'federate', 'prepare', '--dir', ''], []],
  ])('%j → %j', (words, expected) => {
    expect(complete(...words).slice(1)).toEqual(expected);
  });
});

describe('oz completion zsh', () => {
  /** compinit in a fresh ZDOTDIR with the script on $fpath, as `oz completion zsh > "${fpath[1]}/_oz"` installs it. */
  function zsh(body: string): string {
    const zdot = join(dir, 'zdot');
    mkdirSync(join(zdot, 'functions'), { recursive: true });
    writeFileSync(join(zdot, 'functions', '_oz'), scripts.zsh!);
    return sh('zsh', ['-f', '-c', `fpath=(${zdot}/functions $fpath); autoload -Uz compinit; compinit -u -d ${zdot}/zcompdump; ${body}`], { ZDOTDIR: zdot });
  }

  it('is found by compinit as the completion of oz', () => {
    expect(zsh('print -r -- ${_comps[oz]}')).toBe('_oz\n');
  });

  it.each([
    [['oz', ''], [...topLevel, '--help', '--version']],
    [['oz', 'issuer', ''], ['init', 'rotate', 'jwks', 'discovery', 'publish', 'serve', 'grant-run', '--help']],
    [['oz', 'federate', 'issue-token', '--format', ''], ['jwt', 'json', 'gcp']],
    [['oz', 'completion', ''], ['bash', 'zsh', 'fish']],
  ])('%j → %j', (words, expected) => {
    // compadd is captured: outside a completion widget it cannot add matches.
    const array = words.map((w) => `'${w}'`).join(' ');
    const out = zsh(`compadd() { [[ $1 == -- ]] && shift; print -rl -- "$@"; }; words=(${array}); CURRENT=${words.length}; _oz`);
    expect(lines(out)).toEqual(expected);
  });
});

describe('oz completion fish', () => {
  function complete(line: string): string[] {
    const file = join(dir, 'oz.fish');
    writeFileSync(file, scripts.fish!);
    return lines(sh('fish', ['--no-config', '-c', `source ${file}; complete -C '${line}'`])).map((l) => l.split('\t')[0]!);
  }

  it.each([
    ['oz ', [...topLevel].sort()],
    ['oz federate ', COMMANDS.filter((c) => c.path[0] === 'federate').map((c) => c.path[1]).sort()],
    ['oz federate issue-token --format ', ['gcp', 'json', 'jwt']],
    ['oz doctor --', ['--dir', '--json']],
    ['oz completion ', ['bash', 'fish', 'zsh']],
  ])('%s → %j', (line, expected) => {
    expect(complete(line).sort()).toEqual(expected);
  });
});
