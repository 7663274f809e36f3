import { Client, Pool, ProxyAgent, type Dispatcher } from 'undici';
import type { Socket } from 'node:net';
import { answerTimedOut, bodyStalled, connectTimedOut, CONNECT_TIMEOUT_MS, type Transport } from './transport.js';

/**
 * Requests through a forward proxy, by undici: plain-http targets go to the proxy as
 * absolute-URI requests rather than CONNECT tunnels, which many proxies allow only to port
 * 443; https targets through CONNECT.
 */
export function proxyTransport(proxyUrl: string): Transport {
  const connect = { timeout: CONNECT_TIMEOUT_MS };
  // Every socket to the proxy, tunnels included, so that close() can drop one still being set
  // up: undici's destroy() leaves a TLS handshake inside a CONNECT tunnel to its own timeout,
  // which would keep the process alive past the overall bound.
  const sockets = new Set<Socket>();
  const tracked = (inner: unknown) => {
    if (typeof inner !== 'function') return inner;
    return (opts: unknown, callback: unknown) => {
      const socket: unknown = inner(opts, callback);
      if (socket && typeof (socket as Socket).destroy === 'function') {
        sockets.add(socket as Socket);
        (socket as Socket).once('close', () => sockets.delete(socket as Socket));
      }
      return socket;
    };
  };
  // undici's own factories (Pool, or Client for one connection), with the connector tracked.
  const factory = (origin: URL | string, o: Record<string, unknown>) => {
    const opts = { ...o, connect: tracked(o.connect) } as Pool.Options;
    return o.connections === 1 ? new Client(origin, opts) : new Pool(origin, opts);
  };
  const agent = new ProxyAgent({
    uri: proxyUrl,
    connect,
    proxyTls: connect,
    requestTls: connect,
    proxyTunnel: false,
    keepAliveTimeout: 30_000,
    factory,
    clientFactory: (origin: URL, o: Record<string, unknown>) => new Pool(origin, { ...o, connect: tracked(o.connect) } as Pool.Options),
  } as ProxyAgent.Options);
  const transport = undiciTransport(agent);
  return {
    get closed() {
      return transport.closed;
    },
    request: (req) => transport.request(req),
    close() {
      transport.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** Any undici dispatcher as a transport. */
export function undiciTransport(dispatcher: Dispatcher): Transport {
  let closed = false;
  return {
    get closed() {
      return closed;
    },
    async request(req) {
      const url = new URL(req.url);
      try {
        const res = await dispatcher.request({
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method: req.method,
          headers: req.headers,
          body: req.body,
          signal: req.signal,
          headersTimeout: req.answerTimeoutMs,
          bodyTimeout: req.answerTimeoutMs,
        });
        return { status: res.statusCode, headers: res.headers, body: await readLimited(res.body, req.maxBytes) };
      } catch (e) {
        throw sameWording(e, req.answerTimeoutMs);
      }
    },
    close() {
      closed = true;
      dispatcher.destroy().catch(() => {});
    },
  };
}

function sameWording(e: unknown, answerTimeoutMs: number): unknown {
  switch ((e as { code?: unknown })?.code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return Object.assign(connectTimedOut(), { cause: e });
    case 'UND_ERR_HEADERS_TIMEOUT':
      return Object.assign(answerTimedOut(answerTimeoutMs), { cause: e });
    case 'UND_ERR_BODY_TIMEOUT':
      return Object.assign(bodyStalled(answerTimeoutMs), { cause: e });
    default:
      return e;
  }
}

async function readLimited(body: Dispatcher.ResponseData['body'], limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
