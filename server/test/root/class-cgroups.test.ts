/**
 * A class's group cgroup on this host (v1 here, hybrid): its CPU and memory budget hold
 * the containers below it, removeGroup and a reap after kill -9 leave nothing behind.
 */
import { after, before, describe, test } from 'node:test';
import {
  assertGroupHeldToCpuBudget,
  assertGroupHeldToMemoryBudget,
  assertGroupReapedAfterKill,
  openClassTestRuntime,
  type ClassTestRuntime,
} from './class-groups.js';
import { rootOnly } from './helpers.js';

const skip = rootOnly();
if (skip) console.log(`# skipping class-cgroups: ${skip}`);

describe('class groups on this host', { skip }, () => {
  let classes: ClassTestRuntime;
  before(async () => {
    classes = await openClassTestRuntime();
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
});
