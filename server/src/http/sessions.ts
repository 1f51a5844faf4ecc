/**
 * Anonymous browser sessions: a random 32-byte id in an HttpOnly, SameSite=Strict cookie,
 * signed so the server accepts only ids it issued, set on the first request of any route.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseCookie, stringifySetCookie } from 'cookie';
import type { RequestHandler } from 'express';

export const SESSION_COOKIE = 'mdocker_session';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** set by the session middleware on every request */
      sessionId: string;
    }
  }
}

/**
 * The cookie is `<id>.<hmac>`: a client cannot choose its own id (session fixation), and
 * the server keeps no table of sessions, so a flood of cookie-less requests costs nothing.
 * The secret lives as long as the process; after a restart every browser gets a new
 * session, which is right because the previous run's containers are reaped at start.
 */
export class SessionKeeper {
  readonly #secret: Buffer;

  constructor(secret: Buffer = randomBytes(32)) {
    this.#secret = secret;
  }

  issue(): { id: string; cookieValue: string } {
    const id = randomBytes(32).toString('base64url');
    return { id, cookieValue: `${id}.${this.#sign(id)}` };
  }

  /** The session id in a Cookie header, or null when absent or not signed by us. */
  verify(cookieHeader: string | undefined): string | null {
    if (!cookieHeader) return null;
    const value = parseCookie(cookieHeader)[SESSION_COOKIE];
    if (!value) return null;
    const match = /^([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})$/.exec(value);
    if (!match) return null;
    const expected = Buffer.from(this.#sign(match[1]!));
    const given = Buffer.from(match[2]!);
    return given.length === expected.length && timingSafeEqual(given, expected) ? match[1]! : null;
  }

  setCookieHeader(cookieValue: string, secure: boolean): string {
    return stringifySetCookie(SESSION_COOKIE, cookieValue, {
      httpOnly: true,
      sameSite: 'strict',
      secure,
      path: '/',
    });
  }

  /** The request's session, issuing one (Set-Cookie on `res`) when it has none. */
  ensure(req: IncomingMessage, res: Pick<ServerResponse, 'appendHeader'>, secure: boolean): string {
    const existing = this.verify(req.headers.cookie);
    if (existing) return existing;
    const { id, cookieValue } = this.issue();
    // A cross-site navigation (a link from a lesson page) arrives without the SameSite=Strict
    // cookie even when the browser has one; a new cookie would replace it and orphan the
    // user's containers. Such a request gets a throwaway session that owns nothing.
    if (req.headers['sec-fetch-site'] !== 'cross-site') {
      res.appendHeader('Set-Cookie', this.setCookieHeader(cookieValue, secure));
    }
    return id;
  }

  middleware(): RequestHandler {
    return (req, res, next) => {
      req.sessionId = this.ensure(req, res, req.secure);
      next();
    };
  }

  #sign(id: string): string {
    return createHmac('sha256', this.#secret).update(id).digest('base64url');
  }
}

export { sessionLabel } from '../playground/playground.js';
