/**
 * The server's containers: who owns each (a session), their lifecycle from create to
 * removal (launch, exit with its reason, idle and lifetime reaping, shutdown), their
 * terminals, and who is told when something changes.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { CPU_WEIGHT_DEFAULT, type CgroupDriver } from '../runtime/cgroups/driver.js';
import type {
  ContainerLifecycle,
  ContainerProcess,
  ContainerRecord,
  ExitOutcome,
  PreparedContainer,
  RemovalReason,
  Runtime,
  StartedContainer,
} from '../runtime/containers.js';
import { MdockerError, launcherError, type LauncherErrorJson } from '../runtime/errors.js';
import type { Limits } from '../runtime/units.js';
import { checkContainerCounts, checkExecCounts, checkLimits, checkTerminalCount, resolveCreateLimits } from './caps.js';
import { captureExec } from '../runtime/exec.js';
import { DEFAULT_SECURITY, type SecurityOptions } from '../runtime/launcher.js';
import type { ProcessRef } from '../runtime/native.js';
import { inspectContainer } from '../runtime/inspect.js';
import { shellCwd } from '../runtime/shell-cwd.js';
import type { PtyProcess } from '../runtime/pty.js';
import type { PlaygroundConfig, PlaygroundMetrics } from './config.js';
import {
  WS_CLOSE,
  type ContainerJson,
  type ContainerState,
  type ExecResultJson,
  type ExitReason,
  type InspectJson,
  type ScreenJson,
  type StatsHistoryJson,
  type StatsSample,
  type StatsServerMessage,
  type TerminalJson,
} from '../protocol/index.js';
import type { RecordingOwner, Recordings } from './recording.js';
import { StatsSampler, type StatsSource } from './stats.js';
import {
  Terminal,
  type AttachRole,
  type TerminalAttachment,
  type TerminalRecorder,
  type TerminalSink,
} from './terminals.js';
import { settlesWithin } from './timing.js';
import { CpuBoost, HostCpuPressure, isBusy, isQuiet } from './cpu-boost.js';

/** What the playground needs of the runtime; Runtime has it, tests may fake it. */
export type PlaygroundRuntime = Pick<
  Runtime,
  'create' | 'start' | 'lifecycle' | 'exec' | 'remove' | 'update' | 'reapLeftovers' | 'createGroup' | 'removeGroup'
> & {
  readonly cgroups: Pick<CgroupDriver, 'openStats' | 'procs' | 'handleFromPaths'> &
    Partial<Pick<CgroupDriver, 'setCpuWeight' | 'setCpuIdle'>>;
  readonly networks: {
    /** owner: the network dies with this process (the next start reaps it after a crash) */
    create(name: string, opts: { owner: boolean; egress: boolean }): Promise<unknown>;
    remove(name: string, opts: { force: boolean }): Promise<void>;
    /** where the network's namespace is held (the inspector reads eth0's peer there) */
    netnsPath(name: string): string;
  };
};

export type { PlaygroundConfig } from './config.js';

/** Labels computed so far (every request's log line and every container event names one). */
const sessionLabels = new Map<string, string>();
const SESSION_LABELS_KEPT = 4096;

/** A session's id as logs show it: a keyed hash, so a log reader cannot take over the session. */
export function sessionLabel(sessionId: string): string {
  let label = sessionLabels.get(sessionId);
  if (label === undefined) {
    label = createHmac('sha256', 'mdocker-log').update(sessionId).digest('hex').slice(0, 8);
    // Forgetting them all at the bound keeps the map small whatever the visitors do.
    if (sessionLabels.size >= SESSION_LABELS_KEPT) sessionLabels.clear();
    sessionLabels.set(sessionId, label);
  }
  return label;
}

export interface CreateRequest {
  image?: string;
  hostname?: string;
  cmd?: string[];
  limits: Limits;
  /** The client's address (sessions are free; an address's containers are capped together). */
  clientAddress?: string;
  /** a lesson's id: its container settings apply (setLessons) */
  lesson?: string;
}

/**
 * What a lesson asks of its container: set fields override the request's defaults, and
 * capabilities or an unconfined seccomp are granted only with a private user namespace.
 */
export interface LessonContainerSettings {
  image: string | null;
  limits: Limits;
  capAdd: string[];
  seccomp: SecurityOptions['seccomp'];
}

/** Who knows the lessons (playground/lessons); throws NOT_FOUND for an unknown id. */
export type LessonSettingsProvider = (lessonId: string) => LessonContainerSettings;

/** A session's running container, as observers that follow containers see it. */
export interface ObservedContainer {
  id: string;
  sessionId: string;
  lesson: string | null;
  init: ProcessRef;
  hostname: string;
  /** the limits now (they follow updates) */
  limits(): Limits;
  /** host pids of its cgroup */
  procs(): Promise<number[]>;
  /** a command without a tty, collected, killed at timeoutMs (lessons' script checks) */
  exec(cmd: string[], timeoutMs: number): Promise<ExecResultJson>;
}

/** Counts by key that forget a key at zero. */
class Counts {
  readonly #counts = new Map<string, number>();

