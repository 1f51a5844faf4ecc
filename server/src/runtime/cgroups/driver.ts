/**
 * The contract both cgroup drivers (v1.ts, v2.ts) fulfil, and the file plumbing they share:
 * every cgroup file access goes through a CgroupFs so tests can run on a fake tree that
 * behaves like the kernel.
 */
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmdirSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { MdockerError, isMdockerError, type ErrorCode } from '../errors.js';

export interface CgroupLimits {
  memoryBytes: number | null;
  cpus: number | null;
  pidsLimit: number | null;
}

export interface CgroupStats {
  cpuUsageUsec: number;
  cpuPeriods: number;
  cpuThrottledPeriods: number;
  cpuThrottledUsec: number;
  /** Usage without inactive page cache, as `docker stats` shows it. */
  memoryBytes: number;
  memoryLimitBytes: number | null;
  pids: number;
  pidsLimit: number | null;
  oomKills: number;
  /** How often a fork failed because pids.max was reached. */
  pidsLimitHits: number;
}

/**
 * A group's budget (a playground class's): what all the containers below it share, on top
 * of each one's own limits.
 */
export type GroupBudget = Pick<CgroupLimits, 'memoryBytes' | 'cpus'>;

/** Limits the caller wrote itself and keeps, so a stats reader need not read them back. */
export type KnownLimits = Pick<CgroupLimits, 'memoryBytes' | 'pidsLimit'>;

/**
 * One container's counter files, kept open between reads: cgroupfs regenerates a file's
 * content on every read from offset 0, so a sample is one pread(2) per file instead of
 * open, fstat, read and close.
 */
export interface CgroupStatsReader {
  /**
   * Reads the counters now. The limits are `known`'s when given, else the kernel's.
   * Throws NOT_FOUND once the cgroup is gone, having closed its files.
   */
  read(known?: KnownLimits): CgroupStats;
  /** Closes the files; idempotent. */
  close(): void;
}

export interface CgroupHandle {
  id: string;
  /**
   * Every directory created: one per v1 hierarchy, or the one v2 directory. The launcher's
   * --cgroup writes the container init's pid into each one's cgroup.procs.
   */
  paths: string[];
}

/** Where containers' cgroups go when no parent is given, as `mdocker info` shows it. */
export interface CgroupPlacement {
  version: 1 | 2;
  /** systemd: a cgroup systemd delegated to this process; cgroupfs: one the runtime made. */
  driver: 'systemd' | 'cgroupfs';
  /** Absolute directories that hold one cgroup per container (one per v1 hierarchy). */
  parentPaths: string[];
  /** The controllers available there. */
  controllers: string[];
  systemdUnit: string | null;
}

