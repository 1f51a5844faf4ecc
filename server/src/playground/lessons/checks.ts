/**
 * A lesson step's checks, evaluated against one container: kernel checks from what the
 * server reads anyway (the stats sample, /proc of the container's processes, its live
 * hostname, files in its root) and script checks run with the runtime's exec.
 */
import { readFile, readlink } from 'node:fs/promises';
import { posix } from 'node:path';
import type { ExecResultJson, StatsSample } from '../../protocol/index.js';
import { parseProcStatus } from '../../runtime/inspect.js';
import type { ProcessRef } from '../../runtime/native.js';
import type { Limits } from '../../runtime/units.js';
import { SCRIPT_DEFAULT_TIMEOUT_MS, type LessonCheck } from './loader.js';

/** What a check may read of the host: the real /proc and the addon, or a test's fakes. */
export interface ProcAccess {
  /** "/proc" */
  procRoot: string;
  isAlive(ref: ProcessRef): boolean;
  utsHostname(ref: ProcessRef): string | null;
  readFileInRoot(ref: ProcessRef, path: string, maxBytes: number): Buffer | null;
  /** The TCP ports listening in the process's network namespace; null when it is gone. */
  listeningTcpPorts(ref: ProcessRef): number[] | null;
}

/** The counters as the container started: its cgroup is new, so they start at zero. */
export interface SampleBaseline {
  pidsLimitHits: number;
  oomKills: number;
  cpuThrottledPeriods: number;
}

/** One container as its checks see it. */
export interface CheckTarget {
  containerId: string;
  init: ProcessRef;
  /** the hostname it was created with */
  startHostname: string;
  createdLimits: Limits;
  /** the limits now (they follow updates) */
  limits(): Limits;
  sample: StatsSample | null;
  baseline: SampleBaseline;
  /** host pids of the container's cgroup */
  procs(): Promise<number[]>;
  /** a command in the container without a tty, killed at timeoutMs */
  exec(cmd: string[], timeoutMs: number): Promise<ExecResultJson>;
}

/** More processes than this are a fork bomb: a check looks at the first ones only. */
const MAX_PROCS_LOOKED_AT = 2000;
/** file-contains reads at most this much of a file. */
export const FILE_CONTAINS_MAX_BYTES = 64 * 1024;

export function isScriptCheck(check: LessonCheck): check is Extract<LessonCheck, { kind: 'script' }> {
  return check.kind === 'script';
}

/** Kernel checks answered from the sample alone (no /proc read). */
export function holdsFromSample(check: LessonCheck, target: CheckTarget): boolean | null {
  const sample = target.sample;
  switch (check.kind) {
    case 'pids-limit-hit':
      return sample !== null && sample.pidsLimitHits > target.baseline.pidsLimitHits;
    case 'oom-kill':
      return sample !== null && sample.oomKills > target.baseline.oomKills;
    case 'cpu-throttled':
      return sample !== null && sample.cpuThrottledPeriods > target.baseline.cpuThrottledPeriods;
    case 'limit-changed': {
      const key = check.limit === 'memory' ? 'memoryBytes' : check.limit === 'cpus' ? 'cpus' : 'pidsLimit';
      return target.limits()[key] !== target.createdLimits[key];
    }
    default:
      return null;
  }
}

/** Whether a check holds now. Script checks run the command; anything unreadable is "no". */
export async function evaluateCheck(check: LessonCheck, target: CheckTarget, access: ProcAccess): Promise<boolean> {
  const fromSample = holdsFromSample(check, target);
  if (fromSample !== null) return fromSample;
  try {
    switch (check.kind) {
      case 'hostname-changed': {
        const name = access.utsHostname(target.init);
        return name !== null && name !== target.startHostname;
      }
      case 'hostname-equals':
        return access.utsHostname(target.init) === check.value;
      case 'processes-at-least':
        if (target.sample !== null && target.sample.pids < check.count) return false;
        return (await containerProcesses(target, access)).length >= check.count;
      case 'nested-namespace':
        return await nestedNamespace(target, access, check.namespace);
      case 'mount':
        return await mountExists(target, access, check.path, check.fstype);
      case 'file-exists':
        return access.readFileInRoot(target.init, check.path, 0) !== null;
      case 'file-contains': {
        const data = access.readFileInRoot(target.init, check.path, FILE_CONTAINS_MAX_BYTES);
        return data !== null && new RegExp(check.pattern, 'm').test(data.toString('utf8'));
      }
      case 'port-listening':
        return portListening(target, access, check.port);
      case 'script': {
        const result = await target.exec(['/bin/sh', '-c', check.run], check.timeout ?? SCRIPT_DEFAULT_TIMEOUT_MS);
        return result.exitCode === 0 && !result.timedOut;
      }
      default:
        return false;
    }
  } catch {
    // The container ended, a process went while we looked, a script's exec failed.
    return false;
  }
}