  get(key: string | null): number {
    return key === null ? 0 : (this.#counts.get(key) ?? 0);
  }

  add(key: string | null, delta: number): void {
    if (key === null) return;
    const value = this.get(key) + delta;
    if (value <= 0) this.#counts.delete(key);
    else this.#counts.set(key, value);
  }
}

export interface StatsSubscriber {
  send(message: StatsServerMessage): void;
}

/**
 * What a class imposes on its students' containers (playground/classes.ts decides, per
 * session): the image, the per-student limits (a request may ask for less, never more),
 * how many containers, the class's cgroup, or that no more may be created.
 */
export interface SessionPolicy {
  classId: string;
  studentId: string;
  image: string;
  limits: Limits;
  maxContainers: number;
  /** the runtime group (cgroup) the containers go in */
  group: string | null;
  /** set: creating is refused with this reason */
  closed: string | null;
  /** the class's lesson: its container settings apply to the students' containers */
  lesson?: string | null;
  /** the class's network (Playground.createNetwork) the containers join; null: the session's own */
  network?: string | null;
}

/**
 * The image a session's create may start: the runtime's name for what it names, with the
 * image's exposed TCP ports; throws a 4xx naming the image otherwise. trusted: its class's
 * and its lesson's images, which the teacher or the operator chose.
 */
export type ImageGate = (
  sessionId: string,
  image: string,
  trusted: string[],
) => Promise<{ image: string; exposedPorts: number[]; shell?: string[] | null }>;

/** Told of what happens to sessions' containers (the classes module follows its students). */
export interface PlaygroundObserver {
  /** everything published to a session's stats stream */
  message(sessionId: string, message: StatsServerMessage): void;
  /** someone typed on one of the session's terminals */
  input(sessionId: string, containerId: string, terminalId: number): void;
  /** the session's page opened or closed its stats stream (connected: any open) */
  connection(sessionId: string, connected: boolean): void;
  /** a container was created for a session and runs */
  started?(container: ObservedContainer): void;
  /** one of the container's terminals printed something */
  output?(sessionId: string, containerId: string): void;
  /** the container is forgotten (removed, or failed to start) */
  removed?(sessionId: string, containerId: string): void;
}

/** A recording's owner key: a hash, so index files on disk name no session. */
export function recordingOwnerKey(sessionId: string): string {
  return createHash('sha256').update(`mdocker-recording:${sessionId}`).digest('hex');
}

const DEFAULT_SHELL = ['/bin/sh'];
/**
 * The owner of the containers started ahead of demand (--warm-pool). Session ids are
 * random and signed, never empty; no request can name this one.
 */
const WARM_POOL = '';
/** The pool refills this long after the last container was taken from it. */
const WARM_REFILL_DELAY_MS = 250;
/** After a warm start fails, the pool waits this long before trying again. */
const WARM_RETRY_MS = 60_000;
const DEFAULT_COLS = 80;
/** An observer's exec (a lesson's script check) keeps this much of each output. */
const OBSERVED_EXEC_MAX_OUTPUT_BYTES = 64 * 1024;
const DEFAULT_ROWS = 24;
/** The CPUs the containers share, for a container's fair share of them (cpu-boost.ts). */
const HOST_CORES = availableParallelism();
/** The launcher's own environment: the container's is passed with --env. */
/** How long a removal waits for the init's exit to be processed after the runtime is done. */
const EXIT_SETTLE_MS = 5000;
/** Server-initiated removals are remembered this long, so a returning owner learns why. */
const TOMBSTONE_MS = 60 * 60 * 1000;
const MAX_TOMBSTONES = 1000;

interface Entry {
  id: string;
  sessionId: string;
  /** The address of the client that created it (null for a warm container not handed out). */
  clientAddress: string | null;
  record: ContainerRecord;
  /** The runtime's handle: its lifecycle is the container's state. Null until launched. */
  container: StartedContainer | null;
  /** create() has answered its caller: changes are published from now on. */
  announced: boolean;
  /** Why it stopped, as told to its owner (the kernel's OOM kill, the server's policy). */
  exitReason: ExitReason | null;
  terminals: Map<number, Terminal>;
  nextTerminalId: number;
  /** why the server is stopping it, once it decided to */
  stopReason: ExitReason | null;
  removing: Promise<void> | null;
  /** resolves once the init's exit has been recorded */
  exited: Promise<void>;
  markExited: () => void;
  createdAtMs: number;
  lastWatchedAtMs: number;
  /** the terminal typed on last (the one a teacher's miniature follows) */
  lastInputTerminal: number;
  /** the lesson its container was made for */
  lesson: string | null;
  /** cumulative counters of the previous sample: a rise is a recording marker */
  lastOomKills: number;
  lastPidsLimitHits: number;
  /** the network it is on: the entry holds it (#releaseNetwork when forgotten); null: only lo */
  network: string | null;
  /** its image's exposed TCP ports (preview hints) */
  exposedPorts: number[];
  /** what a terminal runs when the request names nothing: the image's shell, else /bin/sh */
  shell: string[];
}

/** One of the server's networks and who holds it: each container on it, and a class. */
interface NetworkUse {
  holds: number;
  /** the session whose containers join it by default (null: a warm container's, a class's) */
  session: string | null;
  /** settles once the runtime has made it */
  ready: Promise<void>;
  /** set once the runtime has made it: only a network that was made waits out a grace */
  made?: boolean;
  /** a session's network nobody holds: removes it when the grace is over (a new hold cancels it) */
  graceTimer?: NodeJS.Timeout;
}

/** Who owned a container the server removed, and why it did: the runtime keeps the rest. */
interface Tombstone {
  sessionId: string;
  exitReason: ExitReason;
  expiresAtMs: number;
}

export interface PlaygroundOptions {
  runtime: PlaygroundRuntime;
  config: PlaygroundConfig;
  logger: Logger;
  metrics?: PlaygroundMetrics;
  /** every terminal is recorded there when given */
  recordings?: Recordings;
}

/** The terminal of a process the playground launched with a pty. */
function ptyOf(launched: ContainerProcess): PtyProcess {
  if (launched.process.pty === null) throw new MdockerError('INTERNAL', 'the launcher was not started on a pty');
  return launched.process.pty;
}

function notFound(id: string): MdockerError {
  return new MdockerError('NOT_FOUND', `no such container: ${id.slice(0, 64)}`);
}

export class Playground {
  readonly #runtime: PlaygroundRuntime;
  readonly #config: PlaygroundConfig;
  readonly #logger: Logger;
  readonly #metrics: PlaygroundMetrics | undefined;
  readonly #entries = new Map<string, Entry>();
  readonly #bySession = new Map<string, Set<string>>();
  readonly #subscribers = new Map<string, Set<StatsSubscriber>>();
  readonly #tombstones = new Map<string, Tombstone>();
  readonly #creating = new Map<string, number>();
  #creatingTotal = 0;
  /** Containers, containers being created and running execs, by client address. */
  readonly #containersByAddress = new Counts();
  readonly #creatingByAddress = new Counts();
  readonly #execsByAddress = new Counts();
  #execsRunning = 0;
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #sampler: StatsSampler;
  #reaper: NodeJS.Timeout | null = null;
  #shuttingDown = false;
  #warmFilling = false;
  #warmRefill: NodeJS.Timeout | null = null;
  #warmFailedAtMs = 0;
  readonly #recordings: Recordings | null;
  #policy: (sessionId: string) => SessionPolicy | null = () => null;
  #imageGate: ImageGate | null = null;
  #ownImage: (sessionId: string, image: string) => boolean = () => false;
  #lessonSettings: LessonSettingsProvider = (id) => {
    throw new MdockerError('INVALID_ARGUMENT', `no such lesson: ${id.slice(0, 64)}`);
  };
  readonly #observers: PlaygroundObserver[] = [];
  readonly #networks = new Map<string, NetworkUse>();
  /** Each session's network, from its first container's create until its last is gone. */
  readonly #sessionNetworks = new Map<string, string>();
  /**
   * Why this host cannot make networks (no bridge or veth support in its kernel), once a
   * creation failed so: containers then get only `lo`, as on `--network none`.
   */
  #networksUnavailable: string | null = null;
  readonly #networkRemovals = new Set<Promise<void>>();
  /** A container typed in lately runs ahead of its busy neighbours (cpu-boost.ts). */
  readonly #cpuBoost: CpuBoost | null;
  readonly #hostPressure = new HostCpuPressure();

