/**
 * The REST routes under /api: each validates its input (unknown fields refused), calls the
 * playground for the caller's session, and answers JSON.
 */
import { Router, type Request, type RequestHandler } from 'express';
import { rateLimit, type Options as RateLimitOptions } from 'express-rate-limit';
import { z } from 'zod';
import { MdockerError } from '../runtime/errors.js';
import { cmdSchema, hostnameSchema, imageNameSchema, limitsUpdateSchema, validateInput } from '../runtime/spec.js';
import { parseLimits } from '../runtime/units.js';
import type { ServeConfig } from './config.js';
import type { Playground } from '../playground/playground.js';
import type { Previews } from '../playground/previews.js';
import type { ImagePullJson, TerminalCwdJson } from '../protocol/index.js';
import type { ImageCatalog, Viewer } from '../playground/image-catalog.js';
import { hasValidToken } from './auth.js';
import { classRouter, type ClassRoutesOptions } from './class-routes.js';
import type { Lessons } from '../playground/lessons/engine.js';
import { lessonRouter } from './lesson-routes.js';
import { fileRouter } from './file-routes.js';

type RoutesConfig = Pick<
  ServeConfig,
  | 'rateWindowMs'
  | 'createRatePerSession'
  | 'createRatePerIp'
  | 'spawnRatePerSession'
  | 'apiRatePerIp'
  | 'maxUploadBytes'
  | 'maxDownloadBytes'
> &
  ClassRoutesOptions['config'];

export interface RoutesOptions {
  config: RoutesConfig;
  playground: Playground;
  images: ImageCatalog;
  /** the classroom's routes (classes, join, recordings) */
  classroom: Omit<ClassRoutesOptions, 'config' | 'playground' | 'images' | 'lessons'>;
  /** the lessons' routes and a create's `lesson`; none: no lessons */
  lessons?: Lessons;
  /** GET /containers/:id/ports; none: no previews */
  previews?: Previews;
}

const MAX_ARGS = 256;
const MAX_ARG_LENGTH = 4096;

const boundedCmdSchema = z
  .array(z.string().max(MAX_ARG_LENGTH, `invalid command: arguments are at most ${MAX_ARG_LENGTH} characters`))
  .max(MAX_ARGS, `invalid command: at most ${MAX_ARGS} arguments`)
  .pipe(cmdSchema);

const limitValueSchema = z.union([z.string().max(64), z.number()]);

export const createContainerSchema = z
  .object({
    image: imageNameSchema.optional(),
    hostname: hostnameSchema.optional(),
    memory: limitValueSchema.optional(),
    cpus: limitValueSchema.optional(),
    pidsLimit: limitValueSchema.optional(),
    cmd: boundedCmdSchema.optional(),
    lesson: z.string().max(64).optional(),
  })
  .strict();

export const createTerminalSchema = z
  .object({
    cmd: boundedCmdSchema.optional(),
    cols: z.number().int().min(1).max(10_000).optional(),
    rows: z.number().int().min(1).max(10_000).optional(),
  })
  .strict();

export const execSchema = z
  .object({
    cmd: boundedCmdSchema,
    timeoutMs: z.number().int().min(1).optional(),
  })
  .strict();

export const pullImageSchema = z.object({ reference: z.string().min(1).max(512) }).strict();

/** How long POST /api/images waits for a pull to fail at the registry before answering 202. */
const PULL_FAIL_FAST_MS = 3000;

/** Routes that take no body refuse one, so a typo'd request fails loudly. */
const emptySchema = z.object({}).strict();

function body(req: { body?: unknown }): unknown {
  // express.json() leaves no body undefined; a body-less POST means "all defaults".
  return req.body === undefined ? {} : req.body;
}

type Param = string | string[] | undefined;

function terminalIdOf(param: Param): number {
  const value = typeof param === 'string' ? param : undefined;
  if (value === undefined || !/^\d{1,6}$/.test(value))
    throw new MdockerError('NOT_FOUND', `no such terminal: ${String(value).slice(0, 16)}`);
  return Number(value);
}

