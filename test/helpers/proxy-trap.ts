// A loopback HTTP proxy that clients are pointed at with HTTPS_PROXY, so that any request they
// make to a host other than the stand-ins (NO_PROXY=127.0.0.1) lands here instead of leaving the
// machine. It records what was attempted and cuts the connection at once, the way a refused
// connection fails fast; a client that took a non-answer for an answer (Azure's IMDS probe counts
// any HTTP response as "IMDS exists") never gets one. Named hosts can instead be tunnelled to a
// loopback stand-in, to serve a public endpoint the client insists on calling.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TrappedRequest {
  /** `CONNECT` for https (the target is host:port), or the method of a plain-http request. */
  method: string;
  /** `host:port` for CONNECT, the absolute URL for plain http. */
  target: string;
  /** Whether it was tunnelled to a stand-in rather than cut. */
  tunnelled: boolean;
}

export interface ProxyTrap {
  /** `http://127.0.0.1:PORT`, for HTTPS_PROXY / HTTP_PROXY. */
  url: string;
  requests: TrappedRequest[];
  close(): Promise<void>;
}

/** `tunnels` maps `host:port` (as in CONNECT) to the loopback port that answers for it. */
export async function startProxyTrap(opts: { tunnels?: Record<string, number> } = {}): Promise<ProxyTrap> {
  const requests: TrappedRequest[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', target: req.url ?? '', tunnelled: false });
    res.socket?.destroy();
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const target = req.url ?? '';
    const port = opts.tunnels?.[target.toLowerCase()];
    requests.push({ method: 'CONNECT', target, tunnelled: port !== undefined });
    if (port === undefined) {
      client.destroy();
      return;
    }
    const upstream = net.connect(port, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
