/**
 * Builds mdocker-init's command lines (native/README.md documents the flags). The only
 * module that knows them; the launcher's path comes from native.ts. It also names the
 * pool of host ids that containers' user namespaces are drawn from (SECURITY.md).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MdockerError } from './errors.js';
import { launcherPath } from './native.js';

/**
 * 'private' (the default): the container's root is an unprivileged host uid of a range
 * of its own; 'host': no user namespace, the container's root is the host's (Docker's
 * --userns=host, for teaching the difference).
 */
export type UsernsMode = 'private' | 'host';

/** What the launcher applies before exec; the defaults are the safe ones. */
export interface SecurityOptions {
  capAdd: string[];
  capDrop: string[];
  seccomp: 'default' | 'unconfined';
  /**
   * false: execve may grant privileges again (setuid files, file capabilities), as in
   * Docker by default; within the bounding set and the container's user namespace.
   * Absent means true: no_new_privs is set.
   */
  noNewPrivs?: boolean;
  /** Absent means 'private'. `exec` needs none: it joins whatever the container has. */
  userns?: UsernsMode;
}

export const DEFAULT_SECURITY: SecurityOptions = { capAdd: [], capDrop: [], seccomp: 'default', userns: 'private' };

/** Host ids per container: its 0..65535 (nobody is 65534). */
export const USERNS_SLOT_IDS = 65536;

/**
 * Where containers' host ids come from: slots of USERNS_SLOT_IDS ids from uidBase and
 * gidBase. The launcher takes the first slot nobody holds (a lock per slot in
 * USERNS_LOCK_DIR, held for the container's life), so any number of runtimes on one
 * host sharing a pool never hand out one range twice.
 */
export interface UsernsPool {
  uidBase: number;
  gidBase: number;
  slots: number;
}

/** 2^28 up, 16384 slots: above any range a distribution gives to users in /etc/subuid. */
export const DEFAULT_USERNS_POOL: UsernsPool = { uidBase: 0x10000000, gidBase: 0x10000000, slots: 16384 };
export const USERNS_LOCK_DIR = '/run/mdocker/userns';
const SUBID_USER = 'mdocker';

/** The "mdocker:START:COUNT" range of an /etc/subuid or /etc/subgid text, if any. */
export function subidRange(text: string): { start: number; count: number } | null {
  for (const line of text.split('\n')) {
    const [name, start, count] = line.trim().split(':');
    if (name !== SUBID_USER) continue;
    if (!/^\d+$/.test(start ?? '') || !/^\d+$/.test(count ?? '')) {
      throw new MdockerError('INVALID_ARGUMENT', `malformed subordinate id range for ${SUBID_USER}: ${line.trim()}`);
    }
    return { start: Number(start), count: Number(count) };
  }
  return null;
}

/**
 * The pool from /etc/subuid and /etc/subgid when they give the user "mdocker" a range
 * (the administrator's way to keep several runtimes, or other tools, apart), else
 * DEFAULT_USERNS_POOL.
 */
export function usernsPoolFrom(subuid: string, subgid: string): UsernsPool {
  const uids = subidRange(subuid);
  const gids = subidRange(subgid);
  if (!uids && !gids) return DEFAULT_USERNS_POOL;
  if (!uids || !gids) {
    throw new MdockerError('INVALID_ARGUMENT', `${SUBID_USER} has a range in only one of /etc/subuid and /etc/subgid`);
  }
  const slots = Math.floor(Math.min(uids.count, gids.count) / USERNS_SLOT_IDS);
  if (slots < 1 || uids.start < 1 || gids.start < 1) {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `the ${SUBID_USER} ranges in /etc/subuid and /etc/subgid must start above 0 and hold at least ${USERNS_SLOT_IDS} ids`,
    );
  }
  return { uidBase: uids.start, gidBase: gids.start, slots };
}

/** An account of the name service whose id lies in the pool: a container would own its files. */
export interface PoolClash {
  kind: 'user' | 'group';
  name: string;
  id: number;
}

/**
 * The users and groups of `getent passwd` / `getent group` output ("name:x:id:...")
 * whose id lies inside the pool's host ids.
 */
