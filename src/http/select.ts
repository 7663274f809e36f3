import type { ProxyChoice } from './proxy.js';
import type { Transport } from './transport.js';

let shared: { key: string; transport: Transport } | undefined;

/**
 * One transport per process and proxy, so that retries reuse the kept-alive connection.
 * undici is loaded only here, and only when a proxy applies.
 */
export async function transportFor(proxy: ProxyChoice | undefined): Promise<Transport> {
  const key = proxy?.url ?? '';
  if (shared?.key !== key || shared.transport.closed) {
    const transport = proxy === undefined ? (await import('./direct.js')).directTransport() : (await import('./undici.js')).proxyTransport(proxy.url);
    shared = { key, transport };
  }
  return shared.transport;
}
