/**
 * What this host offers a container runtime, as `mdocker info` and the server's start-up
 * log show it: kernel, cgroups and where containers go, user namespaces, and whether the
 * image store's filesystem takes idmapped mounts (asked of the kernel by the launcher's
 * `check-idmap`, once per filesystem and boot).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import type { CgroupPlacement } from './cgroups/driver.js';
import { launcherPath } from './native.js';

export interface IdmapSupport {
  dir: string;
  supported: boolean;
  /** The kernel's refusal, when not supported. */
  reason: string | null;
}

export interface HostInfo {
  kernelVersion: string;
  cgroupVersion: 1 | 2;
  cgroupDriver: CgroupPlacement['driver'];
  /** The directory that holds one cgroup per container (the first, on v1). */
  cgroupParent: string;
  cgroupParents: string[];
  systemdUnit: string | null;
  controllers: string[];
  userNamespaces: boolean;
  idmappedMounts: IdmapSupport;
  stateRoot: string;
}

const remembered = new Map<string, Promise<IdmapSupport>>();

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown-boot';
  }
}

function askLauncher(dir: string): Promise<IdmapSupport> {
  return new Promise((resolve) => {
    execFile(launcherPath, ['check-idmap', dir], { timeout: 10_000 }, (err, stdout) => {
      if (err === null) {
        resolve({ dir, supported: true, reason: null });
        return;
      }
      let reason = stdout.trim() || err.message;
      try {
        const parsed = JSON.parse(stdout) as { message?: unknown };
        if (typeof parsed.message === 'string') reason = parsed.message;
      } catch {
        // not the launcher's JSON line: keep the raw text
      }
      resolve({ dir, supported: false, reason });
    });
  });
}

/**
 * The answers are kept per filesystem and boot for every runtime of this host, beside
 * the user namespace slots' locks (launcher.ts), whatever a runtime's state root.
 */
const IDMAP_CACHE_DIR = '/run/mdocker/idmap';

/**
 * Whether `dir`'s filesystem takes idmapped mounts. The answer depends on the filesystem
 * and the running kernel only, so it is asked once per device and boot.
 */
export function idmapSupport(dir: string): Promise<IdmapSupport> {
  let device: string;
  try {
    device = String(statSync(dir).dev);
  } catch {
    return askLauncher(dir);
  }
  const key = `${bootId()}-${device}`;
  let answer = remembered.get(key);
  if (answer === undefined) {
    answer = fromCacheOrLauncher(dir, join(IDMAP_CACHE_DIR, `${key}.json`));
    remembered.set(key, answer);
  }
  return answer;
}

async function fromCacheOrLauncher(dir: string, cacheFile: string): Promise<IdmapSupport> {
  try {
    const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as { supported?: unknown; reason?: unknown };
    if (typeof cached.supported === 'boolean') {
      return { dir, supported: cached.supported, reason: typeof cached.reason === 'string' ? cached.reason : null };
    }
  } catch {
    // not asked yet in this boot
  }
  const answer = await askLauncher(dir);
  try {
    mkdirSync(join(cacheFile, '..'), { recursive: true, mode: 0o700 });
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ supported: answer.supported, reason: answer.reason }));
    renameSync(tmp, cacheFile);
  } catch {
    // an unwritable state root only costs asking again next time
  }
  return answer;
}

export function userNamespacesAvailable(): boolean {
  try {
    return Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8').trim()) > 0;
  } catch {
    return false;
  }
}

export function kernelVersion(): string {
  return release();
}
