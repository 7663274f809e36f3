import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { discoveryDocument, jwksDocument, DISCOVERY_PATH, JWKS_PATH } from './issuer.js';
import { publishedKeys } from './keys.js';

/**
 * The issuer's HTTP face: discovery and the JWKS for relying parties. Plain node:http, so that
 * serving costs nothing to load and behaves the same wherever Node runs.
 */

export interface ServerOptions {
  issuer: string;
  dataDir: string;
  now?: () => Date;
  /** One line per request; never given a token. */
  log?: (line: string) => void;
  /** Extra routes (the token endpoint), keyed by path. */
  routes?: Record<string, Route>;
}

export interface Route {
  methods: readonly string[];
  handle(req: IncomingMessage, res: ServerResponse): void | Promise<void>;
}

export interface Problem {
  status: number;
  title: string;
  detail?: string;
  type?: string;
  headers?: Record<string, string>;
}

/** RFC 9457 problem details. */
export function sendProblem(res: ServerResponse, p: Problem): void {
  const body = JSON.stringify({ type: p.type ?? 'about:blank', title: p.title, status: p.status, ...(p.detail ? { detail: p.detail } : {}) });
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(p.status, { 'content-type': 'application/problem+json', 'cache-control': 'no-store', ...p.headers });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body).toString(), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** JWKS reads are rare next to signing, but cheap to keep fresh: re-read at most once a second. */
function cachedJwks(dataDir: string, now: () => Date): () => unknown {
  let at = 0;
  let doc: unknown;
  return () => {
    const t = now().getTime();
    if (doc === undefined || t - at >= 1000) {
      doc = jwksDocument(publishedKeys(dataDir, now()));
      at = t;
    }
    return doc;
  };
}

export function createIssuerServer(opts: ServerOptions): Server {
  const now = opts.now ?? (() => new Date());
  const jwks = cachedJwks(opts.dataDir, now);
  const publicHeaders = { 'cache-control': 'public, max-age=300', 'access-control-allow-origin': '*' };
  const routes: Record<string, Route> = {
    [DISCOVERY_PATH]: { methods: ['GET', 'HEAD'], handle: (_req, res) => sendJson(res, 200, discoveryDocument(opts.issuer), publicHeaders) },
    [JWKS_PATH]: { methods: ['GET', 'HEAD'], handle: (_req, res) => sendJson(res, 200, jwks(), publicHeaders) },
    ...opts.routes,
  };
  const server = createServer(async (req, res) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      // The path only, never the query or headers: nothing that could carry a token.
      opts.log?.(`${req.socket.remoteAddress ?? '-'} ${req.method} ${pathOf(req)} ${res.statusCode} ${ms.toFixed(1)}ms`);
    });
    try {
      const route = routes[pathOf(req)];
      if (!route) return sendProblem(res, { status: 404, title: 'Not Found' });
      if (!route.methods.includes(req.method ?? '')) {
        return sendProblem(res, { status: 405, title: 'Method Not Allowed', headers: { allow: route.methods.join(', ') } });
      }
      await route.handle(req, res);
    } catch {
      sendProblem(res, { status: 500, title: 'Internal Server Error' });
    }
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  return server;
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
