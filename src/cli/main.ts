import { wantsGcpFormat } from './flags.js';
import { silenceStderr, fail } from './output.js';

/**
 * Entry point. The commands that run on every credential refresh (`federate issue-token`,
 * `federate prepare`) are dispatched here without loading commander; everything else, and
 * any call that asks for help, goes through the full commander program.
 */
const argv = process.argv.slice(2);
const wantsHelp = argv.some((a) => a === '--help' || a === '-h');

// A reader that stops early (`oz --help | head`) ends our output, not in a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  void fail(e);
});

async function main(): Promise<void> {
  if (argv[0] === 'federate' && argv[1] === 'issue-token' && !wantsHelp) {
    const gcpMode = wantsGcpFormat(argv);
    if (gcpMode) silenceStderr();
    const { runFast } = await import('./issue-token.js');
    if (await runFast(argv.slice(2), gcpMode)) return;
  }
  if (argv[0] === 'federate' && argv[1] === 'prepare' && !wantsHelp) {
    const { runFast } = await import('./prepare.js');
    if (await runFast(argv.slice(2))) return;
  }
  const { runProgram } = await import('./program.js');
  await runProgram(argv);
}

main().catch(fail);
