import { Argument, Command, CommanderError, Option } from 'commander';
import { EXIT_CODES, OzError } from '../core/errors.js';
import { COMMANDS, GROUPS, optionHelp, type CommandSpec } from './spec.js';
import { fail, silenceStderr } from './output.js';
import { disableDebug } from '../core/debug.js';
import { runCommand } from './run.js';

/** A command's body: its options as the spec types them, and its argument when it has one. */
export type Handler = (opts: Record<string, unknown>, arg?: string | string[]) => Promise<void>;

/**
 * Each command's handler, imported when the command runs, so that `oz issuer jwks` does not
 * load the token client and `--help` loads nothing but commander.
 */
const HANDLERS: Record<string, () => Promise<Handler>> = {
  'federate issue-token': async () => (await import('./issue-token.js')).issueTokenCommand as Handler,
  'federate prepare': async () => (await import('./prepare.js')).prepareCommand as Handler,
  'federate exec': async () => (await import('./exec.js')).execCommand as Handler,
  'federate refresh': async () => (await import('./refresh.js')).refreshCommand as Handler,
  'federate cleanup': async () => (await import('./prepare.js')).cleanupCommand as Handler,
  'federate whoami': async () => (await import('./whoami.js')).whoamiCommand as Handler,
  'federate inspect': async () => (await import('./inspect.js')).inspectCommand as Handler,
  'federate explain': async () => (await import('./explain.js')).explainCommand as Handler,
  'setup aws': async () => (await import('./setup.js')).setupAwsCommand as Handler,
  'setup gcp': async () => (await import('./setup.js')).setupGcpCommand as Handler,
  'setup azure': async () => (await import('./setup.js')).setupAzureCommand as Handler,
  'issuer init': async () => (await import('./issuer.js')).initCommand as Handler,
  'issuer rotate': async () => (await import('./issuer.js')).rotateCommand as Handler,
  'issuer jwks': async () => (await import('./issuer.js')).jwksCommand as Handler,
  'issuer discovery': async () => (await import('./issuer.js')).discoveryCommand as Handler,
  'issuer publish': async () => (await import('./issuer.js')).publishCommand as Handler,
  'issuer serve': async () => (await import('./serve.js')).serveCommand as Handler,
  'issuer grant-run': async () => (await import('./grant-run.js')).grantRunCommand as Handler,
  doctor: async () => (await import('./doctor.js')).doctorCommand as Handler,
  completion: async () => (await import('./completion.js')).completionCommand as Handler,
};

function examples(lines: readonly string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

export function commandId(spec: CommandSpec): string {
  return spec.path.join(' ');
}

/** Options exactly as the spec declares them; commander checks choices and required ones. */
function addCommand(parent: Command, spec: CommandSpec, run: Runner): void {
  const cmd = parent.command(spec.path.at(-1)!).description(spec.summary);
  // `--` ends oz's options: what follows is the command's, dashes and all.
  if (spec.argument?.variadic) cmd.argument(`<${spec.argument.name}...>`, spec.argument.help).usage(`[options] -- <${spec.argument.name}...>`);
  else if (spec.argument) {
    const argument = new Argument(`[${spec.argument.name}]`, spec.argument.help);
    if (spec.argument.choices) argument.choices(spec.argument.choices);
    cmd.addArgument(argument);
  }
  for (const o of spec.options) {
    const opt = new Option(o.value ? `${o.flag} ${o.value}` : o.flag, optionHelp(o));
    if (o.choices) opt.choices(o.choices);
    if (o.default !== undefined) opt.default(o.default);
    if (o.repeatable) opt.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
    if (o.required) opt.makeOptionMandatory();
    cmd.addOption(opt);
  }
  cmd.addHelpText('after', examples(spec.examples));
  cmd.action(async (...args: unknown[]) => {
    const command = args.at(-1) as Command;
    const arg = spec.argument ? (args[0] as string | string[] | undefined) : undefined;
    await run(spec, command.opts(), arg);
  });
}

export type Runner = (spec: CommandSpec, opts: Record<string, unknown>, arg?: string | string[]) => Promise<void>;

async function runHandler(spec: CommandSpec, opts: Record<string, unknown>, arg?: string | string[]): Promise<void> {
  // main.ts silences the gcp format before anything runs; this keeps it so on every path.
  if (opts.format === 'gcp') {
    disableDebug();
    silenceStderr();
  }
  await runCommand(async () => {
    const handler = await HANDLERS[commandId(spec)]!();
    await handler(opts, arg);
  }, opts.format === 'gcp');
}

/** The whole CLI; `run` replaces the handlers (the parity test uses that to see what a command would get). */
export function buildProgram(run: Runner = runHandler): Command {
  const program = new Command('oz')
    .description('Short-lived OpenID Connect identity for agent runs: AWS and GCP federation with no long-lived secret.')
    .version(__OZ_VERSION__, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showSuggestionAfterError(true)
    .addHelpText('after', examples(['oz federate issue-token --audience sts.amazonaws.com', 'eval "$(oz federate prepare)"', 'oz federate whoami', 'oz issuer serve']));
  const groups = new Map<string, Command>();
  for (const g of Object.values(GROUPS)) {
    groups.set(g.name, program.command(g.name).description(g.summary).addHelpText('after', examples(g.examples)));
  }
  // A one-word path is a command of its own, beside the groups.
  for (const spec of COMMANDS) addCommand(spec.path.length === 1 ? program : groups.get(spec.path[0])!, spec, run);
  return program;
}

/**
 * Commander's own messages ("error: unknown option '--x'") become oz's one-line form, printed
 * by the same code as every other failure (colour on a terminal included) once parsing stops.
 */
function configureErrors(cmd: Command, errors: string[]): void {
  cmd.exitOverride();
  cmd.configureOutput({
    outputError: (str) => {
      const text = str.replace(/^error:\s*/i, '').trim().replace(/\s*\n\s*/g, ' ');
      errors.push(`${text} (see \`${commandPath(cmd)} --help\`)`);
    },
  });
  for (const sub of cmd.commands) configureErrors(sub, errors);
}

/**
 * Spellings people type that commander does not know: `oz version`; `-V` (before `-v` took
 * its place); `oz help federate issue-token` and `oz federate help issue-token`, where
 * commander's help command would show the group's help, not the command's.
 */
export function normaliseArgv(argv: readonly string[]): string[] {
  if (argv.length === 1 && (argv[0] === 'version' || argv[0] === '-V')) return ['--version'];
  if (argv[0] === 'help') return [...argv.slice(1), '--help'];
  if (argv[1] === 'help' && argv[0]! in GROUPS) return [argv[0]!, ...argv.slice(2), '--help'];
  return [...argv];
}

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export async function runProgram(argv: string[], run?: Runner): Promise<void> {
  const program = buildProgram(run);
  const errors: string[] = [];
  configureErrors(program, errors);
  try {
    await program.parseAsync(normaliseArgv(argv), { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are not failures; a bare group name shows its help and is a usage error.
      const ok = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0;
      if (!ok && errors.length > 0) await fail(new OzError('usage', errors.join(' ')));
      else process.exitCode = ok ? 0 : EXIT_CODES.usage;
      return;
    }
    throw e;
  }
}
