/**
 * The classroom's REST routes: who am I, joining a class, the teacher's class routes
 * (404 to anyone else, as other sessions' containers are), and terminal recordings.
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Router, type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import { MdockerError } from '../runtime/errors.js';
import { imageNameSchema, validateInput } from '../runtime/spec.js';
import { parseCpus, parseLimits, parseMemoryBytes } from '../runtime/units.js';
import { resolveCreateLimits } from '../playground/caps.js';
import type { Classes } from '../playground/classes.js';
import { recordingOwnerKey, type Playground } from '../playground/playground.js';
import type { Recordings } from '../playground/recording.js';
import type { BroadcastJson, ClassJson, ImageJson, JoinJson, RecordingJson } from '../protocol/index.js';
import { hasValidToken } from './auth.js';
import type { ServeConfig } from './config.js';
import { limiter } from './routes.js';
import type { SessionKeeper } from './sessions.js';

type ClassRoutesConfig = Pick<
  ServeConfig,
  'token' | 'allowedHosts' | 'rateWindowMs' | 'joinRatePerIp' | 'maxContainersPerSession' | 'defaultImage'
> &
  Parameters<typeof resolveCreateLimits>[0];

export interface ClassRoutesOptions {
  config: ClassRoutesConfig;
  playground: Playground;
  classes: Classes;
  sessions: SessionKeeper;
  recordings: Recordings | null;
  /** what the caller may start (GET /api/images) */
  images: (req: Request) => Promise<ImageJson[]>;
  /** the lessons installed (lessons/): a class may name one of them */
  lessons?: () => string[];
}

/**
 * Text a person reads on someone else's screen: no control characters (but newlines in a
 * message of several lines), no invisible formatting (a right-to-left override would let
 * a name disguise another one).
 */
function textSchema(what: string, max: number, lines: 'one line' | 'lines' = 'one line') {
  const forbidden = lines === 'lines' ? /[\p{Cf}\p{Zl}\p{Zp}]|[^\P{Cc}\n]/u : /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
  return z
    .string()
    .transform((text) => text.normalize('NFC').trim())
    .pipe(
      z
        .string()
        .min(1, `${what} must not be empty`)
        .max(max, `${what} must be at most ${max} characters`)
        .refine(
          (text) => !forbidden.test(text),
          `${what} must be plain text${lines === 'one line' ? ' on one line' : ''}`,
        ),
    );
}

const limitValueSchema = z.union([z.string().max(64), z.number()]);

const createClassSchema = z
  .object({
    name: textSchema('the class name', 80),
    limits: z
      .object({
        memory: limitValueSchema.optional(),
        cpus: limitValueSchema.optional(),
        pidsLimit: limitValueSchema.optional(),
      })
      .strict()
      .optional(),
    maxContainersPerStudent: z.number().int().min(1).max(100).optional(),
    image: imageNameSchema.optional(),
    lesson: z.string().max(64).optional(),
    budget: z.object({ memory: limitValueSchema.optional(), cpus: limitValueSchema.optional() }).strict().optional(),
    network: z.enum(['per-student', 'class']).optional(),
  })
  .strict();

const joinSchema = z
  .object({
    code: z.string().max(64, 'invalid join code'),
    name: textSchema('your name', 40),
  })
  .strict();

const broadcastSchema = z
  .object({
    message: textSchema('the message', 1000, 'lines'),
    command: textSchema('the command', 500).optional(),
  })
  .strict();

const emptySchema = z.object({}).strict();

function body(req: { body?: unknown }): unknown {
  return req.body === undefined ? {} : req.body;
}

function param(value: string | string[] | undefined): string {
  return typeof value === 'string' ? value : '';
}

function terminalIdOf(value: string | string[] | undefined): number {
  const text = param(value);
  if (!/^\d{1,6}$/.test(text)) throw new MdockerError('NOT_FOUND', `no such terminal: ${text.slice(0, 16)}`);
  return Number(text);
}

