import { afterEach, describe, expect, it } from 'vitest';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Server } from 'node:http';
import { loadSigningKey } from '../../src/core/keys.js';
import { createKeyCache } from '../../src/platform/key-cache.js';
import { createIssuerServer } from '../../src/platform/server.js';
import { tempDir } from '../helpers/oz.js';

let server: Server | undefined;
let client: Socket | undefined;
afterEach(async () => {
  client?.destroy();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r) ?? r(undefined));
  server = client = undefined;
});

describe('createIssuerServer: connections that stall', () => {
  it('closes a connection whose client stopped reading an answer, after stallTimeoutMs', async () => {
    const dataDir = tempDir();
    loadSigningKey(dataDir);
    const keys = createKeyCache({ dataDir });
    // An answer larger than the socket buffers on both ends, so that it cannot finish unread.
    const big = Buffer.alloc(64 * 1024 * 1024, 'x');
    server = createIssuerServer({
      issuer: () => 'http://127.0.0.1',
      keys,
      stallTimeoutMs: 500,
      routes: { '/big': { methods: ['GET'], handle: (_req, res) => void res.end(big) } },
    });
    const accepted = new Promise<Socket>((r) => server!.once('connection', r));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.on('error', () => {});
    await new Promise((r) => client!.once('connect', r));
    client.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    // It never reads.
    client.pause();
    const socket = await accepted;
    const closed = new Promise((r) => socket.once('close', () => r('closed')));
    const started = performance.now();
    const outcome = await Promise.race([closed, new Promise((r) => setTimeout(r, 5000, 'still open'))]);
    expect(outcome).toBe('closed');
    // Not before the client had stalled for the timeout.
    expect(performance.now() - started).toBeGreaterThanOrEqual(450);
  });
});
