/**
 * The runtime: containers as a state machine (created → running → exited → removed)
 * over the state store, the cgroup driver and the launcher. The CLI and the server both
 * drive containers through this class, and it starts every launcher (process.ts):
 * create() prepares, start() launches the init and records its start and exit, exec()
 * launches a process in a running container.
 */
import { existsSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MdockerError, type LauncherErrorJson } from './errors.js';
import { detectCgroupDriver } from './cgroups/detect.js';
import {
  validateGroupName,
  type CgroupDriver,
  type CgroupHandle,
  type CgroupStats,
  type GroupBudget,
} from './cgroups/driver.js';
import { idmapSupport, kernelVersion, userNamespacesAvailable, type HostInfo } from './host.js';
import { existingImageStore, imagesDir as imageStoreDir, resolveRunImage } from './images.js';
import type { RunConfig } from './images/oci.js';
import { runSettings } from './images/run-config.js';
import {
  DEFAULT_SECURITY,
  assertPoolFree,
  execCommand,
  runCommand,
  usernsPool,
  type LaunchCommand,
  type SecurityOptions,
} from './launcher.js';
import { assertLauncherBuilt, exited, isAlive, refOf, selfRef, signalProcess, type ProcessRef } from './native.js';
import { Lifecycles, type ContainerLifecycle, type RemovalReason } from './lifecycle.js';
import { Networks, type NetworkAttachment } from './networks.js';
import { launch, type LaunchedProcess, type Stdio } from './process.js';
import { randomHex } from './random.js';
import { StateStore, type ContainerRecord, type GroupRecord } from './state.js';
import { MIN_MEMORY_BYTES, type Limits } from './units.js';

export type { ContainerRecord, GroupRecord } from './state.js';
export type { GroupBudget } from './cgroups/driver.js';
/** What the state store can tell: a container is removed once its state is gone. */
export type ContainerStatus = 'created' | 'running' | 'exited';
export type ContainerView = ContainerRecord & { status: ContainerStatus };

export type { ContainerLifecycle, RemovalReason } from './lifecycle.js';

export interface CreateOptions {
  image?: string;
  /** A plain directory run read-write, as the original mdocker did (instead of image). */
  rootfs?: string;
  name?: string;
  hostname?: string;
  /** The command; absent: the image's (Entrypoint and Cmd), /bin/sh for a built-in image. */
  cmd?: string[];
  /** Replaces the image's Entrypoint ([]: none), as docker run --entrypoint. */
  entrypoint?: string[];
  env?: string[];
  workdir?: string;
  /** name, uid, name:group or uid:gid, resolved in the image; absent: the image's User. */
  user?: string;
  /** More supplementary groups (docker run --group-add): names of the image's /etc/group or gids. */
  groupAdd?: string[];
  tty: boolean;
  limits: Limits;
  security?: SecurityOptions;
  cgroupParent?: string;
  /**
   * The group (createGroup) whose cgroup holds the container's, below the group's own
   * parent: the container shares the group's budget on top of its own limits.
   */
  group?: string;
  autoRemove?: boolean;
  /** The network (Runtime.networks) to join; absent or 'none': the container has only lo. */
  network?: string;
  /**
   * A detached container's output goes to its state dir's output.log, kept to this many
   * bytes (the host's /run is a small tmpfs).
   */
  outputLogMaxBytes?: number;
  /** The container dies with the process that spawns the launcher. */
  dieWithParent?: boolean;
  layerSizeBytes?: number;
}

export interface PreparedContainer extends LaunchCommand {
  record: ContainerRecord;
}

export interface ExecOptions {
  cmd: string[];
  tty: boolean;
  env?: string[];
  workdir?: string;
  dieWithParent?: boolean;
  errorFile?: string;
}

export type LaunchError = LauncherErrorJson;

/** How a launcher ended: Docker's exit code, and the launcher's own error if it failed. */
export interface ExitOutcome {
  code: number;
  error: LaunchError | null;
}

/** A launched container init, or an exec. */
export interface ContainerProcess {
  readonly process: LaunchedProcess;
  /** Resolves after the launcher exited and the runtime recorded it. */
  readonly done: Promise<ExitOutcome>;
}

export interface StartedContainer extends ContainerProcess {
  /** The record once the init is in its cgroups; its init is null when the launcher failed first. */
  readonly started: Promise<ContainerRecord>;
  /** The container's state, which the runtime keeps current. */
  readonly lifecycle: Readonly<ContainerLifecycle>;
}

