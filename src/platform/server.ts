import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { discoveryDocument, jwksDocument } from './issuer.js';
import { DISCOVERY_PATH, JWKS_PATH } from '../core/wire.js';
import type { KeyCache } from './key-cache.js';
import { oneLine } from '../core/errors.js';

/**
 * The issuer's HTTP face: discovery and the JWKS for relying parties, and whatever routes the
 * caller adds (the token service). Plain node:http, so that serving costs nothing to load and
 * behaves the same wherever Node runs.
 */

export interface ServerOptions {
  /** Asked per request: with --port 0 the issuer URL is known only once the server listens. */
  issuer: () => string;
  /** The key store as the process holds it: the JWKS is served from it, as the token route signs with it. */
  keys: KeyCache;
  /** One line per request; never given a token. */
  log?: (line: string) => void;
  /** Extra routes (the token endpoint), keyed by path. */
  routes?: Record<string, Route>;
  /**
   * How long a client may take to send a whole request (headers and body), in milliseconds;
   * a slower one is cut off with 408 and its connection closed.
   */
  requestTimeoutMs?: number;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
const HEADERS_TIMEOUT_MS = 10_000;

const logDetails = new WeakMap<ServerResponse, string>();

/** Add words to a request's access-log line (never a token: the caller vouches for that). */
export function annotateLog(res: ServerResponse, detail: string): void {
  logDetails.set(res, detail);
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

export function createIssuerServer(opts: ServerOptions): Server {
  const publicHeaders = { 'cache-control': 'public, max-age=300', 'access-control-allow-origin': '*' };
  const routes: Record<string, Route> = {
    [DISCOVERY_PATH]: { methods: ['GET', 'HEAD'], handle: (_req, res) => sendJson(res, 200, discoveryDocument(opts.issuer()), publicHeaders) },
    [JWKS_PATH]: { methods: ['GET', 'HEAD'], handle: (_req, res) => sendJson(res, 200, jwksDocument(opts.keys.publishedKeys()), publicHeaders) },
    ...opts.routes,
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const started = process.hrtime.bigint();
    const path = pathOf(req);
    // Own keys only: `/constructor` is not a route.
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      // Never the query or headers; an unknown path with anything shaped like a token cut out.
      const detail = logDetails.get(res);
      opts.log?.(`${req.socket.remoteAddress ?? '-'} ${req.method} ${route ? path : loggedPath(path)} ${res.statusCode} ${ms.toFixed(1)}ms${detail ? ` ${detail}` : ''}`);
    });
    try {
      if (!route) return sendProblem(res, { status: 404, title: 'Not Found' });
      if (!route.methods.includes(req.method ?? '')) {
        return sendProblem(res, { status: 405, title: 'Method Not Allowed', headers: { allow: route.methods.join(', ') } });
      }
      await route.handle(req, res);
    } catch {
      sendProblem(res, { status: 500, title: 'Internal Server Error' });
    }
  };
  const requestTimeout = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const server = createServer(
    {
      requestTimeout,
      headersTimeout: Math.min(HEADERS_TIMEOUT_MS, requestTimeout),
      // Node enforces those timeouts on this interval (30 s by default), so a slow client
      // would otherwise hold its connection for up to that much longer.
      connectionsCheckingInterval: Math.min(1000, requestTimeout),
    },
    handle,
  );
  server.keepAliveTimeout = 65_000;
  return server;
}

/** A path as the access log shows it: one bounded line, with JWT-shaped runs redacted. */
export function loggedPath(path: string): string {
  const redacted = oneLine(path).replace(/[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g, '<redacted>');
  return redacted.length > 200 ? `${redacted.slice(0, 200)}…` : redacted;
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
