/**
 * Preview hosts: `<token>-<port>.<preview domain>` is an HTTP and WebSocket reverse proxy
 * to that port on the loopback of the token's container, reached through a socket opened
 * inside the container's network namespace (no route from the host to it is needed).
 *
 * A preview is another origin than the playground's, so a page a student serves runs
 * with no playground session: requests on a preview host never reach the playground's
 * app (routes, sessions, token), the playground's cookies are taken out of what is
 * forwarded and no Set-Cookie wider than the preview's own host is passed back.
 *
 * Written on node:http rather than http-proxy: the one thing needed beyond Node's client
 * is a socket made by the addon (createConnection), the WebSocket case is a byte tunnel
 * once the upgrade request is written, and the filtering is ours either way; http-proxy
 * (unmaintained since 2020) would add a dependency for little of it, and pipes bodies
 * through Node's parser as the plain client does (the cost relayBody avoids).
 */
import { request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { TOKEN_COOKIE } from './auth.js';
import type { ServeConfig } from './config.js';
import { SESSION_COOKIE } from './sessions.js';
import { PREVIEW_TOKEN_PATTERN, type PreviewTarget, type Previews } from '../playground/previews.js';
import { connectInNetns } from '../runtime/native.js';

/** Preview connections open at once per container (HTTP requests in flight, WebSockets). */
export const PREVIEW_MAX_CONNECTIONS_PER_CONTAINER = 32;
/** A request body larger than this is refused (413) or cut. */
export const PREVIEW_MAX_BODY_BYTES = 16 * 1024 * 1024;
/** An HTTP exchange with no bytes either way for this long is cut. */
export const PREVIEW_IDLE_TIMEOUT_MS = 60_000;
/** A WebSocket tunnel with no bytes either way for this long is cut. */
export const PREVIEW_WEBSOCKET_IDLE_TIMEOUT_MS = 5 * 60_000;
/** The container's response head (status line and headers), as Node's own 16 KiB cap. */
const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;
/** What one read of the container's socket takes while its answer's head is parsed. */
const HEAD_READ_BYTES = 64 * 1024;
/** One read of a relayed body (see relayBody): fewer, larger syscalls. */
const RELAY_BUFFER_BYTES = 1024 * 1024;
/** Bodies relayed at once, server-wide; more are piped through the parser instead. */
const MAX_RELAYS = 64;

type PreviewConfig = Pick<ServeConfig, 'previewDomain' | 'previewScheme' | 'previewPort'>;

/** The host name of a Host header, lower case, without its port. */
export function hostnameOf(hostHeader: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d*)?$/.exec(hostHeader);
  if (bracketed) return bracketed[1]!.toLowerCase();
  return hostHeader.replace(/:\d*$/, '').replace(/\.$/, '').toLowerCase();
}

/** The Host is the preview domain or below it: a preview's, never the playground's. */
export function isPreviewHost(hostHeader: string | undefined, domain: string): boolean {
  if (hostHeader === undefined) return false;
  const name = hostnameOf(hostHeader);
  return name === domain || name.endsWith(`.${domain}`);
}

/** `<token>-<port>.<domain>` → token and port; null for anything else (404). */
export function parsePreviewHost(
  hostHeader: string | undefined,
  domain: string,
): { token: string; port: number } | null {
  if (hostHeader === undefined) return null;
  const name = hostnameOf(hostHeader);
  if (!name.endsWith(`.${domain}`)) return null;
  const label = name.slice(0, -domain.length - 1);
  const match = /^([a-z2-7]+)-([1-9]\d{0,4})$/.exec(label);
  if (!match || !PREVIEW_TOKEN_PATTERN.test(match[1]!)) return null;
  const port = Number(match[2]);
  return port <= 65535 ? { token: match[1]!, port } : null;
}

/** The URL a browser opens for a token's port. */
export function previewUrl(config: PreviewConfig, serverPort: number, token: string, port: number): string {
  const shownPort = config.previewPort ?? (config.previewDomain === 'preview.localhost' ? serverPort : null);
  const defaultPort = config.previewScheme === 'https' ? 443 : 80;
  const portPart = shownPort === null || shownPort === defaultPort ? '' : `:${shownPort}`;
  return `${config.previewScheme}://${token}-${port}.${config.previewDomain}${portPart}/`;
}