export function classRouter(options: ClassRoutesOptions): Router {
  const { config, playground, classes, sessions, recordings, images } = options;
  const lessons = options.lessons ?? (() => []);
  const router = Router();

  /** The token's holder, unless the session is a student (a student stays one). */
  const isTeacher = (req: Request): boolean => hasValidToken(req, config) && !classes.isStudent(req.sessionId);
  // Teacher routes do not exist for anyone else: 404, never 403 (no oracle).
  const teacherOnly: RequestHandler = (req, _res, next) => {
    if (isTeacher(req)) return next();
    next(new MdockerError('NOT_FOUND', `no route ${req.method} ${req.originalUrl.split('?')[0]!.slice(0, 100)}`));
  };

  router.get('/me', (req, res) => {
    res.json(classes.me(req.sessionId, isTeacher(req)));
  });

  // Every failed attempt counts; a class joining together from behind one NAT does not.
  const joinLimit = limiter({
    what: 'failed join attempts from your address',
    limit: config.joinRatePerIp,
    windowMs: config.rateWindowMs,
    skipSuccessfulRequests: true,
  });
  router.post('/join', joinLimit, (req, res) => {
    const input = validateInput(joinSchema, body(req));
    // A role change gets a fresh session: a cookie someone planted or saw before the join
    // never becomes the student's (session fixation).
    const { id, cookieValue } = sessions.issue();
    const student = classes.join(input.code, input.name, id);
    replaceSessionCookie(res, sessions.setCookieHeader(cookieValue, req.secure));
    const joined: JoinJson = { role: 'student', student };
    res.status(201).json(joined);
  });

  router.post('/classes', teacherOnly, async (req, res) => {
    const input = validateInput(createClassSchema, body(req));
    const limits = resolveCreateLimits(config, parseLimits(input.limits ?? {}));
    const image = input.image ?? config.defaultImage;
    if (!(await images(req)).some((known) => known.name === image)) {
      throw new MdockerError('INVALID_ARGUMENT', `no such image: ${image}`, { image });
    }
    if (input.lesson !== undefined && !lessons().includes(input.lesson)) {
      throw new MdockerError('INVALID_ARGUMENT', `no such lesson: ${input.lesson.slice(0, 64)}`);
    }
    const budget = {
      memoryBytes: input.budget?.memory === undefined ? null : parseMemoryBytes(input.budget.memory),
      cpus: input.budget?.cpus === undefined ? null : parseCpus(input.budget.cpus),
    };
    const created: ClassJson = await classes.create({
      name: input.name,
      limits,
      maxContainersPerStudent: Math.min(input.maxContainersPerStudent ?? 1, config.maxContainersPerSession),
      image,
      lesson: input.lesson ?? null,
      budget,
      network: input.network ?? 'per-student',
    });
    res.status(201).json(created);
  });

  router.get('/classes', teacherOnly, (_req, res) => {
    res.json(classes.list());
  });

  router.get('/classes/:id', teacherOnly, (req, res) => {
    res.json(classes.get(param(req.params.id)));
  });

  router.delete('/classes/:id', teacherOnly, async (req, res) => {
    validateInput(emptySchema, body(req));
    await classes.end(param(req.params.id));
    res.status(204).end();
  });

  router.post('/classes/:id/code', teacherOnly, (req, res) => {
    validateInput(emptySchema, body(req));
    res.json(classes.rotateCode(param(req.params.id)));
  });

  router.post('/classes/:id/broadcast', teacherOnly, (req, res) => {
    const input = validateInput(broadcastSchema, body(req));
    const broadcast: BroadcastJson = classes.broadcast(param(req.params.id), input);
    res.status(201).json(broadcast);
  });

  router.post('/classes/:id/students/:sid/reset', teacherOnly, async (req, res) => {
    validateInput(emptySchema, body(req));
    res.json(await classes.reset(param(req.params.id), param(req.params.sid)));
  });

  router.delete('/classes/:id/students/:sid', teacherOnly, async (req, res) => {
    validateInput(emptySchema, body(req));
    await classes.removeStudent(param(req.params.id), param(req.params.sid));
    res.status(204).end();
  });

  router.get('/classes/:id/recordings', teacherOnly, (req, res) => {
    const list: RecordingJson[] = classes.recordings(param(req.params.id)).map(({ owner, ...recording }) => ({
      ...recording,
      studentId: owner.studentId,
    }));
    res.json(list);
  });

  /** The container's recordings, if the caller may read them: its owner, or the teacher of its class. */
  const readable = (req: Request, containerId: string): ReturnType<Recordings['list']> => {
    const kept = recordings?.list(containerId) ?? [];
    const owner = kept[0]?.owner;
    const mine =
      playground.ownerOf(containerId) === req.sessionId ||
      (owner !== undefined && owner.sessionId === recordingOwnerKey(req.sessionId));
    if (kept.length > 0 && (mine || (owner !== undefined && isTeacher(req) && classes.teacherMayRead(owner)))) {
      return kept;
    }
    throw new MdockerError('NOT_FOUND', `no recording of container ${containerId.slice(0, 64)}`);
  };

  router.get('/containers/:id/terminals/:tid/recording', async (req, res) => {
    const containerId = param(req.params.id);
    const terminalId = terminalIdOf(req.params.tid);
    readable(req, containerId);
    const path = await recordings?.castPath(containerId, terminalId);
    if (!path) throw new MdockerError('NOT_FOUND', `no recording of terminal ${terminalId}`);
    res.setHeader('Content-Type', 'application/x-asciicast');
    res.setHeader(
      'Content-Disposition',
      `attachment; filename="mdocker-${containerId.slice(0, 12)}-${terminalId}.cast"`,
    );
    res.setHeader('Cache-Control', 'no-store');
    await pipeline(createReadStream(path), res);
  });

  router.get('/containers/:id/recording-stats', async (req, res) => {
    const containerId = param(req.params.id);
    readable(req, containerId);
    res.json({ containerId, samples: (await recordings?.readStats(containerId)) ?? [] });
  });

  return router;
}

/** Drops a session cookie set earlier in this response (the middleware's), then sets this one. */
function replaceSessionCookie(
  res: { getHeader(name: string): unknown; setHeader(name: string, value: string[]): unknown },
  cookie: string,
): void {
  const name = cookie.slice(0, cookie.indexOf('='));
  const existing = res.getHeader('Set-Cookie');
  const kept = (Array.isArray(existing) ? (existing as string[]) : existing ? [String(existing)] : []).filter(
    (header) => !header.startsWith(`${name}=`),
  );
  res.setHeader('Set-Cookie', [...kept, cookie]);
}
