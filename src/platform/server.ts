import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
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
  /**
   * One line per request; never given a token. `kind` (method, route and status) is what the
   * line is an instance of, for a log that condenses lines it cannot keep up with.
   */
  log?: (line: string, kind?: string) => void;
  /** Extra routes (the token endpoint), keyed by path. */
  routes?: Record<string, Route>;
  /**
   * How long a client may take to send a whole request (headers and body), in milliseconds;
   * a slower one is cut off with 408 and its connection closed.
   */
  requestTimeoutMs?: number;
  /** Connections held at once; past it a new connection is closed as soon as it is accepted. */
  maxConnections?: number;
  /**
   * How long a connection may stall while a request is answered (nothing read, nothing written:
   * a client that stopped reading its answer) before it is closed, in milliseconds.
   */
  stallTimeoutMs?: number;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
export const DEFAULT_MAX_CONNECTIONS = 1024;
/**
 * Without it, a client that stops reading once the socket buffers are full holds its connection
 * for as long as it likes: busy, so never closed as idle. A thousand of them would hold every slot.
 */
export const DEFAULT_STALL_TIMEOUT_MS = 30_000;
/**
 * Requests a connection may have waiting for their answers. Node parses every request of what
 * it reads at once and queues an answer for each: thousands pipelined in one write by a client
 * that never reads were gigabytes. Browsers, curl and undici do not pipeline, so a connection
 * past this is cut off rather than answered.
 */
export const MAX_PIPELINED_REQUESTS = 16;
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
  sendBody(res, status, Buffer.from(JSON.stringify(value)), headers);
}

function sendBody(res: ServerResponse, status: number, body: Buffer, headers: Record<string, string>): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(body.length), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/**
 * A document served as one Buffer, made again only when `source` changes (the issuer, the keys'
 * version): answers waiting on a connection share it instead of holding a copy each.
 */
function cachedBody<T>(source: () => T, render: (from: T) => unknown): () => Buffer {
  let from: T | undefined;
  let body: Buffer | undefined;
  return () => {
    const now = source();
    if (body === undefined || now !== from) {
      body = Buffer.from(JSON.stringify(render(now)));
      from = now;
    }
    return body;
  };
}

export function createIssuerServer(opts: ServerOptions): Server {
  const publicHeaders = { 'cache-control': 'public, max-age=300', 'access-control-allow-origin': '*' };
  const discovery = cachedBody(opts.issuer, discoveryDocument);
  // version() is what notices changed key files, at most once a second.
  const jwks = cachedBody(() => opts.keys.version(), () => jwksDocument(opts.keys.publishedKeys()));
  const routes: Record<string, Route> = {
    [DISCOVERY_PATH]: { methods: ['GET', 'HEAD'], handle: (_req, res) => sendBody(res, 200, discovery(), publicHeaders) },
    [JWKS_PATH]: { methods: ['GET', 'HEAD'], handle: (_req, res) => sendBody(res, 200, jwks(), publicHeaders) },
    ...opts.routes,
  };
  const waiting = new WeakMap<Socket, Set<IncomingMessage>>();
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const { socket } = req;
    // A connection already closed (cut off below, or gone) is owed no answer.
    if (socket.destroyed) return;
    let queued = waiting.get(socket);
    if (queued === undefined) waiting.set(socket, (queued = new Set()));
    if (queued.size >= MAX_PIPELINED_REQUESTS) return cutOff(socket, queued);
    queued.add(req);
    res.once('close', () => queued.delete(req));
    // Answer once the parse of what was read is over (Node runs no microtask before): a
    // connection cut off by then gets no answer built and written for nothing.
    await undefined;
    if (socket.destroyed) return;
    const started = process.hrtime.bigint();
    const path = pathOf(req);
    // Own keys only: `/constructor` is not a route.
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      // Never the query or headers; an unknown path with anything shaped like a token cut out.
      const detail = logDetails.get(res);
      opts.log?.(
        `${socket.remoteAddress ?? '-'} ${req.method} ${route ? path : loggedPath(path)} ${res.statusCode} ${ms.toFixed(1)}ms${detail ? ` ${detail}` : ''}`,
        `${req.method} ${route ? path : '(other paths)'} ${res.statusCode}`,
      );
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
  // Node's socket inactivity timeout, set while a request is in progress (keep-alive has its own).
  server.timeout = opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  server.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  let madeRoomAt = -Infinity;
  server.on('drop', (conn?: { remoteAddress?: string }) => {
    opts.log?.(`${conn?.remoteAddress ?? '-'} connection refused: ${server.maxConnections} connections held`, 'connection refused at the connection limit');
    // As nginx does when it runs out of connections: the idle keep-alive ones make room, so that
    // connections held open and unused cannot keep the slots from clients with something to ask
    // (HTTP clients connect again when an idle connection closes). One that never sends a
    // request is cut off by the headers timeout.
    const now = Date.now();
    if (now - madeRoomAt >= 100) {
      madeRoomAt = now;
      server.closeIdleConnections();
    }
  });
  return server;
}