export const DEFAULT_IMAGE = 'busybox';
export const DEFAULT_CMD = ['/bin/sh'];
/** A built-in image's or a rootfs's config: a shell, as root, in /. */
const BUILTIN_RUN_CONFIG: RunConfig = {
  entrypoint: [],
  cmd: DEFAULT_CMD,
  env: [],
  workdir: '',
  user: '',
  exposedPorts: [],
};
export const DEFAULT_LAYER_SIZE_BYTES = 256 * 1024 * 1024;
/** A container record with no launcher this long after creation was never started. */
const UNSTARTED_GRACE_MS = 60_000;
/** How often started() looks again when inotify said nothing (it normally does). */
const INIT_PID_POLL_MS = 50;
/** After its init is killed, the launcher has this long to clean up and exit before SIGKILL. */
const LAUNCHER_EXIT_WAIT_MS = 5_000;
/** How long a reap waits for a leftover group's cgroup to go (it should hold nothing). */
const GROUP_REAP_TIMEOUT_MS = 1_000;

export interface RuntimeOptions {
  stateRoot?: string;
  cgroups?: CgroupDriver;
  imagesDir?: string;
  /** Where networks' subnets come from (default 10.89.0.0/16, or MDOCKER_NETWORK_RANGE). */
  networkRange?: string;
  /** Told about a weaker setting the host forced (default: a line on stderr). */
  warn?: (message: string) => void;
}

export class Runtime {
  readonly state: StateStore;
  readonly cgroups: CgroupDriver;
  readonly networks: Networks;
  private readonly imagesDir: string | undefined;
  private readonly locks = new Map<string, Promise<void>>();
  private readonly warn: (message: string) => void;
  private readonly warned = new Set<string>();
  /** Containers a remove() of this process is taking down: their exit is not recorded. */
  private readonly removing = new Set<string>();
  /** The containers this runtime started, and those removed within the last hour. */
  private readonly lifecycles = new Lifecycles();

  private constructor(
    state: StateStore,
    cgroups: CgroupDriver,
    imagesDir: string | undefined,
    warn: (message: string) => void,
    networks: Networks,
  ) {
    this.state = state;
    this.networks = networks;
    this.cgroups = cgroups;
    this.imagesDir = imagesDir;
    this.warn = warn;
  }

  static async open(opts: RuntimeOptions = {}): Promise<Runtime> {
    if (process.getuid?.() !== 0) {
      throw new MdockerError('NOT_ROOT', 'mdocker needs root: namespaces, cgroups and mounts are root-only (try sudo)');
    }
    assertLauncherBuilt();
    const state = new StateStore(opts.stateRoot);
    return new Runtime(
      state,
      opts.cgroups ?? detectCgroupDriver(),
      opts.imagesDir,
      opts.warn ?? ((message) => process.stderr.write(`mdocker: warning: ${message}\n`)),
      new Networks(state.root, opts.networkRange),
    );
  }

  /** The host as this runtime uses it; on cgroup v2 this finds the delegated cgroup (once). */
  async info(): Promise<HostInfo> {
    const placement = await this.cgroups.describe();
    return {
      kernelVersion: kernelVersion(),
      cgroupVersion: placement.version,
      cgroupDriver: placement.driver,
      cgroupParent: placement.parentPaths[0] ?? '',
      cgroupParents: placement.parentPaths,
      systemdUnit: placement.systemdUnit,
      controllers: placement.controllers,
      userNamespaces: userNamespacesAvailable(),
      idmappedMounts: await idmapSupport(imageStoreDir({ imagesDir: this.imagesDir })),
      stateRoot: this.state.root,
    };
  }

  /**
   * A private user namespace shows the image through an idmapped mount; where the image's
   * filesystem cannot take one, the container runs in the host's user namespace instead
   * (Docker's default), said once per filesystem (SECURITY.md).
   */
  private async usableSecurity(security: SecurityOptions, source: string): Promise<SecurityOptions> {
    if ((security.userns ?? 'private') === 'host') return security;
    assertPoolFree(usernsPool());
    const idmap = await idmapSupport(source);
    if (idmap.supported) return security;
    if (!this.warned.has(idmap.reason ?? source)) {
      this.warned.add(idmap.reason ?? source);
      this.warn(
        `${idmap.reason ?? `${source} cannot be idmapped`}: containers run without a user namespace ` +
          "(their root is host root, confined as in Docker's default); keep the images on ext4, xfs or btrfs " +
          '(MDOCKER_IMAGES; the store: MDOCKER_DATA_DIR) to have one (SECURITY.md)',
      );
    }
    return { ...security, userns: 'host' };
  }

