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
 * (unmaintained since 2020) would add a dependency for little of it.
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

type Opened = { socket: Socket } | { status: number; text: string };

export interface PreviewProxyOptions {
  previews: Previews;
  config: PreviewConfig;
  logger: Logger;
}

export class PreviewProxy {
  readonly #previews: Previews;
  readonly #domain: string;
  readonly #logger: Logger;

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
          opened.socket.destroy();
        } else {
          this.#forward(req, res, opened.socket);
        }
      },
      (err: unknown) => {
        this.#logger.warn({ err }, 'opening a preview connection failed');
        plain(res, 502, 'the container could not be reached');
      },
    );
  }

  /** The exchange over the container's socket (released when the socket closes). */
  #forward(req: IncomingMessage, res: ServerResponse, socket: Socket): void {
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
    upstream.on('response', (response) => {
      // Never followed: a redirect's Location goes back to the browser as it came.
      res.writeHead(response.statusCode ?? 502, response.statusMessage, proxiedResponseHeaders(response.rawHeaders));
      response.pipe(res);
      response.once('error', () => res.destroy());
    });
    upstream.on('error', (err) => {
      this.#logger.debug({ err, host: req.headers.host }, 'preview request failed');
      plain(res, 502, "the container's server closed the connection without an answer");
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

  upgrade(req: IncomingMessage, client: Duplex, head: Buffer): void {
    client.on('error', () => client.destroy());
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      rejectSocket(client, 400, 'a preview upgrades to WebSocket only');
      return;
    }
    void this.#open(req).then(
      (opened) => {
        if ('status' in opened) rejectSocket(client, opened.status, opened.text);
        else if (client.destroyed) opened.socket.destroy();
        else this.#tunnel(req, client, head, opened.socket);
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
    const socket = new Socket({ fd, readable: true, writable: true });
    socket.on('error', () => socket.destroy());
    // The connection counts until its socket closes, whatever closed it.
    socket.once('close', release);
    return { socket };
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
