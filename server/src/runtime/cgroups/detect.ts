/**
 * Picks the cgroup driver for this host from /proc/self/mountinfo and /proc/self/cgroup:
 * v1 when the memory or pids controller lives in a v1 hierarchy (hybrid hosts included),
 * v2 when the unified hierarchy offers controllers.
 */
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { MdockerError } from '../errors.js';
import { acquireDelegation, readOwnUnifiedCgroup } from './delegate.js';
import { errnoCode, nodeCgroupFs, type CgroupDriver, type CgroupFs } from './driver.js';
import { connectSystemd, systemdBooted, type SystemdManager } from './systemd.js';
import { CgroupV1Driver, type V1Hierarchy } from './v1.js';
import { CgroupV2Driver } from './v2.js';

export interface DetectCgroupOptions {
  /** Where procfs is mounted; default /proc. */
  procRoot?: string;
  /** Mount points at or below /sys/fs/cgroup are re-rooted here (tests use a temp dir). */
  sysfsCgroupRoot?: string;
  fs?: CgroupFs;
  /**
   * On v2, where a default parent comes from: `true` (the default) finds a delegated
   * cgroup (delegate.ts), moving this process as it must; `false` keeps `mdocker/` below
   * this process's own cgroup (unit tests on fake trees).
   */
  delegate?: boolean;
  /** Whether systemd runs this host; default: sd_booted(3). */
  systemdBooted?: boolean;
  connectSystemd?: () => Promise<SystemdManager>;
}

export interface MountInfoEntry {
  /** The directory of the filesystem this mount shows (a cgroup path for cgroupfs). */
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

export interface ProcCgroupMembership {
  /** v1 controller (or "name=systemd") to this process's cgroup path in that hierarchy. */
  v1: Map<string, string>;
  /** This process's cgroup in the unified hierarchy (the "0::" line), if any. */
  unified: string | null;
}

const SYSFS_CGROUP_ROOT = '/sys/fs/cgroup';

// The v1 controllers a kernel may attach to a hierarchy; other super options ("rw",
// "name=systemd", "clone_children", "xattr") are not controllers.
const KNOWN_V1_CONTROLLERS = new Set([
  'blkio',
  'cpu',
  'cpuacct',
  'cpuset',
  'devices',
  'freezer',
  'hugetlb',
  'memory',
  'misc',
  'net_cls',
  'net_prio',
  'perf_event',
  'pids',
  'rdma',
]);

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Parses proc(5)'s mountinfo: "id parent major:minor root mountpoint opts [optional...] - fstype source superopts". */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const entries: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    const separator = fields.indexOf('-', 6);
    if (fields.length < 10 || separator === -1) continue;
    const root = fields[3];
    const mountPoint = fields[4];
    const fsType = fields[separator + 1];
    const superOptions = fields[separator + 3];
    if (root === undefined || mountPoint === undefined || fsType === undefined || superOptions === undefined) continue;
    entries.push({
      root: unescapeMountField(root),
      mountPoint: unescapeMountField(mountPoint),
      fsType,
      superOptions: superOptions.split(','),
    });
  }
  return entries;
}

/** Parses /proc/self/cgroup: "hierarchy-id:controller,list:/path" per line. */
export function parseProcCgroup(text: string): ProcCgroupMembership {
  const membership: ProcCgroupMembership = { v1: new Map(), unified: null };
  for (const line of text.split('\n')) {
    const firstColon = line.indexOf(':');
    const secondColon = line.indexOf(':', firstColon + 1);
    if (firstColon === -1 || secondColon === -1) continue;
    const controllers = line.slice(firstColon + 1, secondColon);
    const path = line.slice(secondColon + 1).trim();
    if (controllers === '') {
      membership.unified = path;
      continue;
    }
    for (const controller of controllers.split(',')) membership.v1.set(controller, path);
  }
  return membership;
}

/**
 * Where our cgroup appears below a mount: the mount shows the hierarchy from `root` down,
 * so a container that bind-mounts its own cgroup sees "/" for what /proc calls "/docker/x".
 */
export function cgroupRelativeToMount(cgroupPath: string, mountRoot: string): string | null {
  const cgroup = posix.normalize(cgroupPath);
  const root = posix.normalize(mountRoot);
  if (root === '/') return cgroup;
  if (cgroup === root) return '/';
  if (cgroup.startsWith(root + '/')) return cgroup.slice(root.length);
  return null;
}

function rerootMountPoint(mountPoint: string, sysfsCgroupRoot: string | undefined): string {
  if (sysfsCgroupRoot === undefined) return mountPoint;
  if (mountPoint === SYSFS_CGROUP_ROOT) return sysfsCgroupRoot;
  if (mountPoint.startsWith(SYSFS_CGROUP_ROOT + '/'))
    return join(sysfsCgroupRoot, mountPoint.slice(SYSFS_CGROUP_ROOT.length));
  return mountPoint;
}

function readProcFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new MdockerError(
      'UNSUPPORTED',
      `cannot read ${path}: ${errnoCode(err) ?? String(err)}`,
      { path },
      { cause: err },
    );
  }
}

function readControllers(path: string): string[] {
  try {
    return readFileSync(path, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((name) => name !== '');
  } catch {
    return [];
  }
}

/**
 * Among several mounts of one hierarchy (bind mounts are common in containers), prefer the
 * one that shows the most of it and still contains our cgroup.
 */
function pickMount<T extends MountInfoEntry>(
  mounts: T[],
  cgroupPath: string | undefined | null,
): { mount: T; ownCgroup: string | null } | undefined {
  const sorted = [...mounts].sort((a, b) => a.root.length - b.root.length);
  for (const mount of sorted) {
    const ownCgroup = cgroupPath == null ? null : cgroupRelativeToMount(cgroupPath, mount.root);
    if (ownCgroup !== null) return { mount, ownCgroup };
  }
  const first = sorted[0];
  return first === undefined ? undefined : { mount: first, ownCgroup: null };
}

export function detectCgroupDriver(options: DetectCgroupOptions = {}): CgroupDriver {
  const procRoot = options.procRoot ?? '/proc';
  const mountInfoPath = join(procRoot, 'self', 'mountinfo');
  const mounts = parseMountInfo(readProcFile(mountInfoPath)).map((mount) => ({
    ...mount,
    mountPoint: rerootMountPoint(mount.mountPoint, options.sysfsCgroupRoot),
  }));
  const membership = parseProcCgroup(readProcFile(join(procRoot, 'self', 'cgroup')));

  // Group v1 mounts by their controller set: each set is one hierarchy, possibly mounted twice.
  const v1MountsByControllers = new Map<string, (MountInfoEntry & { controllers: string[] })[]>();
  for (const mount of mounts) {
    if (mount.fsType !== 'cgroup') continue;
    const controllers = mount.superOptions.filter((option) => KNOWN_V1_CONTROLLERS.has(option));
    if (controllers.length === 0) continue;
    const key = [...controllers].sort().join(',');
    v1MountsByControllers.set(key, [...(v1MountsByControllers.get(key) ?? []), { ...mount, controllers }]);
  }
  const hierarchies: V1Hierarchy[] = [];
  for (const group of v1MountsByControllers.values()) {
    const firstController = group[0]?.controllers[0];
    const picked = pickMount(group, firstController === undefined ? null : membership.v1.get(firstController));
    if (picked === undefined) continue;
    hierarchies.push({
      controllers: picked.mount.controllers,
      mountPoint: picked.mount.mountPoint,
      ownCgroup: picked.ownCgroup,
    });
  }

  const unified = pickMount(
    mounts.filter((mount) => mount.fsType === 'cgroup2'),
    membership.unified,
  );
  const unifiedControllers =
    unified === undefined ? [] : readControllers(join(unified.mount.mountPoint, 'cgroup.controllers'));
  const v1HasMemoryOrPids = hierarchies.some(
    (hierarchy) => hierarchy.controllers.includes('memory') || hierarchy.controllers.includes('pids'),
  );

  const v2Driver = (mount: MountInfoEntry, ownCgroup: string | null): CgroupV2Driver => {
    const fs = options.fs ?? nodeCgroupFs;
    const delegate =
      options.delegate === false
        ? undefined
        : () =>
            acquireDelegation({
              fs,
              mountPoint: mount.mountPoint,
              pid: process.pid,
              ownCgroup: () => readOwnUnifiedCgroup(procRoot, mount.root),
              systemdBooted: options.systemdBooted ?? systemdBooted(),
              connectSystemd: options.connectSystemd ?? connectSystemd,
            });
    return new CgroupV2Driver({ mountPoint: mount.mountPoint, ownCgroup, fs, delegate });
  };
  // A hybrid host mounts an (often empty) unified hierarchy next to v1 ones; the
  // controllers we need can only be in one place, and v1 claims them first.
  if (unified !== undefined && !v1HasMemoryOrPids && unifiedControllers.length > 0) {
    return v2Driver(unified.mount, unified.ownCgroup);
  }
  if (hierarchies.length > 0) return new CgroupV1Driver({ hierarchies, fs: options.fs });
  if (unified !== undefined) return v2Driver(unified.mount, unified.ownCgroup);
  throw new MdockerError('UNSUPPORTED', `no cgroup filesystem is mounted (according to ${mountInfoPath})`);
}