  async create(opts: CreateOptions): Promise<PreparedContainer> {
    if (opts.cmd !== undefined && opts.cmd.length === 0) throw new MdockerError('INVALID_ARGUMENT', 'missing command');
    const cgroupParent = await this.containerCgroupParent(opts);
    let imagePath: string | null = null;
    let imageLayers: string[] | null = null;
    let imageId: string | null = null;
    let rootfs: string | null = null;
    let config = BUILTIN_RUN_CONFIG;
    if (opts.rootfs !== undefined) {
      if (!existsSync(opts.rootfs) || !statSync(opts.rootfs).isDirectory()) {
        throw new MdockerError('NOT_FOUND', `rootfs ${opts.rootfs} is not a directory`);
      }
      rootfs = opts.rootfs;
    } else {
      const image = await resolveRunImage(opts.image ?? DEFAULT_IMAGE, { imagesDir: this.imagesDir });
      if ('builtin' in image) imagePath = image.builtin.path;
      else ({ layerRoots: imageLayers, id: imageId, config } = image.stored);
    }
    const run = await runSettings(config, opts, imageLayers ?? [imagePath ?? rootfs ?? '/']);
    await assertOverlayfs(rootfs === null);
    const network = opts.network === undefined || opts.network === 'none' ? null : opts.network;
    if (network !== null && (await this.networks.get(network)) === null) {
      throw new MdockerError('NOT_FOUND', `no such network: ${network}`);
    }
    const security = withNetRaw(
      await this.usableSecurity(opts.security ?? DEFAULT_SECURITY, imagePath ?? imageLayers?.[0] ?? rootfs ?? '/'),
      network !== null,
    );

    const id = randomHex(16);
    const record: ContainerRecord = {
      id,
      name: opts.name ?? `mdocker-${id.slice(0, 8)}`,
      image: rootfs === null ? (opts.image ?? DEFAULT_IMAGE) : null,
      imageId,
      rootfs,
      hostname: opts.hostname ?? id.slice(0, 12),
      cmd: run.cmd,
      env: run.env,
      workdir: run.workdir,
      ...(run.user === null ? {} : { user: run.user }),
      ...(run.groups.length === 0 ? {} : { groups: run.groups }),
      tty: opts.tty,
      limits: opts.limits,
      security,
      cgroupPaths: [],
      group: opts.group ?? null,
      network: null,
      autoRemove: opts.autoRemove ?? false,
      owner: opts.dieWithParent ? selfRef() : null,
      createdAt: new Date().toISOString(),
      launcher: null,
      init: null,
      startedAt: null,
      finishedAt: null,
      exitCode: null,
    };
    await this.state.createDir(record);
    let handle: CgroupHandle | null = null;
    let attachment: NetworkAttachment | null = null;
    try {
      handle = await this.cgroups.create(id, opts.limits, cgroupParent, opts.group);
      record.cgroupPaths = handle.paths;
      if (network !== null) {
        attachment = await this.networks.attach(network, record);
        record.network = { name: network, ip: attachment.ip };
      }
      await this.state.write(record);
    } catch (err) {
      if (handle) await this.cgroups.remove(handle).catch(() => undefined);
      if (attachment) await this.networks.detach(attachment.name, id).catch(() => undefined);
      await this.state.remove(record);
      throw err;
    }
    const command = runCommand({
      id,
      hostname: record.hostname,
      imagePath,
      imageLayers,
      rootfs,
      layerDir: this.state.file(id, 'layer'),
      layerSizeBytes: opts.layerSizeBytes ?? DEFAULT_LAYER_SIZE_BYTES,
      cgroupPaths: record.cgroupPaths,
      env: record.env,
      workdir: record.workdir,
      user: record.user ?? null,
      groups: record.groups ?? [],
      tty: record.tty,
      pidFile: this.state.file(id, 'init.pid'),
      errorFile: this.state.file(id, 'error.json'),
      exitFile: this.state.file(id, 'exit.json'),
      // A detached --rm container is cleaned up by its launcher: nobody else waits for it.
      cleanupDir: record.autoRemove && !opts.dieWithParent ? this.state.dir(id) : null,
      outputLog:
        opts.outputLogMaxBytes === undefined
          ? null
          : { path: this.state.file(id, 'output.log'), maxBytes: opts.outputLogMaxBytes },
      dieWithParent: opts.dieWithParent ?? false,
      security: record.security,
      network: attachment,
      cmd: record.cmd,
    });
    return { record, ...command };
  }

  /** Where a new container's cgroup goes: its group's parent when it has a group. */
  private async containerCgroupParent(opts: CreateOptions): Promise<string | undefined> {
    if (opts.group === undefined) return opts.cgroupParent ?? process.env.MDOCKER_CGROUP_PARENT;
    validateGroupName(opts.group);
    const group = await this.state.readGroup(opts.group);
    if (group === null || group.cgroupPaths.length === 0) {
      throw new MdockerError('NOT_FOUND', `no such group: ${opts.group} (create it first)`);
    }
    if (opts.cgroupParent !== undefined && opts.cgroupParent !== (group.cgroupParent ?? undefined)) {
      throw new MdockerError(
        'INVALID_ARGUMENT',
        `a container of group ${opts.group} goes below the group's cgroup parent, not ${JSON.stringify(opts.cgroupParent)}`,
      );
    }
    return group.cgroupParent ?? undefined;
  }

