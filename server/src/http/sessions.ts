/**
 * Anonymous browser sessions: a random 32-byte id in an HttpOnly, SameSite=Strict cookie,
 * signed with the deployment's key together with the node that holds the session, so
 * every node reads every cookie and each knows whose session it is.
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseCookie, stringifySetCookie } from 'cookie';
import type { RequestHandler } from 'express';
import { MdockerError } from '../runtime/errors.js';

export const SESSION_COOKIE = 'mdocker_session';

/** The node name of a server started without --node-id. */
export const LONE_NODE = 'local';

/** Keys shorter than this are refused: HMAC-SHA256 wants at least its output's size. */
export const SESSION_KEY_MIN_BYTES = 32;

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** set by the session middleware on every request */
      sessionId: string;
    }
  }
}

/** What a request's cookie says. */
export type SessionCookie =
  | { kind: 'none' }
  | { kind: 'local'; id: string }
  /** signed with our key by another node, or by this node before it restarted: its
   * containers are not here */
  | { kind: 'foreign'; node: string; restarted: boolean };

export interface SessionKeeperOptions {
  /** the deployment's shared key; default: random, this process only */
  key?: Buffer;
  /** this node's id (a DNS label) */
  node?: string;
  /** this start of the node; default: random */
  boot?: string;
  /** false while draining: no new session is handed out */
  accepting?: () => boolean;
}

/**
 * The cookie is `<id>.<node>.<boot>.<hmac>`: a client cannot choose its own id (session
 * fixation) nor move its session to another node or another start of one, and no node
 * keeps a table of sessions, so a flood of cookie-less requests costs nothing. `node` is
 * in clear so HAProxy routes on it (deploy/haproxy); it is only a hint to HAProxy, every
 * node checks the signature. `boot` is random per start: after a restart the node's
 * containers are reaped, and a cookie of the previous start is told so.
 */
export class SessionKeeper {
  readonly node: string;
  readonly boot: string;
  readonly #key: Buffer;
  readonly #accepting: () => boolean;