/** The Cookie header without the playground's cookies; null when nothing is left. */
export function withoutPlaygroundCookies(cookieHeader: string): string | null {
  const kept = cookieHeader
    .split(';')
    .map((pair) => pair.trim())
    .filter((pair) => {
      if (pair === '') return false;
      const name = pair.split('=', 1)[0]!.trim();
      return name !== SESSION_COOKIE && name !== TOKEN_COOKIE;
    });
  return kept.length === 0 ? null : kept.join('; ');
}

/**
 * A Set-Cookie the browser may keep for the preview: host-only (no Domain attribute: a
 * Domain widens it to every host below, other students' previews or the playground's
 * own domain) and not named as one of the playground's.
 */
export function isPreviewSetCookieAllowed(setCookie: string): boolean {
  const [pair, ...attributes] = setCookie.split(';');
  const name = (pair ?? '').split('=', 1)[0]!.trim();
  if (name === SESSION_COOKIE || name === TOKEN_COOKIE) return false;
  return !attributes.some((attribute) => /^domain$/i.test(attribute.split('=', 1)[0]!.trim()));
}

/** Hop-by-hop (RFC 9110 §7.6.1): about one connection, never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function connectionTokens(rawHeaders: string[]): Set<string> {
  const named = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== 'connection') continue;
    for (const token of rawHeaders[i + 1]!.split(',')) named.add(token.trim().toLowerCase());
  }
  return named;
}

/**
 * The headers to send to the container, as raw pairs: without the playground's cookies,
 * without hop-by-hop headers (kept for an upgrade, which is about this connection), with
 * the client's address in X-Forwarded-For.
 */
export function proxiedRequestHeaders(
  rawHeaders: string[],
  clientAddress: string | undefined,
  upgrade = false,
): string[] {
  const named = upgrade ? new Set<string>() : connectionTokens(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    let value = rawHeaders[i + 1]!;
    if (lower === 'x-forwarded-for' || lower.startsWith('proxy-')) continue;
    if (!upgrade && (HOP_BY_HOP.has(lower) || named.has(lower))) continue;
    if (lower === 'cookie') {
      const kept = withoutPlaygroundCookies(value);
      if (kept === null) continue;
      value = kept;
    }
    out.push(name, value);
  }
  if (clientAddress !== undefined) out.push('X-Forwarded-For', clientAddress);
  return out;
}

/** The container's response headers to pass on, as raw pairs (see isPreviewSetCookieAllowed). */
export function proxiedResponseHeaders(rawHeaders: string[], upgrade = false): string[] {
  const named = upgrade ? new Set<string>() : connectionTokens(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    const value = rawHeaders[i + 1]!;
    if (!upgrade && (HOP_BY_HOP.has(lower) || named.has(lower))) continue;
    if (lower === 'set-cookie' && !isPreviewSetCookieAllowed(value)) continue;
    out.push(name, value);
  }
  return out;
}

