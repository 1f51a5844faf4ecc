/**
 * The cgroup v1 driver: one directory per container in each of the cpu, cpuacct, memory
 * and pids hierarchies (co-mounted hierarchies such as "cpu,cpuacct" share one directory),
 * and in the devices hierarchy when one is mounted, with the container's device allowlist.
 */
import { dirname, join } from 'node:path';
import { MdockerError, isMdockerError } from '../errors.js';
import {
  CPU_PERIOD_USEC,
  DEFAULT_PARENT_NAME,
  checkSavedPath,
  cgroupParentSegments,
  cgroupPathSegments,
  cpuQuotaUsec,
  cpuWeightToShares,
  isPathWithin,
  listPrefixedDirs,
  makeCgroupDirs,
  makeContainerCgroupDir,
  makeGroupCgroupDir,
  makeGroupMemberCgroupDir,
  nodeCgroupFs,
  parseLimitValue,
  parseProcs,
  procCgroupPath,
  readCgroupFile,
  removeCgroupPaths,
  validateCgroupId,
  validateGroupName,
  withoutChildren,
  writeCgroupFile,
  writeCgroupFileEach,
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

export type V1Controller = 'cpu' | 'cpuacct' | 'memory' | 'pids';

export const V1_REQUIRED_CONTROLLERS: readonly V1Controller[] = ['cpu', 'cpuacct', 'memory', 'pids'];

/**
 * The devices a container may read and write, as devices.allow lines: the nodes the
 * launcher binds into its /dev (native/src/launcher/mounts.c) and the masks' /dev/null,
 * the ptmx of its own devpts, and the ptys (the Unix98 slave majors 136..143: its
 * devpts's, and the host pty bound as /dev/console). Nothing may be made (no "m"), and
 * every other device, a block device above all, is refused whatever node reaches it.
 * The launcher's cgroup v2 device program allows the same (native/src/launcher/devices.c).
 */
export const V1_ALLOWED_DEVICES: readonly string[] = [
  'c 1:3 rw', // null
  'c 1:5 rw', // zero
  'c 1:7 rw', // full
  'c 1:8 rw', // random
  'c 1:9 rw', // urandom
  'c 5:0 rw', // tty
  'c 5:2 rw', // ptmx
  ...Array.from({ length: 8 }, (_, i) => `c ${136 + i}:* rw`), // ptys
];

export interface V1Hierarchy {
  /** Controllers attached to this hierarchy, e.g. ["cpu", "cpuacct"] when co-mounted. */
  controllers: readonly string[];
  /** Where the hierarchy is mounted, as this process sees it (the hierarchy root). */
  mountPoint: string;
  /** This process's cgroup relative to mountPoint ("/" or "/a/b"); null when not visible there. */
  ownCgroup: string | null;
}

export interface CgroupV1Options {
  hierarchies: readonly V1Hierarchy[];
  fs?: CgroupFs;
}

/** The kernel reports "no limit" as the largest page-aligned long; anything this big is none. */
const UNLIMITED_MEMORY_THRESHOLD_BYTES = 2 ** 62;

const CREATE_ATTEMPTS = 3;

const CPU_STAT_KEYS = keyedFileKeys('nr_periods', 'nr_throttled', 'throttled_time');
// The hierarchical total: the container's own sub-cgroups count too.
const MEMORY_STAT_KEYS = keyedFileKeys('total_inactive_file');
const OOM_CONTROL_KEYS = keyedFileKeys('oom_kill');
const PIDS_EVENTS_KEYS = keyedFileKeys('max');

/** The counters of one container in the cpu, cpuacct, memory and pids hierarchies. */
class V1StatsReader extends CounterStatsReader {
  readonly #memoryDir: string;
  readonly #pidsDir: string;
  readonly #usage: number;
  readonly #cpuStat: number;
  readonly #memoryUsage: number;
  readonly #memoryStat: number;
  readonly #oomControl: number;
  readonly #pidsCurrent: number;
  readonly #pidsEvents: number;
  #memoryLimit: number | undefined;
  #pidsMax: number | undefined;

  constructor(fs: CgroupFs, id: string, dirs: Record<V1Controller, string>) {
    super(fs, id);
    const files = this.files;
    this.#memoryDir = dirs.memory;
    this.#pidsDir = dirs.pids;
    this.#usage = files.open(join(dirs.cpuacct, 'cpuacct.usage'));
    this.#cpuStat = files.open(join(dirs.cpu, 'cpu.stat'));
    this.#memoryUsage = files.open(join(dirs.memory, 'memory.usage_in_bytes'));
    this.#memoryStat = files.open(join(dirs.memory, 'memory.stat'));
    this.#pidsCurrent = files.open(join(dirs.pids, 'pids.current'));
    // Older kernels lack pids.events (and oom_kill in memory.oom_control): absent reads 0.
    this.#oomControl = files.open(join(dirs.memory, 'memory.oom_control'), true);
    this.#pidsEvents = files.open(join(dirs.pids, 'pids.events'), true);
  }

  protected counters(): CgroupCounters {
    const { files, values } = this;
    const cpuUsageUsec = files.nanosecondsAsMicroseconds(this.#usage);
    files.keyed(this.#cpuStat, CPU_STAT_KEYS, values);
    const [cpuPeriods = 0, cpuThrottledPeriods = 0, throttledNs = 0] = values;
    const usageBytes = files.value(this.#memoryUsage) ?? 0;
    return {
      cpuUsageUsec,
      cpuPeriods,
      cpuThrottledPeriods,
      cpuThrottledUsec: Math.floor(throttledNs / 1000),
      memoryBytes: usageWithoutInactiveFile(usageBytes, files.keyedOne(this.#memoryStat, MEMORY_STAT_KEYS, values)),
      pids: files.value(this.#pidsCurrent) ?? 0,
      oomKills: files.keyedOne(this.#oomControl, OOM_CONTROL_KEYS, values),
      pidsLimitHits: files.keyedOne(this.#pidsEvents, PIDS_EVENTS_KEYS, values),
    };
  }

  protected limits(): KnownLimits {
    const files = this.files;
    this.#memoryLimit ??= files.open(join(this.#memoryDir, 'memory.limit_in_bytes'));
    this.#pidsMax ??= files.open(join(this.#pidsDir, 'pids.max'));
    const limitBytes = files.value(this.#memoryLimit);
    return {
      memoryBytes: limitBytes === null || limitBytes >= UNLIMITED_MEMORY_THRESHOLD_BYTES ? null : limitBytes,
      pidsLimit: files.value(this.#pidsMax),
    };
  }
}

export class CgroupV1Driver implements CgroupDriver {
  readonly version = 1 as const;
  readonly hierarchies: readonly V1Hierarchy[];
  private readonly fs: CgroupFs;

  constructor(options: CgroupV1Options) {
    this.hierarchies = options.hierarchies;
    this.fs = options.fs ?? nodeCgroupFs;
  }

  async create(id: string, limits: CgroupLimits, parent?: string, group?: string): Promise<CgroupHandle> {
    validateCgroupId(id);
    if (group !== undefined) validateGroupName(group);
    const placements = this.placements(id, parent, group);
    const created: string[] = [];
    try {
      for (const placement of placements) {
        if (group !== undefined) {
          // The group's createGroup made everything above the container's directory.
          const groupPath = join(placement.hierarchy.mountPoint, ...placement.parentRelative);
          await makeGroupMemberCgroupDir(this.fs, groupPath, placement.path);
        } else {
          await this.makeDirs(
            placement.hierarchy.mountPoint,
            placement.parentRelative,
            (path) => makeContainerCgroupDir(this.fs, path),
            placement.path,
          );
        }
        created.push(placement.path);
      }
      const handle: CgroupHandle = { id, paths: created };
      await this.writeDeviceAllowlist(handle);
      await this.writeLimits(handle, limits);
      return handle;
    } catch (err) {
      await removeCgroupPaths(this.fs, created, this.defaultParents(), 500).catch(() => undefined);
      throw err;
    }
  }

  async createGroup(name: string, budget: GroupBudget, parent?: string): Promise<CgroupHandle> {
    validateGroupName(name);
    const placements = this.placements(name, parent);
    const made: string[] = [];
    try {
      for (const placement of placements) {
        const isNew = await this.makeDirs(
          placement.hierarchy.mountPoint,
          placement.parentRelative,
          (path) => makeGroupCgroupDir(this.fs, path),
          placement.path,
        );
        if (isNew) made.push(placement.path);
      }
      const handle: CgroupHandle = { id: name, paths: placements.map((placement) => placement.path) };
      // Once only: denying "a" again on a group with containers below would take their
      // devices away too, and re-allowing at the group gives nothing back to them.
      if (made.length === placements.length) await this.writeDeviceAllowlist(handle);
      await this.writeGroupBudget(handle, budget);
      return handle;
    } catch (err) {
      await removeCgroupPaths(this.fs, made, this.defaultParents(), 500).catch(() => undefined);
      throw err;
    }
  }

  async groupHandle(name: string, parent?: string): Promise<CgroupHandle> {
    validateGroupName(name);
    return { id: name, paths: this.placements(name, parent).map((placement) => placement.path) };
  }

  async listEmptyGroups(prefix: string): Promise<CgroupHandle[]> {
    const byName = new Map<string, string[]>();
    for (const dir of this.defaultParents()) {
      for (const name of await listPrefixedDirs(this.fs, dir, prefix)) {
        byName.set(name, [...(byName.get(name) ?? []), join(dir, name)]);
      }
    }
    return withoutChildren(
      this.fs,
      [...byName].map(([id, paths]) => ({ id, paths })),
    );
  }

  /** Where `name` goes in each hierarchy: `<parent>[/<group>]/<name>`. */
  private placements(
    name: string,
    parent: string | undefined,
    group?: string,
  ): { hierarchy: V1Hierarchy; parentRelative: string[]; path: string }[] {
    const parentSegments = parent === undefined ? undefined : cgroupParentSegments(parent);
    return this.usedHierarchies().map((hierarchy) => {
      const parentRelative = [
        ...(parentSegments ?? this.defaultParentSegments(hierarchy)),
        ...(group === undefined ? [] : [group]),
      ];
      return { hierarchy, parentRelative, path: join(hierarchy.mountPoint, ...parentRelative, name) };
    });
  }

  async describe(): Promise<CgroupPlacement> {
    const hierarchies = this.usedHierarchies();
    return {
      version: 1,
      driver: 'cgroupfs',
      parentPaths: hierarchies.map((hierarchy) => join(hierarchy.mountPoint, ...this.defaultParentSegments(hierarchy))),
      controllers: [...new Set(this.hierarchies.flatMap((hierarchy) => hierarchy.controllers))].sort(),
      systemdUnit: null,
    };
  }

  async update(handle: CgroupHandle, limits: Partial<CgroupLimits>): Promise<void> {
    await this.writeLimits(handle, limits);
  }

  async setCpuWeight(handle: CgroupHandle, weight: number): Promise<void> {
    await writeCgroupFile(this.fs, join(this.pathFor(handle, 'cpu'), 'cpu.shares'), cpuWeightToShares(weight));
  }

  async setCpuIdle(handle: CgroupHandle, idle: boolean): Promise<void> {
    await writeCpuIdle(this.fs, this.pathFor(handle, 'cpu'), idle);
  }

  async stats(handle: CgroupHandle): Promise<CgroupStats> {
    return readOnce(this.openStats(handle));
  }

  openStats(handle: CgroupHandle): CgroupStatsReader {
    return new V1StatsReader(this.fs, handle.id, {
      cpu: this.pathFor(handle, 'cpu'),
      cpuacct: this.pathFor(handle, 'cpuacct'),
      memory: this.pathFor(handle, 'memory'),
      pids: this.pathFor(handle, 'pids'),
    });
  }

  async procs(handle: CgroupHandle): Promise<number[]> {
    return parseProcs(await readCgroupFile(this.fs, join(this.pathFor(handle, 'pids'), 'cgroup.procs')));
  }

  ownsProcess(handle: CgroupHandle, procCgroup: string): boolean {
    const hierarchy = this.hierarchyFor('pids');
    const path = procCgroupPath(procCgroup, 'pids');
    return (
      hierarchy !== undefined &&
      path !== null &&
      isPathWithin(join(hierarchy.mountPoint, path), this.pathFor(handle, 'pids'))
    );
  }

  /** v1 has no cgroup.kill. */
  async killAll(): Promise<boolean> {
    return false;
  }

  async remove(handle: CgroupHandle, timeoutMs?: number): Promise<void> {
    await removeCgroupPaths(this.fs, handle.paths, this.defaultParents(), timeoutMs);
  }

  handleFromPaths(id: string, paths: string[]): CgroupHandle {
    const roots = this.hierarchies.map((hierarchy) => hierarchy.mountPoint);
    const handle = { id, paths: paths.map((path) => checkSavedPath(id, path, roots)) };
    for (const controller of V1_REQUIRED_CONTROLLERS) this.pathFor(handle, controller);
    return handle;
  }

  /** One hierarchy per required controller, each mount once; UNSUPPORTED names what is missing. */
  private usedHierarchies(): V1Hierarchy[] {
    const missing = V1_REQUIRED_CONTROLLERS.filter((controller) => this.hierarchyFor(controller) === undefined);
    if (missing.length > 0) {
      throw new MdockerError(
        'UNSUPPORTED',
        `cgroup v1: no hierarchy is mounted for controller${missing.length === 1 ? '' : 's'} ${missing.join(', ')}`,
        { missing },
      );
    }
    const used: V1Hierarchy[] = [];
    for (const controller of [...V1_REQUIRED_CONTROLLERS, 'devices' as const]) {
      const hierarchy = this.hierarchyFor(controller);
      if (hierarchy !== undefined && !used.includes(hierarchy)) used.push(hierarchy);
    }
    return used;
  }

  /**
   * Deny everything, then allow the list: written before the launcher moves the
   * container in, so its first instruction already meets it. A child cgroup can never
   * allow more than this, and the container's cgroup directories are read-only binds.
   */
  private async writeDeviceAllowlist(handle: CgroupHandle): Promise<void> {
    const hierarchy = this.hierarchyFor('devices');
    const dir = handle.paths.find((path) => hierarchy !== undefined && isPathWithin(path, hierarchy.mountPoint));
    if (dir === undefined) return;
    await writeCgroupFile(this.fs, join(dir, 'devices.deny'), 'a');
    await writeCgroupFileEach(this.fs, join(dir, 'devices.allow'), [...V1_ALLOWED_DEVICES]);
  }

  private hierarchyFor(controller: V1Controller | 'devices'): V1Hierarchy | undefined {
    return this.hierarchies.find((hierarchy) => hierarchy.controllers.includes(controller));
  }

  private defaultParentSegments(hierarchy: V1Hierarchy): string[] {
    if (hierarchy.ownCgroup === null) {
      throw new MdockerError(
        'UNSUPPORTED',
        `cgroup v1: this process's cgroup is not visible below ${hierarchy.mountPoint}; pass --cgroup-parent`,
      );
    }
    return [...cgroupPathSegments(hierarchy.ownCgroup), DEFAULT_PARENT_NAME];
  }

  private defaultParents(): Set<string> {
    const parents = new Set<string>();
    for (const hierarchy of this.hierarchies) {
      if (hierarchy.ownCgroup === null) continue;
      parents.add(join(hierarchy.mountPoint, ...cgroupPathSegments(hierarchy.ownCgroup), DEFAULT_PARENT_NAME));
    }
    return parents;
  }

  /**
   * A concurrent remove() of the last other container may rmdir the shared parent between
   * our mkdirs, which surfaces as ENOENT: create the parent again and retry.
   */
  private async makeDirs<T>(
    mountPoint: string,
    parentRelative: string[],
    make: (path: string) => Promise<T>,
    path: string,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      await makeCgroupDirs(this.fs, mountPoint, parentRelative);
      try {
        return await make(path);
      } catch (err) {
        if (!(isMdockerError(err) && err.code === 'NOT_FOUND' && attempt < CREATE_ATTEMPTS)) throw err;
      }
    }
  }

  private pathFor(handle: CgroupHandle, controller: V1Controller): string {
    const hierarchy = this.hierarchyFor(controller);
    const path =
      hierarchy === undefined
        ? undefined
        : handle.paths.find((candidate) => isPathWithin(candidate, hierarchy.mountPoint));
    if (path === undefined) {
      throw new MdockerError(
        'NOT_FOUND',
        `cgroup v1: container ${handle.id} has no cgroup in the ${controller} hierarchy`,
      );
    }
    return path;
  }

  private async writeLimits(handle: CgroupHandle, limits: Partial<CgroupLimits>): Promise<void> {
    if (limits.cpus !== undefined) await this.writeCpuQuota(this.pathFor(handle, 'cpu'), limits.cpus);
    if (limits.memoryBytes !== undefined) await this.writeMemoryLimit(handle, limits.memoryBytes);
    if (limits.pidsLimit !== undefined) {
      await writeCgroupFile(this.fs, join(this.pathFor(handle, 'pids'), 'pids.max'), limits.pidsLimit ?? 'max');
    }
  }

  /**
   * A group's budget. Lowering its quota below a container's is refused (EINVAL, see
   * writeCpuQuota), so the containers above the new quota come down to it first.
   */
  private async writeGroupBudget(handle: CgroupHandle, budget: GroupBudget): Promise<void> {
    const cpuDir = this.pathFor(handle, 'cpu');
    if (budget.cpus !== null) {
      const quotaUsec = cpuQuotaUsec(budget.cpus);
      for (const child of await this.fs.listDirectories(cpuDir)) {
        const childDir = join(cpuDir, child);
        const { quotaUsec: childQuotaUsec, periodUsec } = await this.readCpuQuota(childDir);
        const capUsec = Math.floor((quotaUsec * periodUsec) / CPU_PERIOD_USEC);
        if (childQuotaUsec !== null && childQuotaUsec > capUsec) {
          await writeCgroupFile(this.fs, join(childDir, 'cpu.cfs_quota_us'), capUsec);
        }
      }
    }
    await this.writeCpuQuota(cpuDir, budget.cpus);
    await this.writeMemoryLimit(handle, budget.memoryBytes);
  }

  /**
   * The kernel's rule on v1 (tg_cfs_schedulable_down): a cgroup's quota per period may not
   * exceed its parent's, unlike v2 where the smaller simply wins. A container asking more
   * than its group's budget gets the budget: that is all it could use anyway.
   */
  private async writeCpuQuota(cpuDir: string, cpus: number | null): Promise<void> {
    let quotaUsec = cpus === null ? -1 : cpuQuotaUsec(cpus);
    if (quotaUsec > 0) {
      const parent = await this.readCpuQuota(dirname(cpuDir)).catch(() => null);
      if (parent !== null && parent.quotaUsec !== null) {
        quotaUsec = Math.min(quotaUsec, Math.floor((parent.quotaUsec * CPU_PERIOD_USEC) / parent.periodUsec));
      }
    }
    // The quota is only meaningful against this period; set it rather than assume the default.
    await writeCgroupFile(this.fs, join(cpuDir, 'cpu.cfs_period_us'), CPU_PERIOD_USEC);
    await writeCgroupFile(this.fs, join(cpuDir, 'cpu.cfs_quota_us'), quotaUsec, {
      EINVAL: "cgroup v1 refuses a quota above the parent cgroup's quota",
    });
  }

  /** A cgroup's CFS quota (null: none) and period. */
  private async readCpuQuota(dir: string): Promise<{ quotaUsec: number | null; periodUsec: number }> {
    const quotaPath = join(dir, 'cpu.cfs_quota_us');
    const periodPath = join(dir, 'cpu.cfs_period_us');
    const quotaUsec = parseLimitValue(await readCgroupFile(this.fs, quotaPath), quotaPath);
    const periodUsec = parseLimitValue(await readCgroupFile(this.fs, periodPath), periodPath) ?? CPU_PERIOD_USEC;
    return { quotaUsec: quotaUsec === null || quotaUsec < 0 ? null : quotaUsec, periodUsec };
  }

  /**
   * memory.memsw.limit_in_bytes (memory + swap) equal to the memory limit means no swap.
   * The kernel insists memsw >= limit after every single write, so when the limit rises
   * memsw goes first, and when it falls the limit goes first.
   */
  private async writeMemoryLimit(handle: CgroupHandle, memoryBytes: number | null): Promise<void> {
    const memoryDir = this.pathFor(handle, 'memory');
    const limitPath = join(memoryDir, 'memory.limit_in_bytes');
    const memswPath = join(memoryDir, 'memory.memsw.limit_in_bytes');
    const value = memoryBytes ?? -1;
    const hints = { EBUSY: 'the container uses more than the new limit and the kernel could not reclaim it' };
    // The root of the hierarchy has the memsw files exactly when swap accounting is on.
    const memoryHierarchy = this.hierarchyFor('memory');
    const hasMemsw =
      memoryHierarchy !== undefined &&
      (await this.fs.exists(join(memoryHierarchy.mountPoint, 'memory.memsw.limit_in_bytes')));
    if (!hasMemsw) {
      await writeCgroupFile(this.fs, limitPath, value, hints);
      return;
    }
    const currentBytes = parseLimitValue(await readCgroupFile(this.fs, limitPath), limitPath) ?? Infinity;
    const raising = memoryBytes === null || memoryBytes >= currentBytes;
    if (raising) {
      await writeCgroupFile(this.fs, memswPath, value, hints);
      await writeCgroupFile(this.fs, limitPath, value, hints);
    } else {
      await writeCgroupFile(this.fs, limitPath, value, hints);
      await writeCgroupFile(this.fs, memswPath, value, hints);
    }
  }
}
