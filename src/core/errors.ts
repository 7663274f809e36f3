/**
 * The one error type oz throws on purpose. Everything a user can cause (bad flags, bad
 * environment, a broken key file, an unreachable token service) becomes an OzError with a
 * code from this closed set; the CLI maps the code to an exit status through EXIT_CODES and
 * prints the message as one line. Anything else that escapes is a bug and exits 1.
 */
export const EXIT_CODES = {
  /** A flag, argument or piped input is malformed or missing. */
  usage: 2,
  /** The environment, data directory or a key file is unusable. */
  config: 3,
  /** The run's deadline has passed: no token can be issued for it. */
  run_expired: 4,
  /** The remote token service could not be reached or failed (network, timeout, 5xx). */
  remote_unavailable: 5,
  /** The remote token service refused the request (bad or expired run token, bad audience). */
  remote_denied: 6,
  /** `inspect --verify`: the token did not verify. */
  verify_failed: 7,
  /** A file oz had to write or read could not be. */
  io: 8,
  /** `federate explain`: the relying party would refuse the token. */
  refused: 9,
  /** `oz doctor`: at least one check failed. */
  doctor_failed: 10,
} as const;

export type OzErrorCode = keyof typeof EXIT_CODES;

/** Exit status for a failure that is not an OzError: a bug in oz. */
export const INTERNAL_EXIT_CODE = 1;

export const EXIT_CODE_DESCRIPTIONS: Record<OzErrorCode, string> = {
  usage: 'a flag, argument or input is malformed or missing',
  config: 'the environment, data directory or a key file is unusable',
  run_expired: 'the run has passed its deadline',
  remote_unavailable: 'the token service could not be reached or failed',
  remote_denied: 'the token service refused the request',
  verify_failed: 'the token did not verify (inspect --verify)',
  io: 'a file could not be read or written',
  refused: 'the relying party would refuse the token (federate explain)',
  doctor_failed: 'a check failed (oz doctor)',
};

export class OzError extends Error {
  override readonly name = 'OzError';
  readonly code: OzErrorCode;

  constructor(code: OzErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }
}

export function isOzError(e: unknown): e is OzError {
  return e instanceof OzError;
}

/** The text of any thrown value, on one line, for messages that wrap a cause. */
export function describeCause(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return oneLine(text);
}

/** Collapse control characters so that a message can never span or forge lines. */
export function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}

/**
 * A value quoted for display inside a one-line error message: control, invisible and
 * bidirectional-override characters escaped (so that a value cannot forge or hide text in
 * a terminal) and anything past `maxLength` characters cut with an ellipsis.
 */
export function quote(value: string, maxLength = 80): string {
  const chars = Array.from(value.length > maxLength * 2 ? value.slice(0, maxLength * 2) : value);
  const cut = chars.length > maxLength || value.length > maxLength * 2;
  const shown = chars.slice(0, maxLength).join('');
  const quoted = escapeInvisible(JSON.stringify(shown));
  return cut ? `${quoted.slice(0, -1)}…"` : quoted;
}

/**
 * What a pure parser returns: the value, or why the text is not one. The parser does not know
 * where the text came from; the caller (see settings.ts) turns a problem into an OzError whose
 * code and wording say that: a flag is a usage error, an environment variable a config error.
 */
export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

export function ok<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

export function problem(text: string): { ok: false; problem: string } {
  return { ok: false, problem: text };
}

/**
 * DEL, C1 controls, invisible and bidirectional-override characters as `\uXXXX`, so that text
 * from elsewhere (a server's error detail) cannot hide or reorder what a terminal shows.
 */
export function escapeInvisible(text: string): string {
  return text.replace(/[\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
