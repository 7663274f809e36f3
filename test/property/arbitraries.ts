import fc from 'fast-check';

/** Characters that mean something to some shell or dotenv reader, or that are easy to mangle. */
const PICKY = [
  "'", '"', '\\', '$', '`', '!', '#', '%', '*', '?', '[', ']', '{', '}', '(', ')', ';', '&', '|', '<', '>',
  '~', '=', '^', ' ', '\t', '\n', '\r', '\u000b', '\u000c', '\u0001', '\u001b', '\u001f', '\u007f', '\u0085',
  '\u00a0', '\u2028', '\u2029', '\u2018', '\u2019', '\u201b', '\u201c', '\ufeff', '\uf600', '\ufffd', '\uffff',
  'é', 'ß', '漢', '🙂', '${', '$(', '\\\\', "'\\''", '\r\n',
];

/**
 * A string an environment variable can hold: any Unicode scalar value but NUL, with the
 * characters above, control characters and non-ASCII text all common.
 */
export const envValue = fc
  .array(
    fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...PICKY) },
      { weight: 2, arbitrary: fc.integer({ min: 1, max: 0x1f }).map((c) => String.fromCharCode(c)) },
      { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }) },
      { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 6 }) },
    ),
    { maxLength: 24 },
  )
  .map((parts) => parts.join('').replaceAll('\0', ''));