export function poolClashes(pool: UsernsPool, passwd: string, group: string): PoolClash[] {
  const clashes: PoolClash[] = [];
  const scan = (kind: 'user' | 'group', text: string, base: number) => {
    const end = base + pool.slots * USERNS_SLOT_IDS;
    for (const line of text.split('\n')) {
      const [name, , id] = line.split(':');
      const n = Number(id);
      if (name && id !== undefined && /^\d+$/.test(id) && n >= base && n < end) clashes.push({ kind, name, id: n });
    }
  };
  scan('user', passwd, pool.uidBase);
  scan('group', group, pool.gidBase);
  return clashes;
}

/**
 * Refuses a pool that holds an account of the host's name service (files, LDAP, ...):
 * a container's root would own that user's files. Asked of `getent` once, then again only
 * when /etc/passwd or /etc/group change or the host reboots (the answer is kept beside the
 * slots' locks).
 */
export function assertPoolFree(pool: UsernsPool): void {
  const mtime = (path: string) => {
    try {
      return statSync(path).mtimeMs;
    } catch {
      return 0;
    }
  };
  let boot = '';
  try {
    boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    // no boot id: ask every time
  }
  const key = JSON.stringify([pool, mtime('/etc/passwd'), mtime('/etc/group'), boot]);
  const checked = join(USERNS_LOCK_DIR, 'pool-checked');
  try {
    if (boot !== '' && readFileSync(checked, 'utf8') === key) return;
  } catch {
    // not checked yet
  }
  const getent = (database: string): string => {
    try {
      return execFileSync('getent', [database], { encoding: 'utf8', timeout: 10_000, maxBuffer: 64 * 1024 * 1024 });
    } catch {
      // No getent (a minimal container): the files alone are the name service.
      return readFileSync(`/etc/${database}`, 'utf8');
    }
  };
  const clashes = poolClashes(pool, getent('passwd'), getent('group'));
  if (clashes.length > 0) {
    const first = clashes[0]!;
    throw new MdockerError(
      'UNSUPPORTED',
      `the ${first.kind} ${first.name} (id ${first.id}) lies inside the user namespace pool ` +
        `(uids ${pool.uidBase}+, gids ${pool.gidBase}+, ${pool.slots} slots of ${USERNS_SLOT_IDS}): a container's ` +
        `root would own its files; give ${SUBID_USER} a free range in /etc/subuid and /etc/subgid`,
      { clashes: clashes.slice(0, 10) },
    );
  }
  try {
    mkdirSync(USERNS_LOCK_DIR, { recursive: true, mode: 0o700 });
    writeFileSync(`${checked}.${process.pid}`, key);
    renameSync(`${checked}.${process.pid}`, checked);
  } catch {
    // asked again next time
  }
}

let pool: UsernsPool | undefined;
export function usernsPool(): UsernsPool {
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return '';
    }
  };
  pool ??= usernsPoolFrom(read('/etc/subuid'), read('/etc/subgid'));
  return pool;
}

export interface LaunchCommand {
  file: string;
  args: string[];
}

export interface RunLaunch {
  id: string;
  hostname: string;
  imagePath: string | null;
  /** A stored image's layer directories, bottom first (instead of imagePath). */
  imageLayers?: string[] | null;
  rootfs: string | null;
  layerDir: string;
  layerSizeBytes: number;
  cgroupPaths: string[];
  env: string[];
  workdir: string;
  /** "uid:gid" the command runs as; null: the container's root. */
  user?: string | null;
  /** Its supplementary gids (with a user). */
  groups?: number[];
  tty: boolean;
  pidFile: string;
  errorFile: string;
  exitFile: string;
  /** Removed by the launcher once the container is gone (--rm of a detached container). */
  cleanupDir: string | null;
  /** A detached container's output: appended here by the launcher's relay, up to maxBytes. */
  outputLog: { path: string; maxBytes: number } | null;
  dieWithParent: boolean;
  security: SecurityOptions;
  /**
   * The network to join (a veth on its bridge, eth0 with this address, its hosts file; with
   * egress, a default route through the gateway and nameservers), or none: only lo.
   */
  network: { netnsPath: string; address: string; hostsPath: string; gateway: string | null; dns: string[] } | null;
  cmd: string[];
}

