/**
 * How the client puts one HTTP request on the wire, and nothing more: retries, the overall
 * bound, redirect refusal, response checks and messages are the caller's, written once above
 * this interface. Two implementations: a direct request over node:http / node:https when no
 * proxy applies (the common case, and the cheap one to start: Node has those modules at hand,
 * while undici is a large file to load and a WebAssembly parser to compile), and undici's
 * ProxyAgent when one does.
 */
export interface Transport {
  /** Resolves with the whole answer, whatever its status; redirects are never followed. */
  request(req: HttpRequest): Promise<HttpAnswer>;
  /** Drops every connection, established or in progress. */
  close(): void;
  readonly closed: boolean;
}

export interface HttpRequest {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  /** Cuts the request wherever it is: connecting, in a TLS handshake, waiting or reading. */
  signal: AbortSignal;
  /** The wait for the answer's headers, and then the longest pause within its body. */
  answerTimeoutMs: number;
  /** A larger body is not read: `body` is then undefined. */
  maxBytes: number;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string | undefined;
}

/** What oz says it is in every request. */
export const USER_AGENT = `oz/${typeof __OZ_VERSION__ === 'string' ? __OZ_VERSION__ : 'dev'}`;

/** A SYN that nobody answers, or a TLS handshake that stalls, should not eat the whole budget. */
export const CONNECT_TIMEOUT_MS = 3000;

/** The timeouts, worded the same whichever transport ran into them. */
export class TransportTimeout extends Error {
  override readonly name = 'TransportTimeout';
}
export const connectTimedOut = () => new TransportTimeout(`no connection within ${CONNECT_TIMEOUT_MS / 1000}s`);
export const answerTimedOut = (ms: number) => new TransportTimeout(`no answer within ${ms / 1000}s`);
export const bodyStalled = (ms: number) => new TransportTimeout(`the answer stalled for ${ms / 1000}s`);

/** Rejects when `signal` aborts: raced against a request, it holds the bound whatever the transport does. */
export function rejectWhenAborted(signal: AbortSignal, timeoutMs: number): Promise<never> {
  return new Promise<never>((_resolve, reject) => {
    const cut = () => reject(new Error(`no answer within ${timeoutMs / 1000}s`));
    if (signal.aborted) cut();
    else signal.addEventListener('abort', cut, { once: true });
  });
}