export interface CgroupDriver {
  readonly version: 1 | 2;
  /** Where containers go without a parent; on v2 this finds (once) the delegated cgroup. */
  describe(): Promise<CgroupPlacement>;
  /**
   * Creates `<parent>/<id>` (or `<parent>/<group>/<id>`, in a group createGroup made) and
   * writes the limits before returning. `parent` is relative to each hierarchy root (the
   * --cgroup-parent); the default is `<own cgroup>/mdocker`. NOT_FOUND when the group is not
   * there.
   */
  create(id: string, limits: CgroupLimits, parent?: string, group?: string): Promise<CgroupHandle>;
  /**
   * Creates the group cgroup `<parent>/<name>` with the budget written and its children's
   * controllers ready; on an existing group, writes the new budget. The handle's id is the
   * name; update, stats, procs, killAll and remove take it like a container's.
   */
  createGroup(name: string, budget: GroupBudget, parent?: string): Promise<CgroupHandle>;
  /** Where the group `name` is (or would be), without creating or checking anything. */
  groupHandle(name: string, parent?: string): Promise<CgroupHandle>;
  /**
   * The groups whose name starts with `prefix` directly in the default parent(s) with no
   * cgroup below them, each with every directory it has there: what a crashed run may
   * have left. A group with a container's cgroup below is never listed, whoever made it.
   */
  listEmptyGroups(prefix: string): Promise<CgroupHandle[]>;
  /** Changes only the limits given; null removes a limit. */
  update(handle: CgroupHandle, limits: Partial<CgroupLimits>): Promise<void>;
  /**
   * The container's CPU weight against its siblings, on v2's cpu.weight scale
   * (CPU_WEIGHT_DEFAULT is every cgroup's own); v1 writes the cpu.shares it stands for. A
   * weight decides who runs first among runnable cgroups, never how much: the CPU quota
   * still caps the container. NOT_FOUND once the cgroup is gone.
   */
  setCpuWeight(handle: CgroupHandle, weight: number): Promise<void>;
  /**
   * Puts the container's CPU cgroup in the kernel's idle class (`cpu.idle` 1, Linux 5.15+)
   * or takes it out. An idle group takes any CPU no sibling of the normal class wants, up
   * to its quota, but a normal task woken on its CPU preempts it at once, and the
   * scheduler counts a CPU running only idle-class tasks as free when it places a waking
   * task. The kernel gives an idle group the least weight, refuses setCpuWeight while it is
   * idle (INVALID_ARGUMENT), and gives it the default weight when it leaves the class.
   * NOT_FOUND once the cgroup is gone; UNSUPPORTED where the kernel has no cpu.idle.
   */
  setCpuIdle(handle: CgroupHandle, idle: boolean): Promise<void>;
  /** One reading: openStats, read with the kernel's limits, close. */
  stats(handle: CgroupHandle): Promise<CgroupStats>;
  /**
   * Opens the counter files for repeated reads; the caller must close() the reader.
   * Throws NOT_FOUND when the cgroup is gone.
   */
  openStats(handle: CgroupHandle): CgroupStatsReader;
  /** Host pids of the processes directly in the cgroup. */
  procs(handle: CgroupHandle): Promise<number[]>;
  /**
   * Whether a process whose /proc/PID/cgroup reads `procCgroup` is in the container's
   * cgroup (or below it): the proof a pid is the container's before it is signalled.
   */
  ownsProcess(handle: CgroupHandle, procCgroup: string): boolean;
  /**
   * Kills every process of the cgroup at once where the kernel can (v2's cgroup.kill,
   * 5.14+); false where it cannot, and the caller signals the processes one by one.
   */
  killAll(handle: CgroupHandle): Promise<boolean>;
  /**
   * Removes the cgroup (and any cgroups a container made below it), retrying while its
   * processes exit; then the default `mdocker` parent if that is now empty. Idempotent.
   */
  remove(handle: CgroupHandle, timeoutMs?: number): Promise<void>;
  /** Rebuilds a handle from saved state, refusing paths outside this driver's hierarchies. */
  handleFromPaths(id: string, paths: string[]): CgroupHandle;
}

/** The few filesystem operations a driver needs, so tests can emulate cgroupfs. */
export interface CgroupFs {
  /** Creates one directory; fails with EEXIST or ENOENT like mkdir(2). */
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  readFile(path: string): Promise<string>;
  /** Writes an existing file in one write(2): cgroupfs parses each write on its own. */
  writeFile(path: string, data: string): Promise<void>;
  /** Writes each value in a write(2) of its own through one open of the file (a list of
   * rules, one per write, as devices.allow takes them); a failed write's error carries
   * the value as `cgroupValue`. */
  writeEach(path: string, values: string[]): Promise<void>;
  exists(path: string): Promise<boolean>;
  listDirectories(path: string): Promise<string[]>;
  /** Opens a file read-only for a stats reader; synchronous, like the reads that follow. */
  openSync(path: string): number;
  /** pread(2) at offset 0 into `buffer`; returns the number of bytes read. */
  preadSync(fd: number, buffer: Buffer): number;
  closeSync(fd: number): void;
}

