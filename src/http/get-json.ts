import type { Env } from '../core/settings.js';
import { proxyFor } from './proxy.js';
import { transportFor } from './select.js';
import { USER_AGENT } from './transport.js';

/**
 * GET a JSON document through the same transport as token requests, proxied by the same
 * rules: what `inspect --verify` fetches (discovery, JWKS), so that it works wherever the
 * client does.
 */
export async function getJson(url: string, env: Env, timeoutMs = 10_000): Promise<unknown> {
  const transport = await transportFor(proxyFor(new URL(url), env));
  const answer = await transport.request({
    url,
    method: 'GET',
    signal: AbortSignal.timeout(timeoutMs),
    answerTimeoutMs: timeoutMs,
    maxBytes: 1024 * 1024,
    headers: { accept: 'application/json', 'user-agent': USER_AGENT },
  });
  if (answer.status !== 200) throw new Error(`HTTP ${answer.status}`);
  if (answer.body === undefined) throw new Error('the document is larger than 1 MiB');
  return JSON.parse(answer.body);
}