function plain(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(`${text}\n`);
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  413: 'Content Too Large',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

function rejectSocket(socket: Duplex, status: number, text: string): void {
  const body = `${text}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

type Opened = { fd: number; release: () => void } | { status: number; text: string };

/** The container's connection as a socket; it counts until it closes, whatever closed it. */
function containerSocket(fd: number, release: () => void, onread?: SocketOnRead): Socket {
  // With onread, reading starts when Node's client listens for 'data' (resume), so no
  // read can come before it does.
  const options = onread ? { onread, manualStart: true } : {};
  const socket = new Socket({ fd, readable: true, writable: true, ...options });
  socket.on('error', () => socket.destroy());
  socket.once('close', release);
  return socket;
}

/** A relayed body's read buffer and read callback (false: wait, the write resumes it). */
interface Relay {
  buffer: Buffer;
  read: (bytes: number, buffer: Buffer) => boolean;
}

interface SocketOnRead {
  buffer: () => Uint8Array;
  callback: (bytes: number, buffer: Uint8Array) => boolean;
}

export interface PreviewProxyOptions {
  previews: Previews;
  config: PreviewConfig;
  logger: Logger;
}

export class PreviewProxy {
  readonly #previews: Previews;
  readonly #domain: string;
  readonly #logger: Logger;
  /** Bodies being relayed now (MAX_RELAYS). */
  #relays = 0;

  constructor(options: PreviewProxyOptions) {
    this.#previews = options.previews;
    this.#domain = options.config.previewDomain;
    this.#logger = options.logger;
  }

  /** The request is for a preview host: it goes here, never to the playground's app. */
  handles(req: IncomingMessage): boolean {
    return isPreviewHost(req.headers.host, this.#domain);
  }

  request(req: IncomingMessage, res: ServerResponse): void {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > PREVIEW_MAX_BODY_BYTES) {
      plain(res, 413, `request bodies are at most ${PREVIEW_MAX_BODY_BYTES} bytes on a preview`);
      req.resume();
      return;
    }
    void this.#open(req).then(
      (opened) => {
        if ('status' in opened) {
          plain(res, opened.status, opened.text);
          req.resume();
        } else if (res.destroyed || req.destroyed) {
          containerSocket(opened.fd, opened.release).destroy();
        } else {
          this.#forward(req, res, opened.fd, opened.release);
        }
      },
      (err: unknown) => {
        this.#logger.warn({ err }, 'opening a preview connection failed');
        plain(res, 502, 'the container could not be reached');
      },
    );
  }

  /**
   * The exchange over the container's socket (released when the socket closes).
   *
   * The socket is read into buffers of ours (onread) and each read is handed to Node's
   * client as a 'data' event, so llhttp parses the container's answer (head, chunked
   * bodies, HEAD, 1xx, 204/304, lenient line ends). When the answer has one plain
   * Content-Length and its body is not all in, the rest goes to the browser by relayBody
   * instead: piping it through the parser costs a fresh 64 KiB buffer per read, a copy of
   * it per body chunk, and the garbage collections the two bring (bench/PROFILE.md).
   */
  #forward(req: IncomingMessage, res: ServerResponse, fd: number, release: () => void): void {
    let readBuffer: Buffer = Buffer.allocUnsafe(HEAD_READ_BYTES);
    let relay: Relay | null = null;
    let response: IncomingMessage | null = null;
    let answered = false;
    const socket = containerSocket(fd, release, {
      buffer: () => readBuffer,
      callback: (bytes, buffer) => {
        if (relay !== null) return relay.read(bytes, buffer as Buffer);
        // The parser and the response keep what they are given: the next read goes to a
        // buffer of its own.
        readBuffer = Buffer.allocUnsafe(HEAD_READ_BYTES);
        socket.emit('data', (buffer as Buffer).subarray(0, bytes));
        if (response === null || answered) return true;
        answered = true;
        relay = this.#relayBody(req, response, res, socket);
        if (relay === null) {
          response.pipe(res);
          return true;
        }
        readBuffer = relay.buffer;
        return false;
      },
    });
    socket.setTimeout(PREVIEW_IDLE_TIMEOUT_MS, () => socket.destroy());
    // No agent: one connection per request, closed after it (Connection: close). Lenient
    // parsing of the container's answer (bare LF line ends, as a CGI or a shell script in
    // busybox writes them, and browsers accept): the connection carries this one response
    // and nothing else, so a loose parse cannot desynchronise anyone else's.
    const upstream = httpRequest({
      insecureHTTPParser: true,
      method: req.method,
      path: req.url,
      headers: proxiedRequestHeaders(req.rawHeaders, req.socket.remoteAddress),
      setHost: false,
      createConnection: () => socket,
    });
    upstream.on('response', (incoming) => {
      // Never followed: a redirect's Location goes back to the browser as it came.
      res.writeHead(incoming.statusCode ?? 502, incoming.statusMessage, proxiedResponseHeaders(incoming.rawHeaders));
      // Cut short (the container closed or reset early): the browser must not take a
      // truncated body for a whole one. After a relayed body's last byte the socket is
      // closed on purpose and the response ends "aborted": nothing to do then.
      incoming.on('error', () => {
        if (!res.writableEnded) res.destroy();
      });
      response = incoming;
    });
    upstream.on('error', (err) => {
      this.#logger.debug({ err, host: req.headers.host }, 'preview request failed');
      if (!res.writableEnded) plain(res, 502, "the container's server closed the connection without an answer");
    });
    res.once('close', () => {
      upstream.destroy();
      socket.destroy();
    });
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > PREVIEW_MAX_BODY_BYTES) {
        plain(res, 413, `request bodies are at most ${PREVIEW_MAX_BODY_BYTES} bytes on a preview`);
        req.destroy();
        upstream.destroy();
        return;
      }
      if (!upstream.write(chunk)) {
        req.pause();
        upstream.once('drain', () => req.resume());
      }
    });
    req.once('end', () => upstream.end());
    req.once('error', () => upstream.destroy());
  }

  /**
   * Takes over the body of a response whose head the parser has just read, when it can:
   * the response has exactly one Content-Length, no Transfer-Encoding, a body, and part of
   * it still to come. The bytes the parser already holds go first; the rest is read into
   * one buffer of RELAY_BUFFER_BYTES and written to the browser as it is, no more than the
   * Content-Length, reading again once each write is done (the buffer is then free).
   * Returns the buffer and read callback to use from now on, or null to pipe the response.
   */
  #relayBody(req: IncomingMessage, response: IncomingMessage, res: ServerResponse, socket: Socket): Relay | null {
    if (response.complete || req.method === 'HEAD' || this.#relays >= MAX_RELAYS) return null;
    const status = response.statusCode ?? 0;
    if (status < 200 || status === 204 || status === 304) return null;
    let contentLength: string | null = null;
    for (let i = 0; i < response.rawHeaders.length; i += 2) {
      const name = response.rawHeaders[i]!.toLowerCase();
      if (name === 'transfer-encoding') return null;
      if (name !== 'content-length') continue;
      if (contentLength !== null) return null;
      contentLength = response.rawHeaders[i + 1]!.trim();
    }
    if (contentLength === null || !/^\d{1,15}$/.test(contentLength)) return null;
    let remaining = Number(contentLength);
    this.#relays++;
    let counted = true;
    const done = (): void => {
      if (!counted) return;
      counted = false;
      this.#relays--;
    };
    res.once('close', done);
    const finish = (): void => {
      done();
      res.end();
      socket.destroy();
    };
    const resume = (err?: Error | null): void => {
      if (!err && !res.destroyed && !socket.destroyed) socket.resume();
    };
    const held = response.read() as Buffer | null;
    if (held !== null) remaining -= held.length;
    if (remaining <= 0) {
      if (held !== null) res.write(held);
      finish();
      return { buffer: Buffer.alloc(0), read: () => false };
    }
    // The caller stops reading; reading starts again once these bytes are written.
    if (held !== null) res.write(held, resume);
    else process.nextTick(resume);
    const read = (bytes: number, buffer: Buffer): boolean => {
      if (remaining <= 0) return false;
      // Bytes past the Content-Length are not part of this answer: dropped.
      const taken = Math.min(bytes, remaining);
      remaining -= taken;
      if (remaining === 0) {
        res.write(buffer.subarray(0, taken));
        finish();
      } else {
        res.write(buffer.subarray(0, taken), resume);
      }
      return false;
    };
    return { buffer: Buffer.allocUnsafe(Math.min(remaining, RELAY_BUFFER_BYTES)), read };
  }

  upgrade(req: IncomingMessage, client: Duplex, head: Buffer): void {
    client.on('error', () => client.destroy());
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      rejectSocket(client, 400, 'a preview upgrades to WebSocket only');
      return;
    }
    void this.#open(req).then(
      (opened) => {
        if ('status' in opened) rejectSocket(client, opened.status, opened.text);
        else if (client.destroyed) containerSocket(opened.fd, opened.release).destroy();
        else this.#tunnel(req, client, head, containerSocket(opened.fd, opened.release));
      },
      (err: unknown) => {
        this.#logger.warn({ err }, 'opening a preview connection failed');
        rejectSocket(client, 502, 'the container could not be reached');
      },
    );
  }

  /** The upgrade request written to the container, then bytes both ways. */
  #tunnel(req: IncomingMessage, client: Duplex, head: Buffer, socket: Socket): void {
    const close = (): void => {
      socket.destroy();
      client.destroy();
    };
    socket.on('error', close);
    client.once('close', close);
    socket.once('close', close);
    socket.setTimeout(PREVIEW_WEBSOCKET_IDLE_TIMEOUT_MS, close);

    const headers = proxiedRequestHeaders(req.rawHeaders, req.socket.remoteAddress, true);
    let requestHead = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) requestHead += `${headers[i]}: ${headers[i + 1]}\r\n`;
    socket.write(`${requestHead}\r\n`);
    if (head.length > 0) socket.write(head);
    client.pipe(socket);

    // The container's answer head is filtered as an HTTP response's (Set-Cookie), then the
    // tunnel carries bytes both ways untouched.
    let pending = Buffer.alloc(0);
    const onHead = (chunk: Buffer): void => {
      pending = Buffer.concat([pending, chunk]);
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) {
        if (pending.length > MAX_RESPONSE_HEAD_BYTES) close();
        return;
      }
      socket.off('data', onHead);
      const [statusLine, ...lines] = pending.subarray(0, end).toString('latin1').split('\r\n');
      const raw: string[] = [];
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon > 0) raw.push(line.slice(0, colon), line.slice(colon + 1).trim());
      }
      const kept = proxiedResponseHeaders(raw, true);
      let responseHead = `${statusLine}\r\n`;
      for (let i = 0; i < kept.length; i += 2) responseHead += `${kept[i]}: ${kept[i + 1]}\r\n`;
      client.write(Buffer.from(`${responseHead}\r\n`, 'latin1'));
      const rest = pending.subarray(end + 4);
      if (rest.length > 0) client.write(rest);
      socket.pipe(client);
    };
    socket.on('data', onHead);
  }

  /** The container's port for this request's host, connected; or the status to answer. */
  async #open(req: IncomingMessage): Promise<Opened> {
    const named = parsePreviewHost(req.headers.host, this.#domain);
    const target: PreviewTarget | null = named === null ? null : this.#previews.resolve(named.token, named.port);
    if (target === null) return { status: 404, text: 'no such preview (a wrong link, or its container is gone)' };
    const release = this.#previews.acquire(target.containerId);
    if (release === null) {
      return {
        status: 503,
        text: `too many preview connections to this container (at most ${this.#previews.maxConnectionsPerContainer})`,
      };
    }
    let fd: number | null;
    try {
      fd = await connectInNetns(target.init, target.port);
    } catch (err) {
      release();
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ECONNREFUSED')
        return { status: 502, text: `nothing listens on port ${target.port} in the container` };
      if (code === 'ETIMEDOUT') return { status: 502, text: `port ${target.port} in the container does not accept` };
      this.#logger.warn({ err, containerId: target.containerId }, 'opening a preview connection failed');
      return { status: 502, text: 'the container could not be reached' };
    }
    if (fd === null) {
      release();
      return { status: 404, text: 'no such preview (a wrong link, or its container is gone)' };
    }
    return { fd, release };
  }
}

/**
 * Hands a preview host's upgrades to the proxy and every other to the listeners already
 * registered (the playground's WebSockets), which then never see a preview host.
 */
export function routeUpgradesByHost(server: Server, proxy: PreviewProxy): void {
  const playground = server.listeners('upgrade') as ((req: IncomingMessage, socket: Duplex, head: Buffer) => void)[];
  server.removeAllListeners('upgrade');
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (proxy.handles(req)) proxy.upgrade(req, socket, head);
    else for (const listener of playground) listener.call(server, req, socket, head);
  });
}
