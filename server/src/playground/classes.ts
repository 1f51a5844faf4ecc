/**
 * Classes: a teacher's room of students. Join codes, students (sessions with a display
 * name), each class's policy for its students' containers and its cgroup budget,
 * broadcasts, and the teacher's live view: events and, at most once a second per
 * student, the text of the terminal they work in.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { MdockerError } from '../runtime/errors.js';
import type { Limits } from '../runtime/units.js';
import type {
  BroadcastJson,
  ClassBudgetJson,
  ClassEventMessage,
  ClassJson,
  ClassNetworkMode,
  ContainerJson,
  LessonProgressJson,
  MeJson,
  StatsServerMessage,
  StudentJson,
  StudentSelfJson,
} from '../protocol/index.js';
import type { Playground, SessionPolicy } from './playground.js';
import type { RecordingOwner, Recordings } from './recording.js';
import type { AttachRole, TerminalAttachment, TerminalSink } from './terminals.js';

/** Unambiguous when read aloud or off a projector: no 0/O, 1/I/L. */
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
/** 12 symbols of 31: 59 bits, against a guesser held to a few tries a minute. */
export const JOIN_CODE_LENGTH = 12;
/** Broadcasts kept per class (a reloading student page shows them again). */
const MAX_BROADCASTS = 50;
const SCREEN_PERIOD_MS = 1000;
/** A student's "typed" event goes to the teacher at most this often. */
const INPUT_EVENT_PERIOD_MS = 1000;

/** The runtime's class cgroups (runtime/containers.ts). */
export interface ClassGroups {
  createGroup(name: string, budget: { memoryBytes: number | null; cpus: number | null }): Promise<void>;
  removeGroup(name: string): Promise<void>;
}

export interface ClassesConfig {
  maxClasses: number;
  maxStudentsPerClass: number;
  recordingRetentionMs: number;
}

export interface ClassesOptions {
  playground: Playground;
  groups: ClassGroups;
  config: ClassesConfig;
  logger: Logger;
  recordings?: Recordings;
  /** this node's id in a cluster: the join link names it, so HAProxy sends students to
   * the node that holds their class */
  node?: string;
}

/** A validated POST /api/classes, limits resolved against the server's caps. */
export interface ClassSettings {
  name: string;
  limits: Limits;
  maxContainersPerStudent: number;
  image: string;
  lesson: string | null;
  budget: ClassBudgetJson;
  network: ClassNetworkMode;
}

/** A teacher's event socket. */
export interface ClassSubscriber {
  send(message: ClassEventMessage): void;
  close(): void;
}

interface Student {
  id: string;
  name: string;
  sessionId: string;
  classId: string;
  joinedAtMs: number;
  lastInputAtMs: number | null;
  lastInputToldAtMs: number;
  /** what the teacher's miniature last showed: container, terminal and output count */
  screenKey: string;
  /** the lesson's progress in the student's newest lesson container */
  progress: LessonProgressJson | null;
  progressContainer: string | null;
}

interface ClassState {
  id: string;
  settings: ClassSettings;
  joinCode: string;
  createdAtMs: number;
  endedAtMs: number | null;
  /** the runtime group its containers go in; null once removed */
  group: string | null;
  /** the network every student's containers join ('class'); null: each student's own, or removed */
  network: string | null;
  students: Map<string, Student>;
  broadcasts: BroadcastJson[];
  nextBroadcastId: number;
  subscribers: Set<ClassSubscriber>;
  ending: Promise<void> | null;
}