/**
 * The real cgroupfs, synchronous calls behind the async interface: these are tiny kernel
 * files and directories, where a synchronous call costs a small fraction of a thread-pool
 * round trip and its wake-up (bench/PROFILE.md §1, §4), and a create makes about a dozen
 * of them. rmdir(2) does not wait for a cgroup's last processes: it answers EBUSY at
 * once, and removeCgroupTree sleeps between its tries.
 */
export const nodeCgroupFs: CgroupFs = {
  async mkdir(path) {
    mkdirSync(path);
  },
  async rmdir(path) {
    rmdirSync(path);
  },
  async readFile(path) {
    return readFileSync(path, 'utf8');
  },
  async writeFile(path, data) {
    // 'r+' rather than 'w': cgroupfs files always exist, and a misspelt name must fail
    // instead of leaving a stray regular file behind on a test tree.
    const fd = openSync(path, 'r+');
    try {
      writeSync(fd, data);
    } finally {
      closeSync(fd);
    }
  },
  async writeEach(path, values) {
    const fd = openSync(path, 'r+');
    try {
      for (const value of values) {
        try {
          writeSync(fd, value);
        } catch (err) {
          throw Object.assign(err as Error, { cgroupValue: value });
        }
      }
    } finally {
      closeSync(fd);
    }
  },
  async exists(path) {
    try {
      statSync(path);
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  },
  async listDirectories(path) {
    const entries = readdirSync(path, { withFileTypes: true });
    return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  },
  openSync(path) {
    return openSync(path, 'r');
  },
  preadSync(fd, buffer) {
    return readSync(fd, buffer, 0, buffer.length, 0);
  },
  closeSync(fd) {
    closeSync(fd);
  },
};

export /** CPU % of one core between two readings: usage delta over wall-clock delta. */
function cpuPercent(previous: { usageUsec: number; atMs: number } | null, usageUsec: number, atMs: number): number {
  if (previous === null) return 0;
  const wallUsec = (atMs - previous.atMs) * 1000;
  const usedUsec = usageUsec - previous.usageUsec;
  if (wallUsec <= 0 || usedUsec < 0) return 0;
  return Math.round((usedUsec / wallUsec) * 1000) / 10;
}

/** The period Docker uses; the quota is cpus times this. */
export const CPU_PERIOD_USEC = 100_000;

/** cpu.weight of a cgroup nobody changed: v2's default, and v1's 1024 cpu.shares. */
export const CPU_WEIGHT_DEFAULT = 100;
const CPU_WEIGHT_MAX = 10_000;
const V1_SHARES_PER_WEIGHT = 1024 / CPU_WEIGHT_DEFAULT;
const V1_SHARES_MIN = 2;
const V1_SHARES_MAX = 262_144;

/** Checks a cpu.weight (an integer 1..10000, as the v2 kernel takes it). */
export function validateCpuWeight(weight: number): number {
  if (!Number.isInteger(weight) || weight < 1 || weight > CPU_WEIGHT_MAX) {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `invalid CPU weight ${weight}: expected an integer from 1 to ${CPU_WEIGHT_MAX}`,
    );
  }
  return weight;
}

/** The v1 cpu.shares a v2 cpu.weight stands for (100 -> 1024), within what v1 accepts. */
export function cpuWeightToShares(weight: number): number {
  return Math.min(V1_SHARES_MAX, Math.max(V1_SHARES_MIN, Math.round(validateCpuWeight(weight) * V1_SHARES_PER_WEIGHT)));
}

/** Name of the directory below the runtime's own cgroup that holds one cgroup per container. */
export const DEFAULT_PARENT_NAME = 'mdocker';

const DEFAULT_REMOVE_TIMEOUT_MS = 3000;
const REMOVE_RETRY_INTERVAL_MS = 25;

// Container ids and names are also directory names here: no separators, no dot-dirs.
const CGROUP_ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const CGROUP_PARENT_SEGMENT_PATTERN = /^[a-zA-Z0-9_@:][a-zA-Z0-9_.@:-]*$/;

export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

// A group shares the parent directory with containers: a name that looks like a container
// id (32 hex digits) could name one's cgroup, and would get a budget written into it.
const GROUP_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
const CONTAINER_ID_PATTERN = /^[0-9a-f]{32}$/;

