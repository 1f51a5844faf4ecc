/**
 * The Express application: security headers, sessions, access control, the API routes,
 * health and metrics, the built web UI, and the error mapping, in that order.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express, { type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { accessMiddleware } from './auth.js';
import type { ServeConfig } from './config.js';
import { errorMiddleware, notFoundHandler } from './errors.js';
import type { ServerMetrics } from './metrics.js';
import type { Classes } from '../playground/classes.js';
import type { Lessons } from '../playground/lessons/engine.js';
import type { Playground } from '../playground/playground.js';
import type { ImageCatalog } from '../playground/image-catalog.js';
import type { Previews } from '../playground/previews.js';
import type { Recordings } from '../playground/recording.js';
import type { HealthJson } from '../protocol/index.js';
import { apiRouter } from './routes.js';
import { isFileUpload } from './file-routes.js';
import { sessionLabel, type SessionKeeper } from './sessions.js';
import type { ClusterNode } from './node.js';
import { newSessionGuard, nodeRouter, readyzHandler } from './node-routes.js';

export interface AppOptions {
  config: ServeConfig;
  playground: Playground;
  classes: Classes;
  recordings: Recordings | null;
  sessions: SessionKeeper;
  metrics: ServerMetrics;
  logger: Logger;
  images: ImageCatalog;
  lessons?: Lessons;
  /** GET /api/containers/:id/ports; none: no previews */
  previews?: Previews;
  /** /readyz, /api/node and the drain; none: neither */
  node?: ClusterNode;
}

/** A Host value fit to appear in a CSP source expression. */
function cspHost(host: string | undefined): string | null {
  return host !== undefined && /^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$/.test(host) ? host : null;
}

function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const startedAt = performance.now();
    res.once('finish', () => {
      const quiet = req.path === '/healthz' || req.path === '/readyz' || req.path === '/metrics';
      // The path only: a query may carry the access token.
      logger[quiet ? 'debug' : 'info'](
        {
          event: 'http.request',
          method: req.method,
          path: req.originalUrl.split('?')[0],
          status: res.statusCode,
          ms: Math.round((performance.now() - startedAt) * 10) / 10,
          session: req.sessionId ? sessionLabel(req.sessionId) : undefined,
        },
        'request',
      );
    });
    next();
  };
}

export function createApp(options: AppOptions): Express {
  const { config, playground, classes, sessions, metrics, logger } = options;
  const app = express();
  const startedAt = Date.now();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  // Route parameters are matched literally; /api/containers/ID/ must not be a different route.
  app.set('strict routing', false);

  app.use(requestLog(logger));
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          // xterm.js's DOM renderer writes its theme and cell styles into <style> elements
          // at run time; without 'unsafe-inline' terminals render unstyled. Scripts stay
          // 'self' only, which is what stops injected code.
          styleSrc: ["'self'", "'unsafe-inline'"],
          imgSrc: ["'self'", 'data:'],
          fontSrc: ["'self'", 'data:'],
          // 'self' covers same-origin ws: in CSP3 browsers; older ones need the explicit origin.
          connectSrc: [
            "'self'",
            (req) => {
              const host = cspHost((req as { headers: { host?: string } }).headers.host);
              return host ? `ws://${host} wss://${host}` : "'self'";
            },
          ],
          workerSrc: ["'self'"],
          objectSrc: ["'none'"],
          baseUri: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
        },
      },
      // Served over plain HTTP (TLS, if any, ends at an ingress that sets its own HSTS).
      strictTransportSecurity: false,
      crossOriginEmbedderPolicy: false,
    }),
  );
  app.use(sessions.middleware());
  app.use(accessMiddleware(config, (sessionId) => classes.isStudent(sessionId)));
  const json = express.json({ limit: config.jsonBodyLimitBytes, strict: true, type: 'application/json' });
  // An upload's body is the file, whatever Content-Type the browser gave it (a .json file's).
  app.use((req, res, next) => (isFileUpload(req) ? next() : json(req, res, next)));

  app.get('/healthz', (_req, res) => {
    const health: HealthJson = {
      status: 'ok',
      containers: playground.containerCount,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    };
    res.json(health);
  });

  if (options.node) {
    app.get('/readyz', readyzHandler(options.node));
    app.use('/api', newSessionGuard(options.node, playground), nodeRouter({ node: options.node, config, classes }));
  }

  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.use(
    '/api',
    apiRouter({
      config,
      playground,
      images: options.images,
      classroom: { classes, sessions, recordings: options.recordings },
      ...(options.lessons ? { lessons: options.lessons } : {}),
      ...(options.previews ? { previews: options.previews } : {}),
    }),
  );
  app.use('/api', notFoundHandler());

  const index = join(config.webDir, 'index.html');
  if (existsSync(index)) {
    app.use(express.static(config.webDir, { index: 'index.html', maxAge: '1h', setHeaders: noCacheForHtml }));
    // The UI is a single page: any other GET that wants HTML gets it.
    app.get(/^\/(?!api\/).*/, (req, res, next) => {
      if (!req.accepts('html')) return next();
      res.setHeader('Cache-Control', 'no-cache');
      res.sendFile(index);
    });
  } else {
    app.get('/', (_req, res) => {
      res
        .type('html')
        .send(
          '<!doctype html><title>mdocker</title><p>The mdocker API is running, but the web UI is not built: ' +
            'run <code>npm run build:web</code> (it goes to web/dist) and reload.</p>',
        );
    });
  }

  app.use(notFoundHandler());
  app.use(errorMiddleware(logger));
  return app;
}

function noCacheForHtml(res: { setHeader(name: string, value: string): void }, path: string): void {
  // index.html names the hashed bundles; it must be revalidated so a new build is picked up.
  if (path.endsWith('.html')) res.setHeader('Cache-Control', 'no-cache');
}