  constructor(options: PlaygroundOptions) {
    this.#runtime = options.runtime;
    const cgroups = options.runtime.cgroups;
    this.#cpuBoost =
      cgroups.setCpuWeight === undefined
        ? null
        : new CpuBoost({
            normalWeight: CPU_WEIGHT_DEFAULT,
            setWeight: async (id, weight) => {
              const paths = this.#entries.get(id)?.record.cgroupPaths;
              if (paths !== undefined) await cgroups.setCpuWeight?.(cgroups.handleFromPaths(id, paths), weight);
            },
            ...(cgroups.setCpuIdle === undefined
              ? {}
              : {
                  setIdle: async (id: string, idle: boolean) => {
                    const paths = this.#entries.get(id)?.record.cgroupPaths;
                    if (paths !== undefined) await cgroups.setCpuIdle?.(cgroups.handleFromPaths(id, paths), idle);
                  },
                }),
            onError: (containerId, err) =>
              this.#logger.warn({ containerId, err }, 'cannot set the CPU weight or idle class'),
          });
    this.#config = options.config;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#recordings = options.recordings ?? null;
    this.#sampler = new StatsSampler({
      intervalMs: options.config.statsIntervalMs,
      historySamples: options.config.statsHistorySamples,
      open: (id) => this.#openStats(id),
      onSample: (id, sample) => {
        const entry = this.#entries.get(id);
        if (!entry) return;
        if (this.#cpuBoost !== null) {
          const usage = [sample.cpuPercent, entry.record.limits.cpus, this.#sampler.trackedCount, HOST_CORES] as const;
          const contended = this.#hostPressure.contended();
          const quiet = !contended && isQuiet(...usage);
          this.#cpuBoost.sample(id, { busy: isBusy(...usage), quiet });
        }
        this.#record(entry, sample);
        this.#publish(entry.sessionId, { type: 'sample', containerId: id, sample });
      },
    });
  }

  /** Who decides sessions' policies (the classes module); by default nobody has one. */
  setPolicy(policy: (sessionId: string) => SessionPolicy | null): void {
    this.#policy = policy;
  }

  /**
   * Who decides which images a session may start (playground/image-catalog.ts): every
   * create's image, after its class's and its lesson's, goes through it.
   */
  setImageGate(gate: ImageGate, ownImage?: (sessionId: string, image: string) => boolean): void {
    this.#imageGate = gate;
    if (ownImage) this.#ownImage = ownImage;
  }

  /** The image the session's class gives its containers; null outside a class. */
  classImage(sessionId: string): string | null {
    return this.#policy(sessionId)?.image ?? null;
  }

  /** Who resolves a create's lesson into its container settings (playground/lessons). */
  setLessons(provider: LessonSettingsProvider): void {
    this.#lessonSettings = provider;
  }

  observe(observer: PlaygroundObserver): void {
    this.#observers.push(observer);
  }

  start(): void {
    this.#sampler.start();
    const { idleTimeoutMs, maxLifetimeMs } = this.#config;
    const periods = [5000, ...[idleTimeoutMs, maxLifetimeMs].filter((ms) => ms > 0).map((ms) => Math.floor(ms / 4))];
    this.#reaper = setInterval(() => this.#reap(), Math.max(100, Math.min(...periods)));
    this.#reaper.unref();
    void this.#fillWarmPool();
  }

  // ---- containers ----

  async create(sessionId: string, request: CreateRequest): Promise<ContainerJson> {
    if (this.#shuttingDown) throw new MdockerError('CONFLICT', 'the server is shutting down');
    const policy = this.#policy(sessionId);
    const lessonId = policy?.lesson ?? request.lesson;
    const lesson = lessonId === undefined || lessonId === null ? null : this.#lessonSettings(lessonId);
    if (lesson) request = applyLesson(lessonId!, lesson, request, policy);
    // A student may start its own saved image besides the class's.
    if (policy) request = applyPolicy(policy, request, this.#ownImage(sessionId, request.image ?? ''));
    let exposedPorts: number[] = [];
    let shell: string[] | null = null;
    if (this.#imageGate) {
      const trusted = [policy?.image, lesson?.image].filter((image): image is string => typeof image === 'string');
      const resolved = await this.#imageGate(sessionId, request.image ?? this.#config.defaultImage, trusted);
      request = { ...request, image: resolved.image };
      exposedPorts = resolved.exposedPorts;
      shell = resolved.shell ?? null;
      if (this.#shuttingDown) throw new MdockerError('CONFLICT', 'the server is shutting down');
    }
    const limits = resolveCreateLimits(this.#config, request.limits);
    // Creations in flight count against the caps, so concurrent requests cannot overshoot.
    // The warm pool yields its places: a warm container is handed out or made way for.
    const address = request.clientAddress ?? null;
    if (policy) {
      const count = this.#sessionIds(sessionId).size + (this.#creating.get(sessionId) ?? 0);
      if (count >= policy.maxContainers) {
        throw new MdockerError(
          'LIMIT_EXCEEDED',
          `your class allows ${policy.maxContainers} container${policy.maxContainers === 1 ? '' : 's'} per student: delete one first`,
          { cap: 'containersPerStudent', limit: policy.maxContainers },
        );
      }
    }
    checkContainerCounts(
      this.#config,
      this.#sessionIds(sessionId).size + (this.#creating.get(sessionId) ?? 0),
      this.#entries.size - this.#warmCount() + this.#creatingTotal,
      this.#containersByAddress.get(address) + this.#creatingByAddress.get(address),
    );
    // A warm container's network becomes the session's: a session that has one already
    // creates on it instead (a network is joined before the first instruction, never later).
    if (policy === null && !this.#sessionNetworkHeld(sessionId) && this.#isDefaultRequest(request, limits)) {
      const warm = this.#takeWarm(sessionId, address);
      if (warm) return warm;
    }
    if (this.#entries.size + this.#creatingTotal >= this.#config.maxContainers) await this.#evictWarm();
    this.#creating.set(sessionId, (this.#creating.get(sessionId) ?? 0) + 1);
    this.#creatingTotal++;
    this.#creatingByAddress.add(address, 1);
    let reserved = true;
    // Released as soon as the container is counted as an entry, or when the create fails.
    const release = (): void => {
      if (!reserved) return;
      reserved = false;
      this.#creatingByAddress.add(address, -1);
      this.#creatingTotal--;
      const left = (this.#creating.get(sessionId) ?? 1) - 1;
      if (left <= 0) this.#creating.delete(sessionId);
      else this.#creating.set(sessionId, left);
    };
    const security: SecurityOptions | null = lesson
      ? { ...DEFAULT_SECURITY, capAdd: lesson.capAdd, seccomp: lesson.seccomp }
      : null;
    const creation = this.#create(
      sessionId,
      request,
      limits,
      release,
      policy?.group ?? null,
      security,
      policy?.network ?? null,
      exposedPorts,
      shell,
    );
    this.#inFlight.add(creation);
    try {
      return await creation;
    } finally {
      this.#inFlight.delete(creation);
      release();
    }
  }

  async #create(
    sessionId: string,
    request: CreateRequest,
    limits: Limits,
    release: () => void,
    group: string | null = null,
    security: SecurityOptions | null = null,
    classNetwork: string | null = null,
    exposedPorts: number[] = [],
    imageShell: string[] | null = null,
  ): Promise<ContainerJson> {
    const startedAtMs = performance.now();
    const shell = imageShell ?? DEFAULT_SHELL;
    const cmd = request.cmd ?? shell;
    // Held from here: by the entry once it exists, else released below.
    const network = await this.#holdNetwork(sessionId, classNetwork);
    let prepared: PreparedContainer;
    try {
      prepared = await this.#runtime.create({
        image: request.image ?? this.#config.defaultImage,
        ...(request.hostname === undefined ? {} : { hostname: request.hostname }),
        ...(group === null ? {} : { group }),
        ...(security === null ? {} : { security }),
        cmd,
        tty: true,
        limits,
        ...(network === null ? {} : { network }),
        // The server owns its containers: if it dies (even by SIGKILL) they die with it,
        // and the next start reaps what is left.
        dieWithParent: true,
        autoRemove: true,
      });
    } catch (err) {
      void this.#releaseNetwork(network);
      throw err;
    }
    const id = prepared.record.id;
    // The runtime falls back to the host's user namespace where the image store cannot be
    // idmapped: there CAP_SYS_ADMIN would be the host's own. A lesson's relaxations are
    // granted only to a container whose root is an unprivileged host uid (SECURITY.md).
    if (security !== null && relaxed(security) && (prepared.record.security.userns ?? 'private') !== 'private') {
      await this.#runtime.remove(id, { force: true }).catch(() => undefined);
      void this.#releaseNetwork(network);
      throw new MdockerError(
        'UNSUPPORTED',
        "this lesson needs capabilities that are granted only in a container with a user namespace of its own, and this host's image store cannot be idmapped (SECURITY.md)",
      );
    }
    if (this.#shuttingDown) {
      await this.#runtime.remove(id, { force: true }).catch(() => undefined);
      void this.#releaseNetwork(network);
      throw new MdockerError('CONFLICT', 'the server is shutting down');
    }
    let markExited: () => void = () => undefined;
    const exited = new Promise<void>((resolve) => (markExited = resolve));
    const entry: Entry = {
      id,
      sessionId,
      clientAddress: request.clientAddress ?? null,
      record: prepared.record,
      container: null,
      announced: false,
      exitReason: null,
      terminals: new Map(),
      nextTerminalId: 1,
      stopReason: null,
      removing: null,
      exited,
      markExited,
      createdAtMs: Date.now(),
      lastWatchedAtMs: Date.now(),
      lastInputTerminal: 0,
      lesson: request.lesson ?? null,
      lastOomKills: 0,
      lastPidsLimitHits: 0,
      network,
      exposedPorts,
      shell,
    };
    this.#entries.set(id, entry);
    this.#sessionIds(sessionId).add(id);
    this.#containersByAddress.add(entry.clientAddress, 1);
    release();

    let run: StartedContainer;
    try {
      run = this.#runtime.start(prepared, { kind: 'pty', cols: DEFAULT_COLS, rows: DEFAULT_ROWS });
    } catch (err) {
      // Removed first: the network goes with the entry's hold, once nobody is on it.
      await this.#runtime.remove(id, { force: true }).catch(() => undefined);
      this.#forget(entry);
      this.#metrics?.createSeconds.observe({ outcome: 'failed' }, (performance.now() - startedAtMs) / 1000);
      throw new MdockerError('LAUNCH_FAILED', `could not start the launcher: ${errorMessage(err)}`, undefined, {
        cause: err,
      });
    }
    entry.container = run;
    this.#newTerminal(entry, 0, cmd, ptyOf(run), DEFAULT_COLS, DEFAULT_ROWS);
    void run.done.then((outcome) => this.#onInitExit(entry, outcome));

    const record = await run.started;
    if (record.init && run.lifecycle.status === 'running') {
      entry.record = record;
      this.#sampler.track(id);
    } else {
      await settlesWithin(entry.exited, EXIT_SETTLE_MS);
    }
    if (entry.exitReason === 'launch-failed') {
      const error = this.#launchErrors.get(id);
      this.#launchErrors.delete(id);
      await this.#discard(entry);
      this.#metrics?.createSeconds.observe({ outcome: 'failed' }, (performance.now() - startedAtMs) / 1000);
      throw error === undefined
        ? new MdockerError('LAUNCH_FAILED', 'the container failed to start: the launcher failed')
        : launcherError(error, 'the container failed to start');
    }
    this.#metrics?.createSeconds.observe({ outcome: 'ok' }, (performance.now() - startedAtMs) / 1000);
    this.#logger.info(
      {
        event: 'container.created',
        containerId: id,
        session: sessionLabel(sessionId),
        image: prepared.record.image,
        limits,
        initPid: run.lifecycle.initPid,
      },
      'container created',
    );
    entry.announced = true;
    this.#notify(entry);
    if (sessionId !== WARM_POOL && entry.record.init !== null && statusOf(entry) === 'running') {
      const observed = this.#observed(entry, entry.record.init);
      for (const observer of this.#observers) observer.started?.(observed);
    }
    return this.#toJson(entry);
  }

  #observed(entry: Entry, init: ProcessRef): ObservedContainer {
    const handle = this.#runtime.cgroups.handleFromPaths(entry.id, entry.record.cgroupPaths);
    return {
      id: entry.id,
      sessionId: entry.sessionId,
      lesson: entry.lesson,
      init,
      hostname: entry.record.hostname,
      limits: () => ({ ...entry.record.limits }),
      procs: () => this.#runtime.cgroups.procs(handle),
      exec: async (cmd, timeoutMs) => {
        if (statusOf(entry) !== 'running' || entry.removing)
          throw new MdockerError('CONFLICT', `container ${entry.id.slice(0, 12)} is not running`);
        const exec = await this.#runtime.exec(
          entry.id,
          { cmd, tty: false, dieWithParent: true },
          { kind: 'pipes', stdin: 'ignore', output: 'pipe' },
        );
        return captureExec(exec, { timeoutMs, maxOutputBytes: OBSERVED_EXEC_MAX_OUTPUT_BYTES });
      },
    };
  }

  list(sessionId: string): ContainerJson[] {
    return [...this.#sessionIds(sessionId)]
      .map((id) => this.#entries.get(id))
      .filter((entry): entry is Entry => entry !== undefined)
      .sort((a, b) => a.createdAtMs - b.createdAtMs)
      .map((entry) => this.#toJson(entry));
  }

  get(sessionId: string, id: string): ContainerJson {
    const entry = this.#entries.get(id);
    if (entry && entry.sessionId === sessionId) return this.#toJson(entry);
    const tombstone = this.#tombstones.get(id);
    const lifecycle = this.#runtime.lifecycle(id);
    if (tombstone && tombstone.sessionId === sessionId && tombstone.expiresAtMs > Date.now() && lifecycle) {
      return { ...toContainerJson(lifecycle, tombstone.exitReason), terminals: [] };
    }
    throw notFound(id);
  }

  async update(sessionId: string, id: string, limits: Partial<Limits>): Promise<ContainerJson> {
    const entry = this.#owned(sessionId, id);
    checkLimits(this.#config, limits);
    const policy = this.#policy(sessionId);
    if (policy) checkWithinPolicy(policy, limits);
    if (statusOf(entry) !== 'running' || entry.removing)
      throw new MdockerError('CONFLICT', `container ${id.slice(0, 12)} is not running`);
    const view = await this.#runtime.update(id, limits);
    entry.record = { ...entry.record, limits: view.limits };
    this.#logger.info({ event: 'container.updated', containerId: id, limits: view.limits }, 'container limits updated');
    this.#notify(entry);
    return this.#toJson(entry);
  }

  /** Kills, waits, removes: resolves once the container's cgroup is gone. */
  async remove(sessionId: string, id: string): Promise<void> {
    const entry = this.#owned(sessionId, id);
    await this.#remove(entry, 'killed');
  }

  /** Removes every container of a session (a class ended, a student reset), telling why. */
  async removeAll(sessionId: string, reason: ExitReason): Promise<void> {
    const entries = [...this.#sessionIds(sessionId)]
      .map((id) => this.#entries.get(id))
      .filter((entry): entry is Entry => entry !== undefined);
    const results = await Promise.allSettled(entries.map((entry) => this.#remove(entry, reason)));
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** The session that owns a container, or null. */
  ownerOf(id: string): string | null {
    const entry = this.#entries.get(id);
    return entry === undefined || entry.sessionId === WARM_POOL ? null : entry.sessionId;
  }

  /** The init of a running container (pid and start time: it pins the process), or null. */
  initOf(id: string): ProcessRef | null {
    const entry = this.#entries.get(id);
    if (!entry || entry.removing || statusOf(entry) !== 'running') return null;
    return entry.record.init;
  }

  /** The container's cgroup directories (its record's), which a write into its files joins (runtime/copier.ts). */
  cgroupPathsOf(id: string): string[] {
    return [...(this.#entries.get(id)?.record.cgroupPaths ?? [])];
  }

  /** The session's page has its stats stream open. */
  isConnected(sessionId: string): boolean {
    return (this.#subscribers.get(sessionId)?.size ?? 0) > 0;
  }

  /** The latest sample of each of the session's running containers. */
  latestSamples(sessionId: string): Record<string, StatsSample> {
    const latest: Record<string, StatsSample> = {};
    for (const id of this.#sessionIds(sessionId)) {
      const sample = this.#sampler.latest(id);
      if (sample) latest[id] = sample;
    }
    return latest;
  }

  /**
   * The terminal a teacher's miniature follows: the one typed on last in the session's
   * newest running container. `seq` grows with its output, so a caller polling it knows
   * whether to read the (costlier) text.
   */
  currentTerminal(sessionId: string): { containerId: string; terminalId: number; seq: number } | null {
    let newest: Entry | null = null;
    for (const id of this.#sessionIds(sessionId)) {
      const entry = this.#entries.get(id);
      if (!entry || entry.removing || statusOf(entry) !== 'running') continue;
      if (newest === null || entry.createdAtMs >= newest.createdAtMs) newest = entry;
    }
    if (newest === null) return null;
    const terminal = newest.terminals.get(newest.lastInputTerminal) ?? newest.terminals.get(0);
    if (!terminal) return null;
    return { containerId: newest.id, terminalId: terminal.id, seq: terminal.outputSeq };
  }

  /** A terminal's visible rows as text, for the session's owner or its teacher. */
  screen(sessionId: string, id: string, terminalId: number): ScreenJson {
    const terminal = this.#owned(sessionId, id).terminals.get(terminalId);
    if (!terminal) throw new MdockerError('NOT_FOUND', `no such terminal: ${terminalId}`);
    return { containerId: id, terminalId, ...terminal.screenText() };
  }

  /** Sends a message to the session's pages (a teacher's broadcast, the class's end). */
  tell(sessionId: string, message: StatsServerMessage): void {
    this.#publish(sessionId, message);
  }

  /** Sends a message to the pages of every session with a container or a stats stream
   * here (the node is draining). */
  tellEverySession(message: StatsServerMessage): void {
    const sessions = new Set([...this.#bySession.keys(), ...this.#subscribers.keys()]);
    sessions.delete(WARM_POOL);
    for (const sessionId of sessions) this.#publish(sessionId, message);
  }

  /** Whether the session has a container here (a session that has none is a new one). */
  hasContainers(sessionId: string): boolean {
    return (this.#bySession.get(sessionId)?.size ?? 0) > 0;
  }

  // ---- terminals ----

  async openTerminal(
    sessionId: string,
    id: string,
    options: { cmd?: string[]; cols?: number; rows?: number },
  ): Promise<TerminalJson> {
    const entry = this.#owned(sessionId, id);
    if (statusOf(entry) !== 'running' || entry.removing)
      throw new MdockerError('CONFLICT', `container ${id.slice(0, 12)} is not running`);
    this.#evictExitedTerminal(entry);
    checkTerminalCount(this.#config, entry.terminals.size);
    const cmd = options.cmd ?? entry.shell;
    const cols = options.cols ?? DEFAULT_COLS;
    const rows = options.rows ?? DEFAULT_ROWS;
    const exec = await this.#runtime.exec(id, { cmd, tty: true, dieWithParent: true }, { kind: 'pty', cols, rows });
    const terminal = this.#newTerminal(entry, entry.nextTerminalId++, cmd, ptyOf(exec), cols, rows);
    terminal.onPtyExit((code) => {
      const reason = entry.stopReason ?? (statusOf(entry) === 'exited' ? entry.exitReason : 'exited');
      terminal.finish({ exitCode: code, reason });
      this.#logger.info(
        { event: 'terminal.exited', containerId: id, terminal: terminal.id, exitCode: code },
        'terminal exited',
      );
      this.#notify(entry);
    });
    this.#logger.info({ event: 'terminal.opened', containerId: id, terminal: terminal.id, cmd }, 'terminal opened');
    entry.lastWatchedAtMs = Date.now();
    this.#notify(entry);
    return terminal.toJson();
  }

  /** Where a terminal's shell works, as the container sees it (files dropped on it go there). */
  async terminalCwd(sessionId: string, id: string, terminalId: number): Promise<string> {
    const terminal = this.#owned(sessionId, id).terminals.get(terminalId);
    if (!terminal || terminal.state !== 'running')
      throw new MdockerError('NOT_FOUND', `no such running terminal: ${terminalId}`);
    const cwd = await shellCwd(terminal.pid);
    if (cwd === null) throw new MdockerError('NOT_FOUND', `terminal ${terminalId} has no working directory`);
    return cwd;
  }

  listTerminals(sessionId: string, id: string): TerminalJson[] {
    return [...this.#owned(sessionId, id).terminals.values()].map((terminal) => terminal.toJson());
  }

  closeTerminal(sessionId: string, id: string, terminalId: number): void {
    const entry = this.#owned(sessionId, id);
    const terminal = entry.terminals.get(terminalId);
    if (!terminal) throw new MdockerError('NOT_FOUND', `no such terminal: ${terminalId}`);
    if (terminalId === 0) {
      throw new MdockerError('CONFLICT', "terminal 0 is the container's init: delete the container to end it");
    }
    entry.terminals.delete(terminalId);
    terminal.finish({ exitCode: null, reason: 'killed' });
    terminal.dispose();
    this.#notify(entry);
  }

  attachTerminal(
    sessionId: string,
    id: string,
    terminalId: number,
    sink: TerminalSink,
    size: { cols?: number; rows?: number },
    role: AttachRole = 'owner',
  ): TerminalAttachment {
    const entry = this.#entries.get(id);
    if (!entry || entry.sessionId !== sessionId) {
      const tombstone = this.#tombstones.get(id);
      if (tombstone && tombstone.sessionId === sessionId) {
        throw new MdockerError('NOT_FOUND', `container removed (${tombstone.exitReason})`, {
          reason: tombstone.exitReason,
        });
      }
      throw notFound(id);
    }
    const terminal = entry.terminals.get(terminalId);
    if (!terminal) throw new MdockerError('NOT_FOUND', `no such terminal: ${terminalId}`);
    entry.lastWatchedAtMs = Date.now();
    const attachment = terminal.attach(sink, size, role);
    if (role !== 'control') return attachment;
    // The student sees who has the keyboard: told on the teacher's attach and detach.
    const tellControl = (): void =>
      this.#publish(entry.sessionId, {
        type: 'control',
        containerId: id,
        terminalId,
        teacher: terminal.clientsWithRole('control') > 0,
      });
    tellControl();
    return {
      receive: (data, isBinary) => attachment.receive(data, isBinary),
      detach: () => {
        attachment.detach();
        tellControl();
      },
    };
  }

  // ---- exec, inspect, stats ----

  async exec(
    sessionId: string,
    id: string,
    request: { cmd: string[]; timeoutMs?: number; clientAddress?: string },
  ): Promise<ExecResultJson> {
    const entry = this.#owned(sessionId, id);
    if (statusOf(entry) !== 'running' || entry.removing)
      throw new MdockerError('CONFLICT', `container ${id.slice(0, 12)} is not running`);
    const timeoutMs = request.timeoutMs ?? this.#config.execDefaultTimeoutMs;
    if (timeoutMs > this.#config.execMaxTimeoutMs) {
      throw new MdockerError(
        'LIMIT_EXCEEDED',
        `timeoutMs ${timeoutMs} is more than allowed (this server's cap, --exec-max-timeout ${this.#config.execMaxTimeoutMs}ms)`,
        {
          cap: 'execTimeoutMs',
          limit: this.#config.execMaxTimeoutMs,
        },
      );
    }
    entry.lastWatchedAtMs = Date.now();
    const address = request.clientAddress ?? null;
    checkExecCounts(this.#config, this.#execsRunning, this.#execsByAddress.get(address));
    this.#execsRunning++;
    this.#execsByAddress.add(address, 1);
    let result: ExecResultJson;
    try {
      const exec = await this.#runtime.exec(
        id,
        { cmd: request.cmd, tty: false, dieWithParent: true },
        { kind: 'pipes', stdin: 'ignore', output: 'pipe' },
      );
      result = await captureExec(exec, { timeoutMs, maxOutputBytes: this.#config.execMaxOutputBytes });
    } finally {
      this.#execsRunning--;
      this.#execsByAddress.add(address, -1);
    }
    this.#logger.info(
      { event: 'container.exec', containerId: id, exitCode: result.exitCode, timedOut: result.timedOut },
      'exec finished',
    );
    return result;
  }

  async inspect(sessionId: string, id: string): Promise<InspectJson> {
    const entry = this.#owned(sessionId, id);
    const init = entry.record.init;
    if (statusOf(entry) !== 'running' || init === null) {
      throw new MdockerError('CONFLICT', `container ${id.slice(0, 12)} is not running`);
    }
    const handle = this.#runtime.cgroups.handleFromPaths(id, entry.record.cgroupPaths);
    const network = entry.record.network ?? null;
    return inspectContainer({
      id,
      init,
      hostname: entry.record.hostname,
      procs: () => this.#runtime.cgroups.procs(handle),
      network: network && { name: network.name, netnsPath: this.#runtime.networks.netnsPath(network.name) },
      onNetworkError: (err) =>
        this.#logger.warn({ event: 'container.inspect-network', containerId: id, err }, 'cannot read its network'),
    });
  }

  statsHistory(sessionId: string, id: string): StatsHistoryJson {
    this.#owned(sessionId, id);
    return { containerId: id, samples: this.#sampler.history(id) };
  }

  /** Sends the session's containers and their history, then every change and sample. */
  subscribeStats(sessionId: string, subscriber: StatsSubscriber): () => void {
    let set = this.#subscribers.get(sessionId);
    if (!set) {
      set = new Set();
      this.#subscribers.set(sessionId, set);
    }
    set.add(subscriber);
    if (set.size === 1) for (const observer of this.#observers) observer.connection(sessionId, true);
    for (const id of this.#sessionIds(sessionId)) {
      const entry = this.#entries.get(id);
      if (!entry) continue;
      entry.lastWatchedAtMs = Date.now();
      subscriber.send({ type: 'container', container: this.#toJson(entry) });
      subscriber.send({ type: 'history', containerId: id, samples: this.#sampler.history(id) });
    }
    return () => {
      if (!set.delete(subscriber)) return;
      if (set.size > 0) return;
      this.#subscribers.delete(sessionId);
      for (const observer of this.#observers) observer.connection(sessionId, false);
    };
  }

  // ---- whole-server ----

  containersByState(): Record<ContainerState, number> {
    const counts: Record<ContainerState, number> = { created: 0, running: 0, exited: 0, removed: 0 };
    for (const entry of this.#entries.values()) counts[statusOf(entry)]++;
    return counts;
  }

  terminalCount(): number {
    let count = 0;
    for (const entry of this.#entries.values()) count += entry.terminals.size;
    return count;
  }

  get containerCount(): number {
    return this.#entries.size;
  }

  /** Containers of sessions: the warm pool's are not counted. */
  get sessionContainerCount(): number {
    return this.#entries.size - this.#warmCount();
  }

  /** Refuses new containers, removes every container this server started, in parallel. */
  async shutdown(): Promise<void> {
    this.#shuttingDown = true;
    if (this.#warmRefill !== null) clearTimeout(this.#warmRefill);
    if (this.#reaper !== null) clearInterval(this.#reaper);
    this.#reaper = null;
    this.#sampler.stop();
    // A create in flight finishes (or sees the flag and undoes itself) before the sweep.
    await Promise.allSettled([...this.#inFlight]);
    await Promise.allSettled([...this.#entries.values()].map((entry) => this.#remove(entry, 'shutdown')));
    for (const name of [...this.#networks.keys()]) void this.#removeLingering(name);
    await Promise.allSettled([...this.#networkRemovals]);
  }

  /** Closes every terminal client (the server is going away) without waiting for anything. */
  closeAllClients(code: number, reason: string): void {
    for (const entry of this.#entries.values())
      for (const terminal of entry.terminals.values()) terminal.closeClients(code, reason);
  }

  // ---- internals ----

  readonly #launchErrors = new Map<string, LauncherErrorJson>();

  #newTerminal(entry: Entry, id: number, cmd: string[], process: PtyProcess, cols: number, rows: number): Terminal {
    const terminal = new Terminal({
      id,
      containerId: entry.id,
      cmd,
      pty: process,
      cols,
      rows,
      scrollbackLines: this.#config.scrollbackLines,
      flowStallTimeoutMs: this.#config.flowStallTimeoutMs,
      onBytes: (direction, bytes) => {
        this.#metrics?.bytesStreamed.inc({ direction }, bytes);
        if (direction === 'out') for (const observer of this.#observers) observer.output?.(entry.sessionId, entry.id);
      },
      onClientsChanged: () => {
        entry.lastWatchedAtMs = Date.now();
      },
      onInput: () => {
        entry.lastInputTerminal = id;
        this.#cpuBoost?.keystroke(entry.id);
        for (const observer of this.#observers) observer.input(entry.sessionId, entry.id, id);
      },
      recorder: this.#openRecording(entry, id, cols, rows),
    });
    entry.terminals.set(id, terminal);
    return terminal;
  }

  /** Starts recording a terminal; a recording that cannot start leaves the terminal unrecorded. */
  #openRecording(entry: Entry, terminalId: number, cols: number, rows: number): TerminalRecorder | null {
    if (this.#recordings === null) return null;
    try {
      return this.#recordings.open(entry.id, terminalId, {
        cols,
        rows,
        title: `${entry.record.hostname} #${terminalId}`,
        owner: this.#recordingOwner(entry.sessionId),
      });
    } catch (err) {
      this.#logger.warn({ err, containerId: entry.id }, 'cannot record the terminal');
      return null;
    }
  }

  #recordingOwner(sessionId: string): RecordingOwner {
    const policy = this.#policy(sessionId);
    return {
      sessionId: recordingOwnerKey(sessionId),
      classId: policy?.classId ?? null,
      studentId: policy?.studentId ?? null,
    };
  }

  /** Keeps the sample beside the recordings, and marks the cgroup events it shows. */
  #record(entry: Entry, sample: StatsSample): void {
    if (this.#recordings === null) return;
    this.#recordings.sample(entry.id, sample);
    if (sample.oomKills > entry.lastOomKills) this.#recordings.marker(entry.id, 'oom-kill');
    if (sample.pidsLimitHits > entry.lastPidsLimitHits) this.#recordings.marker(entry.id, 'pids-limit');
    entry.lastOomKills = sample.oomKills;
    entry.lastPidsLimitHits = sample.pidsLimitHits;
  }

  #onInitExit(entry: Entry, { code, error }: ExitOutcome): void {
    const reason = this.#exitReason(entry, code, error);
    // During create() the failure becomes the POST's answer; later, the terminal's.
    const creating = !entry.announced;
    if (creating && reason === 'launch-failed' && error) this.#launchErrors.set(entry.id, error);
    entry.exitReason = reason;
    entry.lastWatchedAtMs = Date.now();
    this.#sampler.untrack(entry.id);
    entry.terminals.get(0)?.finish({ exitCode: code, reason, error: reason === 'launch-failed' ? error : null });
    this.#logger.info(
      {
        event: 'container.exited',
        containerId: entry.id,
        session: sessionLabel(entry.sessionId),
        exitCode: code,
        reason,
        error,
      },
      'container exited',
    );
    entry.markExited();
    if (entry.removing === null && !creating) this.#notify(entry);
  }

  #exitReason(entry: Entry, code: number, error: { code: string; message: string } | null): ExitReason {
    if (entry.stopReason) return entry.stopReason;
    if (code === 125 && error) return 'launch-failed';
    // PID 1 of a PID namespace ignores every signal it has no handler for when it comes
    // from inside; only SIGKILL from outside (or the OOM killer) ends it with 137. The
    // cgroup (and its memory.events) is gone by the time the launcher exits, so the last
    // sample has to tell: an OOM kill counted, or memory close to the limit.
    if (code === 137) {
      const last = this.#sampler.latest(entry.id);
      const nearLimit =
        last !== null && last.memoryLimitBytes !== null && last.memoryBytes >= 0.8 * last.memoryLimitBytes;
      return (last?.oomKills ?? 0) > 0 || nearLimit ? 'oom' : 'killed';
    }
    return 'exited';
  }

  #remove(entry: Entry, reason: ExitReason): Promise<void> {
    if (entry.removing) return entry.removing;
    if (statusOf(entry) !== 'exited') entry.stopReason = reason;
    const removal = (async () => {
      try {
        await this.#runtime.remove(entry.id, { force: true, reason: REMOVAL_REASONS[reason] });
      } catch (err) {
        // NOT_FOUND: it had exited and removed itself (every playground container is --rm).
        if (!(err instanceof MdockerError && err.code === 'NOT_FOUND')) {
          entry.removing = null;
          this.#logger.error({ containerId: entry.id, err }, 'removing a container failed');
          throw err;
        }
      }
      await settlesWithin(entry.exited, EXIT_SETTLE_MS);
      const json = this.#toJson(entry);
      this.#discardNow(entry, WS_CLOSE.NORMAL, `container removed: ${reason}`);
      // A class's recordings stay until the class ends; others from now on expire.
      if (this.#recordings !== null && this.#policy(entry.sessionId) === null) {
        this.#recordings.expireAt(entry.id, Date.now() + this.#config.recordingRetentionMs);
      }
      const removed: ContainerJson = {
        ...json,
        state: 'removed',
        exitReason: entry.exitReason ?? reason,
        terminals: [],
      };
      if (reason === 'idle' || reason === 'lifetime')
        this.#remember(entry.sessionId, entry.id, removed.exitReason ?? reason);
      this.#publish(entry.sessionId, { type: 'container', container: removed });
      this.#metrics?.containersRemoved.inc({ reason });
      this.#logger.info(
        {
          event: 'container.removed',
          containerId: entry.id,
          session: sessionLabel(entry.sessionId),
          reason,
          exitCode: entry.container?.lifecycle.exitCode ?? null,
        },
        'container removed',
      );
    })();
    entry.removing = removal;
    return removal;
  }

  /** Forgets a container whose start failed (the runtime already removed it). */
  async #discard(entry: Entry): Promise<void> {
    await this.#runtime.remove(entry.id, { force: true }).catch(() => undefined);
    this.#discardNow(entry, WS_CLOSE.NORMAL, 'container failed to start');
  }

  #discardNow(entry: Entry, code: number, reason: string): void {
    for (const terminal of entry.terminals.values()) terminal.dispose(code, reason);
    entry.terminals.clear();
    this.#forget(entry);
  }

  // ---- networks ----

  /**
   * Makes a network for a class's containers (SessionPolicy.network); it stays until
   * releaseNetwork and the last container on it are gone.
   */
  async createNetwork(name: string): Promise<string> {
    if (this.#networks.has(name)) throw new MdockerError('CONFLICT', `network ${name} already exists`);
    const use = this.#newNetwork(name, null);
    try {
      await use.ready;
    } catch (err) {
      void this.#releaseNetwork(name);
      throw err;
    }
    return name;
  }

  /** Drops one hold of the network; the last one removes it. Resolves once it is removed. */
  releaseNetwork(name: string): Promise<void> {
    return this.#releaseNetwork(name);
  }

  #newNetwork(name: string, session: string | null): NetworkUse {
    // owner: a killed server's networks are reaped by its next start, like its containers.
    const ready = this.#runtime.networks.create(name, { owner: true, egress: this.#config.networkEgress }).then(() => {
      use.made = true;
    });
    ready.catch(() => undefined);
    const use: NetworkUse = { holds: 1, session, ready };
    this.#networks.set(name, use);
    if (session !== null) this.#sessionNetworks.set(session, name);
    return use;
  }

  /**
   * The network a new container joins, held for it: the class's, or the session's (made
   * with its first container; a warm container gets one of its own).
   */
  async #holdNetwork(sessionId: string, classNetwork: string | null, retried = false): Promise<string | null> {
    if (classNetwork === null && this.#networksUnavailable !== null) return null;
    let name = classNetwork ?? (sessionId === WARM_POOL ? undefined : this.#sessionNetworks.get(sessionId));
    let use = name === undefined ? undefined : this.#networks.get(name);
    if (name !== undefined && use !== undefined) {
      use.holds++;
      clearTimeout(use.graceTimer);
      use.graceTimer = undefined;
    } else if (classNetwork !== null) {
      throw new MdockerError('CONFLICT', 'the class has ended');
    } else {
      name = `pg-${randomBytes(6).toString('hex')}`;
      use = this.#newNetwork(name, sessionId === WARM_POOL ? null : sessionId);
    }
    try {
      await use.ready;
    } catch (err) {
      void this.#releaseNetwork(name);
      // The range's subnets are all taken: networks in their grace make way, once.
      if (!retried && err instanceof MdockerError && err.code === 'UNAVAILABLE' && (await this.#dropLingering()) > 0)
        return this.#holdNetwork(sessionId, classNetwork, true);
      if (classNetwork !== null || !hostCannotNetwork(err)) throw err;
      // The playground still works without networks: each container keeps only lo.
      this.#networksUnavailable = errorMessage(err);
      this.#logger.warn(
        { event: 'server.no-networks', err },
        `cannot create container networks on this host (${this.#networksUnavailable}): containers get only lo`,
      );
      return null;
    }
    return name;
  }

  /** Whether the session has a network a container of its holds (not one in its grace). */
  #sessionNetworkHeld(sessionId: string): boolean {
    const name = this.#sessionNetworks.get(sessionId);
    return name !== undefined && (this.#networks.get(name)?.holds ?? 0) > 0;
  }

  /**
   * Drops one hold of the network. The last hold of a session's network starts its grace
   * (PlaygroundConfig.networkGraceMs): the session's next container joins it instead of
   * waiting for a new one. Any other network, or one past its grace, is removed; the
   * returned promise resolves once it is (at once while it lingers).
   */
  #releaseNetwork(name: string | null): Promise<void> {
    if (name === null) return Promise.resolve();
    const use = this.#networks.get(name);
    if (use === undefined || --use.holds > 0) return Promise.resolve();
    const grace = this.#config.networkGraceMs;
    if (use.session !== null && use.made === true && grace > 0 && !this.#shuttingDown) {
      use.graceTimer = setTimeout(() => void this.#removeLingering(name), grace).unref();
      return Promise.resolve();
    }
    return this.#removeNetwork(name, use);
  }

  /** Removes every network in its grace; resolves with how many there were, once they are gone. */
  async #dropLingering(): Promise<number> {
    const lingering = [...this.#networks].filter(([, use]) => use.holds === 0).map(([name]) => name);
    await Promise.allSettled(lingering.map((name) => this.#removeLingering(name)));
    return lingering.length;
  }

  /** Removes a session's network that nobody holds (its grace is over, or cut short). */
  #removeLingering(name: string): Promise<void> {
    const use = this.#networks.get(name);
    if (use === undefined || use.holds > 0) return Promise.resolve();
    return this.#removeNetwork(name, use);
  }

  #removeNetwork(name: string, use: NetworkUse): Promise<void> {
    clearTimeout(use.graceTimer);
    use.graceTimer = undefined;
    this.#networks.delete(name);
    if (use.session !== null && this.#sessionNetworks.get(use.session) === name)
      this.#sessionNetworks.delete(use.session);
    const removal = use.ready
      .then(
        () => this.#runtime.networks.remove(name, { force: true }),
        () => undefined, // never made
      )
      .catch((err: unknown) => {
        if (err instanceof MdockerError && err.code === 'NOT_FOUND') return;
        this.#logger.warn({ err, network: name }, 'removing a network failed; the next start reaps it');
      })
      .finally(() => this.#networkRemovals.delete(removal));
    this.#networkRemovals.add(removal);
    return removal;
  }

  // ---- the warm pool ----

  #warmCount(): number {
    return this.#bySession.get(WARM_POOL)?.size ?? 0;
  }

  /** What a click on "new container" asks for: what the pool's containers are. */
  #isDefaultRequest(request: CreateRequest, limits: Limits): boolean {
    const config = this.#config;
    return (
      (request.image === undefined || request.image === config.defaultImage) &&
      request.cmd === undefined &&
      request.hostname === undefined &&
      request.lesson === undefined &&
      limits.memoryBytes === config.defaultMemoryBytes &&
      limits.cpus === config.defaultCpus &&
      limits.pidsLimit === config.defaultPidsLimit
    );
  }

  /**
   * Hands a running warm container to the session: its shell has printed its prompt
   * already, so the attach shows it at once. Its lifetime and idle clocks start now.
   */
  #takeWarm(sessionId: string, clientAddress: string | null): ContainerJson | null {
    const ids = this.#bySession.get(WARM_POOL);
    for (const id of ids ?? []) {
      const entry = this.#entries.get(id);
      if (!entry || statusOf(entry) !== 'running' || entry.removing) continue;
      ids!.delete(id);
      if (ids!.size === 0) this.#bySession.delete(WARM_POOL);
      entry.sessionId = sessionId;
      entry.clientAddress = clientAddress;
      if (entry.network !== null) {
        // The warm container's network becomes the session's. One the session had in its
        // grace is no longer found and goes when the grace ends: removing it now would
        // put a launcher run into the click.
        const use = this.#networks.get(entry.network);
        if (use) use.session = sessionId;
        this.#sessionNetworks.set(sessionId, entry.network);
      }
      this.#containersByAddress.add(clientAddress, 1);
      this.#sessionIds(sessionId).add(id);
      entry.createdAtMs = Date.now();
      entry.lastWatchedAtMs = Date.now();
      this.#metrics?.createSeconds.observe({ outcome: 'warm' }, 0);
      this.#logger.info(
        { event: 'container.created', containerId: id, session: sessionLabel(sessionId), warm: true },
        'container created (from the warm pool)',
      );
      this.#notify(entry);
      this.#refillWarmPoolSoon();
      return this.#toJson(entry);
    }
    return null;
  }

  /**
   * Refills once the clicks have settled: a class clicking together gets its shells
   * attached before the replacements compete with them for the CPU.
   */
  #refillWarmPoolSoon(): void {
    if (this.#warmRefill) clearTimeout(this.#warmRefill);
    this.#warmRefill = setTimeout(() => {
      this.#warmRefill = null;
      void this.#fillWarmPool();
    }, WARM_REFILL_DELAY_MS);
    this.#warmRefill.unref();
  }

  /** Makes room for a container the pool cannot serve when the server is full. */
  async #evictWarm(): Promise<void> {
    for (const id of this.#bySession.get(WARM_POOL) ?? []) {
      const entry = this.#entries.get(id);
      if (entry && !entry.removing) {
        await this.#remove(entry, 'shutdown').catch(() => undefined);
        return;
      }
    }
  }

  /**
   * Starts default containers, one at a time, until the pool holds --warm-pool of them
   * (never past --max-containers). Called at start, after each hand-out and by the
   * reaper, which also retires warm containers past their lifetime or idle time.
   */
  async #fillWarmPool(): Promise<void> {
    if (this.#warmFilling || this.#config.warmPool === 0) return;
    if (Date.now() - this.#warmFailedAtMs < WARM_RETRY_MS) return;
    this.#warmFilling = true;
    try {
      const limits = resolveCreateLimits(this.#config, { memoryBytes: null, cpus: null, pidsLimit: null });
      while (
        !this.#shuttingDown &&
        this.#warmCount() < this.#config.warmPool &&
        this.#entries.size + this.#creatingTotal < this.#config.maxContainers
      ) {
        const creation = this.#create(WARM_POOL, { limits }, limits, () => undefined);
        this.#inFlight.add(creation);
        try {
          await creation;
        } catch (err) {
          if (!this.#shuttingDown) this.#logger.warn({ err }, 'the warm pool could not start a container');
          this.#warmFailedAtMs = Date.now();
          return;
        } finally {
          this.#inFlight.delete(creation);
        }
      }
    } finally {
      this.#warmFilling = false;
    }
  }

  #forget(entry: Entry): void {
    this.#sampler.forget(entry.id);
    this.#cpuBoost?.forget(entry.id);
    if (this.#entries.delete(entry.id)) {
      this.#containersByAddress.add(entry.clientAddress, -1);
      void this.#releaseNetwork(entry.network);
      for (const observer of this.#observers) observer.removed?.(entry.sessionId, entry.id);
    }
    const ids = this.#bySession.get(entry.sessionId);
    ids?.delete(entry.id);
    if (ids?.size === 0) this.#bySession.delete(entry.sessionId);
  }

  #remember(sessionId: string, id: string, exitReason: ExitReason): void {
    this.#tombstones.set(id, { sessionId, exitReason, expiresAtMs: Date.now() + TOMBSTONE_MS });
    while (this.#tombstones.size > MAX_TOMBSTONES) {
      const oldest = this.#tombstones.keys().next().value;
      if (oldest === undefined) break;
      this.#tombstones.delete(oldest);
    }
  }

  /** An exited exec terminal makes room for a new one. */
  #evictExitedTerminal(entry: Entry): void {
    if (entry.terminals.size < this.#config.maxTerminalsPerContainer) return;
    for (const [id, terminal] of entry.terminals) {
      if (id !== 0 && terminal.state === 'exited' && terminal.clientCount === 0) {
        entry.terminals.delete(id);
        terminal.dispose();
        return;
      }
    }
  }

  #reap(): void {
    const now = Date.now();
    for (const [id, tombstone] of this.#tombstones) if (tombstone.expiresAtMs <= now) this.#tombstones.delete(id);
    void this.#fillWarmPool();
    const { idleTimeoutMs, maxLifetimeMs } = this.#config;
    for (const entry of this.#entries.values()) {
      if (entry.removing || statusOf(entry) === 'created') continue;
      if (maxLifetimeMs > 0 && now - entry.createdAtMs >= maxLifetimeMs) {
        void this.#remove(entry, 'lifetime').catch(() => undefined);
        continue;
      }
      if (this.#watched(entry)) {
        entry.lastWatchedAtMs = now;
      } else if (idleTimeoutMs > 0 && now - entry.lastWatchedAtMs >= idleTimeoutMs) {
        void this.#remove(entry, 'idle').catch(() => undefined);
      }
    }
  }

  /** Someone has a terminal of it open, or its owner's page is showing the stats stream. */
  #watched(entry: Entry): boolean {
    if ((this.#subscribers.get(entry.sessionId)?.size ?? 0) > 0) return true;
    for (const terminal of entry.terminals.values()) if (terminal.clientCount > 0) return true;
    return false;
  }

  /** The container's counter files, open until the sampler untracks it. */
  #openStats(id: string): StatsSource {
    const entry = this.#entries.get(id);
    if (!entry || statusOf(entry) !== 'running') throw notFound(id);
    // The cgroup paths are known: no state file read per sample.
    const reader = this.#runtime.cgroups.openStats(this.#runtime.cgroups.handleFromPaths(id, entry.record.cgroupPaths));
    // The limits are the ones this server wrote (create, update): no need to read them back.
    return { read: () => reader.read(entry.record.limits), close: () => reader.close() };
  }

  #owned(sessionId: string, id: string): Entry {
    const entry = this.#entries.get(id);
    // Someone else's container is as unknown as a made-up id: no existence oracle.
    if (!entry || entry.sessionId !== sessionId) throw notFound(id);
    return entry;
  }

  #sessionIds(sessionId: string): Set<string> {
    let ids = this.#bySession.get(sessionId);
    if (!ids) {
      ids = new Set();
      this.#bySession.set(sessionId, ids);
    }
    return ids;
  }

  #notify(entry: Entry): void {
    if (!this.#entries.has(entry.id)) return;
    this.#publish(entry.sessionId, { type: 'container', container: this.#toJson(entry) });
  }

  #publish(sessionId: string, message: StatsServerMessage): void {
    for (const observer of this.#observers) observer.message(sessionId, message);
    const subscribers = this.#subscribers.get(sessionId);
    if (!subscribers) return;
    for (const subscriber of subscribers) subscriber.send(message);
  }

  #toJson(entry: Entry): ContainerJson {
    const lifecycle = entry.container?.lifecycle;
    return {
      ...toContainerJson(
        lifecycle ?? { record: entry.record, status: 'created', initPid: null, exitCode: null, finishedAt: null },
        // Between the runtime's removal and the entry's discard, the reason is the stop's.
        entry.exitReason ?? (lifecycle?.status === 'removed' ? entry.stopReason : null),
      ),
      // The record as last read (its limits follow updates).
      limits: { ...entry.record.limits },
      startedAt: entry.record.startedAt,
      lesson: entry.lesson,
      terminals: [...entry.terminals.values()].map((terminal) => terminal.toJson()),
      exposedPorts: [...entry.exposedPorts],
    };
  }
}

/** The container's state as the runtime keeps it. */
function statusOf(entry: Entry): ContainerState {
  return entry.container?.lifecycle.status ?? 'created';
}

/** The runtime's lifecycle of a container as the wire shows it; terminals are the caller's. */
function toContainerJson(
  lifecycle: Pick<ContainerLifecycle, 'record' | 'status' | 'initPid' | 'exitCode' | 'finishedAt'>,
  exitReason: ExitReason | null,
): Omit<ContainerJson, 'terminals'> & { terminals: [] } {
  const { record } = lifecycle;
  return {
    id: record.id,
    name: record.name,
    image: record.image ?? '',
    hostname: record.hostname,
    cmd: record.cmd,
    state: lifecycle.status,
    limits: { ...record.limits },
    initPid: lifecycle.initPid,
    createdAt: record.createdAt,
    startedAt: record.startedAt,
    finishedAt: lifecycle.finishedAt,
    exitCode: lifecycle.exitCode,
    exitReason,
    terminals: [],
    network: record.network ?? null,
  };
}

/** What the runtime records for each of the server's reasons to remove a container. */
const REMOVAL_REASONS: Record<ExitReason, RemovalReason> = {
  exited: 'exit',
  'launch-failed': 'exit',
  oom: 'exit',
  killed: 'kill',
  idle: 'idle',
  lifetime: 'lifetime',
  shutdown: 'shutdown',
  'class-ended': 'kill',
  reset: 'kill',
};

/**
 * A lesson's container settings over the request: its image, its limits where the request
 * gave none (within a class, never above the class's).
 */
function applyLesson(
  lessonId: string,
  lesson: LessonContainerSettings,
  request: CreateRequest,
  policy: SessionPolicy | null,
): CreateRequest {
  const limits: Limits = { ...request.limits };
  for (const key of ['memoryBytes', 'cpus', 'pidsLimit'] as const) {
    const wanted = lesson.limits[key];
    if (limits[key] !== null || wanted === null) continue;
    const allowed = policy?.limits[key] ?? null;
    limits[key] = allowed === null ? wanted : Math.min(wanted, allowed);
  }
  const image = policy ? request.image : (request.image ?? lesson.image ?? undefined);
  return { ...request, ...(image === undefined ? {} : { image }), limits, lesson: lessonId };
}

function relaxed(security: SecurityOptions): boolean {
  return security.capAdd.length > 0 || security.seccomp !== 'default';
}

/** A student's request within its class: the class's image, at most the class's limits. */
function applyPolicy(policy: SessionPolicy, request: CreateRequest, ownImage = false): CreateRequest {
  if (policy.closed !== null) throw new MdockerError('CONFLICT', policy.closed);
  if (request.image !== undefined && request.image !== policy.image && !ownImage) {
    throw new MdockerError('INVALID_ARGUMENT', `this class uses the image ${policy.image}`, { image: policy.image });
  }
  const limits: Limits = { ...policy.limits };
  for (const key of ['memoryBytes', 'cpus', 'pidsLimit'] as const) {
    const asked = request.limits[key];
    if (asked !== null) limits[key] = asked;
  }
  checkWithinPolicy(policy, limits);
  return { ...request, image: ownImage ? request.image : policy.image, limits };
}

/** A student's limits, at create or changed live, stay within the class's. */
function checkWithinPolicy(policy: SessionPolicy, limits: Partial<Limits>): void {
  for (const key of ['memoryBytes', 'cpus', 'pidsLimit'] as const) {
    const asked = limits[key];
    const allowed = policy.limits[key];
    if (asked === undefined || allowed === null) continue;
    if (asked === null || asked > allowed) {
      throw new MdockerError(
        'LIMIT_EXCEEDED',
        `${asked === null ? `no ${key}` : `${key} ${asked}`} is more than your class allows (${allowed})`,
        { cap: key, limit: allowed },
      );
    }
  }
}

/** A network creation that failed for want of kernel support (no bridge or veth), not by chance. */
function hostCannotNetwork(err: unknown): boolean {
  if (!(err instanceof MdockerError)) return false;
  const errno = (err.details as { errno?: unknown } | undefined)?.errno;
  // EOPNOTSUPP, EAFNOSUPPORT, EPROTONOSUPPORT, ENOENT (a missing link kind's module).
  return (err.code === 'SYSCALL' || err.code === 'UNSUPPORTED') && [95, 97, 93, 2].includes(Number(errno));
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
