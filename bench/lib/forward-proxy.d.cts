import type { Server } from 'node:http';

/** The proxy, not yet listening; `onAsk` hears each request line (`GET url`, `CONNECT host:port`). */
export function forwardProxy(onAsk?: (line: string) => void): Server;