function idOf(param: Param): string {
  return typeof param === 'string' ? param : '';
}

/**
 * POST, PUT and PATCH bodies must be JSON: a form or text/plain body is what a cross-site
 * <form> can send without a CORS preflight.
 */
export function requireJsonBody(): RequestHandler {
  return (req, _res, next) => {
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (!hasBody || !['POST', 'PUT', 'PATCH'].includes(req.method)) return next();
    if (!req.is('application/json')) {
      return next(new MdockerError('INVALID_ARGUMENT', 'expected a JSON body (Content-Type: application/json)'));
    }
    next();
  };
}

export function limiter(
  options: Partial<RateLimitOptions> & { what: string; limit: number; windowMs: number },
): RequestHandler {
  const { what, ...rest } = options;
  return rateLimit({
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    ...rest,
    handler: (_req, _res, next, used) => {
      const seconds = Math.ceil(used.windowMs / 1000);
      next(
        new MdockerError(
          'RATE_LIMITED',
          `too many ${what}: at most ${String(used.limit)} per ${seconds} s, try again shortly`,
          {
            limit: used.limit,
            windowMs: used.windowMs,
          },
        ),
      );
    },
  });
}

export function apiRouter(options: RoutesOptions): Router {
  const { config, playground } = options;
  const { classes } = options.classroom;
  /**
   * The session a read acts as: the caller's own, or for the teacher the student's whose
   * container it is (the teacher reads, never writes, through these routes).
   */
  const readerOf = (req: Request, id: string): string => {
    if (playground.ownerOf(id) === req.sessionId) return req.sessionId;
    const student = classes.studentContainerOwner(id);
    const teacher = hasValidToken(req, config) && !classes.isStudent(req.sessionId);
    return student !== null && teacher ? student : req.sessionId;
  };
  const catalog = options.images;
  /** The token's holder, unless the session is a student (a student stays one). */
  const isTeacher = (req: Request): boolean => hasValidToken(req, config) && !classes.isStudent(req.sessionId);
  const viewerOf = (req: Request): Viewer => ({
    sessionId: req.sessionId,
    teacher: isTeacher(req),
    classImage: playground.classImage(req.sessionId),
  });
  const router = Router();

  router.use(
    limiter({ what: 'requests from your address', limit: config.apiRatePerIp, windowMs: config.rateWindowMs }),
  );
  // Before the JSON-only rule: an upload's body is the file's raw bytes.
  router.use(fileRouter({ config, playground, readerOf }));
  router.use(requireJsonBody());
  const lessons = options.lessons;
  router.use(
    classRouter({
      ...options.classroom,
      config,
      playground,
      images: (req) => catalog.list(viewerOf(req)),
      ...(lessons ? { lessons: () => lessons.ids() } : {}),
    }),
  );
  if (lessons) router.use(lessonRouter({ playground, lessons }));

  const createPerSession = limiter({
    what: 'containers created by this session',
    limit: config.createRatePerSession,
    windowMs: config.rateWindowMs,
    keyGenerator: (req) => `session:${req.sessionId}`,
  });
  const createPerIp = limiter({
    what: 'containers created from your address',
    limit: config.createRatePerIp,
    windowMs: config.rateWindowMs,
  });
  const spawnPerSession = limiter({
    what: 'terminals and execs started by this session',
    limit: config.spawnRatePerSession,
    windowMs: config.rateWindowMs,
    keyGenerator: (req) => `session:${req.sessionId}`,
  });

  router.post('/containers', createPerSession, createPerIp, async (req, res) => {
    const input = validateInput(createContainerSchema, body(req));
    const limits = parseLimits({ memory: input.memory, cpus: input.cpus, pidsLimit: input.pidsLimit });
    const container = await playground.create(req.sessionId, {
      ...(input.image === undefined ? {} : { image: input.image }),
      ...(input.hostname === undefined ? {} : { hostname: input.hostname }),
      ...(input.cmd === undefined ? {} : { cmd: input.cmd }),
      ...(input.lesson === undefined ? {} : { lesson: input.lesson }),
      limits,
      ...(req.ip === undefined ? {} : { clientAddress: req.ip }),
    });
    res.status(201).json(container);
  });

  router.get('/containers', (req, res) => {
    res.json(playground.list(req.sessionId));
  });

  router.get('/containers/:id', (req, res) => {
    res.json(playground.get(readerOf(req, idOf(req.params.id)), idOf(req.params.id)));
  });

  router.patch('/containers/:id', async (req, res) => {
    const limits = validateInput(limitsUpdateSchema, body(req));
    res.json(await playground.update(req.sessionId, idOf(req.params.id), limits));
  });

  router.delete('/containers/:id', async (req, res) => {
    validateInput(emptySchema, body(req));
    await playground.remove(req.sessionId, idOf(req.params.id));
    res.status(204).end();
  });

  router.post('/containers/:id/terminals', spawnPerSession, async (req, res) => {
    const input = validateInput(createTerminalSchema, body(req));
    res.status(201).json(await playground.openTerminal(req.sessionId, idOf(req.params.id), input));
  });

  router.get('/containers/:id/terminals', (req, res) => {
    res.json(playground.listTerminals(readerOf(req, idOf(req.params.id)), idOf(req.params.id)));
  });

  router.delete('/containers/:id/terminals/:tid', (req, res) => {
    validateInput(emptySchema, body(req));
    playground.closeTerminal(req.sessionId, idOf(req.params.id), terminalIdOf(req.params.tid));
    res.status(204).end();
  });

  router.get('/containers/:id/terminals/:tid/cwd', async (req, res) => {
    const id = idOf(req.params.id);
    res.json({
      cwd: await playground.terminalCwd(req.sessionId, id, terminalIdOf(req.params.tid)),
    } satisfies TerminalCwdJson);
  });

  router.post('/containers/:id/exec', spawnPerSession, async (req, res) => {
    const input = validateInput(execSchema, body(req));
    res.json(
      await playground.exec(req.sessionId, idOf(req.params.id), {
        ...input,
        ...(req.ip === undefined ? {} : { clientAddress: req.ip }),
      }),
    );
  });

  router.get('/containers/:id/inspect', async (req, res) => {
    res.json(await playground.inspect(readerOf(req, idOf(req.params.id)), idOf(req.params.id)));
  });

  router.get('/containers/:id/stats', (req, res) => {
    res.json(playground.statsHistory(readerOf(req, idOf(req.params.id)), idOf(req.params.id)));
  });

  const previews = options.previews;
  if (previews) {
    router.get('/containers/:id/ports', async (req, res) => {
      const id = idOf(req.params.id);
      const reader = readerOf(req, id);
      playground.get(reader, id);
      res.json(previews.ports(reader, id));
    });
  }

  router.get('/images', async (req, res) => {
    res.json(await catalog.list(viewerOf(req)));
  });

  const teacherOnly = (req: Request, what: string): void => {
    if (!isTeacher(req)) throw new MdockerError('FORBIDDEN', `only the teacher (the token's holder) may ${what}`);
  };

  router.post('/images', async (req, res) => {
    teacherOnly(req, 'pull images');
    const input = validateInput(pullImageSchema, body(req));
    const pull: ImagePullJson = await catalog.pull(input.reference, PULL_FAIL_FAST_MS);
    res.status(pull.state === 'done' ? 200 : 202).json(pull);
  });

  router.get('/images/pulls/:id', (req, res) => {
    teacherOnly(req, 'follow pulls');
    res.json(catalog.pullJson(idOf(req.params.id)));
  });

  router.delete('/images/:name', async (req, res) => {
    validateInput(emptySchema, body(req));
    await catalog.removeSaved(req.sessionId, idOf(req.params.name));
    res.status(204).end();
  });

  router.post('/containers/:id/save', spawnPerSession, async (req, res) => {
    validateInput(emptySchema, body(req));
    const id = idOf(req.params.id);
    // Its owner only (another's, a teacher's look included, is NOT_FOUND).
    playground.get(req.sessionId, id);
    res.status(201).json(await catalog.save(req.sessionId, id));
  });

  return router;
}