  /**
   * Makes the group `name`'s cgroup (below the default parent, or MDOCKER_CGROUP_PARENT)
   * with a memory and CPU budget all its containers share; create({ group }) puts
   * containers below it. On an existing group, writes the new budget. The record (with
   * this process as the owner) is written before the cgroup, so a crash in between still
   * leaves something for reapLeftovers to go by.
   */
  async createGroup(name: string, budget: GroupBudget): Promise<void> {
    validateGroupName(name);
    validateBudget(budget);
    const existing = await this.state.readGroup(name);
    const record: GroupRecord = {
      name,
      budget: { memoryBytes: budget.memoryBytes, cpus: budget.cpus },
      cgroupParent: existing !== null ? existing.cgroupParent : (process.env.MDOCKER_CGROUP_PARENT ?? null),
      cgroupPaths: existing?.cgroupPaths ?? [],
      owner: existing?.owner && isAlive(existing.owner) ? existing.owner : selfRef(),
      createdAt: existing?.createdAt ?? new Date().toISOString(),
    };
    await this.state.writeGroup(record);
    try {
      const handle = await this.cgroups.createGroup(name, budget, record.cgroupParent ?? undefined);
      record.cgroupPaths = handle.paths;
      await this.state.writeGroup(record);
    } catch (err) {
      if (existing === null) await this.state.removeGroup(name).catch(() => undefined);
      throw err;
    }
    if (existing !== null && this.cgroups.version === 1) await this.reapplyCpuLimits(name);
  }

  /** A new budget for an existing group; NOT_FOUND when there is none. */
  async updateGroup(name: string, budget: GroupBudget): Promise<void> {
    validateGroupName(name);
    if ((await this.state.readGroup(name)) === null) throw new MdockerError('NOT_FOUND', `no such group: ${name}`);
    await this.createGroup(name, budget);
  }

  /**
   * On v1 a container's quota is capped at its group's when written (v1.ts): after a
   * budget change, each running container of the group gets its own quota again, capped
   * at the new budget.
   */
  private async reapplyCpuLimits(name: string): Promise<void> {
    for (const record of await this.state.readAll()) {
      if (record.group !== name || record.exitCode !== null || record.limits.cpus === null) continue;
      const handle = this.cgroups.handleFromPaths(record.id, record.cgroupPaths);
      await this.cgroups.update(handle, { cpus: record.limits.cpus }).catch(() => undefined);
    }
  }

  /**
   * Removes the group: its containers first (killed if running), then anything left in its
   * cgroup, then the cgroup and its record. Idempotent. Resolves after the cgroup is gone.
   */
  async removeGroup(name: string): Promise<void> {
    validateGroupName(name);
    let firstError: unknown;
    for (const container of await this.state.readAll()) {
      if (container.group !== name) continue;
      try {
        await this.remove(container.id, { force: true, reason: 'kill' });
      } catch (err) {
        // Removed meanwhile by its owner: what this call wanted.
        if (!(err instanceof MdockerError && err.code === 'NOT_FOUND')) firstError ??= err;
      }
    }
    const record = await this.state.readGroup(name);
    const handle =
      record !== null && record.cgroupPaths.length > 0
        ? this.cgroups.handleFromPaths(name, record.cgroupPaths)
        : await this.cgroups.groupHandle(name, record?.cgroupParent ?? process.env.MDOCKER_CGROUP_PARENT);
    await this.killGroupProcesses(handle);
    await this.cgroups.remove(handle);
    await this.state.removeGroup(name);
    if (firstError !== undefined) throw firstError;
  }

  /**
   * Kills what is left in a group's cgroup: nothing, unless a process got out of its
   * container's cgroup into the group's. Each is proven to be in the group first.
   */
  private async killGroupProcesses(handle: CgroupHandle): Promise<void> {
    if (await this.cgroups.killAll(handle).catch(() => false)) return;
    for (const pid of await this.cgroups.procs(handle).catch(() => [])) {
      const ref = refOf(pid);
      if (ref === null) continue;
      try {
        if (this.cgroups.ownsProcess(handle, readFileSync(`/proc/${pid}/cgroup`, 'utf8')) && isAlive(ref)) {
          signalProcess(ref, 'SIGKILL');
        }
      } catch {
        // gone meanwhile
      }
    }
  }

  /**
   * Launches a created container's init with `stdio` and records its start and its exit
   * itself. Returns at once (no await between the launch and the return, so the caller
   * attaches to the pty before its first byte is read).
   */
  start(prepared: PreparedContainer, stdio: Stdio): StartedContainer {
    const { id } = prepared.record;
    const process = launch(prepared, stdio);
    const started = process.spawned
      .then((pid) => this.started(id, pid, process.startTime))
      .catch(() => prepared.record);
    const done = (async (): Promise<ExitOutcome> => {
      const code = await process.exit;
      await started;
      if (this.removing.has(id)) return { code, error: null };
      try {
        const { error } = await this.exited(id, code);
        return { code, error };
      } catch {
        // remove() took the state away meanwhile: it reports for itself.
        return { code, error: null };
      }
    })();
    return { process, started, done, lifecycle: this.lifecycles.track(prepared.record, started, done) };
  }

