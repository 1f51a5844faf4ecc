/**
 * v2's own interface files on a running container's cgroup, read and written from the
 * host as an administrator would: cgroup.kill, memory.events, pids.events, cpu.stat.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { waitFor } from '../root/helpers.js';
import { cgroupCounter, cgroupDirOf, cli, detached, readCgroupFile, v2VmOnly } from './vm.js';

const skip = v2VmOnly();
if (skip) console.log(`# skipping cgroup-files: ${skip}`);

const started: string[] = [];

after(async () => {
  for (const id of started) await cli(['rm', '-f', id]);
});

const procsOf = (dir: string): number[] => readCgroupFile(dir, 'cgroup.procs').split('\n').filter(Boolean).map(Number);

describe("a container's cgroup v2 files", { skip }, () => {
  test('writing 1 to cgroup.kill ends every process of the container', async () => {
    const id = await detached(started, ['busybox', 'sh', '-c', 'sleep 1000 & sleep 1000 & exec sleep 1000']);
    const dir = cgroupDirOf(id);
    const pids = await waitFor('three processes', () => procsOf(dir).length === 3 && procsOf(dir), 30_000);
    writeFileSync(`${dir}/cgroup.kill`, '1');
    await waitFor('every process gone', () => pids.every((pid) => !existsSync(`/proc/${pid}`)), 10_000);
    const ps = await cli(['ps', '-a']);
    assert.match(ps.stdout.split('\n').find((line) => line.startsWith(id.slice(0, 12))) ?? '', /Exited \(137\)/);
    assert.equal((await cli(['rm', id])).code, 0);
    assert.equal(existsSync(dir), false, `${dir} removed with the container`);
  });

  test('memory.events counts the OOM kill of a hog under -m 16m', async () => {
    const hog = '(x=aaaaaaaa; while :; do x=$x$x; done); exec sleep 1000';
    const id = await detached(started, ['-m', '16m', 'busybox', 'sh', '-c', hog]);
    const dir = cgroupDirOf(id);
    assert.equal(readCgroupFile(dir, 'memory.max'), String(16 * 1024 * 1024));
    await waitFor('oom_kill 1', () => cgroupCounter(dir, 'memory.events', 'oom_kill') >= 1, 30_000);
    assert.ok(cgroupCounter(dir, 'memory.events', 'oom') >= 1);
    assert.ok(cgroupCounter(dir, 'memory.events', 'max') >= 1);
    // The init outlived its hog and went on to sleep.
    await waitFor('the init alone', () => procsOf(dir).length === 1, 10_000);
    assert.equal((await cli(['rm', '-f', id])).code, 0);
  });

  test('pids.events counts the forks refused at --pids-limit 5', async () => {
    const loop = '(for i in $(seq 1 10); do sleep 1000 & done) 2>/dev/null; exec sleep 1000';
    const id = await detached(started, ['--pids-limit', '5', 'busybox', 'sh', '-c', loop]);
    const dir = cgroupDirOf(id);
    assert.equal(readCgroupFile(dir, 'pids.max'), '5');
    await waitFor('pids.events max', () => cgroupCounter(dir, 'pids.events', 'max') >= 1, 30_000);
    assert.ok(Number(readCgroupFile(dir, 'pids.current')) <= 5);
    assert.equal((await cli(['rm', '-f', id])).code, 0);
  });

  test('cpu.stat nr_throttled grows while a busy loop runs under --cpus 0.1', async () => {
    const id = await detached(started, ['--cpus', '0.1', 'busybox', 'sh', '-c', 'while :; do :; done']);
    const dir = cgroupDirOf(id);
    assert.equal(readCgroupFile(dir, 'cpu.max'), '10000 100000');
    await sleep(500);
    const before = cgroupCounter(dir, 'cpu.stat', 'nr_throttled');
    const usageBefore = cgroupCounter(dir, 'cpu.stat', 'usage_usec');
    await sleep(2000);
    const throttled = cgroupCounter(dir, 'cpu.stat', 'nr_throttled') - before;
    const usedUsec = cgroupCounter(dir, 'cpu.stat', 'usage_usec') - usageBefore;
    assert.ok(throttled >= 5, `throttled ${throttled} times in 2 s (about 20 periods of 100 ms)`);
    // 10 % of one CPU over 2 s is 200 ms; the loop is held near it, far from 2 s.
    assert.ok(usedUsec < 600_000, `used ${usedUsec} µs of CPU in 2 s`);
    assert.equal((await cli(['rm', '-f', id])).code, 0);
  });
});
