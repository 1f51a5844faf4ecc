/**
 * The lessons' REST routes: the catalog, a container's lesson and progress, and "Check
 * now". A container's lesson is its owner's only, as the container is (404 otherwise).
 */
import { Router } from 'express';
import { z } from 'zod';
import { MdockerError } from '../runtime/errors.js';
import { validateInput } from '../runtime/spec.js';
import type { Lessons } from '../playground/lessons/engine.js';
import type { Playground } from '../playground/playground.js';
import type { ContainerLessonJson, LessonJson } from '../protocol/index.js';

export interface LessonRoutesOptions {
  playground: Playground;
  lessons: Lessons;
}

const emptySchema = z.object({}).strict();

function idOf(param: string | string[] | undefined): string {
  return typeof param === 'string' ? param : '';
}

export function lessonRouter(options: LessonRoutesOptions): Router {
  const { playground, lessons } = options;
  const router = Router();

  /** The caller's container's lesson: 404 for another session's container or one without a lesson. */
  const own = (sessionId: string, id: string): ContainerLessonJson => {
    playground.get(sessionId, id);
    const state = lessons.state(id);
    if (state === null) throw new MdockerError('NOT_FOUND', `container ${id.slice(0, 12)} has no lesson`);
    return state;
  };

  router.get('/lessons', (_req, res) => {
    const list: LessonJson[] = lessons.list();
    res.json(list);
  });

  router.get('/containers/:id/lesson', (req, res) => {
    res.json(own(req.sessionId, idOf(req.params.id)));
  });

  router.post('/containers/:id/lesson/check', async (req, res) => {
    validateInput(emptySchema, req.body === undefined ? {} : req.body);
    const id = idOf(req.params.id);
    own(req.sessionId, id);
    const state: ContainerLessonJson = await lessons.checkNow(id);
    res.json(state);
  });

  return router;
}