  /** A container this runtime started (or removed within the last hour), as it is now. */
  lifecycle(id: string): Readonly<ContainerLifecycle> | null {
    return this.lifecycles.get(id);
  }

  /**
   * Launches a process in a running container: its namespaces, cgroup, root and
   * confinement. The launcher's own failure (125-127) comes back in `done`.
   */
  async exec(idOrName: string, opts: Omit<ExecOptions, 'errorFile'>, stdio: Stdio): Promise<ContainerProcess> {
    const record = await this.get(idOrName);
    const errorFile = join(this.state.dir(record.id), `exec-${randomHex(6)}.error.json`);
    const command = await this.execCommand(record.id, { ...opts, errorFile });
    const process = launch(command, stdio);
    const done = (async (): Promise<ExitOutcome> => {
      const code = await process.exit;
      const text = await readFile(errorFile, 'utf8').catch(() => null);
      await rm(errorFile, { force: true });
      return { code, error: code >= 125 && code <= 127 ? parseLaunchError(text) : null };
    })();
    return { process, done };
  }

  /**
   * Records the launcher's pid and waits (bounded) until its init is placed in its
   * cgroups (the pid file) or the launcher has exited.
   */
  async started(
    id: string,
    launcherPid: number,
    launcherStartTime: number | null = null,
    timeoutMs = 10_000,
  ): Promise<ContainerRecord> {
    const launcher =
      launcherStartTime === null ? refOf(launcherPid) : { pid: launcherPid, startTime: launcherStartTime };
    let record = await this.modify(id, (r) => {
      r.launcher = launcher;
      r.startedAt = new Date().toISOString();
    });
    const text = await this.waitForInitPid(id, launcher, timeoutMs);
    if (text !== null) {
      const init = refOf(Number.parseInt(text, 10));
      record = await this.modify(id, (r) => {
        r.init = init;
      });
    }
    return record;
  }

  /**
   * The launcher writes init.pid (by rename) once its init is in its cgroups. Woken by
   * inotify on the state dir rather than by sleeps; a slow poll stays as the fallback and
   * to notice a launcher that died first. null when the launcher is gone or time is up.
   */
  private async waitForInitPid(id: string, launcher: ProcessRef | null, timeoutMs: number): Promise<string | null> {
    let wake: () => void = () => undefined;
    let watcher: FSWatcher | null = null;
    try {
      watcher = watch(this.state.dir(id), { persistent: false }, (_event, name) => {
        if (name === 'init.pid') wake();
      });
      watcher.on('error', () => undefined);
    } catch {
      // no inotify (or the dir is gone): the poll below still finds it
    }
    const deadline = Date.now() + timeoutMs;
    try {
      while (Date.now() < deadline) {
        const text = await this.state.readText(id, 'init.pid');
        if (text?.endsWith('\n')) return text;
        if (!isAlive(launcher)) return null;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, INIT_PID_POLL_MS);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      return null;
    } finally {
      watcher?.close();
    }
  }

