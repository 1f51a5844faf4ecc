import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile, readdir, readlink, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { detectCgroupDriver } from '../../src/runtime/cgroups/detect.js';
import type { CgroupDriver, CgroupHandle } from '../../src/runtime/cgroups/driver.js';

const MiB = 1024 * 1024;
const skipReason = process.getuid?.() === 0 ? false : 'needs root to create cgroups (run npm run test:root as root)';
if (skipReason) console.log(`skipping cgroups-live: ${skipReason}`);

const read = async (path: string): Promise<string> => (await readFile(path, 'utf8')).trim();
const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

function uniqueId(label: string): string {
  return `test-${label}-${process.pid}-${Date.now().toString(36)}`;
}

/** Starts a process of ours, stopped on stdin until we have moved it into the cgroup. */
async function startHeld(script: string): Promise<ChildProcess & { pid: number }> {
  const child = spawn('/bin/sh', ['-c', `read go; ${script}`], { stdio: ['pipe', 'ignore', 'ignore'] });
  await once(child, 'spawn');
  assert.ok(child.pid !== undefined);
  return child as ChildProcess & { pid: number };
}

async function moveIntoCgroup(handle: CgroupHandle, pid: number): Promise<void> {
  for (const path of handle.paths) await writeFile(join(path, 'cgroup.procs'), `${pid}\n`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

async function cleanUp(
  driver: CgroupDriver,
  handle: CgroupHandle | undefined,
  children: ChildProcess[],
): Promise<void> {
  for (const child of children) await stop(child);
  if (handle !== undefined) await driver.remove(handle).catch(() => undefined);
}

describe('cgroups on this host', () => {
  it(
    'creates a limited cgroup below its own, holds a process, reports stats and removes it',
    { skip: skipReason },
    async () => {
      const driver = detectCgroupDriver();
      const ownCgroup = await read('/proc/self/cgroup');
      let handle: CgroupHandle | undefined;
      const children: ChildProcess[] = [];
      try {
        const id = uniqueId('live');
        handle = await driver.create(id, { memoryBytes: 64 * MiB, cpus: 0.5, pidsLimit: 32 });
        assert.ok(handle.paths.length >= 1);
        for (const path of handle.paths) {
          assert.ok(path.startsWith('/sys/fs/cgroup/'), path);
          assert.equal(basename(path), id);
          assert.equal(basename(dirname(path)), 'mdocker');
          assert.ok((await stat(path)).isDirectory(), path);
        }

        const pathWith = async (file: string): Promise<string> => {
          for (const path of handle?.paths ?? []) if (await exists(join(path, file))) return join(path, file);
          assert.fail(`no cgroup of ${id} has ${file}`);
        };
        if (driver.version === 1) {
          assert.equal(await read(await pathWith('cpu.cfs_quota_us')), '50000');
          assert.equal(await read(await pathWith('cpu.cfs_period_us')), '100000');
          assert.equal(await read(await pathWith('memory.limit_in_bytes')), String(64 * MiB));
          const memsw = join(dirname(await pathWith('memory.limit_in_bytes')), 'memory.memsw.limit_in_bytes');
          if (await exists(memsw)) assert.equal(await read(memsw), String(64 * MiB));
          // Each hierarchy's cgroup sits below this process's own cgroup in that hierarchy.
          const memoryLine = ownCgroup.split('\n').find((line) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(line));
          const memoryOwn = memoryLine?.split(':')[2] ?? '/';
          assert.equal(
            dirname(await pathWith('memory.limit_in_bytes')),
            join('/sys/fs/cgroup/memory', memoryOwn, 'mdocker', id),
          );
        } else {
          assert.equal(await read(await pathWith('cpu.max')), '50000 100000');
          assert.equal(await read(await pathWith('memory.max')), String(64 * MiB));
        }
        assert.equal(await read(await pathWith('pids.max')), '32');

        const sleeper = await startHeld('exec sleep 60');
        children.push(sleeper);
        await moveIntoCgroup(handle, sleeper.pid);
        sleeper.stdin?.end('\n');
        // The shell execs sleep in place, so the cgroup holds exactly one process.
        for (let attempt = 0; attempt < 50 && (await driver.procs(handle)).length !== 1; attempt++) {
          await new Promise((done) => setTimeout(done, 20));
        }
        const stats = await driver.stats(handle);
        assert.deepEqual(await driver.procs(handle), [sleeper.pid]);
        assert.equal(stats.pids, 1);
        assert.equal(stats.pidsLimit, 32);
        assert.equal(stats.memoryLimitBytes, 64 * MiB);
        // v1 does not move a task's existing charge with it (move_charge_at_immigrate is 0)
        // and usage excludes inactive file pages: a freshly moved sleep may count 0.
        assert.ok(stats.memoryBytes >= 0 && stats.memoryBytes < 64 * MiB, `memoryBytes ${stats.memoryBytes}`);
        assert.ok(stats.cpuUsageUsec >= 0);
        const membership = await read(`/proc/${sleeper.pid}/cgroup`);
        assert.match(membership, new RegExp(`/mdocker/${id}$`, 'm'));

        await driver.update(handle, { cpus: 1, pidsLimit: null });
        assert.equal(
          await read(await pathWith(driver.version === 1 ? 'cpu.cfs_quota_us' : 'cpu.max')),
          driver.version === 1 ? '100000' : '100000 100000',
        );
        assert.equal((await driver.stats(handle)).pidsLimit, null);

        await stop(sleeper);
        await driver.remove(handle);
        for (const path of handle.paths) {
          assert.equal(await exists(path), false, `${path} still exists`);
          // The mdocker parent stays only while other containers (of other runs) live in it.
          const parent = dirname(path);
          if (await exists(parent)) {
            const others = (await readdir(parent, { withFileTypes: true })).filter((entry) => entry.isDirectory());
            assert.ok(others.length > 0, `${parent} is empty but was not removed`);
          }
        }
        handle = undefined;
      } finally {
        await cleanUp(driver, handle, children);
      }
    },
  );

  it(
    'keeps the counter files open across reads; after rmdir a read says NOT_FOUND and no fd is left',
    { skip: skipReason },
    async () => {
      const driver = detectCgroupDriver();
      // Our fds on files of the container's cgroup (a removed one reads "... (deleted)").
      const cgroupFds = async (paths: string[]): Promise<number> => {
        let count = 0;
        for (const fd of await readdir('/proc/self/fd')) {
          const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
          if (paths.some((path) => target.startsWith(`${path}/`))) count++;
        }
        return count;
      };
      let handle: CgroupHandle | undefined;
      const children: ChildProcess[] = [];
      try {
        handle = await driver.create(uniqueId('reader'), { memoryBytes: 64 * MiB, cpus: null, pidsLimit: 16 });
        const sleeper = await startHeld('exec sleep 60');
        children.push(sleeper);
        await moveIntoCgroup(handle, sleeper.pid);
        sleeper.stdin?.end('\n');
        const paths = [...handle.paths];
        const reader = driver.openStats(handle);
        const fromKernel = reader.read();
        assert.equal(fromKernel.pids, 1);
        assert.equal(fromKernel.memoryLimitBytes, 64 * MiB);
        assert.equal(fromKernel.pidsLimit, 16);
        const known = reader.read({ memoryBytes: 64 * MiB, pidsLimit: 16 });
        assert.deepEqual(
          { ...known, cpuUsageUsec: 0, memoryBytes: 0 },
          { ...fromKernel, cpuUsageUsec: 0, memoryBytes: 0 },
        );
        assert.ok(known.cpuUsageUsec >= fromKernel.cpuUsageUsec);
        // seven counter files (v1; six on v2) and the two limit files read() opened
        assert.equal(await cgroupFds(paths), driver.version === 1 ? 9 : 8);

        await stop(sleeper);
        // Open files do not keep cgroupfs from removing the directory.
        await driver.remove(handle);
        for (const path of handle.paths) assert.equal(await exists(path), false, `${path} still exists`);
        handle = undefined;
        assert.throws(
          () => reader.read(),
          (err: unknown) => err instanceof Error && 'code' in err && err.code === 'NOT_FOUND',
        );
        assert.equal(await cgroupFds(paths), 0, 'the failed read closed every file');
        reader.close();
      } finally {
        await cleanUp(driver, handle, children);
      }
    },
  );

  it('stops forks at the pids limit and counts them', { skip: skipReason }, async () => {
    const driver = detectCgroupDriver();
    let handle: CgroupHandle | undefined;
    const children: ChildProcess[] = [];
    try {
      handle = await driver.create(uniqueId('pids'), { memoryBytes: null, cpus: null, pidsLimit: 3 });
      const shell = await startHeld('for i in 1 2 3 4 5; do sleep 60 & done; sleep 60');
      children.push(shell);
      await moveIntoCgroup(handle, shell.pid);
      shell.stdin?.end('\n');
      let stats = await driver.stats(handle);
      for (let attempt = 0; attempt < 100 && stats.pidsLimitHits === 0; attempt++) {
        await new Promise((done) => setTimeout(done, 20));
        stats = await driver.stats(handle);
      }
      assert.ok(stats.pidsLimitHits > 0, 'pids.events never counted a refused fork');
      assert.ok(stats.pids <= 3, `pids ${stats.pids} above the limit`);
      // Kill everything in the cgroup: the shell's background sleeps are ours too.
      for (const pid of await driver.procs(handle)) process.kill(pid, 'SIGKILL');
      await stop(shell);
      await driver.remove(handle);
      for (const path of handle.paths) assert.equal(await exists(path), false, `${path} still exists`);
      handle = undefined;
    } finally {
      if (handle !== undefined) {
        for (const pid of await driver.procs(handle).catch(() => [])) process.kill(pid, 'SIGKILL');
      }
      await cleanUp(driver, handle, children);
    }
  });
});
