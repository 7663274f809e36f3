import { ISSUE_TOKEN, PREPARE } from './spec.js';
import { parseFast, winningFormat } from './fast-args.js';
import { silenceStderr, fail, note, outputPending } from './output.js';
import { debugWanted, disableDebug, enableDebug } from '../core/debug.js';
import { runCommand, writeGcpFailure } from './run.js';
import { OzError, quote } from '../core/errors.js';

/**
 * Entry point. The commands that run on every credential refresh (`federate issue-token`,
 * `federate prepare`) are parsed here from their spec without loading commander; everything
 * else, and any call that asks for help or that the fast parser cannot take, goes through the
 * full commander program, derived from the same spec.
 */
const argv = process.argv.slice(2);
const wantsHelp = argv.some((a) => a === '--help' || a === '-h');

// A reader that stops early (`oz --help | head`) ends our output, not in a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  void fail(e);
});

// The one look at OZ_DEBUG: every trace point after it tests a module variable.
if (debugWanted(process.env.OZ_DEBUG)) enableDebug(note);

/**
 * A hot command exits as soon as it is done. Node would otherwise go round its event loop once
 * more, running what V8 scheduled meanwhile (a young-generation collection: about 1 ms of a
 * 30 ms `issue-token`), then free the environment and the whole heap: work nobody waits for
 * but the caller, at every refresh. It exits from the next tick, after the callbacks already
 * queued (a warning Node emitted during the command is written by one). Writes to a pipe, a
 * file or a terminal are synchronous on Linux, so what oz printed is out; where one is still
 * queued (another OS, a pipe that is full), oz waits until the loop has nothing left to do.
 * 'exit' listeners run either way.
 */
function exitAtOnce(): void {
  process.nextTick(() => {
    if (outputPending()) process.once('beforeExit', () => process.exit());
    else process.exit();
  });
}

async function main(): Promise<void> {
  if (argv[0] === 'federate' && argv[1] === 'issue-token' && !wantsHelp) {
    const gcpFormat = winningFormat(argv) === 'gcp';
    if (gcpFormat) {
      // Google's libraries parse stderr with stdout: no trace, whatever OZ_DEBUG says.
      disableDebug();
      silenceStderr();
    }
    const opts = parseFast(ISSUE_TOKEN, argv.slice(2));
    if (opts) {
      const { issueTokenCommand } = await import('./issue-token.js');
      await runCommand(() => issueTokenCommand(opts), gcpFormat);
      return exitAtOnce();
    }
    // Commander's messages go to stderr, which Google's libraries would parse as the answer.
    if (gcpFormat) {
      writeGcpFailure(new OzError('usage', `bad arguments ${quote(argv.slice(2).join(' '))}: see \`oz federate issue-token --help\``));
      return exitAtOnce();
    }
  }
  if (argv[0] === 'federate' && argv[1] === 'prepare' && !wantsHelp) {
    const opts = parseFast(PREPARE, argv.slice(2));
    if (opts) {
      const { prepareCommand } = await import('./prepare.js');
      await runCommand(() => prepareCommand(opts));
      return exitAtOnce();
    }
  }
  const { runProgram } = await import('./program.js');
  await runProgram(argv);
}

main().catch(fail);
