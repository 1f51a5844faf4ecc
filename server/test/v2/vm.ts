/**
 * Shared by the v2 tests, which run only inside the pure cgroup v2 VM that
 * scripts/v2-vm/run.sh boots (`npm run test:v2` sets MDOCKER_V2_VM=1 there): with and
 * without systemd as PID 1, and never with a --cgroup-parent. Elsewhere they skip.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { containerCgroups, mdocker, type RunResult } from '../root/helpers.js';

/** node:test's `skip` option: a reason outside the VM, else false. */
export function v2VmOnly(): string | false {
  if (process.env.MDOCKER_V2_VM !== '1') return 'runs only in the cgroup v2 VM: npm run test:v2 (root)';
  // In the VM, a host that is not pure cgroup v2 is a broken harness, not a skip.
  const cgroupMount = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((line) => line.split(' ')[4] === '/sys/fs/cgroup');
  assert.match(cgroupMount ?? '', / - cgroup2 /, `/sys/fs/cgroup is not cgroup2: ${cgroupMount}`);
  assert.equal(process.env.MDOCKER_CGROUP_PARENT, undefined, 'the v2 tests run with no cgroup parent');
  return false;
}

/** Whether systemd is PID 1 here (sd_booted(3)'s test). */
export const systemdBooted = existsSync('/run/systemd/system');

/** Under TCG emulation one CLI command takes seconds; the helpers' 30 s default is tight. */
export function cli(args: string[], timeoutMs = 90_000): Promise<RunResult> {
  return mdocker(args, { timeoutMs });
}

/** `mdocker run -d ...`: the id, remembered in `started` for the after() hook. */
export async function detached(started: string[], args: string[]): Promise<string> {
  const r = await cli(['run', '-d', ...args]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  assert.match(id, /^[0-9a-f]{32}$/);
  started.push(id);
  return id;
}

/** The container's cgroup directory, found by its id below /sys/fs/cgroup. */
export function cgroupDirOf(id: string): string {
  const found = containerCgroups([id]);
  assert.equal(found.length, 1, `one cgroup directory for ${id}: ${JSON.stringify(found)}`);
  return found[0]!;
}

export function readCgroupFile(dir: string, file: string): string {
  return readFileSync(join(dir, file), 'utf8').trim();
}

/** One key of a flat-keyed cgroup file (memory.events, pids.events, cpu.stat). */
export function cgroupCounter(dir: string, file: string, key: string): number {
  const line = readCgroupFile(dir, file)
    .split('\n')
    .find((l) => l.startsWith(`${key} `));
  assert.ok(line, `${file} has no ${key}`);
  return Number(line.split(' ')[1]);
}

/**
 * Every cgroup directory whose name says mdocker or is a container id (the runtime's
 * `mdocker` parents, systemd scopes `mdocker-<pid>-<hex>.scope`, `runtime` leaves below
 * them are inside those), anywhere in the hierarchy.
 */
export function mdockerCgroups(): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 8) return;
    let names: string[];
    try {
      names = readdirSync(dir, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name);
    } catch {
      return; // removed meanwhile
    }
    for (const name of names) {
      const path = join(dir, name);
      if (/mdocker/i.test(name) || /^[0-9a-f]{32}$/.test(name)) found.push(path);
      walk(path, depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return found;
}
