/**
 * Lessons at run time: the catalog, each lesson container's progress, and when its checks
 * run: kernel checks on every stats sample, script checks once the terminal has been
 * quiet a moment (at most a few rounds a minute) and on "Check now". Progress goes to the
 * session's stats stream (and from there to the teacher's board).
 */
import type { Logger } from 'pino';
import type { ContainerLessonJson, LessonJson, LessonProgressJson, StatsSample } from '../../protocol/index.js';
import { MdockerError } from '../../runtime/errors.js';
import { isAlive, listeningTcpPorts, readFileInRoot, utsHostname } from '../../runtime/native.js';
import type { LessonContainerSettings, ObservedContainer, Playground } from '../playground.js';
import { evaluateCheck, isScriptCheck, type CheckTarget, type ProcAccess } from './checks.js';
import type { Lesson } from './loader.js';
import type { Limits } from '../../runtime/units.js';

/** Script checks wait for this much terminal silence: the command the student typed has answered. */
export const QUIET_MS = 500;
/** Rounds of script checks per container per minute (the quiet trigger and "Check now" together). */
export const SCRIPT_ROUNDS_PER_MINUTE = 20;

export const REAL_PROC: ProcAccess = { procRoot: '/proc', isAlive, utsHostname, readFileInRoot, listeningTcpPorts };

interface Tracked {
  container: ObservedContainer;
  lesson: Lesson;
  startedAtMs: number;
  /** the limits it was created with (a limit-changed check compares) */
  createdLimits: Limits;
  /** per step, per check: it held once (an event cannot un-happen) */
  held: boolean[][];
  doneAtMs: (number | null)[];
  sample: StatsSample | null;
  kernelRound: Promise<void> | null;
  scriptRound: Promise<void> | null;
  lastOutputAtMs: number;
  quietTimer: NodeJS.Timeout | null;
  scriptRoundsAtMs: number[];
  removed: boolean;
}

export interface LessonsOptions {
  catalog: ReadonlyMap<string, Lesson>;
  logger: Logger;
  access?: ProcAccess;
  quietMs?: number;
  scriptRoundsPerMinute?: number;
}

/** The first step not done, and since when the student has been on it. */
export function progressOf(
  lessonId: string,
  doneAtMs: readonly (number | null)[],
  startedAtMs: number,
): LessonProgressJson {
  let step = doneAtMs.findIndex((at) => at === null);
  if (step < 0) step = doneAtMs.length;
  const before = doneAtMs.slice(0, step).filter((at): at is number => at !== null);
  return {
    lesson: lessonId,
    step,
    steps: doneAtMs.length,
    stepSince: new Date(Math.max(startedAtMs, ...before)).toISOString(),
    done: step === doneAtMs.length,
  };
}

export class Lessons {
  readonly #catalog: ReadonlyMap<string, Lesson>;
  readonly #logger: Logger;
  readonly #access: ProcAccess;
  readonly #quietMs: number;
  readonly #roundsPerMinute: number;
  readonly #tracked = new Map<string, Tracked>();
  #playground: Playground | null = null;

  constructor(options: LessonsOptions) {
    this.#catalog = options.catalog;
    this.#logger = options.logger;
    this.#access = options.access ?? REAL_PROC;
    this.#quietMs = options.quietMs ?? QUIET_MS;
    this.#roundsPerMinute = options.scriptRoundsPerMinute ?? SCRIPT_ROUNDS_PER_MINUTE;
  }

  /** Follows the playground's containers that have a lesson. */
  attach(playground: Playground): void {
    this.#playground = playground;
    playground.setLessons((id) => this.containerSettings(id));
    playground.observe({
      message: (_sessionId, message) => {
        if (message.type === 'sample') this.onSample(message.containerId, message.sample);
      },
      input: () => undefined,
      connection: () => undefined,
      started: (container) => this.onStarted(container),
      output: (_sessionId, containerId) => this.onOutput(containerId),
      removed: (_sessionId, containerId) => this.onRemoved(containerId),
    });
  }