export interface ExecLaunch {
  /** The container's init, by pid and start time: the launcher pins it with a pidfd. */
  init: { pid: number; startTime: number };
  cgroupPaths: string[];
  env: string[];
  workdir: string | null;
  tty: boolean;
  pidFile: string | null;
  errorFile: string | null;
  dieWithParent: boolean;
  security: SecurityOptions;
  /** "uid:gid" the process runs as; null: the container's root. */
  user?: string | null;
  /** Its supplementary gids (with a user). */
  groups?: number[];
  cmd: string[];
}

function common(
  args: string[],
  opts: {
    cgroupPaths: string[];
    env: string[];
    tty: boolean;
    dieWithParent: boolean;
    workdir: string | null;
    security: SecurityOptions;
  },
): void {
  for (const cap of opts.security.capAdd) args.push('--cap-add', cap);
  for (const cap of opts.security.capDrop) args.push('--cap-drop', cap);
  if (opts.security.seccomp !== 'default') args.push('--seccomp', opts.security.seccomp);
  if (opts.security.noNewPrivs === false) args.push('--no-new-privs', '0');
  for (const path of opts.cgroupPaths) args.push('--cgroup', path);
  for (const entry of opts.env) args.push('--env', entry);
  if (opts.workdir) args.push('--workdir', opts.workdir);
  if (opts.tty) args.push('--tty');
  if (opts.dieWithParent) args.push('--die-with-parent');
}

export function runCommand(launch: RunLaunch): LaunchCommand {
  const args = ['run', '--id', launch.id, '--hostname', launch.hostname];
  if ((launch.security.userns ?? 'private') === 'host') {
    args.push('--userns', 'host');
  } else {
    const { uidBase, gidBase, slots } = usernsPool();
    args.push('--userns-pool', `${uidBase}:${gidBase}:${slots}`, '--userns-lock-dir', USERNS_LOCK_DIR);
  }
  if (launch.imageLayers && launch.imageLayers.length > 0) {
    for (const layer of launch.imageLayers) args.push('--image-layer', layer);
    args.push('--layer-size', String(launch.layerSizeBytes));
  } else if (launch.imagePath) args.push('--image', launch.imagePath, '--layer-size', String(launch.layerSizeBytes));
  else if (launch.rootfs) args.push('--rootfs', launch.rootfs);
  if (launch.user) args.push('--user', launch.user);
  if (launch.user && launch.groups && launch.groups.length > 0) args.push('--groups', launch.groups.join(','));
  args.push('--layer-dir', launch.layerDir);
  common(args, launch);
  args.push('--pid-file', launch.pidFile, '--error-file', launch.errorFile, '--exit-file', launch.exitFile);
  if (launch.cleanupDir) args.push('--cleanup-dir', launch.cleanupDir);
  if (launch.network) {
    const { netnsPath, address, hostsPath, gateway, dns } = launch.network;
    args.push('--network-netns', netnsPath, '--network-address', address, '--network-hosts', hostsPath);
    if (gateway) args.push('--network-gateway', gateway);
    if (dns.length > 0) args.push('--network-dns', dns.join(','));
  }
  if (launch.outputLog) {
    args.push('--log-file', launch.outputLog.path, '--log-max-bytes', String(launch.outputLog.maxBytes));
  }
  args.push('--', ...launch.cmd);
  return { file: launcherPath, args };
}

export function execCommand(launch: ExecLaunch): LaunchCommand {
  const args = ['exec', '--pid', String(launch.init.pid), '--pid-start-time', String(launch.init.startTime)];
  // Without it the launcher refuses a target in the host's user namespace.
  if ((launch.security.userns ?? 'private') === 'host') args.push('--host-userns');
  common(args, launch);
  if (launch.pidFile) args.push('--pid-file', launch.pidFile);
  if (launch.errorFile) args.push('--error-file', launch.errorFile);
  if (launch.user) args.push('--user', launch.user);
  if (launch.user && launch.groups && launch.groups.length > 0) args.push('--groups', launch.groups.join(','));
  args.push('--', ...launch.cmd);
  return { file: launcherPath, args };
}