/** Access-log lines written a second at most; past it, requests are counted by kind. */
export const DEFAULT_LOG_LINES_PER_SECOND = 1000;
/** Kinds of request counted one by one in a summary line; the rest are counted together. */
const MAX_SUMMARY_KINDS = 20;

export interface CondensedLogOptions {
  linesPerSecond?: number;
  now?: () => number;
}

/**
 * The access log, bounded: at most `linesPerSecond` lines a second; past that, the requests of
 * the second are counted by kind (method, route, status) and summed up in one line when it
 * ends. A flood of requests costs a line a second instead of a line each: a log written line by
 * line was itself the amplifier, a million lines for one attack. Lines are written once per turn
 * of the event loop, so that under load one write to stderr (synchronous for files and pipes)
 * carries many of them. Lines without a kind (not requests) are always written.
 */
export function condensedLog(write: (text: string) => void, opts: CondensedLogOptions = {}): (line: string, kind?: string) => void {
  const perSecond = opts.linesPerSecond ?? DEFAULT_LOG_LINES_PER_SECOND;
  const now = opts.now ?? Date.now;
  let pending: string[] = [];
  let windowStart = -Infinity;
  let written = 0;
  let unlogged = new Map<string, number>();
  let unloggedTotal = 0;
  let summaryDue: NodeJS.Timeout | undefined;
  const flush = () => {
    const text = pending.join('\n');
    pending = [];
    write(text);
  };
  const push = (line: string) => {
    if (pending.length === 0) setImmediate(flush);
    pending.push(line);
  };
  const summarize = () => {
    clearTimeout(summaryDue);
    summaryDue = undefined;
    if (unloggedTotal === 0) return;
    const kinds = [...unlogged].sort((a, b) => b[1] - a[1]).map(([kind, n]) => `${n} × ${kind}`);
    push(`oz: access log: ${unloggedTotal} more requests in the last second not logged one by one (over ${perSecond} a second): ${kinds.join(', ')}`);
    unlogged = new Map();
    unloggedTotal = 0;
  };
  return (line, kind) => {
    if (kind === undefined) return push(line);
    const t = now();
    if (t - windowStart >= 1000) {
      summarize();
      windowStart = t;
      written = 0;
    }
    if (written < perSecond) {
      written++;
      return push(line);
    }
    const counted = unlogged.has(kind) || unlogged.size < MAX_SUMMARY_KINDS ? kind : 'other requests';
    unlogged.set(counted, (unlogged.get(counted) ?? 0) + 1);
    unloggedTotal++;
    // The summary is due when the second ends, whether or not another request comes.
    summaryDue ??= setTimeout(() => {
      summarize();
      windowStart = -Infinity;
    }, Math.max(0, windowStart + 1000 - t)).unref();
  };
}

/**
 * Close a connection now, and stop parsing what it sent. Node parses all it has read (64 KiB, a
 * thousand pipelined requests) before it looks at the socket again, and would build, then abort
 * with an error, a request for each. Its parser asks `onIncoming` (internal, hence the check)
 * at every request's headers how to go on; 2, "the connection changes protocol", ends the parse
 * there, with no parse error to build.
 */
function cutOff(socket: Socket, queued: Set<IncomingMessage>): void {
  const parser = (socket as Socket & { parser?: { onIncoming?: unknown } | null }).parser;
  if (parser && typeof parser.onIncoming === 'function') parser.onIncoming = () => 2;
  socket.destroy();
  // Ended here without an error, they are passed over when Node aborts what the connection
  // left unanswered, instead of costing an ECONNRESET error and its formatted stack each.
  for (const req of queued) req.destroy();
  queued.clear();
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
