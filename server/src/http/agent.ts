/**
 * HAProxy's agent-check on a TCP port of its own: each connection gets one line, this
 * node's weight from its headroom (`ready 42%`) or `drain`, and is closed.
 */
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';

/** A peer that sends nothing and never reads is dropped after this. */
const AGENT_SOCKET_TIMEOUT_MS = 2000;

export interface AgentServer {
  port: number;
  close(): Promise<void>;
}

/**
 * The agent protocol is a line, not HTTP: HAProxy connects (every `agent-inter`), reads
 * until the server closes and applies the words it knows. What the peer sends (an
 * `agent-send` string) is ignored, so the answer never depends on input.
 */
export async function startAgent(host: string, port: number, line: () => string): Promise<AgentServer> {
  const server: Server = createServer({ allowHalfOpen: false }, (socket) => {
    socket.setTimeout(AGENT_SOCKET_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('data', () => undefined);
    socket.end(line());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  };
}
