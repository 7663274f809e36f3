import { createHash } from 'node:crypto';

const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const SESSION_PREFIX = 'Oz_Run_';
const HASH_LENGTH = 12;
const HASH_SUFFIX = new RegExp(`\\.[0-9a-f]{${HASH_LENGTH}}$`);
const MAX_SESSION_NAME = 64;

/**
 * The STS role session name for a run: `Oz_Run_<run-id>` when that is already a valid
 * session name (2-64 characters of `[\w+=,.@-]`), which it is for the usual run IDs.
 *
 * Otherwise each character STS refuses becomes `-`, the result is cut to fit, and
 * `.` plus the first 12 hex digits of the SHA-256 of the original run ID is appended, so
 * that run IDs which sanitise alike still get distinct names. A run ID that already ends
 * in `.` and 12 hex digits goes through the hashed form too; that way a hashed name can
 * never equal the plain name of some other run. Only a collision in those 48 bits of
 * SHA-256 could give two runs the same name. The hash is over the run ID's UTF-8 bytes, so
 * `printf %s "$OZ_RUN_ID" | sha256sum | cut -c1-12` shows it.
 */
export function sessionNameForRun(runId: string): string {
  const plain = `${SESSION_PREFIX}${runId}`;
  if (SESSION_NAME.test(plain) && !HASH_SUFFIX.test(plain)) return plain;

  // A string is hashed as its UTF-8 bytes.
  const hash = createHash('sha256').update(runId).digest('hex').slice(0, HASH_LENGTH);
  const room = MAX_SESSION_NAME - SESSION_PREFIX.length - 1 - HASH_LENGTH;
  // Per code point, so that one emoji becomes one `-`, not two; each is one character, so the
  // class needs no anchors.
  const sanitised = Array.from(runId, (c) => (/[\w+=,.@-]/.test(c) ? c : '-'))
    .slice(0, room)
    .join('');
  return `${SESSION_PREFIX}${sanitised}.${hash}`;
}