function newCode(): string {
  let code = '';
  for (let i = 0; i < JOIN_CODE_LENGTH; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return code;
}

/** What a person types: case and separators do not matter ("abcd-efgh-jkmn"). */
export function normalizeJoinCode(input: string): string {
  return input.toUpperCase().replace(/[\s-]/g, '');
}

function noSuchClass(id: string): MdockerError {
  return new MdockerError('NOT_FOUND', `no such class: ${id.slice(0, 64)}`);
}

export class Classes {
  readonly #playground: Playground;
  readonly #groups: ClassGroups;
  readonly #config: ClassesConfig;
  readonly #logger: Logger;
  readonly #recordings: Recordings | null;
  readonly #node: string | undefined;
  readonly #classes = new Map<string, ClassState>();
  readonly #byCode = new Map<string, string>();
  readonly #bySession = new Map<string, Student>();
  #ticker: NodeJS.Timeout | null = null;

  constructor(options: ClassesOptions) {
    this.#playground = options.playground;
    this.#groups = options.groups;
    this.#config = options.config;
    this.#logger = options.logger;
    this.#recordings = options.recordings ?? null;
    this.#node = options.node;
    this.#playground.setPolicy((sessionId) => this.#policyFor(sessionId));
    this.#playground.observe({
      message: (sessionId, message) => this.#onMessage(sessionId, message),
      input: (sessionId) => this.#onInput(sessionId),
      connection: (sessionId) => this.#onConnection(sessionId),
    });
  }

  // ---- the teacher ----

  async create(settings: ClassSettings): Promise<ClassJson> {
    const open = [...this.#classes.values()].filter((state) => state.endedAtMs === null).length;
    if (open >= this.#config.maxClasses) {
      throw new MdockerError(
        'LIMIT_EXCEEDED',
        `${open} classes are open, the most allowed (this server's cap, --max-classes ${this.#config.maxClasses}): end one first`,
        { cap: 'classes', limit: this.#config.maxClasses },
      );
    }
    const id = randomBytes(8).toString('hex');
    const group = `class-${id}`;
    await this.#groups.createGroup(group, settings.budget);
    let network: string | null = null;
    if (settings.network === 'class') {
      try {
        network = await this.#playground.createNetwork(`class-${id}`);
      } catch (err) {
        await this.#groups.removeGroup(group).catch(() => undefined);
        throw err;
      }
    }
    const state: ClassState = {
      id,
      settings,
      joinCode: this.#uniqueCode(),
      createdAtMs: Date.now(),
      endedAtMs: null,
      group,
      network,
      students: new Map(),
      broadcasts: [],
      nextBroadcastId: 1,
      subscribers: new Set(),
      ending: null,
    };
    this.#classes.set(id, state);
    this.#byCode.set(state.joinCode, id);
    this.#logger.info(
      { event: 'class.created', classId: id, limits: settings.limits, budget: settings.budget },
      'class created',
    );
    return this.#toJson(state);
  }

  list(): ClassJson[] {
    return [...this.#classes.values()]
      .sort((a, b) => a.createdAtMs - b.createdAtMs)
      .map((state) => this.#toJson(state));
  }

  get(id: string): ClassJson {
    return this.#toJson(this.#class(id));
  }

  /** A new join code; the old one stops working at once. Students already in stay. */
  rotateCode(id: string): ClassJson {
    const state = this.#openClass(id);
    this.#byCode.delete(state.joinCode);
    state.joinCode = this.#uniqueCode();
    this.#byCode.set(state.joinCode, id);
    this.#logger.info({ event: 'class.code-rotated', classId: id }, 'join code rotated');
    return this.#toJson(state);
  }

  /**
   * Ends the class: no more joins, every student container removed (each student told
   * why), the class's cgroup removed, its recordings kept for the retention time.
   */
  end(id: string, reason = 'the teacher ended the class'): Promise<void> {
    const state = this.#class(id);
    state.ending ??= this.#end(state, reason);
    return state.ending;
  }

  async #end(state: ClassState, reason: string): Promise<void> {
    state.endedAtMs = Date.now();
    this.#byCode.delete(state.joinCode);
    for (const student of state.students.values()) {
      this.#playground.tell(student.sessionId, { type: 'class-ended', classId: state.id, reason });
    }
    const removals = await Promise.allSettled(
      [...state.students.values()].map((student) => this.#playground.removeAll(student.sessionId, 'class-ended')),
    );
    for (const result of removals) {
      if (result.status === 'rejected')
        this.#logger.error({ err: result.reason, classId: state.id }, 'removing a student container failed');
    }
    await this.#removeGroup(state);
    if (state.network !== null) {
      // Its students' containers are gone: the class's hold was the last one.
      await this.#playground.releaseNetwork(state.network);
      state.network = null;
    }
    const expiresAtMs = Date.now() + this.#config.recordingRetentionMs;
    for (const recording of this.#recordings?.find((owner) => owner.classId === state.id) ?? []) {
      this.#recordings?.expireAt(recording.containerId, expiresAtMs);
    }
    const ended = this.#toJson(state);
    for (const subscriber of state.subscribers) {
      subscriber.send({ type: 'ended', class: ended });
      subscriber.close();
    }
    state.subscribers.clear();
    this.#logger.info({ event: 'class.ended', classId: state.id, students: state.students.size }, 'class ended');
  }

  async #removeGroup(state: ClassState): Promise<void> {
    if (state.group === null) return;
    try {
      await this.#groups.removeGroup(state.group);
      state.group = null;
    } catch (err) {
      this.#logger.error({ err, classId: state.id }, "removing the class's cgroup failed");
    }
  }

  broadcast(id: string, input: { message: string; command?: string | undefined }): BroadcastJson {
    const state = this.#openClass(id);
    const broadcast: BroadcastJson = {
      id: state.nextBroadcastId++,
      at: new Date().toISOString(),
      message: input.message,
      command: input.command ?? null,
    };
    state.broadcasts.push(broadcast);
    if (state.broadcasts.length > MAX_BROADCASTS) state.broadcasts.shift();
    for (const student of state.students.values())
      this.#playground.tell(student.sessionId, { type: 'broadcast', broadcast });
    this.#emit(state, { type: 'broadcast', broadcast });
    return broadcast;
  }

  /** Replaces a student's containers with one fresh container of the class. */
  async reset(classId: string, studentId: string): Promise<ContainerJson> {
    const state = this.#openClass(classId);
    const student = this.#student(state, studentId);
    await this.#playground.removeAll(student.sessionId, 'reset');
    const container = await this.#playground.create(student.sessionId, {
      limits: { memoryBytes: null, cpus: null, pidsLimit: null },
    });
    this.#logger.info({ event: 'class.reset', classId, studentId }, "student's container reset");
    return container;
  }

  /** Takes a student out of the class: containers removed, the session no longer a student. */
  async removeStudent(classId: string, studentId: string): Promise<void> {
    const state = this.#class(classId);
    const student = this.#student(state, studentId);
    this.#playground.tell(student.sessionId, {
      type: 'class-ended',
      classId,
      reason: 'the teacher took you out of the class',
    });
    state.students.delete(studentId);
    await this.#playground.removeAll(student.sessionId, 'class-ended');
    this.#bySession.delete(student.sessionId);
    this.#emit(state, { type: 'left', studentId });
  }

  /** Follows one class: the whole class first, then every change. */
  subscribe(id: string, subscriber: ClassSubscriber): () => void {
    const state = this.#class(id);
    subscriber.send({ type: 'class', class: this.#toJson(state) });
    if (state.endedAtMs !== null) {
      subscriber.send({ type: 'ended', class: this.#toJson(state) });
      subscriber.close();
      return () => undefined;
    }
    state.subscribers.add(subscriber);
    // Miniatures start from what the screens show now.
    for (const student of state.students.values()) student.screenKey = '';
    this.#startTicker();
    return () => {
      state.subscribers.delete(subscriber);
    };
  }

  /**
   * The teacher attaches to a student's terminal: `watch` (read-only) or `control`. Only
   * containers of students are reachable this way; any other id is unknown.
   */
  attachAsTeacher(
    containerId: string,
    terminalId: number,
    sink: TerminalSink,
    role: Exclude<AttachRole, 'owner'>,
  ): TerminalAttachment {
    const owner = this.#playground.ownerOf(containerId);
    if (owner === null || !this.#bySession.has(owner))
      throw new MdockerError('NOT_FOUND', `no such container: ${containerId.slice(0, 64)}`);
    return this.#playground.attachTerminal(owner, containerId, terminalId, sink, {}, role);
  }

  /** The session that owns a student container (the teacher reads as it), or null. */
  studentContainerOwner(containerId: string): string | null {
    const owner = this.#playground.ownerOf(containerId);
    return owner !== null && this.#bySession.has(owner) ? owner : null;
  }

  /** A recording the teacher may read: one of a student of a class still known. */
  teacherMayRead(owner: RecordingOwner): boolean {
    return owner.classId !== null && this.#classes.has(owner.classId);
  }

  /** Every kept recording of the class's students. */
  recordings(id: string): ReturnType<Recordings['find']> {
    this.#class(id);
    return this.#recordings?.find((owner) => owner.classId === id) ?? [];
  }

  // ---- students ----

  /**
   * Makes `sessionId` a student of the class whose code this is. The caller gives a
   * fresh session (a role change gets a new cookie); joining again with the same session
   * and class returns the same student.
   */
  join(code: string, name: string, sessionId: string): StudentSelfJson {
    const id = this.#byCode.get(normalizeJoinCode(code));
    const state = id === undefined ? undefined : this.#classes.get(id);
    if (!state || state.endedAtMs !== null) {
      throw new MdockerError('NOT_FOUND', 'no class has this join code: check it with your teacher');
    }
    const existing = this.#bySession.get(sessionId);
    if (existing && existing.classId === state.id) return this.#selfJson(existing);
    if (state.students.size >= this.#config.maxStudentsPerClass) {
      throw new MdockerError(
        'LIMIT_EXCEEDED',
        `the class is full: ${this.#config.maxStudentsPerClass} students (this server's cap, --max-students-per-class)`,
        { cap: 'studentsPerClass', limit: this.#config.maxStudentsPerClass },
      );
    }
    const student: Student = {
      id: randomBytes(8).toString('hex'),
      name: this.#uniqueName(state, name),
      sessionId,
      classId: state.id,
      joinedAtMs: Date.now(),
      lastInputAtMs: null,
      lastInputToldAtMs: 0,
      screenKey: '',
      progress: null,
      progressContainer: null,
    };
    state.students.set(student.id, student);
    this.#bySession.set(sessionId, student);
    this.#logger.info({ event: 'class.joined', classId: state.id, studentId: student.id }, 'student joined');
    this.#emit(state, { type: 'student', student: this.#studentJson(student) });
    return this.#selfJson(student);
  }

  isStudent(sessionId: string): boolean {
    return this.#bySession.has(sessionId);
  }

  me(sessionId: string, teacher: boolean): MeJson {
    const student = this.#bySession.get(sessionId);
    if (student) return { role: 'student', student: this.#selfJson(student) };
    return teacher ? { role: 'teacher' } : { role: 'guest' };
  }

  /** Ends every class (the server is stopping, after its containers went). */
  async shutdown(): Promise<void> {
    if (this.#ticker) clearInterval(this.#ticker);
    this.#ticker = null;
    await Promise.allSettled([...this.#classes.values()].map((state) => this.end(state.id, 'the server is stopping')));
  }

  /** Forgets ended classes past the retention time (their recordings expire with them). */
  sweep(now = Date.now()): void {
    for (const state of this.#classes.values()) {
      if (state.endedAtMs === null || now - state.endedAtMs < this.#config.recordingRetentionMs) continue;
      this.#classes.delete(state.id);
      for (const student of state.students.values()) {
        if (this.#bySession.get(student.sessionId) === student) this.#bySession.delete(student.sessionId);
      }
    }
  }

  // ---- internals ----

  #policyFor(sessionId: string): SessionPolicy | null {
    const student = this.#bySession.get(sessionId);
    if (!student) return null;
    const state = this.#classes.get(student.classId);
    if (!state) return null;
    const { settings } = state;
    return {
      classId: state.id,
      studentId: student.id,
      image: settings.image,
      limits: settings.limits,
      maxContainers: settings.maxContainersPerStudent,
      group: state.group,
      closed: state.endedAtMs === null ? null : 'the class has ended',
      lesson: settings.lesson,
      network: state.network,
    };
  }

  #onMessage(sessionId: string, message: StatsServerMessage): void {
    const student = this.#bySession.get(sessionId);
    if (!student) return;
    const state = this.#classes.get(student.classId);
    if (!state) return;
    if (message.type === 'lesson') {
      // The newest container's lesson is the one the student works on.
      student.progress = message.lesson.progress;
      student.progressContainer = message.containerId;
      this.#emit(state, { type: 'progress', studentId: student.id, progress: message.lesson.progress });
      return;
    }
    if (state.subscribers.size === 0) return;
    if (message.type === 'container') {
      this.#emit(state, { type: 'container', studentId: student.id, container: message.container });
    } else if (message.type === 'sample') {
      this.#emit(state, {
        type: 'sample',
        studentId: student.id,
        containerId: message.containerId,
        sample: message.sample,
      });
    }
  }

  #onInput(sessionId: string): void {
    const student = this.#bySession.get(sessionId);
    if (!student) return;
    const now = Date.now();
    student.lastInputAtMs = now;
    if (now - student.lastInputToldAtMs < INPUT_EVENT_PERIOD_MS) return;
    student.lastInputToldAtMs = now;
    const state = this.#classes.get(student.classId);
    if (state) this.#emit(state, { type: 'input', studentId: student.id, at: new Date(now).toISOString() });
  }

  #onConnection(sessionId: string): void {
    const student = this.#bySession.get(sessionId);
    const state = student ? this.#classes.get(student.classId) : undefined;
    if (student && state && state.subscribers.size > 0)
      this.#emit(state, { type: 'student', student: this.#studentJson(student) });
  }

  /** A message for the teachers watching each open class (the node's drain notices). */
  tellEveryClass(message: ClassEventMessage): void {
    for (const state of this.#classes.values()) if (state.endedAtMs === null) this.#emit(state, message);
  }

  #emit(state: ClassState, message: ClassEventMessage): void {
    for (const subscriber of state.subscribers) subscriber.send(message);
  }

  #startTicker(): void {
    if (this.#ticker !== null) return;
    this.#ticker = setInterval(() => this.#sendScreens(), SCREEN_PERIOD_MS);
    this.#ticker.unref();
  }

  /**
   * Once a second: for each watched class, the screen of every student whose terminal
   * printed something since the last look. Reading a screen's text is the costly part,
   * so an unchanged terminal (the output count is the same) costs a comparison.
   */
  #sendScreens(): void {
    let watched = false;
    for (const state of this.#classes.values()) {
      if (state.subscribers.size === 0) continue;
      watched = true;
      for (const student of state.students.values()) {
        const current = this.#playground.currentTerminal(student.sessionId);
        if (current === null) continue;
        const key = `${current.containerId}:${current.terminalId}:${current.seq}`;
        if (key === student.screenKey) continue;
        student.screenKey = key;
        try {
          const screen = this.#playground.screen(student.sessionId, current.containerId, current.terminalId);
          this.#emit(state, { type: 'screen', studentId: student.id, screen });
        } catch {
          // removed between the two calls: the next tick sees its successor
        }
      }
    }
    if (!watched && this.#ticker !== null) {
      clearInterval(this.#ticker);
      this.#ticker = null;
    }
  }

  #uniqueCode(): string {
    for (;;) {
      const code = newCode();
      if (!this.#byCode.has(code)) return code;
    }
  }

  /** Two students named alike are told apart on the teacher's grid: "Ana", "Ana (2)". */
  #uniqueName(state: ClassState, name: string): string {
    const taken = new Set([...state.students.values()].map((student) => student.name));
    if (!taken.has(name)) return name;
    for (let n = 2; ; n++) if (!taken.has(`${name} (${n})`)) return `${name} (${n})`;
  }

  #class(id: string): ClassState {
    const state = this.#classes.get(id);
    if (!state) throw noSuchClass(id);
    return state;
  }

  #openClass(id: string): ClassState {
    const state = this.#class(id);
    if (state.endedAtMs !== null) throw new MdockerError('CONFLICT', 'the class has ended');
    return state;
  }

  #student(state: ClassState, studentId: string): Student {
    const student = state.students.get(studentId);
    if (!student) throw new MdockerError('NOT_FOUND', `no such student: ${studentId.slice(0, 64)}`);
    return student;
  }

  #toJson(state: ClassState): ClassJson {
    const { settings } = state;
    return {
      id: state.id,
      name: settings.name,
      joinCode: state.joinCode,
      joinUrl: `/join/${state.joinCode}${this.#node === undefined ? '' : `?node=${this.#node}`}`,
      createdAt: new Date(state.createdAtMs).toISOString(),
      endedAt: state.endedAtMs === null ? null : new Date(state.endedAtMs).toISOString(),
      limits: { ...settings.limits },
      budget: { ...settings.budget },
      maxContainersPerStudent: settings.maxContainersPerStudent,
      image: settings.image,
      lesson: settings.lesson,
      network: settings.network,
      students: [...state.students.values()].map((student) => this.#studentJson(student)),
      broadcasts: [...state.broadcasts],
    };
  }

  #studentJson(student: Student): StudentJson {
    return {
      id: student.id,
      name: student.name,
      joinedAt: new Date(student.joinedAtMs).toISOString(),
      connected: this.#playground.isConnected(student.sessionId),
      lastInputAt: student.lastInputAtMs === null ? null : new Date(student.lastInputAtMs).toISOString(),
      containers: this.#playground.list(student.sessionId),
      latest: this.#playground.latestSamples(student.sessionId),
      progress: student.progress,
    };
  }

  #selfJson(student: Student): StudentSelfJson {
    const state = this.#classes.get(student.classId);
    return {
      id: student.id,
      name: student.name,
      classId: student.classId,
      className: state?.settings.name ?? '',
      classOpen: state !== undefined && state.endedAtMs === null,
      lesson: state?.settings.lesson ?? null,
      broadcasts: state ? [...state.broadcasts] : [],
    };
  }
}
