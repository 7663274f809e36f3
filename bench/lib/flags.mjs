import { parseArgs } from 'node:util';

/**
 * The benchmark scripts' flags: node:util's parseArgs, with --help printing `usage` and a
 * mistyped or incomplete flag answered by one line and the usage (exit 2), not a stack trace.
 */
export function parseFlags(options, usage) {
  let values;
  try {
    ({ values } = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    console.error(`error: ${e.message}\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  return values;
}
