/**
 * Where a cgroup v2 runtime may make its containers' cgroups when no --cgroup-parent is
 * given: a cgroup delegated to it, with cpu, memory and pids enabled for its children.
 *
 * - A cgroup whose children already have the controllers (the root, or a parent someone
 *   prepared): used as it is.
 * - A systemd host: the unit of this process when it has Delegate=yes (mdocker.service),
 *   else a transient scope with Delegate=yes that systemd moves this process into.
 * - No systemd: the hierarchy's root as this process sees it (the host's root, or the
 *   cgroup namespace root of a container or pod), as runc's cgroupfs driver does.
 *
 * The v2 no-internal-processes rule: a cgroup that enables controllers for its children
 * may hold no process itself (the true root excepted). So when this process sits in the
 * delegated cgroup, it first moves itself into the leaf `runtime` below it; containers
 * then go to the sibling `mdocker/`. Only this process is ever moved: another process in
 * the delegated cgroup makes the controllers impossible to enable, and that is reported.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MdockerError, isMdockerError } from '../errors.js';
import { randomHex } from '../random.js';
import { cgroupPathSegments, errnoCode, readCgroupFile, writeCgroupFile, type CgroupFs } from './driver.js';
import type { SystemdManager } from './systemd.js';

export const V2_REQUIRED_CONTROLLERS = ['cpu', 'memory', 'pids'] as const;

/** The leaf below a delegated cgroup that holds the runtime's own process. */
export const RUNTIME_LEAF_NAME = 'runtime';

const SCOPE_MOVE_TIMEOUT_MS = 30_000;
const SCOPE_MOVE_POLL_MS = 20;

export interface Delegation {
  /** Who delegated it: systemd, or nobody (the cgroupfs driver's own top-level cgroup). */
  driver: 'systemd' | 'cgroupfs';
  /** The delegated cgroup relative to the mount ("/" or "/system.slice/x.scope"). */
  cgroup: string;
  /** The systemd unit that owns it, if any. */
  unit: string | null;
}

export interface DelegationContext {
  fs: CgroupFs;
  mountPoint: string;
  pid: number;
  /** This process's cgroup relative to the mount, read anew (it changes when systemd moves us). */
  ownCgroup(): string | null;
  systemdBooted: boolean;
  connectSystemd(): Promise<SystemdManager>;
}

async function enabledControllers(fs: CgroupFs, dir: string): Promise<string[]> {
  return (await readCgroupFile(fs, join(dir, 'cgroup.subtree_control'))).trim().split(/\s+/);
}

async function missingIn(fs: CgroupFs, dir: string, file: string): Promise<string[]> {
  const listed = (await readCgroupFile(fs, join(dir, file))).trim().split(/\s+/);
  return V2_REQUIRED_CONTROLLERS.filter((controller) => !listed.includes(controller));
}

/** The true root cgroup lacks the interface files every other cgroup has. */
async function isTrueRoot(fs: CgroupFs, dir: string): Promise<boolean> {
  return !(await fs.exists(join(dir, 'cgroup.type')));
}

/**
 * Makes `cgroup` hand cpu, memory and pids to its children, first moving this process into
 * its `runtime` leaf when it sits in `cgroup` itself (and `cgroup` is not the true root).
 */
