#!/usr/bin/env node
// A forward proxy on 127.0.0.1: absolute-URI requests for plain http, CONNECT tunnels for
// https; only to loopback, anything else refused with 403. bench/run.mjs runs this file for its
// proxied cases (it prints its URL, then serves); test/e2e/remote-client.test.ts uses
// forwardProxy() to watch what oz asks of a proxy.
'use strict';
const http = require('node:http');
const net = require('node:net');

/** The proxy, not yet listening; `onAsk` hears each request line (`GET url`, `CONNECT host:port`). */
function forwardProxy(onAsk = () => {}) {
  const proxy = http.createServer((req, res) => {
    onAsk(`${req.method} ${req.url}`);
    let target;
    try {
      target = new URL(req.url ?? '');
    } catch {
      return res.writeHead(400).end();
    }
    if (target.hostname !== '127.0.0.1') return res.writeHead(403).end();
    const upstream = http.request(
      { host: '127.0.0.1', port: target.port, method: req.method, path: `${target.pathname}${target.search}`, headers: req.headers, agent: false },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  proxy.on('connect', (req, socket, head) => {
    onAsk(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? '').split(':');
    if (host !== '127.0.0.1') return socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
    const upstream = net.connect(Number(port), '127.0.0.1', () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  return proxy;
}

module.exports = { forwardProxy };

if (require.main === module) {
  const proxy = forwardProxy();
  proxy.listen(0, '127.0.0.1', () => process.stdout.write(`http://127.0.0.1:${proxy.address().port}\n`));
  process.on('SIGTERM', () => process.exit(0));
}
