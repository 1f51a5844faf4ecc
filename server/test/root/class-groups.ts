/**
 * Shared by the root tests on this host's cgroups (class-cgroups.test.ts) and the pure v2
 * VM's (v2/class-cgroups.test.ts): a class's group cgroup and its budget, proven by what
 * the kernel does to containers below it, through the Runtime itself.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Runtime, type ExitOutcome } from '../../src/runtime/containers.js';
import type { CgroupHandle } from '../../src/runtime/cgroups/driver.js';
import type { Limits } from '../../src/runtime/units.js';
import { launcherProcesses, repoRoot, waitFor } from './helpers.js';

const MiB = 1024 * 1024;

export interface ClassTestRuntime {
  runtime: Runtime;
  stateRoot: string;
  close(): void;
}

/** A Runtime of this process with a state root of its own (in /run, where helpers look). */
export async function openClassTestRuntime(): Promise<ClassTestRuntime> {
  const stateRoot = mkdtempSync('/run/mdocker-class-test-');
  const runtime = await Runtime.open({ stateRoot, warn: () => undefined });
  return { runtime, stateRoot, close: () => rmSync(stateRoot, { recursive: true, force: true }) };
}

export function className(): string {
  return `class-test-${randomBytes(6).toString('hex')}`;
}

async function groupHandle(runtime: Runtime, name: string): Promise<CgroupHandle> {
  const record = await runtime.state.readGroup(name);
  assert.ok(record !== null && record.cgroupPaths.length > 0, `group ${name} has a record with its cgroup`);
  return runtime.cgroups.handleFromPaths(name, record.cgroupPaths);
}

/** Creates and starts a container of the group on pipes; resolves once its init is in its cgroup. */
async function startInGroup(
  runtime: Runtime,
  group: string,
  cmd: string[],
  limits: Limits,
): Promise<{ id: string; cgroupPaths: string[]; done: Promise<ExitOutcome> }> {
  const prepared = await runtime.create({
    group,
    cmd,
    tty: false,
    limits,
    autoRemove: true,
    dieWithParent: true,
  });
  const started = runtime.start(prepared, { kind: 'pipes', stdin: 'ignore', output: 'pipe' });
  started.process.stdout?.resume();
  started.process.stderr?.resume();
  const record = await started.started;
  assert.ok(record.init !== null, `container ${record.id} started`);
  return { id: record.id, cgroupPaths: record.cgroupPaths, done: started.done };
}

/** Nothing of the group is left: no cgroup directory, no record, no container state, no launcher. */
export async function assertGroupGone(
  test: ClassTestRuntime,
  name: string,
  groupPaths: readonly string[],
  ids: readonly string[],
): Promise<void> {
  for (const path of groupPaths) assert.equal(existsSync(path), false, `${path} was left behind`);
  assert.equal(await test.runtime.state.readGroup(name), null, `the record of ${name} was left behind`);
  const stateLeft = readdirSync(test.stateRoot).filter((entry) => ids.includes(entry));
  assert.deepEqual(stateLeft, [], 'container state left behind');
  await waitFor('no launcher of the group', () =>
    launcherProcesses().every((line) => ids.every((id) => !line.includes(id))),
  );
}

/**
 * Two containers of one CPU each, busy, in a group of half a CPU: the group's own usage
 * counter grows by well under a core per second (generous bound: the kernel holds it near
 * 0.5; two free busy loops on this 2-CPU host would take up to 2).
 */
export async function assertGroupHeldToCpuBudget(test: ClassTestRuntime): Promise<void> {
  const { runtime } = test;
  const name = className();
  const ids: string[] = [];
  let groupPaths: string[] = [];
  try {
    await runtime.createGroup(name, { memoryBytes: 256 * MiB, cpus: 0.5 });
    const group = await groupHandle(runtime, name);
    groupPaths = group.paths;
    const busy = ['sh', '-c', 'while :; do :; done'];
    for (let i = 0; i < 2; i++) {
      const container = await startInGroup(runtime, name, busy, { memoryBytes: 64 * MiB, cpus: 1, pidsLimit: 32 });
      ids.push(container.id);
      for (const path of container.cgroupPaths) {
        assert.ok(
          groupPaths.some((groupPath) => path === join(groupPath, container.id)),
          `${path} is below the group`,
        );
      }
    }
    await sleep(500);
    const before = await runtime.cgroups.stats(group);
    const startedAtMs = Date.now();
    await sleep(2000);
    const after = await runtime.cgroups.stats(group);
    const cores = (after.cpuUsageUsec - before.cpuUsageUsec) / ((Date.now() - startedAtMs) * 1000);
    assert.ok(cores < 0.8, `the group used ${cores.toFixed(2)} cores with a budget of 0.5`);
    assert.ok(cores > 0.05, `the group's busy loops ran (${cores.toFixed(2)} cores)`);
    assert.equal(after.pids, 2, 'the group counts its containers’ processes');

    // Removing the group takes its running containers along.
    await runtime.removeGroup(name);
    await assertGroupGone(test, name, groupPaths, ids);
    await runtime.removeGroup(name);
  } finally {
    await runtime.removeGroup(name).catch(() => undefined);
  }
}

