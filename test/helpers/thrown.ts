import { OzError } from '../../src/core/errors.js';

/** What `f` throws; fails the test if it returns. */
export function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

/** The OzError `f` throws; fails the test on a return or any other error. */
export function ozError(f: () => unknown): OzError {
  const e = thrown(f);
  if (e instanceof OzError) return e;
  throw e;
}
