/**
 * A small HTTP and WebSocket client of the playground for the root tests: it keeps the
 * session cookie like a browser and records every frame a socket receives.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { WebSocket } from 'ws';
import type {
  ContainerJson,
  StatsSample,
  StatsServerMessage,
  TerminalServerMessage,
} from '../../src/protocol/index.js';
import { waitFor } from './helpers.js';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

export class Client {
  cookie = '';

  constructor(readonly base: string) {}

  request(
    method: string,
    path: string,
    json?: unknown,
    headers: Record<string, string> = {},
    raw?: string,
  ): Promise<Reply> {
    const payload = raw ?? (json === undefined ? undefined : JSON.stringify(json));
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        new URL(path, this.base),
        {
          method,
          headers: {
            ...(this.cookie ? { cookie: this.cookie } : {}),
            ...(payload === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }),
            ...headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const setCookie = res.headers['set-cookie']?.find((line) => line.startsWith('mdocker_session='));
            if (setCookie) this.cookie = setCookie.split(';')[0]!;
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = null;
            try {
              body = text ? JSON.parse(text) : null;
            } catch {
              body = null;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
          });
        },
      );
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  async create(body: Record<string, unknown> = {}): Promise<ContainerJson> {
    if (!this.cookie) await this.request('GET', '/healthz');
    const reply = await this.request('POST', '/api/containers', body);
    assert.equal(reply.status, 201, reply.text);
    return reply.body as ContainerJson;
  }

  socket(path: string, origin?: string): WebSocket {
    const url = new URL(path, this.base);
    url.protocol = 'ws:';
    return new WebSocket(url, { headers: this.cookie ? { cookie: this.cookie } : {}, ...(origin ? { origin } : {}) });
  }
}

export class Frames {
  readonly control: (TerminalServerMessage | StatsServerMessage)[] = [];
  readonly binary: Buffer[] = [];
  closed: { code: number; reason: string } | null = null;
  rejected: number | null = null;
  opened = false;

  constructor(readonly ws: WebSocket) {
    ws.on('open', () => (this.opened = true));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.binary.push(Buffer.from(data));
      else this.control.push(JSON.parse(data.toString('utf8')) as TerminalServerMessage);
    });
    ws.on('close', (code: number, reason: Buffer) => (this.closed = { code, reason: reason.toString() }));
    ws.on('unexpected-response', (_req, res) => {
      this.rejected = res.statusCode ?? 0;
      res.resume();
      ws.terminate();
    });
    ws.on('error', () => undefined);
  }

  text(): string {
    return Buffer.concat(this.binary).toString('utf8');
  }

  bytes(): Buffer {
    return Buffer.concat(this.binary);
  }

  type(keys: string): void {
    this.ws.send(Buffer.from(keys));
  }

  async until(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
    await waitFor(
      `${what} (text ${JSON.stringify(this.text().slice(-300))}, closed ${JSON.stringify(this.closed)})`,
      predicate,
      timeoutMs,
    );
  }

  samples(containerId: string): StatsSample[] {
    return (this.control as StatsServerMessage[]).flatMap((m) =>
      m.type === 'sample' && m.containerId === containerId
        ? [m.sample]
        : m.type === 'history' && m.containerId === containerId
          ? m.samples
          : [],
    );
  }
}
