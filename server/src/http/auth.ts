/**
 * Who may talk to the server at all: the access token (required beyond loopback), the
 * Host allowlist that stops DNS rebinding on a token-less loopback server, and the Origin
 * checks that stop cross-site requests and cross-site WebSocket hijacking.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { parseCookie, stringifySetCookie } from 'cookie';
import type { RequestHandler } from 'express';
import { MdockerError } from '../runtime/errors.js';
import { isLoopbackHost, type ServeConfig } from './config.js';

export const TOKEN_COOKIE = 'mdocker_token';

type AuthConfig = Pick<ServeConfig, 'token' | 'allowedHosts'> & Partial<Pick<ServeConfig, 'previewDomain'>>;

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** The cookie holds a digest, so the token itself is not replayed on every request. */
export function tokenCookieValue(token: string): string {
  return digest(`mdocker-token:${token}`).toString('base64url');
}

function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

function bearerToken(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match ? match[1]! : null;
}

function queryToken(req: IncomingMessage): string | null {
  const url = new URL(req.url ?? '/', 'http://placeholder');
  return url.searchParams.get('token');
}

/** True when the request carries the token (header, query or cookie), or none is needed. */
export function hasValidToken(req: IncomingMessage, config: AuthConfig): boolean {
  if (config.token === null) return true;
  const bearer = bearerToken(req);
  if (bearer !== null && sameSecret(bearer, config.token)) return true;
  const query = queryToken(req);
  if (query !== null && sameSecret(query, config.token)) return true;
  const cookie = req.headers.cookie ? parseCookie(req.headers.cookie)[TOKEN_COOKIE] : undefined;
  return cookie !== undefined && sameSecret(cookie, tokenCookieValue(config.token));
}

function hostnameOf(hostHeader: string): string {
  // "[::1]:8080" → "::1", "example.com:8080" → "example.com"
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hostHeader);
  if (bracketed) return bracketed[1]!.toLowerCase();
  return hostHeader.replace(/:\d+$/, '').toLowerCase();
}

/**
 * A token-less server trusts whoever reaches it, which on loopback means local users.
 * DNS rebinding lets a web page reach loopback under its own name (evil.example resolves
 * to 127.0.0.1), so without a token only loopback names are accepted in Host. The
 * preview domain's names are the previews' (http/preview.ts takes them before the app):
 * the playground never answers on them, token or not.
 */
export function checkHost(req: IncomingMessage, config: AuthConfig): MdockerError | null {
  const host = req.headers.host;
  const domain = config.previewDomain;
  if (host && domain !== undefined) {
    const name = hostnameOf(host);
    if (name === domain || name.endsWith(`.${domain}`)) {
      return new MdockerError(
        'FORBIDDEN',
        `Host ${JSON.stringify(name.slice(0, 64))} is a preview's, not the playground's`,
      );
    }
  }
  if (config.token !== null) return null;
  if (!host) return new MdockerError('FORBIDDEN', 'missing Host header');
  const name = hostnameOf(host);
  if (config.allowedHosts.includes(name) || isLoopbackHost(name) || name.endsWith('.localhost')) return null;
  return new MdockerError(
    'FORBIDDEN',
    `Host ${JSON.stringify(name.slice(0, 64))} is not allowed (add it with --allowed-hosts)`,
    {
      host: name.slice(0, 64),
    },
  );
}

/**
 * A browser always sends Origin on WebSocket upgrades and cross-origin writes; it must name
 * this server. Requests without Origin come from non-browser clients, which have no victim's
 * cookies to abuse and still need the session cookie (and the token) themselves.
 */
export function checkOrigin(req: IncomingMessage): MdockerError | null {
  const origin = req.headers.origin;
  if (origin === undefined) return null;
  let originHost: string;
  try {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
    originHost = url.host.toLowerCase();
  } catch {
    return new MdockerError(
      'FORBIDDEN',
      `cross-origin request refused (Origin ${JSON.stringify(origin.slice(0, 64))})`,
    );
  }
  const host = (req.headers.host ?? '').toLowerCase();
  if (originHost === host || originHost === stripDefaultPort(host)) return null;
  return new MdockerError('FORBIDDEN', `cross-origin request refused (Origin ${JSON.stringify(origin.slice(0, 64))})`);
}

function stripDefaultPort(host: string): string {
  return host.replace(/:(80|443)$/, '');
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * What a visitor without the token may load: the join page and the assets it needs, and
 * the two routes it calls. Everything else answers 401 until they hold the token or have
 * joined a class.
 */
function openToGuests(method: string, path: string): boolean {
  if (method === 'GET' || method === 'HEAD') {
    return (
      path === '/api/me' ||
      /^\/join\/[A-Za-z0-9-]{1,64}\/?$/.test(path) ||
      /^\/assets\/[A-Za-z0-9._-]+$/.test(path) ||
      path === '/favicon.svg'
    );
  }
  return method === 'POST' && path === '/api/join';
}

/**
 * Host allowlist and token for every route but /healthz and /readyz; Origin for every write. A
 * student (a session that joined a class) needs no token: `isStudent` says who is one.
 */
export function accessMiddleware(
  config: AuthConfig,
  isStudent: (sessionId: string) => boolean = () => false,
): RequestHandler {
  return (req, res, next) => {
    const hostError = checkHost(req, config);
    if (hostError) return next(hostError);
    if (!SAFE_METHODS.has(req.method)) {
      const originError = checkOrigin(req);
      if (originError) return next(originError);
      // SameSite=Strict already keeps the session cookie off cross-site writes; this makes
      // the refusal explicit for browsers that send Fetch Metadata.
      if (req.headers['sec-fetch-site'] === 'cross-site') {
        return next(new MdockerError('FORBIDDEN', 'cross-site request refused'));
      }
    }
    // Probes (HAProxy, Kubernetes) carry no token.
    if (req.path === '/healthz' || req.path === '/readyz') return next();
    if (config.token === null) return next();
    if (!hasValidToken(req, config)) {
      if (isStudent(req.sessionId) || openToGuests(req.method, req.path)) return next();
      return next(
        new MdockerError(
          'UNAUTHORIZED',
          'this server needs its access token: open the URL it printed (…/?token=…) or send Authorization: Bearer <token>',
        ),
      );
    }
    const query = queryToken(req);
    if (query === null) return next();
    // Lax, not Strict: a link to the playground from elsewhere (a lesson page) is a
    // cross-site navigation, which must still carry proof of the token.
    res.appendHeader(
      'Set-Cookie',
      stringifySetCookie(TOKEN_COOKIE, tokenCookieValue(config.token), {
        httpOnly: true,
        sameSite: 'lax',
        secure: req.secure,
        path: '/',
      }),
    );
    // As Jupyter does: trade the token in the address bar for a cookie, then drop it from
    // the URL so it does not linger in history or get copied along.
    if (req.method === 'GET' && !req.path.startsWith('/api/')) {
      const url = new URL(req.originalUrl, 'http://placeholder');
      url.searchParams.delete('token');
      res.redirect(302, url.pathname + url.search);
      return;
    }
    next();
  };
}

/** The same decisions for a WebSocket upgrade, which Express never sees. */
export function checkUpgrade(req: IncomingMessage, config: AuthConfig, student = false): MdockerError | null {
  const hostError = checkHost(req, config);
  if (hostError) return hostError;
  const originError = checkOrigin(req);
  if (originError) return originError;
  if (!student && !hasValidToken(req, config)) return new MdockerError('UNAUTHORIZED', 'missing or wrong access token');
  return null;
}
