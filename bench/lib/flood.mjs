// The pipelining flood of issue #9, bounded in count and time, for bench/flood.mjs and the
// end-to-end test: connections that each write many pipelined GETs in one write and then never
// read, reconnecting when the server cuts them off. Beside it, well-behaved requests on fresh
// connections and the server's memory read from /proc. Loopback only.
import { connect } from 'node:net';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';

/**
 * Flood `url` for `seconds`: `connections` at a time, each writing `pipeline` GETs of `path` in
 * one write and reading what comes back for one turn of the event loop every `readEveryMs`. A connection the server closes is replaced until
 * `maxTotal` connections have been opened. Resolves with what happened once every socket is gone.
 */
export function flood({ url, connections, pipeline, seconds, path = '/.well-known/jwks.json', maxTotal = connections * 20, readEveryMs = 250 }) {
  const { hostname, port } = new URL(url);
  const host = hostname.replace(/^\[|\]$/g, '');
  const payload = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`.repeat(pipeline));
  const stats = { opened: 0, connected: 0, cutByServer: 0, refused: 0, open: 0, peakOpen: 0 };
  const sockets = new Set();
  const deadline = Date.now() + seconds * 1000;
  let stopping = false;
  return new Promise((resolve) => {
    const open = () => {
      if (stopping || stats.opened >= maxTotal || Date.now() >= deadline) return;
      stats.opened++;
      const s = connect({ host, port: Number(port) });
      let connected = false;
      sockets.add(s);
      s.on('connect', () => {
        connected = true;
        stats.connected++;
        stats.open++;
        stats.peakOpen = Math.max(stats.peakOpen, stats.open);
        s.write(payload);
        // The attack: read the answers slowly, so that they pile up on the server's side. A
        // glance now and then is also how a cut-off connection is noticed, and replaced.
        s.pause();
        const glance = setInterval(() => {
          s.resume();
          setImmediate(() => s.pause());
        }, readEveryMs);
        s.once('close', () => clearInterval(glance));
      });
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        if (connected) stats.open--;
        if (!stopping) {
          if (connected) stats.cutByServer++;
          else stats.refused++;
          // Replace it on a later turn, so that a server refusing at once is not spun on.
          setTimeout(open, 5);
        }
        if (stopping && sockets.size === 0) resolve(stats);
      });
    };
    for (let i = 0; i < connections; i++) open();
    setTimeout(() => {
      stopping = true;
      if (sockets.size === 0) resolve(stats);
      for (const s of sockets) s.destroy();
    }, seconds * 1000);
  });
}

/** One request on a connection of its own: its status, body and milliseconds, or its error. */
export function probe(url, { method = 'GET', headers = {}, body, timeoutMs = 10_000 } = {}) {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(url, { method, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
      res.on('error', (e) => resolve({ error: e.message, ms: performance.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ error: e.message, ms: performance.now() - started }));
    req.end(body);
  });
}

/** Resident memory of a process in bytes, now and at its peak (Linux /proc). */
export function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/**
 * While `during` runs: every `everyMs`, the server's memory and one good request of each kind
 * (`probes`: name → () => Promise<probe result>), one after the other.
 */
export async function watch(pid, probes, during, everyMs = 200) {
  const samples = [];
  const results = Object.fromEntries(Object.keys(probes).map((k) => [k, []]));
  let done = false;
  const watching = (async () => {
    while (!done) {
      try {
        samples.push(memoryOf(pid).rss);
      } catch {
        // The process is gone: what is missing is in the figures.
      }
      for (const [name, p] of Object.entries(probes)) results[name].push(await p());
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  const value = await during;
  done = true;
  await watching;
  return { value, samples, results };
}

export const mib = (bytes) => `${(bytes / 1048576).toFixed(0)} MiB`;
