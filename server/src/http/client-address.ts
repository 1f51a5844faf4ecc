/**
 * The client's address for a request Express does not see (a WebSocket upgrade), as
 * Express's numeric "trust proxy" computes req.ip: the socket's peer, or that many hops
 * back along X-Forwarded-For when proxies in front append to it.
 */
import type { IncomingMessage } from 'node:http';

export function clientAddress(req: IncomingMessage, trustProxyHops: number): string {
  const peer = req.socket.remoteAddress ?? '';
  if (trustProxyHops === 0) return peer;
  const header = req.headers['x-forwarded-for'];
  const forwarded = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .reverse();
  const chain = [peer, ...forwarded];
  return chain[Math.min(trustProxyHops, chain.length - 1)] ?? peer;
}
