import { OzError } from '../core/errors.js';

/** JSON text into a value, or a usage error that names the file: a bad file is never a verdict. */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new OzError('usage', `${what} is not JSON: ${(e as Error).message}`);
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
