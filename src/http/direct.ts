import * as http from 'node:http';
import type { Agent, ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import { answerTimedOut, bodyStalled, connectTimedOut, CONNECT_TIMEOUT_MS, type HttpAnswer, type HttpRequest, type Transport } from './transport.js';

/**
 * Requests with no proxy in the way, over node:http or node:https (the latter, which loads
 * TLS, only for https URLs). One kept-alive socket per scheme, so that retries reuse it; Node
 * unreferences idle pooled sockets, so they never keep the process alive.
 */
export function directTransport(): Transport {
  const agents = new Map<string, Agent>();
  let closed = false;
  return {
    get closed() {
      return closed;
    },
    async request(req) {
      const url = new URL(req.url);
      const lib = url.protocol === 'https:' ? (await import('./node-https.js')).https : http;
      let agent = agents.get(url.protocol);
      if (agent === undefined) {
        agent = new lib.Agent({ keepAlive: true, maxSockets: 1 });
        agents.set(url.protocol, agent);
      }
      return send((o) => lib.request(url, o), url.protocol === 'https:', { agent }, req);
    },
    close() {
      closed = true;
      for (const agent of agents.values()) agent.destroy();
    },
  };
}

function send(open: (o: RequestOptions) => ClientRequest, tls: boolean, options: RequestOptions, req: HttpRequest): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    let answerTimer: NodeJS.Timeout | undefined;
    let connectTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      clearTimeout(answerTimer);
      clearTimeout(connectTimer);
    };
    const headers = req.body === undefined ? req.headers : { ...req.headers, 'content-length': String(Buffer.byteLength(req.body)) };
    const r = open({ ...options, method: req.method, headers, signal: req.signal });
    answerTimer = setTimeout(() => r.destroy(answerTimedOut(req.answerTimeoutMs)), req.answerTimeoutMs);
    r.on('socket', (socket) => {
      if (r.reusedSocket) return;
      connectTimer = setTimeout(() => r.destroy(connectTimedOut()), CONNECT_TIMEOUT_MS);
      socket.once(tls ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer));
    });
    r.on('error', (e) => {
      stop();
      reject(e);
    });
    r.on('response', (res: IncomingMessage) => {
      stop();
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let size = 0;
      const stalled = () => r.destroy(bodyStalled(req.answerTimeoutMs));
      answerTimer = setTimeout(stalled, req.answerTimeoutMs);
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > req.maxBytes) {
          stop();
          // The rest is not wanted, and the connection cannot be reused in the middle of it.
          r.destroy();
          resolve({ status, headers: res.headers, body: undefined });
          return;
        }
        chunks.push(chunk);
        answerTimer?.refresh();
      });
      res.on('end', () => {
        stop();
        resolve({ status, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (e) => {
        stop();
        reject(e);
      });
    });
    r.end(req.body);
  });
}