  /** Read-modify-write of a record, one at a time per container in this process; the
   * write is skipped when persist says so. */
  private async modify(
    id: string,
    change: (record: ContainerRecord) => void,
    persist: (record: ContainerRecord) => boolean = () => true,
  ): Promise<ContainerRecord> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    let release: () => void = () => undefined;
    const mine = new Promise<void>((r) => (release = r));
    const chained = previous.then(() => mine);
    this.locks.set(id, chained);
    await previous;
    try {
      const record = await this.mustRead(id);
      change(record);
      if (persist(record)) await this.state.write(record);
      return record;
    } finally {
      release();
      if (this.locks.get(id) === chained) this.locks.delete(id);
    }
  }

  /** Records the exit; the launcher's own failure (125) comes back as a LaunchError. */
  async exited(id: string, launcherExitCode: number): Promise<{ record: ContainerRecord; error: LaunchError | null }> {
    const error = await this.launchError(id, launcherExitCode);
    // A record removed with its container is not rewritten first: until the removal, a
    // reader finds the exit where the launcher wrote it (exit.json, see view).
    const record = await this.modify(
      id,
      (r) => {
        r.exitCode = launcherExitCode;
        r.finishedAt = new Date().toISOString();
      },
      (r) => !r.autoRemove,
    );
    await this.cgroups.remove(this.cgroups.handleFromPaths(id, record.cgroupPaths)).catch(() => undefined);
    await this.leaveNetwork(record);
    if (record.autoRemove) await this.state.remove(record);
    return { record, error };
  }

  async launchError(id: string, exitCode: number): Promise<LaunchError | null> {
    if (exitCode !== 125 && exitCode !== 126 && exitCode !== 127) return null;
    const error = parseLaunchError(await this.state.readText(id, 'error.json'));
    return error ?? (exitCode === 125 ? { code: 'LAUNCH_FAILED', message: 'the launcher failed' } : null);
  }

  async execCommand(idOrName: string, opts: ExecOptions): Promise<LaunchCommand> {
    const record = await this.get(idOrName);
    // The launcher outlives its init by the cgroup's removal: the init must be alive.
    if (record.status !== 'running' || !record.init || !isAlive(record.init)) {
      throw new MdockerError('CONFLICT', `container ${record.id.slice(0, 12)} is not running`);
    }
    return execCommand({
      init: record.init,
      cgroupPaths: record.cgroupPaths,
      env: opts.env ?? record.env,
      workdir: opts.workdir ?? null,
      tty: opts.tty,
      pidFile: null,
      errorFile: opts.errorFile ?? null,
      dieWithParent: opts.dieWithParent ?? false,
      // A process joining the container is confined exactly as its init.
      security: record.security ?? DEFAULT_SECURITY,
      // As docker exec: the container's user.
      user: record.user ?? null,
      groups: record.groups ?? [],
      cmd: opts.cmd,
    });
  }

  /** Sends signal to the container's init (docker kill: SIGKILL by default). */
  async kill(idOrName: string, signal: NodeJS.Signals | number = 'SIGKILL'): Promise<void> {
    const record = await this.get(idOrName);
    if (record.status !== 'running' || !record.init) {
      throw new MdockerError('CONFLICT', `container ${record.id.slice(0, 12)} is not running`);
    }
    // Only a process proven to be the container's: the init pinned by its start time, and in
    // the container's cgroup (a saved record could name any process of the host).
    if (!this.isContainers(record, record.init) || !signalProcess(record.init, signal)) {
      throw new MdockerError('CONFLICT', `container ${record.id.slice(0, 12)} is not running`);
    }
  }

  /** The process is alive, the one pinned by `ref`, and in the container's cgroup. */
  private isContainers(record: ContainerRecord, ref: ProcessRef): boolean {
    let procCgroup: string;
    try {
      procCgroup = readFileSync(`/proc/${ref.pid}/cgroup`, 'utf8');
    } catch {
      return false;
    }
    // Read after the cgroup: if it lives now, the text was its own (a live process keeps its pid).
    return (
      this.cgroups.ownsProcess(this.cgroups.handleFromPaths(record.id, record.cgroupPaths), procCgroup) && isAlive(ref)
    );
  }

  /**
   * Removes the container: kills it if running (force), waits for its launcher to go,
   * removes its cgroup and state. Resolves after the cgroup is gone.
   */
  async remove(idOrName: string, opts: { force?: boolean; reason?: RemovalReason } = {}): Promise<void> {
    const known = this.lifecycles.get(idOrName);
    if (known !== null && known.status === 'exited' && !(await this.state.read(idOrName))) {
      // It exited and removed itself (--rm): what is left is to record the removal.
      this.lifecycles.removed(idOrName, opts.reason ?? 'exit');
      return;
    }
    const record = await this.get(idOrName);
    if (record.status === 'running' && !opts.force) {
      throw new MdockerError(
        'CONFLICT',
        `container ${record.id.slice(0, 12)} is running: kill it first or remove it with force (rm -f)`,
      );
    }
    this.removing.add(record.id);
    try {
      const wasRunning = record.status === 'running';
      await this.stopProcesses(record);
      await this.cgroups.remove(this.cgroups.handleFromPaths(record.id, record.cgroupPaths));
      await this.leaveNetwork(record);
      await this.state.remove(record);
      this.lifecycles.removed(record.id, opts.reason ?? (wasRunning ? 'kill' : 'exit'));
    } finally {
      this.removing.delete(record.id);
    }
  }

  /**
   * Kills the whole container (v2: cgroup.kill; else the init, which takes its PID
   * namespace along), then the launcher if it lingers. Only processes proven to be the
   * container's are signalled.
   */
  private async stopProcesses(record: ContainerRecord): Promise<void> {
    const handle = this.cgroups.handleFromPaths(record.id, record.cgroupPaths);
    const killedAll = await this.cgroups.killAll(handle).catch(() => false);
    if (!killedAll && record.init && this.isContainers(record, record.init)) signalProcess(record.init, 'SIGKILL');
    if (record.launcher && !(await exited(record.launcher, LAUNCHER_EXIT_WAIT_MS))) {
      signalProcess(record.launcher, 'SIGKILL');
    }
    if (killedAll) return;
    // Anything still in the cgroup is the container's own (its init died, so the kernel
    // is killing it already); make sure, pid by pid, each pinned and checked first.
    for (const pid of await this.cgroups.procs(handle).catch(() => [])) {
      const ref = refOf(pid);
      if (ref && this.isContainers(record, ref)) signalProcess(ref, 'SIGKILL');
    }
  }

  async update(idOrName: string, limits: Partial<Limits>): Promise<ContainerView> {
    const record = await this.get(idOrName);
    if (record.status !== 'running') {
      throw new MdockerError('CONFLICT', `container ${record.id.slice(0, 12)} is not running`);
    }
    await this.cgroups.update(this.cgroups.handleFromPaths(record.id, record.cgroupPaths), limits);
    const fresh = await this.modify(record.id, (r) => {
      r.limits = { ...r.limits, ...limits };
    });
    return { ...fresh, status: record.status };
  }

  async stats(idOrName: string): Promise<CgroupStats> {
    const record = await this.get(idOrName);
    if (record.status !== 'running') {
      throw new MdockerError('CONFLICT', `container ${record.id.slice(0, 12)} is not running`);
    }
    return this.cgroups.stats(this.cgroups.handleFromPaths(record.id, record.cgroupPaths));
  }

  async procs(idOrName: string): Promise<number[]> {
    const record = await this.get(idOrName);
    return this.cgroups.procs(this.cgroups.handleFromPaths(record.id, record.cgroupPaths));
  }

  async get(idOrName: string): Promise<ContainerView> {
    const id = await this.state.resolve(idOrName);
    return this.view(await this.mustRead(id));
  }

  /**
   * Removes an image, or one tag of an image that has others (docker rmi). Refused while a
   * container uses it (any container; with force only a running one), and by id while it
   * has several tags (unless forced).
   */
  async removeImage(name: string, force = false): Promise<{ untagged: string[]; deleted: string | null }> {
    const containers = await this.list();
    const store = await existingImageStore();
    if (store === null) throw new MdockerError('NOT_FOUND', `no such image: ${name}`);
    return store.remove(
      name,
      (image) => {
        const user = containers.find((c) => c.imageId === image.id && (!force || c.status !== 'exited'));
        return user === undefined ? null : user.name;
      },
      force,
    );
  }

  async list(): Promise<ContainerView[]> {
    const records = await this.state.readAll();
    const views = await Promise.all(records.map((r) => this.view(r)));
    return views.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  /**
   * Cleans up after whoever crashed: containers whose launcher is gone get their cgroups
   * removed (and, if --rm or owned by a dead server/CLI, their state); containers whose
   * owner died are killed first. Returns the ids it removed entirely.
   */
  async reapLeftovers(): Promise<string[]> {
    const removed: string[] = [];
    for (const record of await this.state.readAll()) {
      if (record.exitCode !== null) continue; // finished and cleaned up by its owner
      const ownerGone = record.owner !== null && !isAlive(record.owner);
      const launcherGone = record.launcher !== null && !isAlive(record.launcher);
      const neverStarted = record.launcher === null && Date.now() - Date.parse(record.createdAt) > UNSTARTED_GRACE_MS;
      if (!ownerGone && !launcherGone && !neverStarted) continue;
      if (ownerGone) await this.stopProcesses(record);
      const handle = this.cgroups.handleFromPaths(record.id, record.cgroupPaths);
      await this.cgroups.remove(handle).catch(() => undefined);
      if (record.autoRemove || ownerGone || neverStarted) {
        await this.state.remove(record);
        removed.push(record.id);
      } else if (record.exitCode === null) {
        const view = await this.view(record);
        record.exitCode = view.exitCode;
        record.finishedAt = record.finishedAt ?? new Date().toISOString();
        await this.state.write(record);
      }
    }
    await this.reapGroups();
    await this.reapNetworks();
    return removed;
  }

  /** The container's names leave its network's hosts file and its address is free again. */
  private async leaveNetwork(record: ContainerRecord): Promise<void> {
    if (record.network) await this.networks.detach(record.network.name, record.id).catch(() => undefined);
  }

  /**
   * Members whose container is not running leave their networks; networks whose owner
   * (a server) is gone are removed: their namespace's mount, and with it the bridge and
   * every veth.
   */
  private async reapNetworks(): Promise<void> {
    const holders = await this.addressHolders();
    await this.networks.reap((id) => holders.has(id));
  }

  /** The containers that exist and have not exited: each holds its network address. */
  private async addressHolders(): Promise<Set<string>> {
    const holders = new Set<string>();
    for (const record of await this.state.readAll()) {
      if ((await this.view(record)).status !== 'exited') holders.add(record.id);
    }
    return holders;
  }

  /** `network rm`: CONFLICT while a container that has not exited is on it. */
  async removeNetwork(name: string): Promise<void> {
    const holders = await this.addressHolders();
    await this.networks.remove(name, { isLive: (id) => holders.has(id) });
  }

  /**
   * Groups whose owner is gone lose their cgroup (once no container of theirs lives) and
   * their record. A group of a live owner is left, and so is a `class-*` cgroup no record
   * here explains: another runtime (a server with a state root of its own) may own it and
   * be about to put its first container there.
   */
  private async reapGroups(): Promise<void> {
    const containers = await this.state.readAll();
    for (const group of await this.state.readAllGroups()) {
      if (group.owner !== null && isAlive(group.owner)) continue;
      const live = containers.some((c) => c.group === group.name && c.launcher !== null && isAlive(c.launcher));
      if (live) continue;
      try {
        if (group.cgroupPaths.length > 0) {
          const handle = this.cgroups.handleFromPaths(group.name, group.cgroupPaths);
          await this.cgroups.remove(handle, GROUP_REAP_TIMEOUT_MS);
        }
        await this.state.removeGroup(group.name);
      } catch {
        // Still busy: the next reap tries again.
      }
    }
  }

  private async mustRead(id: string): Promise<ContainerRecord> {
    const record = await this.state.read(id);
    if (!record) throw new MdockerError('NOT_FOUND', `no such container: ${id}`);
    return record;
  }

  private async view(record: ContainerRecord): Promise<ContainerView> {
    if (record.exitCode !== null) return { ...record, status: 'exited' };
    if (record.launcher === null) return { ...record, status: 'created' };
    if (isAlive(record.launcher)) return { ...record, status: 'running' };
    // The launcher is gone and nobody recorded the exit: the launcher's exit file knows
    // it, unless the launcher itself was killed (then the container died with it).
    const text = await this.state.readText(record.id, 'exit.json');
    let exitCode = 137;
    if (text) {
      try {
        exitCode = (JSON.parse(text) as { exitCode: number }).exitCode;
      } catch {
        // a torn write cannot happen (rename), but a hand-edited file can
      }
    }
    return { ...record, exitCode, status: 'exited' };
  }
}