/**
 * A container allowed 256 MiB of its own, in a group of 64 MiB, that takes 128 MiB: the
 * group's limit OOM-kills it (137). The same container in a group of 512 MiB finishes.
 */
export async function assertGroupHeldToMemoryBudget(test: ClassTestRuntime): Promise<void> {
  const { runtime } = test;
  // The init itself takes 128 MiB: dd's one block, filled from /dev/zero.
  const hog = ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=128M', 'count=1'];
  const own: Limits = { memoryBytes: 256 * MiB, cpus: null, pidsLimit: 32 };
  for (const { budgetBytes, exitCode } of [
    { budgetBytes: 64 * MiB, exitCode: 137 },
    { budgetBytes: 512 * MiB, exitCode: 0 },
  ]) {
    const name = className();
    let groupPaths: string[] = [];
    const ids: string[] = [];
    try {
      await runtime.createGroup(name, { memoryBytes: budgetBytes, cpus: null });
      groupPaths = (await groupHandle(runtime, name)).paths;
      const container = await startInGroup(runtime, name, hog, own);
      ids.push(container.id);
      const outcome = await container.done;
      assert.equal(outcome.code, exitCode, `exit with a group budget of ${budgetBytes / MiB} MiB`);
      await runtime.removeGroup(name);
      await assertGroupGone(test, name, groupPaths, ids);
    } finally {
      await runtime.removeGroup(name).catch(() => undefined);
    }
  }
}

/**
 * A server killed -9 with a group and a container in it: the next start's reap removes the
 * container, then the group's cgroup and record. An empty `class-*` cgroup no record of this
 * state root explains is left: another runtime's class may be waiting for its first container.
 */
export async function assertGroupReapedAfterKill(test: ClassTestRuntime): Promise<void> {
  const { runtime, stateRoot } = test;
  const name = className();
  const containers = join(repoRoot, 'server/dist/src/runtime/containers.js');
  const script = `
    const { Runtime } = await import(${JSON.stringify(containers)});
    const runtime = await Runtime.open({ stateRoot: ${JSON.stringify(stateRoot)}, warn: () => undefined });
    await runtime.createGroup(${JSON.stringify(name)}, { memoryBytes: 64 * 1024 * 1024, cpus: 0.5 });
    const prepared = await runtime.create({ group: ${JSON.stringify(name)}, cmd: ['sleep', '1000'], tty: false,
      limits: { memoryBytes: null, cpus: null, pidsLimit: 16 }, autoRemove: true, dieWithParent: true });
    const started = runtime.start(prepared, { kind: 'pipes', stdin: 'ignore', output: 'inherit' });
    await started.started;
    process.stdout.write('ready ' + prepared.record.id + '\\n');
    setInterval(() => undefined, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let id: string | undefined;
  try {
    const ready = await waitFor('the other runtime ready', () => /ready ([0-9a-f]{32})/.exec(output), 60_000).catch(
      (err: unknown) => {
        throw new Error(`${String(err)}: ${output}`);
      },
    );
    id = ready[1]!;
    const groupPaths = (await groupHandle(runtime, name)).paths;
    assert.ok(
      groupPaths.every((path) => existsSync(join(path, id!))),
      'the container is in the group',
    );
    child.kill('SIGKILL');
    await exited;

    // A group no record here explains (as another server's would be): made by hand.
    const leftover = className();
    const leftoverPaths = (await runtime.cgroups.groupHandle(leftover)).paths;
    await runtime.cgroups.createGroup(leftover, { memoryBytes: null, cpus: null });

    await waitFor('the container’s launcher gone', () => launcherProcesses().every((line) => !line.includes(id!)));
    await runtime.reapLeftovers();
    await assertGroupGone(test, name, groupPaths, [id]);
    for (const path of leftoverPaths) assert.equal(existsSync(path), true, `${path} belongs to no one here: kept`);
    await runtime.cgroups.remove(await runtime.cgroups.groupHandle(leftover), 5000);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await runtime.reapLeftovers().catch(() => undefined);
    await runtime.removeGroup(name).catch(() => undefined);
  }
}
