/**
 * The cgroup v2 driver: one directory per container in the unified hierarchy, below a
 * parent that delegates the cpu, memory and pids controllers.
 */
import { join } from 'node:path';
import { MdockerError, isMdockerError } from '../errors.js';
import {
  CPU_PERIOD_USEC,
  DEFAULT_PARENT_NAME,
  checkSavedPath,
  cgroupParentSegments,
  cgroupPathSegments,
  cpuQuotaUsec,
  isPathWithin,
  listPrefixedDirs,
  makeCgroupDirs,
  makeContainerCgroupDir,
  makeGroupCgroupDir,
  makeGroupMemberCgroupDir,
  nodeCgroupFs,
  parseProcs,
  procCgroupPath,
  readCgroupFile,
  removeCgroupPaths,
  validateCgroupId,
  validateCpuWeight,
  validateGroupName,
  withoutChildren,
  writeCgroupFile,
  writeCpuIdle,
  type CgroupDriver,
  type CgroupFs,
  type CgroupHandle,
  type CgroupLimits,
  type CgroupPlacement,
  type CgroupStats,
  type CgroupStatsReader,
  type GroupBudget,
  type KnownLimits,
} from './driver.js';
import {
  CounterStatsReader,
  keyedFileKeys,
  readOnce,
  usageWithoutInactiveFile,
  type CgroupCounters,
} from './counters.js';
import { V2_REQUIRED_CONTROLLERS, type Delegation } from './delegate.js';

export { V2_REQUIRED_CONTROLLERS };

export interface CgroupV2Options {
  /** Where the unified hierarchy is mounted, as this process sees it. */
  mountPoint: string;
  /** This process's cgroup relative to mountPoint ("/" or "/a/b"); null when not visible there. */
  ownCgroup: string | null;
  fs?: CgroupFs;
  /**
   * Finds (once, on the first create or describe without a parent) the delegated cgroup
   * below which `mdocker/` goes. Without it, `mdocker/` goes below ownCgroup.
   */
  delegate?: () => Promise<Delegation>;
}

const CREATE_ATTEMPTS = 3;

const CPU_STAT_KEYS = keyedFileKeys('usage_usec', 'nr_periods', 'nr_throttled', 'throttled_usec');
const MEMORY_STAT_KEYS = keyedFileKeys('inactive_file');
const MEMORY_EVENTS_KEYS = keyedFileKeys('oom_kill');
const PIDS_EVENTS_KEYS = keyedFileKeys('max');

/** The counters of one container in its unified-hierarchy directory. */
class V2StatsReader extends CounterStatsReader {
  readonly #dir: string;
  readonly #cpuStat: number;
  readonly #memoryCurrent: number;
  readonly #memoryStat: number;
  readonly #memoryEvents: number;
  readonly #pidsCurrent: number;
  readonly #pidsEvents: number;
  #memoryMax: number | undefined;
  #pidsMax: number | undefined;

  constructor(fs: CgroupFs, id: string, dir: string) {
    super(fs, id);
    const files = this.files;
    this.#dir = dir;
    this.#cpuStat = files.open(join(dir, 'cpu.stat'));
    this.#memoryCurrent = files.open(join(dir, 'memory.current'));
    this.#memoryStat = files.open(join(dir, 'memory.stat'));
    this.#pidsCurrent = files.open(join(dir, 'pids.current'));
    // Older kernels lack pids.events (and oom_kill in memory.events): absent reads 0.
    this.#memoryEvents = files.open(join(dir, 'memory.events'), true);
    this.#pidsEvents = files.open(join(dir, 'pids.events'), true);
  }