  constructor(options: SessionKeeperOptions = {}) {
    // A key of its own for cookies: the file's bytes are never used directly, so a key
    // reused elsewhere (by mistake) signs nothing here that it signs there.
    this.#key = Buffer.from(
      hkdfSync('sha256', options.key ?? randomBytes(32), Buffer.alloc(0), 'mdocker session cookie v1', 32),
    );
    this.node = options.node ?? LONE_NODE;
    this.boot = options.boot ?? randomBytes(8).toString('base64url');
    this.#accepting = options.accepting ?? (() => true);
  }

  issue(): { id: string; cookieValue: string } {
    const id = randomBytes(32).toString('base64url');
    const signed = `${id}.${this.node}.${this.boot}`;
    return { id, cookieValue: `${signed}.${this.#sign(signed)}` };
  }

  /** What the Cookie header's session cookie is: absent or not signed with our key (none),
   * ours, or another node's (or another start's). */
  read(cookieHeader: string | undefined): SessionCookie {
    if (!cookieHeader) return { kind: 'none' };
    const value = parseCookie(cookieHeader)[SESSION_COOKIE];
    if (!value) return { kind: 'none' };
    const match =
      /^([A-Za-z0-9_-]{43})\.([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\.([A-Za-z0-9_-]{11})\.([A-Za-z0-9_-]{43})$/.exec(
        value,
      );
    if (!match) return { kind: 'none' };
    const [, id, node, boot, mac] = match as unknown as [string, string, string, string, string];
    const expected = Buffer.from(this.#sign(`${id}.${node}.${boot}`));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { kind: 'none' };
    if (node === this.node && boot === this.boot) return { kind: 'local', id };
    return { kind: 'foreign', node, restarted: node === this.node };
  }

  /** The session id in a Cookie header, or null when absent, not signed by us, or not this
   * node's. */
  verify(cookieHeader: string | undefined): string | null {
    const found = this.read(cookieHeader);
    return found.kind === 'local' ? found.id : null;
  }

  setCookieHeader(cookieValue: string, secure: boolean): string {
    return stringifySetCookie(SESSION_COOKIE, cookieValue, {
      httpOnly: true,
      sameSite: 'strict',
      secure,
      path: '/',
    });
  }

  /** The request's session, issuing one (Set-Cookie on `res`) when it has none. A
   * request whose session is elsewhere, or any request while the node takes no new
   * sessions, gets a throwaway id that owns nothing. */
  ensure(req: IncomingMessage, res: Pick<ServerResponse, 'appendHeader'>, secure: boolean): string {
    const found = this.read(req.headers.cookie);
    if (found.kind === 'local') return found.id;
    const { id, cookieValue } = this.issue();
    // A cross-site navigation (a link from a lesson page) arrives without the SameSite=Strict
    // cookie even when the browser has one; a new cookie would replace it and orphan the
    // user's containers. Such a request gets a throwaway session that owns nothing.
    if (found.kind === 'none' && req.headers['sec-fetch-site'] !== 'cross-site' && this.#accepting()) {
      res.appendHeader('Set-Cookie', this.setCookieHeader(cookieValue, secure));
    }
    return id;
  }

  /**
   * Every request gets `req.sessionId`. An API request whose session is another node's
   * answers NODE_GONE (421): HAProxy sends a session elsewhere only when its node is down,
   * and a node that restarted has reaped that session's containers. The answer carries a
   * new session of this node (when it takes new ones), so the client starts again here.
   * Pages and assets load as usual: the page learns it from its first API call.
   */
  middleware(): RequestHandler {
    return (req, res, next) => {
      const found = this.read(req.headers.cookie);
      // A join makes a new session anyway: a student who had one elsewhere joins here,
      // where the join link sent them.
      const joining = req.method === 'POST' && req.path === '/api/join';
      if (found.kind === 'foreign' && req.path.startsWith('/api/') && !joining) {
        if (this.#accepting()) {
          const { id, cookieValue } = this.issue();
          req.sessionId = id;
          res.appendHeader('Set-Cookie', this.setCookieHeader(cookieValue, req.secure));
        } else {
          req.sessionId = randomBytes(32).toString('base64url');
        }
        return next(nodeGone(found.node, found.restarted));
      }
      req.sessionId = this.ensure(req, res, req.secure);
      next();
    };
  }

  #sign(signed: string): string {
    return createHmac('sha256', this.#key).update(signed).digest('base64url');
  }
}

/** What a user of a session held by a node that is gone (or restarted) is told. */
export function nodeGone(node: string, restarted: boolean): MdockerError {
  const message = restarted
    ? `your node (${node}) restarted and its containers are gone: start again (reload the page)`
    : `your node (${node}) is gone, and its containers with it: start again (reload the page)`;
  return new MdockerError('NODE_GONE', message, { node, restarted });
}

/**
 * --session-key-file: the deployment's key. Its bytes are the key (a trailing newline
 * dropped, as `head -c 48 /dev/urandom | base64 > FILE` leaves one). The key never
 * leaves the server: not in logs, answers or errors (the message names only the file).
 */
export function loadSessionKey(file: string, warn: (message: string) => void = () => undefined): Buffer {
  let key: Buffer;
  try {
    key = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new MdockerError('INVALID_ARGUMENT', `--session-key-file ${file}: cannot read it (${code})`);
  }
  let end = key.length;
  while (end > 0 && (key[end - 1] === 0x0a || key[end - 1] === 0x0d)) end--;
  key = key.subarray(0, end);
  if (key.length < SESSION_KEY_MIN_BYTES) {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `--session-key-file ${file}: the key must be at least ${SESSION_KEY_MIN_BYTES} bytes (head -c 48 /dev/urandom | base64 > FILE)`,
    );
  }
  // Kubernetes mounts a Secret 0644 unless defaultMode says otherwise; other users of the
  // host reading it could sign any session.
  if ((statSync(file).mode & 0o077) !== 0) warn(`--session-key-file ${file} is readable by others than its owner`);
  return key;
}

export { sessionLabel } from '../playground/playground.js';