/**
 * Docker's default set keeps NET_RAW; ours drops it (parse.c says why), except on a
 * network: busybox's ping opens a raw ICMP socket, and in a container's own user
 * namespace the capability covers only its own network namespace (SECURITY.md).
 * An explicit --cap-drop NET_RAW (or ALL) wins.
 */
function withNetRaw(security: SecurityOptions, networked: boolean): SecurityOptions {
  if (!networked) return security;
  const named = (list: string[]) => list.some((c) => /^(cap_)?(net_raw|all)$/i.test(c));
  if (named(security.capDrop) || named(security.capAdd)) return security;
  return { ...security, capAdd: [...security.capAdd, 'NET_RAW'] };
}

function validateBudget(budget: GroupBudget): void {
  const { memoryBytes, cpus } = budget;
  if (memoryBytes !== null && !(Number.isSafeInteger(memoryBytes) && memoryBytes >= MIN_MEMORY_BYTES)) {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `invalid group memory budget ${memoryBytes}: at least ${MIN_MEMORY_BYTES} bytes`,
    );
  }
  if (cpus !== null && !(Number.isFinite(cpus) && cpus > 0)) {
    throw new MdockerError('INVALID_ARGUMENT', `invalid group CPU budget ${cpus}: a positive number of CPUs`);
  }
}

