/**
 * What a running container is, seen from the host's /proc: its namespaces beside the
 * host's, its processes with their host and container PIDs, and its network
 * (network-info.ts).
 */
import { readFile, readlink } from 'node:fs/promises';
import { hostname as hostHostname } from 'node:os';
import type { InspectJson, NamespaceType } from '../protocol/index.js';
import { MdockerError } from './errors.js';
import { isAlive, type ProcessRef } from './native.js';
import { readContainerNetwork } from './network-info.js';

export const NAMESPACE_TYPES: readonly NamespaceType[] = ['pid', 'uts', 'mnt', 'ipc', 'net', 'cgroup', 'user'];

/** More would be a fork bomb in progress; the table is for reading, not for counting. */
const MAX_PROCESSES = 1000;

/** "pid:[4026531836]" → 4026531836 */
export function parseNamespaceLink(link: string): number | null {
  const match = /^[a-z_]+:\[(\d+)\]$/.exec(link);
  return match ? Number(match[1]) : null;
}

async function namespaceInode(pid: number | 'self', type: NamespaceType): Promise<number | null> {
  try {
    return parseNamespaceLink(await readlink(`/proc/${pid}/ns/${type}`));
  } catch {
    return null;
  }
}

/**
 * The host's namespaces are PID 1's: the server itself may run in some of its own (a
 * systemd unit with PrivateTmp has its own mount namespace), and the lesson is about
 * the container versus the machine.
 */
async function hostNamespaceInode(type: NamespaceType): Promise<number | null> {
  return (await namespaceInode(1, type)) ?? namespaceInode('self', type);
}

export interface ProcStatus {
  /** NSpid: outermost (host) first, innermost (the container's) last */
  nsPids: number[];
  uid: number | null;
  name: string;
}

export function parseProcStatus(text: string): ProcStatus {
  let nsPids: number[] = [];
  let uid: number | null = null;
  let name = '';
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (key === 'NSpid') nsPids = value.split(/\s+/).map(Number).filter(Number.isInteger);
    else if (key === 'Uid') uid = Number(value.split(/\s+/)[0]);
    else if (key === 'Name') name = value;
  }
  return { nsPids, uid: uid !== null && Number.isInteger(uid) ? uid : null, name };
}

/** uid_map lines "inside outside count": the container's uid for a host uid. */
export function parseIdMap(text: string): { inside: number; outside: number; count: number }[] {
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number))
    .filter((parts) => parts.length === 3 && parts.every(Number.isInteger))
    .map(([inside, outside, count]) => ({ inside: inside!, outside: outside!, count: count! }));
}

export function toInsideId(map: { inside: number; outside: number; count: number }[], hostId: number): number | null {
  for (const range of map) {
    if (hostId >= range.outside && hostId < range.outside + range.count) return range.inside + (hostId - range.outside);
  }
  return null;
}

/**
 * A user name without reading the container's /etc/passwd: the host would resolve that
 * path through /proc/<pid>/root, where a symlink planted by the container points back
 * at host files. Numbers are what the kernel knows anyway.
 */
function userName(uid: number | null): string {
  if (uid === null) return '?';
  if (uid === 0) return 'root';
  if (uid === 65534) return 'nobody';
  return String(uid);
}

export async function inspectContainer(options: {
  id: string;
  /** The init, pinned by its start time: what is read of it is its own only if it still lives after. */
  init: ProcessRef;
  hostname: string;
  procs: () => Promise<number[]>;
  /** The network it is on and where that network's namespace is held; null: only lo. */
  network: { name: string; netnsPath: string } | null;
  /** Told why the network could not be read (the rest is still answered, with network null). */
  onNetworkError?: (err: unknown) => void;
}): Promise<InspectJson> {
  const initPid = options.init.pid;
  // Under way while the namespaces are read, and done before the liveness check below.
  const network = readContainerNetwork({ init: options.init, network: options.network }).catch((err: unknown) => {
    options.onNetworkError?.(err);
    return null;
  });
  const namespaces = await Promise.all(
    NAMESPACE_TYPES.map(async (type) => {
      const [host, container] = await Promise.all([hostNamespaceInode(type), namespaceInode(initPid, type)]);
      return {
        type,
        host: host ?? 0,
        container: container ?? 0,
        isolated: host !== null && container !== null && host !== container,
      };
    }),
  );
  let uidMap: { inside: number; outside: number; count: number }[] = [];
  try {
    uidMap = parseIdMap(await readFile(`/proc/${initPid}/uid_map`, 'utf8'));
  } catch {
    // the init is gone; the process list below comes out empty too
  }
  const networkJson = await network;
  // A pid reused by a host process would show the host's namespaces as the container's.
  if (!isAlive(options.init)) {
    throw new MdockerError('CONFLICT', `container ${options.id.slice(0, 12)} is not running`);
  }
  // Each process is shown only if it is in the container's PID namespace (a pid of the
  // cgroup reused meanwhile by a host process is not).
  const pids = (await options.procs().catch(() => [] as number[])).slice(0, MAX_PROCESSES);
  const containerPidNamespace = namespaces.find((ns) => ns.type === 'pid')?.container ?? 0;
  const processes = (
    await Promise.all(
      pids.map(async (hostPid) => {
        try {
          // `mdocker-init exec` joins the cgroup before it enters the namespaces and stays
          // outside them as the exec'd process's parent: it is the runtime's, not the
          // container's, and its command line would show host paths.
          if ((await namespaceInode(hostPid, 'pid')) !== containerPidNamespace) return null;
          const [statusText, cmdline] = await Promise.all([
            readFile(`/proc/${hostPid}/status`, 'utf8'),
            readFile(`/proc/${hostPid}/cmdline`),
          ]);
          const status = parseProcStatus(statusText);
          const args = cmdline
            .toString('utf8')
            .split('\0')
            .filter((arg) => arg !== '');
          const command = args.length > 0 ? args.join(' ') : `[${status.name}]`;
          return {
            hostPid,
            containerPid: status.nsPids.at(-1) ?? hostPid,
            user: userName(status.uid === null ? null : (toInsideId(uidMap, status.uid) ?? status.uid)),
            command: command.length > 256 ? command.slice(0, 255) + '…' : command,
          };
        } catch {
          return null; // exited while we looked
        }
      }),
    )
  )
    .filter((process) => process !== null)
    .sort((a, b) => a.containerPid - b.containerPid);
  return {
    id: options.id,
    namespaces,
    processes,
    hostname: { host: hostHostname(), container: options.hostname },
    network: networkJson,
  };
}