export function validateGroupName(name: string): void {
  if (!GROUP_NAME_PATTERN.test(name) || CONTAINER_ID_PATTERN.test(name)) {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `invalid group name ${JSON.stringify(name.slice(0, 64))}: expected [a-z0-9][a-z0-9-]*, ` +
        'at most 63 characters, not 32 hex digits (a container id)',
    );
  }
}

export function validateCgroupId(id: string): void {
  if (!CGROUP_ID_PATTERN.test(id)) {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `invalid cgroup id ${JSON.stringify(id.slice(0, 64))}: expected [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 128 characters`,
    );
  }
}

/**
 * Splits a --cgroup-parent into directory names. A leading "/" is accepted and means the
 * same (relative to the hierarchy root); ".." is refused so a parent cannot escape it.
 */
export function cgroupParentSegments(parent: string): string[] {
  const segments = parent.split('/').filter((segment) => segment !== '');
  const bad = segments.find((segment) => !CGROUP_PARENT_SEGMENT_PATTERN.test(segment));
  if (segments.length === 0 || bad !== undefined || parent.length > 1024) {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `invalid cgroup parent ${JSON.stringify(parent.slice(0, 128))}: expected a path of names ` +
        'made of letters, digits, "_", ".", "@", ":" or "-", relative to the cgroup root',
    );
  }
  return segments;
}

/** Splits a cgroup path as /proc/self/cgroup shows it ("/a/b") into names. */
export function cgroupPathSegments(cgroupPath: string): string[] {
  return cgroupPath.split('/').filter((segment) => segment !== '');
}

/** True when `path` is `root` itself or lies below it, after resolving any "..". */
export function isPathWithin(path: string, root: string): boolean {
  const resolvedPath = resolve(path);
  const resolvedRoot = resolve(root);
  return (
    resolvedPath === resolvedRoot ||
    resolvedPath.startsWith(resolvedRoot.endsWith(sep) ? resolvedRoot : resolvedRoot + sep)
  );
}

/** Turns a failed cgroup file operation into one line that names the file and the errno. */
export function cgroupFileError(action: string, path: string, err: unknown, hint?: string): MdockerError {
  const errno = errnoCode(err);
  const codes: Record<string, ErrorCode> = {
    ENOENT: 'NOT_FOUND',
    EINVAL: 'INVALID_ARGUMENT',
    EBUSY: 'CONFLICT',
    EEXIST: 'CONFLICT',
    EACCES: 'UNSUPPORTED',
    EPERM: 'UNSUPPORTED',
    EROFS: 'UNSUPPORTED',
  };
  const reason = errno ?? (err instanceof Error ? err.message : String(err));
  return new MdockerError(
    (errno !== undefined ? codes[errno] : undefined) ?? 'INTERNAL',
    `${action} ${path} failed: ${reason}${hint !== undefined ? ` (${hint})` : ''}`,
    { path, errno },
    { cause: err },
  );
}

/** Explanations for errnos a particular write is known to hit, keyed by errno ("EBUSY"). */
export type ErrnoHints = Partial<Record<string, string>>;

export async function writeCgroupFile(
  fs: CgroupFs,
  path: string,
  value: string | number,
  hints: ErrnoHints = {},
): Promise<void> {
  try {
    await fs.writeFile(path, String(value));
  } catch (err) {
    const errno = errnoCode(err);
    throw cgroupFileError(
      `writing ${JSON.stringify(String(value))} to`,
      path,
      err,
      errno === undefined ? undefined : hints[errno],
    );
  }
}

/** Writes cpu.idle in a container's CPU cgroup `dir` (CgroupDriver.setCpuIdle). */
export async function writeCpuIdle(fs: CgroupFs, dir: string, idle: boolean): Promise<void> {
  try {
    await writeCgroupFile(fs, join(dir, 'cpu.idle'), idle ? 1 : 0);
  } catch (err) {
    // The file is missing from a cgroup that exists: a kernel before 5.15.
    if (isMdockerError(err) && err.code === 'NOT_FOUND' && (await fs.exists(dir)))
      throw new MdockerError('UNSUPPORTED', `${dir} has no cpu.idle: the idle class needs Linux 5.15 or later`);
    throw err;
  }
}