/** The launcher's one-line JSON error (its --error-file), or null when it wrote none. */
export function parseLaunchError(text: string | null): LaunchError | null {
  const line = text?.trim().split('\n')[0];
  if (!line) return null;
  try {
    const parsed = JSON.parse(line) as { code?: unknown; message?: unknown; errno?: unknown; syscall?: unknown };
    return {
      code: typeof parsed.code === 'string' ? parsed.code : 'LAUNCH_FAILED',
      message: typeof parsed.message === 'string' ? parsed.message : line,
      ...(typeof parsed.errno === 'number' && parsed.errno > 0 ? { errno: parsed.errno } : {}),
      ...(typeof parsed.syscall === 'string' && parsed.syscall !== '' ? { syscall: parsed.syscall } : {}),
    };
  } catch {
    return { code: 'LAUNCH_FAILED', message: line };
  }
}

let overlayChecked = false;
async function assertOverlayfs(needed: boolean): Promise<void> {
  if (!needed || overlayChecked) return;
  const filesystems = readFileSync('/proc/filesystems', 'utf8');
  // The module may be loadable though not loaded yet; the kernel loads it on first mount
  // where it can, and the launcher reports UNSUPPORTED where it cannot.
  if (!/\toverlay$/m.test(filesystems) && !existsSync('/sys/module/overlay')) {
    const modules = `/lib/modules/${(await import('node:os')).release()}`;
    if (!existsSync(modules)) {
      throw new MdockerError(
        'UNSUPPORTED',
        'this kernel has no overlayfs: run with --rootfs DIR, or load it (modprobe overlay)',
      );
    }
  }
  overlayChecked = true;
}

export type { ProcessRef, SecurityOptions };