/** NSpid of a host pid (outermost first), or null when it is gone. */
async function nsPids(access: ProcAccess, pid: number): Promise<number[] | null> {
  try {
    return parseProcStatus(await readFile(`${access.procRoot}/${pid}/status`, 'utf8')).nsPids;
  } catch {
    return null;
  }
}

async function namespaceLink(access: ProcAccess, pid: number, type: string): Promise<string | null> {
  try {
    return await readlink(`${access.procRoot}/${pid}/ns/${type}`);
  } catch {
    return null;
  }
}

/**
 * The cgroup's processes that are the container's: in its PID namespace or one nested
 * in it (as deep as the init or deeper). `mdocker-init exec` joins the cgroup before it
 * enters the namespaces and stays outside them, a host process with a host depth.
 */
async function containerProcesses(target: CheckTarget, access: ProcAccess): Promise<number[]> {
  const initDepth = (await nsPids(access, target.init.pid))?.length ?? 0;
  if (initDepth === 0) return [];
  const pids = (await target.procs()).slice(0, MAX_PROCS_LOOKED_AT);
  const depths = await Promise.all(pids.map((pid) => nsPids(access, pid)));
  return pids.filter((_, index) => (depths[index]?.length ?? 0) >= initDepth);
}

/** Still in this container's cgroup: a pid reused by another process is not. */
async function stillInContainer(access: ProcAccess, pid: number, containerId: string): Promise<boolean> {
  try {
    return (await readFile(`${access.procRoot}/${pid}/cgroup`, 'utf8')).includes(containerId);
  } catch {
    return false;
  }
}

/** A process of the container in a namespace of this type other than its init's (a nested unshare). */
async function nestedNamespace(target: CheckTarget, access: ProcAccess, type: string): Promise<boolean> {
  const initLink = await namespaceLink(access, target.init.pid, type);
  if (initLink === null || !access.isAlive(target.init)) return false;
  for (const pid of await containerProcesses(target, access)) {
    if (pid === target.init.pid) continue;
    const link = await namespaceLink(access, pid, type);
    if (link !== null && link !== initLink && (await stillInContainer(access, pid, target.containerId))) return true;
  }
  return false;
}

/** mountinfo's escapes (\040 for a space, \011, \012, \134) undone. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Mount points and filesystem types of a mountinfo text; paths are the process's own (its root is /). */
export function parseMountInfo(text: string): { mountPoint: string; fstype: string }[] {
  const mounts: { mountPoint: string; fstype: string }[] = [];
  for (const line of text.split('\n')) {
    const separator = line.indexOf(' - ');
    if (separator < 0) continue;
    const fields = line.slice(0, separator).split(' ');
    const after = line.slice(separator + 3).split(' ');
    if (fields.length < 5 || after.length < 1) continue;
    mounts.push({ mountPoint: unescapeMountPath(fields[4]!), fstype: after[0]! });
  }
  return mounts;
}

/**
 * A mount at path in the init's mount namespace or in another of the container's (a
 * nested `unshare -m`). mountinfo shows paths relative to the reading process's root,
 * which for a container's process is the container's root.
 */
async function mountExists(
  target: CheckTarget,
  access: ProcAccess,
  path: string,
  fstype: string | undefined,
): Promise<boolean> {
  const wanted = posix.normalize(path).replace(/(.)\/$/, '$1');
  const initNs = await namespaceLink(access, target.init.pid, 'mnt');
  const pids = [target.init.pid];
  for (const pid of await containerProcesses(target, access)) {
    if (pids.length >= 20) break;
    if (pid !== target.init.pid && (await namespaceLink(access, pid, 'mnt')) !== initNs) pids.push(pid);
  }
  for (const pid of pids) {
    let text: string;
    try {
      text = await readFile(`${access.procRoot}/${pid}/mountinfo`, 'utf8');
    } catch {
      continue;
    }
    const found = parseMountInfo(text).some(
      (mount) => mount.mountPoint === wanted && (fstype === undefined || mount.fstype === fstype),
    );
    // The init's pid must still be the init's, and another process still the container's.
    const same =
      pid === target.init.pid ? access.isAlive(target.init) : await stillInContainer(access, pid, target.containerId);
    if (found && same) return true;
  }
  return false;
}

/** A TCP socket listening on port in the init's network namespace. */
function portListening(target: CheckTarget, access: ProcAccess, port: number): boolean {
  return access.listeningTcpPorts(target.init)?.includes(port) ?? false;
}