/** writeCgroupFile for a list of values, each its own write(2) through one open. */
export async function writeCgroupFileEach(fs: CgroupFs, path: string, values: string[]): Promise<void> {
  try {
    await fs.writeEach(path, values);
  } catch (err) {
    const value = (err as { cgroupValue?: unknown }).cgroupValue;
    throw cgroupFileError(
      `writing ${JSON.stringify(typeof value === 'string' ? value : values.join(', '))} to`,
      path,
      err,
    );
  }
}

export async function readCgroupFile(fs: CgroupFs, path: string): Promise<string> {
  try {
    return await fs.readFile(path);
  } catch (err) {
    throw cgroupFileError('reading', path, err);
  }
}

/** Parses a single number, or "max" as null (pids.max, memory.max). */
export function parseLimitValue(text: string, path: string): number | null {
  const trimmed = text.trim();
  if (trimmed === 'max') return null;
  const value = Number(trimmed);
  if (trimmed === '' || !Number.isFinite(value)) {
    throw new MdockerError('INTERNAL', `unexpected content ${JSON.stringify(trimmed.slice(0, 32))} in ${path}`);
  }
  return value;
}

/** The CFS quota for a number of CPUs; the kernel refuses quotas below 1 ms. */
export function cpuQuotaUsec(cpus: number): number {
  return Math.max(1000, Math.round(cpus * CPU_PERIOD_USEC));
}

export function parseProcs(text: string): number[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && pid > 0);
}

/** Creates each missing directory of `path` below `root`, tolerating a concurrent creator. */
export async function makeCgroupDirs(fs: CgroupFs, root: string, segments: string[]): Promise<void> {
  let path = root;
  for (const segment of segments) {
    path = join(path, segment);
    try {
      await fs.mkdir(path);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw cgroupFileError('creating cgroup', path, err);
    }
  }
}