  /** The lessons a user may pick, in the catalog's order (hidden ones are not). */
  list(): LessonJson[] {
    return [...this.#catalog.values()]
      .filter((lesson) => !lesson.hidden)
      .map((lesson) => ({
        id: lesson.id,
        title: lesson.title,
        description: lesson.description,
        steps: lesson.steps.map((step) => ({ id: step.id, title: step.title })),
      }));
  }

  ids(): string[] {
    return this.list().map((lesson) => lesson.id);
  }

  /** What a lesson's container gets; NOT_FOUND-like INVALID_ARGUMENT for an unknown or hidden id. */
  containerSettings(id: string): LessonContainerSettings {
    const lesson = this.#catalog.get(id);
    if (!lesson || lesson.hidden) throw new MdockerError('INVALID_ARGUMENT', `no such lesson: ${id.slice(0, 64)}`);
    return {
      image: lesson.container.image,
      limits: { ...lesson.container.limits },
      capAdd: [...lesson.container.capabilities],
      seccomp: lesson.container.seccomp,
    };
  }

  /** The container's lesson and progress, or null when it has none. */
  state(containerId: string): ContainerLessonJson | null {
    const tracked = this.#tracked.get(containerId);
    return tracked ? this.#toJson(tracked) : null;
  }

  /** Runs every check of the steps not done yet, scripts included (within the per-minute rounds). */
  async checkNow(containerId: string): Promise<ContainerLessonJson> {
    const tracked = this.#tracked.get(containerId);
    if (!tracked) throw new MdockerError('NOT_FOUND', 'this container has no lesson');
    await this.#kernelRound(tracked);
    if (this.#hasPendingScripts(tracked)) {
      if (!this.#takeScriptRound(tracked)) {
        throw new MdockerError(
          'RATE_LIMITED',
          `checks ran ${this.#roundsPerMinute} times in the last minute: try again shortly`,
        );
      }
      await this.#scriptRound(tracked, true);
    }
    return this.#toJson(tracked);
  }

  onStarted(container: ObservedContainer): void {
    if (container.lesson === null) return;
    const lesson = this.#catalog.get(container.lesson);
    if (!lesson) return;
    const tracked: Tracked = {
      container,
      lesson,
      startedAtMs: Date.now(),
      createdLimits: container.limits(),
      held: lesson.steps.map((step) => step.checks.map(() => false)),
      doneAtMs: lesson.steps.map(() => null),
      sample: null,
      kernelRound: null,
      scriptRound: null,
      lastOutputAtMs: 0,
      quietTimer: null,
      scriptRoundsAtMs: [],
      removed: false,
    };
    this.#tracked.set(container.id, tracked);
    this.#publish(tracked);
  }

  onSample(containerId: string, sample: StatsSample): void {
    const tracked = this.#tracked.get(containerId);
    if (!tracked) return;
    tracked.sample = sample;
    // A round still reading /proc makes this sample's round skip; the next sample comes soon.
    if (tracked.kernelRound === null) void this.#kernelRound(tracked);
  }

  /** Terminal output: script checks run once it has stopped for QUIET_MS. */
  onOutput(containerId: string): void {
    const tracked = this.#tracked.get(containerId);
    if (!tracked) return;
    tracked.lastOutputAtMs = Date.now();
    if (tracked.quietTimer === null) this.#armQuietTimer(tracked, this.#quietMs);
  }

  onRemoved(containerId: string): void {
    const tracked = this.#tracked.get(containerId);
    if (!tracked) return;
    tracked.removed = true;
    if (tracked.quietTimer !== null) clearTimeout(tracked.quietTimer);
    tracked.quietTimer = null;
    this.#tracked.delete(containerId);
  }

  /** Stops every timer (the server is stopping). */
  close(): void {
    for (const id of [...this.#tracked.keys()]) this.onRemoved(id);
  }

  #armQuietTimer(tracked: Tracked, delayMs: number): void {
    tracked.quietTimer = setTimeout(() => {
      tracked.quietTimer = null;
      if (tracked.removed) return;
      const quietForMs = Date.now() - tracked.lastOutputAtMs;
      if (quietForMs < this.#quietMs) return this.#armQuietTimer(tracked, this.#quietMs - quietForMs);
      if (!this.#hasPendingScripts(tracked) || !this.#takeScriptRound(tracked)) return;
      void this.#scriptRound(tracked, false);
    }, delayMs);
    tracked.quietTimer.unref();
  }

  #takeScriptRound(tracked: Tracked): boolean {
    const now = Date.now();
    tracked.scriptRoundsAtMs = tracked.scriptRoundsAtMs.filter((at) => now - at < 60_000);
    if (tracked.scriptRoundsAtMs.length >= this.#roundsPerMinute) return false;
    tracked.scriptRoundsAtMs.push(now);
    return true;
  }

  #hasPendingScripts(tracked: Tracked): boolean {
    return tracked.lesson.steps.some(
      (step, s) =>
        tracked.doneAtMs[s] === null && step.checks.some((check, c) => isScriptCheck(check) && !tracked.held[s]![c]),
    );
  }

  #target(tracked: Tracked): CheckTarget {
    const { container } = tracked;
    return {
      containerId: container.id,
      init: container.init,
      startHostname: container.hostname,
      createdLimits: tracked.createdLimits,
      limits: () => container.limits(),
      sample: tracked.sample,
      baseline: { pidsLimitHits: 0, oomKills: 0, cpuThrottledPeriods: 0 },
      procs: () => container.procs(),
      exec: (cmd, timeoutMs) => container.exec(cmd, timeoutMs),
    };
  }

  #kernelRound(tracked: Tracked): Promise<void> {
    tracked.kernelRound ??= this.#evaluate(tracked, 'kernel').finally(() => {
      tracked.kernelRound = null;
    });
    return tracked.kernelRound;
  }

  /** One round of script checks at a time per container; a forced one waits for the running one. */
  async #scriptRound(tracked: Tracked, force: boolean): Promise<void> {
    if (tracked.scriptRound !== null) {
      if (!force) return;
      await tracked.scriptRound;
    }
    tracked.scriptRound = this.#evaluate(tracked, 'script').finally(() => {
      tracked.scriptRound = null;
    });
    await tracked.scriptRound;
  }

  async #evaluate(tracked: Tracked, which: 'kernel' | 'script'): Promise<void> {
    const target = this.#target(tracked);
    let changed = false;
    const steps = tracked.lesson.steps;
    for (let s = 0; s < steps.length; s++) {
      if (tracked.doneAtMs[s] !== null) continue;
      const checks = steps[s]!.checks;
      for (let c = 0; c < checks.length; c++) {
        const check = checks[c]!;
        if (tracked.held[s]![c] || isScriptCheck(check) !== (which === 'script')) continue;
        if (tracked.removed) return;
        if (await evaluateCheck(check, target, this.#access)) tracked.held[s]![c] = true;
      }
      if (tracked.held[s]!.every(Boolean) && tracked.doneAtMs[s] === null && !tracked.removed) {
        tracked.doneAtMs[s] = Date.now();
        changed = true;
        this.#logger.info(
          {
            event: 'lesson.step-done',
            containerId: tracked.container.id,
            lesson: tracked.lesson.id,
            step: steps[s]!.id,
          },
          'lesson step done',
        );
      }
    }
    if (changed) this.#publish(tracked);
  }

  #publish(tracked: Tracked): void {
    if (tracked.removed) return;
    this.#playground?.tell(tracked.container.sessionId, {
      type: 'lesson',
      containerId: tracked.container.id,
      lesson: this.#toJson(tracked),
    });
  }

  #toJson(tracked: Tracked): ContainerLessonJson {
    const { lesson } = tracked;
    const progress = progressOf(lesson.id, tracked.doneAtMs, tracked.startedAtMs);
    return {
      lesson: lesson.id,
      title: lesson.title,
      description: lesson.description,
      containerId: tracked.container.id,
      steps: lesson.steps.map((step, s) => {
        const doneAt = tracked.doneAtMs[s] ?? null;
        return {
          id: step.id,
          title: step.title,
          done: doneAt !== null,
          doneAt: doneAt === null ? null : new Date(doneAt).toISOString(),
          text: step.text,
        };
      }),
      current: progress.step,
      progress,
    };
  }
}