  protected counters(): CgroupCounters {
    const { files, values } = this;
    files.keyed(this.#cpuStat, CPU_STAT_KEYS, values);
    const [cpuUsageUsec = 0, cpuPeriods = 0, cpuThrottledPeriods = 0, cpuThrottledUsec = 0] = values;
    const usageBytes = files.value(this.#memoryCurrent) ?? 0;
    return {
      cpuUsageUsec,
      cpuPeriods,
      cpuThrottledPeriods,
      cpuThrottledUsec,
      memoryBytes: usageWithoutInactiveFile(usageBytes, files.keyedOne(this.#memoryStat, MEMORY_STAT_KEYS, values)),
      pids: files.value(this.#pidsCurrent) ?? 0,
      oomKills: files.keyedOne(this.#memoryEvents, MEMORY_EVENTS_KEYS, values),
      pidsLimitHits: files.keyedOne(this.#pidsEvents, PIDS_EVENTS_KEYS, values),
    };
  }

  protected limits(): KnownLimits {
    this.#memoryMax ??= this.files.open(join(this.#dir, 'memory.max'));
    this.#pidsMax ??= this.files.open(join(this.#dir, 'pids.max'));
    return { memoryBytes: this.files.value(this.#memoryMax), pidsLimit: this.files.value(this.#pidsMax) };
  }
}

export class CgroupV2Driver implements CgroupDriver {
  readonly version = 2 as const;
  readonly mountPoint: string;
  readonly ownCgroup: string | null;
  private readonly fs: CgroupFs;
  private readonly delegate: (() => Promise<Delegation>) | undefined;
  private delegation: Promise<Delegation> | undefined;
  private delegated: Delegation | undefined;

  constructor(options: CgroupV2Options) {
    this.mountPoint = options.mountPoint;
    this.ownCgroup = options.ownCgroup;
    this.fs = options.fs ?? nodeCgroupFs;
    this.delegate = options.delegate;
  }

  async create(id: string, limits: CgroupLimits, parent?: string, group?: string): Promise<CgroupHandle> {
    validateCgroupId(id);
    if (group !== undefined) validateGroupName(group);
    const parentSegments = parent === undefined ? await this.defaultParentSegments() : cgroupParentSegments(parent);
    let path: string;
    if (group !== undefined) {
      // The group's createGroup prepared everything above the container's directory.
      const groupPath = join(this.mountPoint, ...parentSegments, group);
      path = join(groupPath, id);
      await makeGroupMemberCgroupDir(this.fs, groupPath, path);
    } else {
      path = join(this.mountPoint, ...parentSegments, id);
      await this.makeDir(parentSegments, parent === undefined, (dir) => makeContainerCgroupDir(this.fs, dir), path);
    }
    const handle: CgroupHandle = { id, paths: [path] };
    try {
      await this.writeLimits(handle, limits);
    } catch (err) {
      await removeCgroupPaths(this.fs, handle.paths, this.defaultParents(), 500).catch(() => undefined);
      throw err;
    }
    return handle;
  }

  async createGroup(name: string, budget: GroupBudget, parent?: string): Promise<CgroupHandle> {
    validateGroupName(name);
    const parentSegments = parent === undefined ? await this.defaultParentSegments() : cgroupParentSegments(parent);
    const path = join(this.mountPoint, ...parentSegments, name);
    const made = await this.makeDir(
      parentSegments,
      parent === undefined,
      (dir) => makeGroupCgroupDir(this.fs, dir),
      path,
    );
    const handle: CgroupHandle = { id: name, paths: [path] };
    try {
      // The group holds no process of its own, so it may hand the controllers on to the
      // containers' cgroups below it (the no-internal-processes rule).
      await this.enableChildControllers(path);
      await this.writeLimits(handle, budget);
    } catch (err) {
      if (made) await removeCgroupPaths(this.fs, handle.paths, this.defaultParents(), 500).catch(() => undefined);
      throw err;
    }
    return handle;
  }

  async groupHandle(name: string, parent?: string): Promise<CgroupHandle> {
    validateGroupName(name);
    const parentSegments = parent === undefined ? await this.defaultParentSegments() : cgroupParentSegments(parent);
    return { id: name, paths: [join(this.mountPoint, ...parentSegments, name)] };
  }

  /**
   * Looks only in the default parents known without asking for a delegation: finding one
   * may move this process (a systemd scope), which a reaping `mdocker ps` must not do.
   */
  async listEmptyGroups(prefix: string): Promise<CgroupHandle[]> {
    const handles: CgroupHandle[] = [];
    for (const dir of this.defaultParents()) {
      for (const name of await listPrefixedDirs(this.fs, dir, prefix)) {
        handles.push({ id: name, paths: [join(dir, name)] });
      }
    }
    return withoutChildren(this.fs, handles);
  }

  /** Makes `path` below the prepared parent, again when a concurrent remove() took the parent away. */
  private async makeDir<T>(
    parentSegments: string[],
    isDefaultParent: boolean,
    make: (path: string) => Promise<T>,
    path: string,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      await this.prepareParent(parentSegments, isDefaultParent);
      try {
        return await make(path);
      } catch (err) {
        // A concurrent remove() may have taken the shared parent away between the two steps.
        if (!(isMdockerError(err) && err.code === 'NOT_FOUND' && attempt < CREATE_ATTEMPTS)) throw err;
      }
    }
  }

  async update(handle: CgroupHandle, limits: Partial<CgroupLimits>): Promise<void> {
    await this.writeLimits(handle, limits);
  }

  async setCpuWeight(handle: CgroupHandle, weight: number): Promise<void> {
    await writeCgroupFile(this.fs, join(this.pathOf(handle), 'cpu.weight'), validateCpuWeight(weight));
  }

  async setCpuIdle(handle: CgroupHandle, idle: boolean): Promise<void> {
    await writeCpuIdle(this.fs, this.pathOf(handle), idle);
  }

  async stats(handle: CgroupHandle): Promise<CgroupStats> {
    return readOnce(this.openStats(handle));
  }

  openStats(handle: CgroupHandle): CgroupStatsReader {
    return new V2StatsReader(this.fs, handle.id, this.pathOf(handle));
  }

  async procs(handle: CgroupHandle): Promise<number[]> {
    return parseProcs(await readCgroupFile(this.fs, join(this.pathOf(handle), 'cgroup.procs')));
  }

  ownsProcess(handle: CgroupHandle, procCgroup: string): boolean {
    const path = procCgroupPath(procCgroup, null);
    return path !== null && isPathWithin(join(this.mountPoint, path), this.pathOf(handle));
  }

  async killAll(handle: CgroupHandle): Promise<boolean> {
    const file = join(this.pathOf(handle), 'cgroup.kill');
    if (!(await this.fs.exists(file))) return false;
    await writeCgroupFile(this.fs, file, 1);
    return true;
  }

  async remove(handle: CgroupHandle, timeoutMs?: number): Promise<void> {
    await removeCgroupPaths(this.fs, handle.paths, this.defaultParents(), timeoutMs);
  }

  handleFromPaths(id: string, paths: string[]): CgroupHandle {
    const [path, ...extra] = paths;
    if (path === undefined || extra.length > 0) {
      throw new MdockerError(
        'INVALID_ARGUMENT',
        `cgroup v2: expected exactly one saved cgroup path for ${id}, got ${paths.length}`,
      );
    }
    return { id, paths: [checkSavedPath(id, path, [this.mountPoint])] };
  }

  async describe(): Promise<CgroupPlacement> {
    const segments = await this.defaultParentSegments();
    const delegatedDir = join(this.mountPoint, ...segments.slice(0, -1));
    const controllers = (await readCgroupFile(this.fs, join(delegatedDir, 'cgroup.controllers')))
      .trim()
      .split(/\s+/)
      .filter((name) => name !== '');
    return {
      version: 2,
      driver: this.delegated?.driver ?? 'cgroupfs',
      parentPaths: [join(this.mountPoint, ...segments)],
      controllers,
      systemdUnit: this.delegated?.unit ?? null,
    };
  }

  private async defaultParentSegments(): Promise<string[]> {
    if (this.delegate !== undefined) {
      this.delegation ??= this.delegate();
      this.delegated = await this.delegation;
      return [...cgroupPathSegments(this.delegated.cgroup), DEFAULT_PARENT_NAME];
    }
    if (this.ownCgroup === null) {
      throw new MdockerError(
        'UNSUPPORTED',
        `cgroup v2: this process's cgroup is not visible below ${this.mountPoint}; pass --cgroup-parent`,
      );
    }
    return [...cgroupPathSegments(this.ownCgroup), DEFAULT_PARENT_NAME];
  }

  private defaultParents(): Set<string> {
    const parents = new Set<string>();
    if (this.delegated !== undefined) {
      parents.add(join(this.mountPoint, ...cgroupPathSegments(this.delegated.cgroup), DEFAULT_PARENT_NAME));
    }
    if (this.ownCgroup !== null) {
      parents.add(join(this.mountPoint, ...cgroupPathSegments(this.ownCgroup), DEFAULT_PARENT_NAME));
    }
    return parents;
  }

  /**
   * Makes sure the container's parent exists and hands cpu, memory and pids to its children.
   * Only directories this runtime owns get their cgroup.subtree_control written: the default
   * `mdocker` directory, and any levels of a --cgroup-parent created here. The cgroup above
   * them must already delegate the controllers; changing it would change a cgroup we did not
   * create (and, under the no-internal-processes rule, fail anyway while it has processes).
   */
  private async prepareParent(parentSegments: string[], isDefaultParent: boolean): Promise<void> {
    let existingDepth = parentSegments.length;
    while (
      existingDepth > 0 &&
      !(await this.fs.exists(join(this.mountPoint, ...parentSegments.slice(0, existingDepth))))
    ) {
      existingDepth--;
    }
    // Depth of the first level we own: the `mdocker` directory, or the first one we create.
    const firstOwnedDepth = isDefaultParent ? parentSegments.length : existingDepth + 1;
    if (existingDepth < firstOwnedDepth - 1) {
      throw new MdockerError(
        'UNSUPPORTED',
        `cgroup v2: this process's cgroup ${join(this.mountPoint, ...parentSegments.slice(0, -1))} does not exist`,
      );
    }
    const delegatingDir = join(this.mountPoint, ...parentSegments.slice(0, firstOwnedDepth - 1));
    const missing = await this.missingControllers(delegatingDir);
    if (missing.length > 0) {
      throw new MdockerError(
        'UNSUPPORTED',
        `cgroup v2: controller${missing.length === 1 ? '' : 's'} ${missing.join(', ')} ` +
          `${missing.length === 1 ? 'is' : 'are'} not enabled below ${delegatingDir}; ` +
          'pass --cgroup-parent with a delegated cgroup',
        { path: delegatingDir, missing },
      );
    }
    // Level by level: a child cgroup gets exactly the controllers its parent enables.
    for (let depth = firstOwnedDepth; depth <= parentSegments.length; depth++) {
      await makeCgroupDirs(this.fs, this.mountPoint, parentSegments.slice(0, depth));
      await this.enableChildControllers(join(this.mountPoint, ...parentSegments.slice(0, depth)));
    }
  }

  private async enableChildControllers(dir: string): Promise<void> {
    const toEnable = await this.missingControllers(dir);
    if (toEnable.length === 0) return;
    await writeCgroupFile(this.fs, join(dir, 'cgroup.subtree_control'), toEnable.map((name) => `+${name}`).join(' '), {
      EBUSY: 'cgroup v2 cannot enable controllers for children of a cgroup that has processes of its own',
    });
  }

  private async missingControllers(dir: string): Promise<string[]> {
    const enabled = (await readCgroupFile(this.fs, join(dir, 'cgroup.subtree_control'))).trim().split(/\s+/);
    return V2_REQUIRED_CONTROLLERS.filter((controller) => !enabled.includes(controller));
  }

  private pathOf(handle: CgroupHandle): string {
    const path = handle.paths[0];
    if (path === undefined) throw new MdockerError('NOT_FOUND', `cgroup v2: container ${handle.id} has no cgroup`);
    return path;
  }

  private async writeLimits(handle: CgroupHandle, limits: Partial<CgroupLimits>): Promise<void> {
    const dir = this.pathOf(handle);
    if (limits.cpus !== undefined) {
      const quota = limits.cpus === null ? 'max' : String(cpuQuotaUsec(limits.cpus));
      await writeCgroupFile(this.fs, join(dir, 'cpu.max'), `${quota} ${CPU_PERIOD_USEC}`);
    }
    if (limits.memoryBytes !== undefined) {
      await writeCgroupFile(this.fs, join(dir, 'memory.max'), limits.memoryBytes ?? 'max', {
        EBUSY: 'the container uses more than the new limit and the kernel could not reclaim it',
      });
      // No swap beyond the memory limit, as with v1's memsw = limit. The file is absent when
      // the kernel runs without swap accounting.
      const swapPath = join(dir, 'memory.swap.max');
      if (await this.fs.exists(swapPath)) {
        await writeCgroupFile(this.fs, swapPath, limits.memoryBytes === null ? 'max' : 0);
      }
    }
    if (limits.pidsLimit !== undefined) {
      await writeCgroupFile(this.fs, join(dir, 'pids.max'), limits.pidsLimit ?? 'max');
    }
  }
}
