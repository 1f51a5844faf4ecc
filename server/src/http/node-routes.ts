/**
 * The node's routes: /readyz for HAProxy and Kubernetes, GET /api/node, the admin drain
 * (POST/DELETE /api/node/drain, token holders only), and the guard that turns new
 * sessions away while the node drains.
 */
import { Router, type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import { MdockerError } from '../runtime/errors.js';
import type { Classes } from '../playground/classes.js';
import type { Playground } from '../playground/playground.js';
import type { DrainBody } from '../protocol/index.js';
import { hasValidToken } from './auth.js';
import { parseDurationMs, type ServeConfig } from './config.js';
import type { ClusterNode } from './node.js';

/** A drain given over the API is at most a day (a typo of "10d" would hold a node). */
const DRAIN_MAX_GRACE_MS = 24 * 3_600_000;

const drainSchema = z.object({ grace: z.string().max(32).optional() }).strict();

export interface NodeRoutesOptions {
  node: ClusterNode;
  config: Pick<ServeConfig, 'token' | 'allowedHosts'>;
  classes: Classes;
}

/** GET /readyz: 200 while the node takes new sessions, 503 otherwise; both with ReadyJson. */
export function readyzHandler(node: ClusterNode): RequestHandler {
  return (_req, res) => {
    const ready = node.readiness();
    res.setHeader('Cache-Control', 'no-store');
    res.status(ready.ready ? 200 : 503).json(ready);
  };
}

export function nodeRouter({ node, config, classes }: NodeRoutesOptions): Router {
  const router = Router();
  // Only an operator may drain: the server must have a token and the request carry it. A
  // token-less loopback server has none to check, so it has no admin drain (SIGTERM works).
  const admin: RequestHandler = (req, _res, next) => {
    if (config.token !== null && hasValidToken(req, config) && !classes.isStudent(req.sessionId)) return next();
    next(new MdockerError('NOT_FOUND', `no route ${req.method} ${req.originalUrl.split('?')[0]!.slice(0, 100)}`));
  };

  router.get('/node', (_req, res) => {
    res.json({ ...node.readiness(), notice: node.notice() });
  });

  router.post('/node/drain', admin, (req, res) => {
    const parsed = drainSchema.safeParse(req.body ?? {});
    if (!parsed.success) throw new MdockerError('INVALID_ARGUMENT', 'body: { "grace"?: "10m" }');
    const body: DrainBody = parsed.data;
    const graceMs = body.grace === undefined ? undefined : parseDurationMs(body.grace, 'grace');
    if (graceMs !== undefined && graceMs > DRAIN_MAX_GRACE_MS) {
      throw new MdockerError('INVALID_ARGUMENT', 'grace: at most 24h');
    }
    res.status(202).json(node.drain(graceMs));
  });

  router.delete('/node/drain', admin, (_req, res) => {
    res.json(node.undrain());
  });
  return router;
}

/** True for the requests that would start something new on this node: a session's first
 * container, a class, a join. */
function startsSomethingNew(req: Request, playground: Playground): boolean {
  if (req.method !== 'POST') return false;
  if (req.path === '/join' || req.path === '/classes') return true;
  return req.path === '/containers' && !playground.hasContainers(req.sessionId);
}

/** While the node drains (or stops), new sessions, classes and joins get 503: HAProxy
 * sends them elsewhere already; this answers a client that came straight here. */
export function newSessionGuard(node: ClusterNode, playground: Playground): RequestHandler {
  return (req, _res, next) => {
    if (node.acceptsNewSessions || !startsSomethingNew(req, playground)) return next();
    next(
      new MdockerError(
        'UNAVAILABLE',
        `this node (${node.id}) is draining and takes nothing new: reload the page to start on another node`,
        { node: node.id, state: node.state },
      ),
    );
  };
}
