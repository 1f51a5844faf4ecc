import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { acquireDelegation, type DelegationContext } from '../src/runtime/cgroups/delegate.js';
import type { CgroupLimits } from '../src/runtime/cgroups/driver.js';
import type { SystemdManager, SystemdUnit } from '../src/runtime/cgroups/systemd.js';
import { CgroupV2Driver } from '../src/runtime/cgroups/v2.js';
import { isMdockerError } from '../src/runtime/errors.js';
import { FakeV2Kernel } from './fake-cgroup-v2.js';

const ALL = ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'];
const LIMITS: CgroupLimits = { memoryBytes: 64 * 1024 * 1024, cpus: 1, pidsLimit: 100 };
const PID = 4242;
const read = async (path: string): Promise<string> => (await readFile(path, 'utf8')).trim();

/**
 * systemd as the runtime sees it over D-Bus: units own cgroups; a transient scope with
 * Delegate=yes gets every controller from its slice and the given pid moved into it.
 */
class FakeSystemd implements SystemdManager {
  readonly started: { name: string; pid: number }[] = [];
  readonly units = new Map<string, SystemdUnit>();
  closed = 0;

  constructor(
    private readonly kernel: FakeV2Kernel,
    private readonly root: string,
  ) {}

  async unitOf(pid: number): Promise<SystemdUnit> {
    const cgroup = await this.kernel.cgroupOf(pid);
    for (const unit of this.units.values()) {
      if (cgroup === unit.controlGroup || cgroup?.startsWith(`${unit.controlGroup}/`)) return unit;
    }
    return { id: '-.slice', controlGroup: '/', delegate: false };
  }

  async startDelegatedScope(name: string, pid: number): Promise<void> {
    this.started.push({ name, pid });
    const dir = join(this.root, 'system.slice', name);
    await this.kernel.mkdir(dir);
    await this.kernel.writeFile(join(dir, 'cgroup.procs'), String(pid));
    this.units.set(name, { id: name, controlGroup: `/system.slice/${name}`, delegate: true });
  }

  close(): void {
    this.closed++;
  }
}

