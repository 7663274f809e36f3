import type { Env } from '../core/settings.js';
import { displayUrl } from '../core/url.js';
import { debug } from '../core/debug.js';
import { proxyFor } from './proxy.js';
import { transportFor } from './select.js';
import { USER_AGENT, rejectWhenAborted } from './transport.js';

/**
 * GET a JSON document through the same transport as token requests, proxied by the same
 * rules: what `inspect --verify` and `doctor` fetch (discovery, JWKS), so that it works
 * wherever the client does.
 */
export async function getJson(url: string, env: Env, timeoutMs = 10_000): Promise<unknown> {
  const proxy = proxyFor(new URL(url), env);
  debug(`GET ${displayUrl(url)} (${proxy ? `through the proxy in ${proxy.variable}` : 'direct'})`);
  const transport = await transportFor(proxy);
  const signal = AbortSignal.timeout(timeoutMs);
  let answer;
  try {
    // Raced against the bound as well as handed its signal: a proxy that cuts every tunnel
    // makes undici try again and again, and the bound must hold all the same.
    answer = await Promise.race([
      transport.request({
        url,
        method: 'GET',
        signal,
        answerTimeoutMs: timeoutMs,
        maxBytes: 1024 * 1024,
        headers: { accept: 'application/json', 'user-agent': USER_AGENT },
      }),
      rejectWhenAborted(signal, timeoutMs),
    ]);
  } finally {
    if (signal.aborted) transport.close();
  }
  debug(`GET ${displayUrl(url)} answered HTTP ${answer.status}`);
  if (answer.status !== 200) throw new Error(`HTTP ${answer.status}`);
  if (answer.body === undefined) throw new Error('the document is larger than 1 MiB');
  return JSON.parse(answer.body);
}
