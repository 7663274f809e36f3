import { parseFrom } from '../../src/core/settings.js';
import { parseHttpUrl, parseIssuerUrl } from '../../src/core/url.js';

/** The issuer URL as a setting reads it: the value, or the OzError naming `what` with `code`. */
export function normaliseIssuerUrl(raw: string, code: 'config' | 'usage', what: string): string {
  return parseFrom(parseIssuerUrl, raw, what, code);
}

/** An http(s) URL as a setting reads it, or the OzError naming `what` with `code`. */
export function readHttpUrl(raw: string, code: 'config' | 'usage', what: string, opts: { example: string; allowQuery?: boolean }): URL {
  return parseFrom((text) => parseHttpUrl(text, opts), raw, what, code);
}