/** Creates a group's directory; an existing one is the same group (createGroup is idempotent). Returns whether it made it. */
export async function makeGroupCgroupDir(fs: CgroupFs, path: string): Promise<boolean> {
  try {
    await fs.mkdir(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return false;
    throw cgroupFileError('creating cgroup', path, err);
  }
}

/** A container's directory in a group: the group must be there already (createGroup), never made here. */
export async function makeGroupMemberCgroupDir(fs: CgroupFs, groupPath: string, path: string): Promise<void> {
  if (!(await fs.exists(groupPath))) {
    throw new MdockerError('NOT_FOUND', `no such group: cgroup ${groupPath} does not exist (create the group first)`, {
      path: groupPath,
    });
  }
  try {
    await makeContainerCgroupDir(fs, path);
  } catch (err) {
    if (isMdockerError(err) && err.code === 'NOT_FOUND') {
      throw new MdockerError('NOT_FOUND', `no such group: cgroup ${groupPath} was removed meanwhile`, {
        path: groupPath,
      });
    }
    throw err;
  }
}

/** The names of the directories in `dir` that start with `prefix`; none when `dir` is missing. */
export async function listPrefixedDirs(fs: CgroupFs, dir: string, prefix: string): Promise<string[]> {
  try {
    return (await fs.listDirectories(dir)).filter((name) => name.startsWith(prefix));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw cgroupFileError('listing', dir, err);
  }
}

/** The handles none of whose directories has a directory (a cgroup) below it. */
export async function withoutChildren(fs: CgroupFs, handles: CgroupHandle[]): Promise<CgroupHandle[]> {
  const empty: CgroupHandle[] = [];
  for (const handle of handles) {
    let children = 0;
    for (const path of handle.paths) children += (await listPrefixedDirs(fs, path, '')).length;
    if (children === 0) empty.push(handle);
  }
  return empty;
}

/** Creates the container's own directory; it must not exist yet, or two containers would share it. */
export async function makeContainerCgroupDir(fs: CgroupFs, path: string): Promise<void> {
  try {
    await fs.mkdir(path);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') {
      throw new MdockerError('CONFLICT', `cgroup ${path} already exists`, { path }, { cause: err });
    }
    throw cgroupFileError('creating cgroup', path, err);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/**
 * Removes a cgroup directory and any cgroups below it, deepest first. rmdir(2) answers EBUSY
 * while processes remain, and a killed process leaves its cgroup only once it is reaped, so
 * retry until the deadline.
 */
export async function removeCgroupTree(fs: CgroupFs, path: string, deadlineMs: number): Promise<void> {
  let children: string[];
  try {
    children = await fs.listDirectories(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw cgroupFileError('listing', path, err);
  }
  for (const child of children) await removeCgroupTree(fs, join(path, child), deadlineMs);
  for (;;) {
    try {
      await fs.rmdir(path);
      return;
    } catch (err) {
      const errno = errnoCode(err);
      if (errno === 'ENOENT') return;
      if (errno !== 'EBUSY' || Date.now() >= deadlineMs) {
        const hint = errno === 'EBUSY' ? 'processes are still in it' : undefined;
        const error = cgroupFileError('removing cgroup', path, err, hint);
        throw errno === 'EBUSY' ? new MdockerError('TIMEOUT', error.message, error.details, { cause: err }) : error;
      }
      await sleep(REMOVE_RETRY_INTERVAL_MS);
    }
  }
}

/**
 * Removes every path (trying all before reporting the first failure), then empty default
 * parents. The hierarchies are independent (one path per v1 controller), so their removals
 * run side by side: one that waits out an EBUSY does not hold up the others.
 */
export async function removeCgroupPaths(
  fs: CgroupFs,
  paths: readonly string[],
  defaultParents: ReadonlySet<string>,
  timeoutMs: number = DEFAULT_REMOVE_TIMEOUT_MS,
): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  const removed = await Promise.allSettled(paths.map((path) => removeCgroupTree(fs, path, deadlineMs)));
  const failed = removed.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  const parents = [...new Set(paths.map((path) => dirname(path)))].filter((parent) => defaultParents.has(parent));
  const pruned = await Promise.allSettled(
    parents.map(async (parent) => {
      try {
        await fs.rmdir(parent);
      } catch (err) {
        // Another container (of this or another mdocker process) still lives there, or a
        // concurrent create just made it again: leaving it is correct.
        const errno = errnoCode(err);
        if (errno !== 'ENOENT' && errno !== 'ENOTEMPTY' && errno !== 'EBUSY' && errno !== 'EEXIST') {
          throw cgroupFileError('removing cgroup', parent, err);
        }
      }
    }),
  );
  const prunedFailed = pruned.find((result) => result.status === 'rejected');
  if (prunedFailed) throw prunedFailed.reason;
}

/**
 * The cgroup path a /proc/PID/cgroup text gives for one hierarchy: the v2 line ("0::/a")
 * when `controller` is null, else the v1 line whose controller list has it.
 */
export function procCgroupPath(procCgroup: string, controller: string | null): string | null {
  for (const line of procCgroup.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const matches = controller === null ? controllers === '' : controllers.split(',').includes(controller);
    if (matches) return line.slice(second + 1).trim();
  }
  return null;
}

/** Checks a saved path names a container cgroup `<...>/<id>` inside one of `roots`. */
export function checkSavedPath(id: string, path: string, roots: readonly string[]): string {
  validateCgroupId(id);
  const inside = roots.some((root) => isPathWithin(path, root) && resolve(path) !== resolve(root));
  if (!inside || basename(path) !== id || resolve(path) !== path) {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `saved cgroup path ${JSON.stringify(path)} is not a cgroup named ${JSON.stringify(id)} below ${roots.join(', ')}`,
    );
  }
  return path;
}