async function takeOver(ctx: DelegationContext, cgroup: string): Promise<void> {
  const dir = join(ctx.mountPoint, ...cgroupPathSegments(cgroup));
  const offered = await missingIn(ctx.fs, dir, 'cgroup.controllers');
  if (offered.length > 0) {
    throw new MdockerError(
      'UNSUPPORTED',
      `cgroup v2: ${dir} is not offered the ${offered.join(', ')} controller${offered.length === 1 ? '' : 's'} ` +
        'by its parent; pass --cgroup-parent with a delegated cgroup',
      { path: dir, missing: offered },
    );
  }
  if ((await missingIn(ctx.fs, dir, 'cgroup.subtree_control')).length === 0) return;
  if (ctx.ownCgroup() === cgroup && !(await isTrueRoot(ctx.fs, dir))) {
    const leaf = join(dir, RUNTIME_LEAF_NAME);
    try {
      await ctx.fs.mkdir(leaf);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    await writeCgroupFile(ctx.fs, join(leaf, 'cgroup.procs'), ctx.pid);
  }
  const toEnable = await missingIn(ctx.fs, dir, 'cgroup.subtree_control');
  try {
    await writeCgroupFile(ctx.fs, join(dir, 'cgroup.subtree_control'), toEnable.map((c) => `+${c}`).join(' '));
  } catch (err) {
    if (!(isMdockerError(err) && err.code === 'CONFLICT')) throw err;
    const others = (await readCgroupFile(ctx.fs, join(dir, 'cgroup.procs'))).trim().split('\n').filter(Boolean);
    throw new MdockerError(
      'CONFLICT',
      `cgroup v2: cannot enable ${toEnable.join(', ')} below ${dir}: other processes are in it ` +
        `(pid ${others.slice(0, 5).join(', ')}), and a cgroup with children's controllers may hold none; ` +
        'mdocker moves only itself: start it as the main process, or pass --cgroup-parent',
      { path: dir, pids: others },
      { cause: err },
    );
  }
}

async function waitUntilIn(ctx: DelegationContext, scope: string): Promise<string> {
  const deadline = Date.now() + SCOPE_MOVE_TIMEOUT_MS;
  for (;;) {
    const own = ctx.ownCgroup();
    if (own !== null && own.endsWith(`/${scope}`)) return own;
    if (Date.now() > deadline) {
      throw new MdockerError(
        'TIMEOUT',
        `systemd did not move this process into ${scope} within ${SCOPE_MOVE_TIMEOUT_MS} ms`,
      );
    }
    await sleep(SCOPE_MOVE_POLL_MS);
  }
}

async function delegateWithSystemd(ctx: DelegationContext): Promise<Delegation> {
  const systemd = await ctx.connectSystemd();
  try {
    const unit = await systemd.unitOf(ctx.pid);
    const own = ctx.ownCgroup();
    const inUnit = own === unit.controlGroup || own === `${unit.controlGroup}/${RUNTIME_LEAF_NAME}`;
    if (unit.delegate && unit.controlGroup !== '' && inUnit) {
      try {
        await takeOver(ctx, unit.controlGroup);
        return { driver: 'systemd', cgroup: unit.controlGroup, unit: unit.id };
      } catch (err) {
        // Other processes share the unit's cgroup (a wrapper such as `npm start`): a
        // scope of our own still works.
        if (!(isMdockerError(err) && err.code === 'CONFLICT')) throw err;
      }
    }
    const scope = `mdocker-${ctx.pid}-${randomHex(3)}.scope`;
    await systemd.startDelegatedScope(scope, ctx.pid, `mdocker runtime (pid ${ctx.pid})`);
    const cgroup = await waitUntilIn(ctx, scope);
    await takeOver(ctx, cgroup);
    return { driver: 'systemd', cgroup, unit: scope };
  } finally {
    systemd.close();
  }
}

export async function acquireDelegation(ctx: DelegationContext): Promise<Delegation> {
  const own = ctx.ownCgroup();
  if (own === null) {
    throw new MdockerError(
      'UNSUPPORTED',
      `cgroup v2: this process's cgroup is not visible below ${ctx.mountPoint}; pass --cgroup-parent`,
    );
  }
  const ownDir = join(ctx.mountPoint, ...cgroupPathSegments(own));
  const enabled = await enabledControllers(ctx.fs, ownDir);
  if (V2_REQUIRED_CONTROLLERS.every((controller) => enabled.includes(controller))) {
    return { driver: 'cgroupfs', cgroup: own, unit: null };
  }
  if (ctx.systemdBooted) return delegateWithSystemd(ctx);
  await takeOver(ctx, '/');
  return { driver: 'cgroupfs', cgroup: '/', unit: null };
}

/** This process's unified-hierarchy cgroup from /proc/self/cgroup, relative to a mount showing `mountRoot`. */
export function readOwnUnifiedCgroup(procRoot: string, mountRoot: string): string | null {
  const text = readFileSync(join(procRoot, 'self', 'cgroup'), 'utf8');
  const line = text.split('\n').find((l) => l.startsWith('0::'));
  if (line === undefined) return null;
  const path = line.slice(3).trim();
  if (mountRoot === '/') return path;
  if (path === mountRoot) return '/';
  return path.startsWith(mountRoot + '/') ? path.slice(mountRoot.length) : null;
}
