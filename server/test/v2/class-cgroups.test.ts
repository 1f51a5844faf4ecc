/**
 * A class's group cgroup on a pure cgroup v2 host (with systemd and without): its cpu.max
 * and memory.max hold the containers below it, removeGroup and a reap after kill -9 leave
 * nothing behind.
 */
import { after, before, describe, test } from 'node:test';
import {
  assertGroupHeldToCpuBudget,
  assertGroupHeldToMemoryBudget,
  assertGroupReapedAfterKill,
  openClassTestRuntime,
  type ClassTestRuntime,
} from '../root/class-groups.js';
import { mdockerCgroups, v2VmOnly } from './vm.js';
import assert from 'node:assert/strict';

const skip = v2VmOnly();
if (skip) console.log(`# skipping class-cgroups: ${skip}`);

describe('class groups on cgroup v2', { skip }, () => {
  let classes: ClassTestRuntime;
  let cgroupsBefore: string[] = [];
  before(async () => {
    classes = await openClassTestRuntime();
    cgroupsBefore = mdockerCgroups();
  });
  after(() => classes?.close());

  test('two busy containers of one CPU each are held to their group’s half CPU', async () => {
    await assertGroupHeldToCpuBudget(classes);
  });

  test('a container within its own memory limit is OOM-killed (137) at its group’s budget', async () => {
    await assertGroupHeldToMemoryBudget(classes);
  });

  test('after kill -9 of its runtime, the next reap removes the group and its container', async () => {
    await assertGroupReapedAfterKill(classes);
  });

  test('no class cgroup is left anywhere', () => {
    const left = mdockerCgroups().filter((path) => !cgroupsBefore.includes(path) && /\/class-/.test(path));
    assert.deepEqual(left, []);
  });
});