describe('cgroup v2 delegation: where containers go without --cgroup-parent', () => {
  let root: string;
  let kernel: FakeV2Kernel;
  let systemd: FakeSystemd;

  async function makeCgroup(path: string, enableInParents: string[]): Promise<void> {
    let dir = root;
    for (const segment of path.split('/').filter(Boolean)) {
      if (enableInParents.length > 0) {
        await kernel.writeFile(join(dir, 'cgroup.subtree_control'), enableInParents.map((c) => `+${c}`).join(' '));
      }
      dir = join(dir, segment);
      await kernel.mkdir(dir);
    }
  }

  async function placeProcess(cgroup: string, pid = PID): Promise<void> {
    await kernel.writeFile(join(root, cgroup, 'cgroup.procs'), String(pid));
  }

  function driverFor(options: { mountPoint?: string; systemdBooted: boolean }): CgroupV2Driver {
    const mountPoint = options.mountPoint ?? root;
    let own: string | null = null;
    const ctx: DelegationContext = {
      fs: kernel,
      mountPoint,
      pid: PID,
      // Read synchronously from the last known place; refreshed below after every await.
      ownCgroup: () => own,
      systemdBooted: options.systemdBooted,
      connectSystemd: async () => systemd,
    };
    const refresh = async (): Promise<void> => {
      const cgroup = await kernel.cgroupOf(PID);
      const prefix = mountPoint === root ? '' : mountPoint.slice(root.length);
      own = cgroup === null ? null : prefix === '' ? cgroup : cgroup.slice(prefix.length) || '/';
    };
    // The fake systemd and kernel move the pid on writes; keep `own` current for each check.
    const fs = new Proxy(kernel, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          await refresh();
          const result = (await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args)) as unknown;
          await refresh();
          return result;
        };
      },
    });
    ctx.fs = fs;
    const originalConnect = ctx.connectSystemd;
    ctx.connectSystemd = async () => {
      const manager = await originalConnect();
      return {
        unitOf: (pid) => manager.unitOf(pid),
        startDelegatedScope: async (name, pid, description) => {
          await manager.startDelegatedScope(name, pid, description);
          await refresh();
        },
        close: () => manager.close(),
      };
    };
    return new CgroupV2Driver({
      mountPoint,
      ownCgroup: null,
      fs: kernel,
      delegate: async () => {
        await refresh();
        return acquireDelegation(ctx);
      },
    });
  }

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'mdocker-delegate-'));
    kernel = new FakeV2Kernel(root);
    await kernel.populate(root, ALL);
    systemd = new FakeSystemd(kernel, root);
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('without systemd, at the root: a top-level mdocker cgroup with the controllers enabled in the root', async () => {
    await placeProcess('');
    const driver = driverFor({ systemdBooted: false });
    const handle = await driver.create('c1', LIMITS);
    assert.deepEqual(handle.paths, [join(root, 'mdocker/c1')]);
    assert.match(await read(join(root, 'cgroup.subtree_control')), /cpu.*memory.*pids/);
    assert.equal(await read(join(root, 'mdocker/c1/pids.max')), '100');
    assert.equal(await kernel.cgroupOf(PID), '/', 'the true root may hold processes: nothing moved');
    const placement = await driver.describe();
    assert.equal(placement.driver, 'cgroupfs');
    assert.deepEqual(placement.parentPaths, [join(root, 'mdocker')]);
  });

  it('without systemd, in a cgroup namespace of its own: moves itself into a leaf, containers beside it', async () => {
    await makeCgroup('/kubepods/pod1', ALL);
    const pod = join(root, 'kubepods/pod1');
    await placeProcess('kubepods/pod1');
    const driver = driverFor({ mountPoint: pod, systemdBooted: false });
    const handle = await driver.create('c1', LIMITS);
    assert.deepEqual(handle.paths, [join(pod, 'mdocker/c1')]);
    assert.equal(await kernel.cgroupOf(PID), '/kubepods/pod1/runtime');
    assert.match(await read(join(pod, 'cgroup.subtree_control')), /cpu.*memory.*pids/);
  });

  it('refuses with the other pids named when another process shares the cgroup it must delegate from', async () => {
    await makeCgroup('/kubepods/pod1', ALL);
    const pod = join(root, 'kubepods/pod1');
    await placeProcess('kubepods/pod1');
    await placeProcess('kubepods/pod1', 1);
    const driver = driverFor({ mountPoint: pod, systemdBooted: false });
    await assert.rejects(driver.create('c1', LIMITS), (err: unknown) => {
      assert.ok(isMdockerError(err));
      assert.equal(err.code, 'CONFLICT');
      assert.match(err.message, /other processes are in it \(pid 1\)/);
      return true;
    });
    assert.equal(await read(join(pod, 'cgroup.procs')), '1', 'the other process was not moved');
  });

  it('on systemd, from a service without Delegate=: a transient delegated scope holding only this process', async () => {
    await makeCgroup('/system.slice/ssh.service', ALL);
    await placeProcess('system.slice/ssh.service');
    await placeProcess('system.slice/ssh.service', 77);
    systemd.units.set('ssh.service', { id: 'ssh.service', controlGroup: '/system.slice/ssh.service', delegate: false });
    const driver = driverFor({ systemdBooted: true });
    const handle = await driver.create('c1', LIMITS);
    assert.equal(systemd.started.length, 1);
    const scope = systemd.started[0]?.name ?? '';
    assert.match(scope, /^mdocker-4242-[0-9a-f]{6}\.scope$/);
    assert.equal(systemd.started[0]?.pid, PID);
    assert.deepEqual(handle.paths, [join(root, 'system.slice', scope, 'mdocker/c1')]);
    assert.equal(await kernel.cgroupOf(PID), `/system.slice/${scope}/runtime`);
    assert.equal(await kernel.cgroupOf(77), '/system.slice/ssh.service', 'no other process moved');
    assert.equal(await read(join(root, 'system.slice/ssh.service/cgroup.subtree_control')), '', 'unit untouched');
    assert.equal(systemd.closed, 1, 'the D-Bus connection is closed');
    const placement = await driver.describe();
    assert.equal(placement.driver, 'systemd');
    assert.equal(placement.systemdUnit, scope);
    assert.equal(systemd.started.length, 1, 'one scope per process, however often asked');
  });

  it('on systemd, in a unit with Delegate=yes (mdocker.service): its own cgroup, no scope', async () => {
    await makeCgroup('/system.slice/mdocker.service', ALL);
    await placeProcess('system.slice/mdocker.service');
    systemd.units.set('mdocker.service', {
      id: 'mdocker.service',
      controlGroup: '/system.slice/mdocker.service',
      delegate: true,
    });
    const driver = driverFor({ systemdBooted: true });
    const handle = await driver.create('c1', LIMITS);
    assert.deepEqual(systemd.started, []);
    assert.deepEqual(handle.paths, [join(root, 'system.slice/mdocker.service/mdocker/c1')]);
    assert.equal(await kernel.cgroupOf(PID), '/system.slice/mdocker.service/runtime');
  });

  it('on systemd, a delegated unit shared with a wrapper process (npm start): falls back to a scope', async () => {
    await makeCgroup('/system.slice/mdocker.service', ALL);
    await placeProcess('system.slice/mdocker.service', 99);
    await placeProcess('system.slice/mdocker.service');
    systemd.units.set('mdocker.service', {
      id: 'mdocker.service',
      controlGroup: '/system.slice/mdocker.service',
      delegate: true,
    });
    const driver = driverFor({ systemdBooted: true });
    const handle = await driver.create('c1', LIMITS);
    assert.equal(systemd.started.length, 1);
    assert.match(handle.paths[0] ?? '', /system\.slice\/mdocker-4242-[0-9a-f]{6}\.scope\/mdocker\/c1$/);
    assert.equal(await kernel.cgroupOf(99), '/system.slice/mdocker.service', 'the wrapper was not moved');
  });

  it('a cgroup that already hands the controllers to its children is used as it is', async () => {
    await placeProcess('');
    await writeFile(join(root, 'cgroup.subtree_control'), 'cpu memory pids\n');
    const driver = driverFor({ systemdBooted: true });
    const handle = await driver.create('c1', LIMITS);
    assert.deepEqual(systemd.started, [], 'systemd not asked');
    assert.deepEqual(handle.paths, [join(root, 'mdocker/c1')]);
  });

  it('says which controllers are missing when the delegated cgroup is not offered them', async () => {
    await makeCgroup('/kubepods/pod1', ['cpu']);
    const pod = join(root, 'kubepods/pod1');
    await placeProcess('kubepods/pod1');
    const driver = driverFor({ mountPoint: pod, systemdBooted: false });
    await assert.rejects(driver.create('c1', LIMITS), /not offered the memory, pids controllers/);
  });
});
