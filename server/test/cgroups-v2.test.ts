import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { CgroupLimits } from '../src/runtime/cgroups/driver.js';
import { detectCgroupDriver } from '../src/runtime/cgroups/detect.js';
import { CgroupV1Driver } from '../src/runtime/cgroups/v1.js';
import { CgroupV2Driver } from '../src/runtime/cgroups/v2.js';
import { isMdockerError, type ErrorCode } from '../src/runtime/errors.js';
import { FakeV2Kernel } from './fake-cgroup-v2.js';
import { checkCpuIdle } from './fake-kernfs-files.js';

const MiB = 1024 * 1024;

async function assertRejectsWith(promise: Promise<unknown>, code: ErrorCode, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isMdockerError(err), `expected an MdockerError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

const read = async (path: string): Promise<string> => (await readFile(path, 'utf8')).trim();

const LIMITS: CgroupLimits = { memoryBytes: 64 * MiB, cpus: 1.5, pidsLimit: 100 };
const ALL = ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'];
const OWN = '/user.slice/user-1000.slice/user@1000.service/app.slice/mdocker.service';

describe('cgroup v2 driver', () => {
  let root: string;
  let kernel: FakeV2Kernel;
  let driver: CgroupV2Driver;

  /** Makes the cgroups of `path`, each parent delegating `delegate` to its children. */
  async function makeCgroups(path: string, delegate: string[]): Promise<void> {
    let dir = root;
    for (const segment of path.split('/').filter(Boolean)) {
      await kernel.writeFile(join(dir, 'cgroup.subtree_control'), delegate.map((name) => `+${name}`).join(' '));
      dir = join(dir, segment);
      await kernel.mkdir(dir);
    }
  }

  async function setUp(options: { swapAccounting?: boolean; ownDelegates?: string[] } = {}): Promise<void> {
    root = await mkdtemp(join(tmpdir(), 'mdocker-cgv2-'));
    kernel = new FakeV2Kernel(root, options.swapAccounting ?? true);
    await kernel.populate(root, ALL);
    await makeCgroups(OWN, ['cpu', 'memory', 'pids']);
    const ownDelegates = options.ownDelegates ?? ['cpu', 'memory', 'pids'];
    if (ownDelegates.length > 0) {
      await kernel.writeFile(
        join(root, OWN, 'cgroup.subtree_control'),
        ownDelegates.map((name) => `+${name}`).join(' '),
      );
    }
    kernel.writes.length = 0;
    driver = new CgroupV2Driver({ mountPoint: root, ownCgroup: OWN, fs: kernel });
  }

  beforeEach(() => setUp());

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates the cgroup in an mdocker directory below its own cgroup, with the limits written', async () => {
    const handle = await driver.create('c1', LIMITS);
    assert.equal(driver.version, 2);
    const path = join(root, OWN, 'mdocker/c1');
    assert.deepEqual(handle, { id: 'c1', paths: [path] });
    assert.equal(await read(join(path, 'cpu.max')), '150000 100000');
    assert.equal(await read(join(path, 'memory.max')), String(64 * MiB));
    assert.equal(await read(join(path, 'memory.swap.max')), '0');
    assert.equal(await read(join(path, 'pids.max')), '100');
  });

  it('enables controllers only in the mdocker directory it made, never in its own cgroup', async () => {
    await driver.create('c1', LIMITS);
    assert.equal(await read(join(root, OWN, 'mdocker/cgroup.subtree_control')), 'cpu memory pids');
    const subtreeWrites = kernel.writes.filter((write) => write.file.endsWith('cgroup.subtree_control'));
    assert.deepEqual(subtreeWrites, [
      { file: join(OWN.slice(1), 'mdocker/cgroup.subtree_control'), data: '+cpu +memory +pids' },
    ]);
  });

  it('does not write subtree_control again for a second container', async () => {
    await driver.create('c1', LIMITS);
    kernel.writes.length = 0;
    await driver.create('c2', LIMITS);
    assert.equal(kernel.writes.filter((write) => write.file.endsWith('cgroup.subtree_control')).length, 0);
  });

  it('refuses, naming the cgroup and the controllers, when its own cgroup delegates none', async () => {
    await rm(root, { recursive: true, force: true });
    await setUp({ ownDelegates: [] });
    await assertRejectsWith(
      driver.create('c1', LIMITS),
      'UNSUPPORTED',
      new RegExp(
        `^cgroup v2: controllers cpu, memory, pids are not enabled below ${join(root, OWN).replace(/[.@]/g, '\\$&')}; ` +
          'pass --cgroup-parent with a delegated cgroup$',
      ),
    );
    assert.equal(await exists(join(root, OWN, 'mdocker')), false);
    assert.equal(kernel.writes.length, 0);
  });

  it('names only the missing controller when the delegation is partial', async () => {
    await rm(root, { recursive: true, force: true });
    await setUp({ ownDelegates: ['cpu', 'memory'] });
    await assertRejectsWith(driver.create('c1', LIMITS), 'UNSUPPORTED', /controller pids is not enabled below/);
  });

  it('places below an existing delegated --cgroup-parent without touching it', async () => {
    await makeCgroups('/delegated', ['cpu', 'memory', 'pids']);
    await kernel.writeFile(join(root, 'delegated/cgroup.subtree_control'), '+cpu +memory +pids');
    kernel.writes.length = 0;
    const handle = await driver.create('c1', LIMITS, 'delegated');
    assert.deepEqual(handle.paths, [join(root, 'delegated/c1')]);
    assert.equal(kernel.writes.filter((write) => write.file.endsWith('cgroup.subtree_control')).length, 0);
    await driver.remove(handle);
    assert.equal(await exists(join(root, 'delegated/c1')), false);
    assert.equal(await exists(join(root, 'delegated')), true);
  });

  it('refuses an existing --cgroup-parent that does not delegate, and leaves it alone', async () => {
    await makeCgroups('/plain', ['cpu', 'memory', 'pids']);
    kernel.writes.length = 0;
    await assertRejectsWith(
      driver.create('c1', LIMITS, '/plain'),
      'UNSUPPORTED',
      /not enabled below .*\/plain; pass --cgroup-parent/,
    );
    assert.equal(kernel.writes.length, 0);
    assert.equal(await read(join(root, 'plain/cgroup.subtree_control')), '');
  });

  it('creates missing --cgroup-parent levels and delegates through the ones it created', async () => {
    const handle = await driver.create('c1', LIMITS, 'ci/jobs');
    assert.deepEqual(handle.paths, [join(root, 'ci/jobs/c1')]);
    assert.equal(await read(join(root, 'ci/cgroup.subtree_control')), 'cpu memory pids');
    assert.equal(await read(join(root, 'ci/jobs/cgroup.subtree_control')), 'cpu memory pids');
    assert.equal(await read(join(root, 'ci/jobs/c1/pids.max')), '100');
  });

  it('skips memory.swap.max when the kernel has no swap accounting', async () => {
    await rm(root, { recursive: true, force: true });
    await setUp({ swapAccounting: false });
    const handle = await driver.create('c1', LIMITS);
    assert.equal(await read(join(handle.paths[0] ?? '', 'memory.max')), String(64 * MiB));
    assert.equal(
      kernel.writes.some((write) => write.file.endsWith('memory.swap.max')),
      false,
    );
  });

  it('updates only the limits given and writes "max" for none', async () => {
    const handle = await driver.create('c1', LIMITS);
    kernel.writes.length = 0;
    await driver.update(handle, { cpus: null, memoryBytes: null });
    const dir = relative(root, handle.paths[0] ?? '');
    assert.deepEqual(kernel.writes, [
      { file: join(dir, 'cpu.max'), data: 'max 100000' },
      { file: join(dir, 'memory.max'), data: 'max' },
      { file: join(dir, 'memory.swap.max'), data: 'max' },
    ]);
    await driver.update(handle, { cpus: 0.25 });
    assert.equal(await read(join(handle.paths[0] ?? '', 'cpu.max')), '25000 100000');
  });

  it('sets cpu.weight, and NOT_FOUND once the cgroup is gone', async () => {
    const handle = await driver.create('c1', LIMITS);
    await driver.setCpuWeight(handle, 1000);
    assert.equal(await read(join(handle.paths[0] ?? '', 'cpu.weight')), '1000');
    await driver.setCpuWeight(handle, 100);
    assert.equal(await read(join(handle.paths[0] ?? '', 'cpu.weight')), '100');
    await assert.rejects(driver.setCpuWeight(handle, 0), { code: 'INVALID_ARGUMENT' });
    await driver.remove(handle);
    await assert.rejects(driver.setCpuWeight(handle, 1000), { code: 'NOT_FOUND' });
  });

  it('puts the container in the idle class and back; UNSUPPORTED without cpu.idle, NOT_FOUND once gone', async () => {
    await checkCpuIdle(driver, kernel, LIMITS);
  });

  it('reads stats the way docker does from realistic files', async () => {
    const handle = await driver.create('c1', LIMITS);
    const dir = handle.paths[0] ?? '';
    await writeFile(
      join(dir, 'cpu.stat'),
      'usage_usec 8123456\nuser_usec 6000000\nsystem_usec 2123456\nnr_periods 812\nnr_throttled 91\nthrottled_usec 4567890\nnr_bursts 0\nburst_usec 0\n',
    );
    await writeFile(join(dir, 'memory.current'), '52428800\n');
    await writeFile(
      join(dir, 'memory.stat'),
      'anon 20971520\nfile 31457280\nkernel 1048576\nactive_file 10485760\ninactive_file 20971520\nactive_anon 0\n',
    );
    await writeFile(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n');
    await writeFile(join(dir, 'pids.current'), '3\n');
    await writeFile(join(dir, 'pids.events'), 'max 5\n');
    assert.deepEqual(await driver.stats(handle), {
      cpuUsageUsec: 8123456,
      cpuPeriods: 812,
      cpuThrottledPeriods: 91,
      cpuThrottledUsec: 4567890,
      memoryBytes: 52428800 - 20971520,
      memoryLimitBytes: 64 * MiB,
      pids: 3,
      pidsLimit: 100,
      oomKills: 1,
      pidsLimitHits: 5,
    });
    await driver.update(handle, { memoryBytes: null, pidsLimit: null });
    const unlimited = await driver.stats(handle);
    assert.equal(unlimited.memoryLimitBytes, null);
    assert.equal(unlimited.pidsLimit, null);
  });

  it('re-reads its open files in place and takes the limits from the caller', async () => {
    const handle = await driver.create('c1', LIMITS);
    const dir = handle.paths[0] ?? '';
    await writeFile(join(dir, 'memory.current'), '8388608\n');
    await writeFile(join(dir, 'memory.stat'), 'anon 0\nfile 0\nactive_file 5\ninactive_file 4194304\n');
    const expected = await driver.stats(handle);
    const reader = driver.openStats(handle);
    try {
      assert.deepEqual(reader.read(), expected);
      assert.equal(expected.memoryBytes, 4 * MiB);
      const opened = kernel.files.opened.length;
      const open = kernel.files.openPaths;
      // six counter files, plus memory.max and pids.max for the read without known limits
      assert.equal(open.length, 8);

      await writeFile(join(dir, 'cpu.stat'), 'usage_usec 42\nnr_periods 3\nnr_throttled 1\nthrottled_usec 900\n');
      await writeFile(join(dir, 'pids.current'), '9\n');
      await writeFile(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n');
      const known = reader.read({ memoryBytes: null, pidsLimit: 50 });
      assert.deepEqual(
        [known.cpuUsageUsec, known.cpuPeriods, known.cpuThrottledPeriods, known.cpuThrottledUsec],
        [42, 3, 1, 900],
      );
      assert.equal(known.pids, 9);
      assert.equal(known.oomKills, 2);
      assert.equal(known.memoryLimitBytes, null);
      assert.equal(known.pidsLimit, 50);
      assert.equal(kernel.files.opened.length, opened, 'nothing opened again');
      assert.deepEqual(kernel.files.openPaths, open);
    } finally {
      reader.close();
    }
    assert.deepEqual(kernel.files.openPaths, []);
  });

  it('never opens the limit files when the caller knows the limits', async () => {
    const handle = await driver.create('c1', LIMITS);
    const reader = driver.openStats(handle);
    reader.read({ memoryBytes: 64 * MiB, pidsLimit: 100 });
    reader.close();
    const names = kernel.files.opened.map((path) => basename(path));
    assert.ok(!names.includes('memory.max') && !names.includes('pids.max'), names.join(' '));
  });

  it('answers NOT_FOUND and closes every file once the cgroup is removed under it', async () => {
    const handle = await driver.create('c1', LIMITS);
    const reader = driver.openStats(handle);
    reader.read();
    await driver.remove(handle);
    assert.throws(
      () => reader.read(),
      (err: unknown) =>
        isMdockerError(err) && err.code === 'NOT_FOUND' && /cgroup of container c1 is gone/.test(err.message),
    );
    assert.deepEqual(kernel.files.openPaths, []);
    reader.close();
    assert.throws(
      () => driver.openStats(handle),
      (err: unknown) => isMdockerError(err) && err.code === 'NOT_FOUND',
    );
    assert.deepEqual(kernel.files.openPaths, []);
  });

  it('reads 0 for the events an older kernel does not count', async () => {
    const handle = await driver.create('c1', LIMITS);
    const dir = handle.paths[0] ?? '';
    await rm(join(dir, 'pids.events'));
    await writeFile(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 0\noom 0\n');
    const stats = await driver.stats(handle);
    assert.equal(stats.pidsLimitHits, 0);
    assert.equal(stats.oomKills, 0);
  });

  it('lists processes, and removes the cgroup and the empty mdocker directory once they are gone', async () => {
    const handle = await driver.create('c1', LIMITS);
    const dir = handle.paths[0] ?? '';
    await writeFile(join(dir, 'cgroup.procs'), '777\n');
    assert.deepEqual(await driver.procs(handle), [777]);
    setTimeout(() => void writeFile(join(dir, 'cgroup.procs'), ''), 80);
    await driver.remove(handle);
    assert.equal(await exists(dir), false);
    assert.equal(await exists(join(root, OWN, 'mdocker')), false);
    assert.equal(await exists(join(root, OWN)), true);
    await driver.remove(handle);
  });

  it('rebuilds a handle from one saved path and refuses anything else', async () => {
    const handle = await driver.create('c1', LIMITS);
    assert.deepEqual(driver.handleFromPaths('c1', [...handle.paths]), handle);
    assert.throws(() => driver.handleFromPaths('c1', []), /expected exactly one saved cgroup path/);
    assert.throws(() => driver.handleFromPaths('c1', ['/tmp/c1']), /saved cgroup path "\/tmp\/c1"/);
  });

  describe('a group (a class) with a budget', () => {
    const BUDGET = { memoryBytes: 256 * MiB, cpus: 0.5 };
    const groupDir = (): string => join(root, OWN, 'mdocker/class-3f9a');

    it('creates the group with its budget and hands the controllers on to its containers', async () => {
      const group = await driver.createGroup('class-3f9a', BUDGET);
      assert.deepEqual(group, { id: 'class-3f9a', paths: [groupDir()] });
      assert.equal(await read(join(groupDir(), 'cpu.max')), '50000 100000');
      assert.equal(await read(join(groupDir(), 'memory.max')), String(256 * MiB));
      assert.equal(await read(join(groupDir(), 'memory.swap.max')), '0');
      assert.equal(await read(join(groupDir(), 'pids.max')), 'max');
      assert.equal(await read(join(groupDir(), 'cgroup.subtree_control')), 'cpu memory pids');
    });

    it('puts a container below the group, with its own limits as they are', async () => {
      await driver.createGroup('class-3f9a', BUDGET);
      const handle = await driver.create('c1', LIMITS, undefined, 'class-3f9a');
      assert.deepEqual(handle, { id: 'c1', paths: [join(groupDir(), 'c1')] });
      assert.equal(await read(join(groupDir(), 'c1/cpu.max')), '150000 100000');
      assert.equal(await read(join(groupDir(), 'c1/memory.max')), String(64 * MiB));
      assert.equal(await read(join(groupDir(), 'c1/pids.max')), '100');
      assert.deepEqual(driver.handleFromPaths('c1', [...handle.paths]), handle);
    });

    it('refuses a container in a group that does not exist, and makes nothing', async () => {
      await assertRejectsWith(driver.create('c1', LIMITS, undefined, 'class-none'), 'NOT_FOUND', /no such group/);
      assert.equal(await exists(join(root, OWN, 'mdocker/class-none')), false);
    });

    it('refuses names that are not lower-case names, or look like a container id', async () => {
      for (const name of ['', 'Class-1', 'class_1', '-class', '../x', 'a/b', 'x'.repeat(64), 'a'.repeat(32)]) {
        await assertRejectsWith(driver.createGroup(name, BUDGET), 'INVALID_ARGUMENT', /invalid group name/);
        await assertRejectsWith(driver.create('c1', LIMITS, undefined, name), 'INVALID_ARGUMENT', /invalid group name/);
      }
      assert.equal(await exists(join(root, OWN, 'mdocker')), false);
    });

    it('writes a new budget on an existing group, its containers left in place', async () => {
      await driver.createGroup('class-3f9a', BUDGET);
      const handle = await driver.create('c1', LIMITS, undefined, 'class-3f9a');
      await driver.createGroup('class-3f9a', { memoryBytes: null, cpus: 2 });
      assert.equal(await read(join(groupDir(), 'cpu.max')), '200000 100000');
      assert.equal(await read(join(groupDir(), 'memory.max')), 'max');
      assert.equal(await exists(handle.paths[0] ?? ''), true);
    });

    it('removes a container without its group, then the group and the empty mdocker directory', async () => {
      const group = await driver.createGroup('class-3f9a', BUDGET);
      const handle = await driver.create('c1', LIMITS, undefined, 'class-3f9a');
      await driver.remove(handle);
      assert.equal(await exists(join(groupDir(), 'c1')), false);
      assert.equal(await exists(groupDir()), true);
      assert.deepEqual(await driver.groupHandle('class-3f9a'), group);
      await driver.remove(group);
      assert.equal(await exists(groupDir()), false);
      assert.equal(await exists(join(root, OWN, 'mdocker')), false);
      await driver.remove(group);
    });

    it('removes a group with containers left in it, deepest first, once their processes are gone', async () => {
      const group = await driver.createGroup('class-3f9a', BUDGET);
      const handle = await driver.create('c1', LIMITS, undefined, 'class-3f9a');
      await kernel.writeFile(join(handle.paths[0] ?? '', 'cgroup.procs'), '4242');
      setTimeout(() => void writeFile(join(handle.paths[0] ?? '', 'cgroup.procs'), ''), 80);
      await driver.remove(group);
      assert.equal(await exists(groupDir()), false);
    });

    it('lists the empty class groups of the default parent for a reap, and no other cgroup', async () => {
      await driver.createGroup('class-empty', BUDGET);
      await driver.createGroup('class-busy', BUDGET);
      await driver.createGroup('other', BUDGET);
      await driver.create('c1', LIMITS, undefined, 'class-busy');
      await driver.create('c2', LIMITS);
      const listed = await driver.listEmptyGroups('class-');
      assert.deepEqual(listed, [{ id: 'class-empty', paths: [join(root, OWN, 'mdocker/class-empty')] }]);
    });
  });
});

describe('cgroup detection (v2 hosts)', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'mdocker-detect2-'));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function fakeProc(mountinfo: string, cgroup: string): Promise<string> {
    const procRoot = join(root, 'proc');
    await mkdir(join(procRoot, 'self'), { recursive: true });
    await writeFile(join(procRoot, 'self/mountinfo'), mountinfo);
    await writeFile(join(procRoot, 'self/cgroup'), cgroup);
    return procRoot;
  }

  const PURE_V2_MOUNTINFO = `22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

  it('picks v2 on a pure v2 host and finds its own cgroup', async () => {
    const sysfs = join(root, 'sysfs');
    await mkdir(sysfs);
    await writeFile(join(sysfs, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma misc\n');
    const driver = detectCgroupDriver({
      procRoot: await fakeProc(PURE_V2_MOUNTINFO, `0::${OWN}\n`),
      sysfsCgroupRoot: sysfs,
    });
    assert.ok(driver instanceof CgroupV2Driver);
    assert.equal(driver.version, 2);
    assert.equal(driver.mountPoint, sysfs);
    assert.equal(driver.ownCgroup, OWN);
  });

  it('creates through the detected v2 driver on the fake tree', async () => {
    const sysfs = join(root, 'sysfs');
    await mkdir(sysfs);
    const kernel = new FakeV2Kernel(sysfs);
    await kernel.populate(sysfs, ALL);
    await kernel.writeFile(join(sysfs, 'cgroup.subtree_control'), '+cpu +memory +pids');
    await kernel.mkdir(join(sysfs, 'app'));
    await kernel.writeFile(join(sysfs, 'app/cgroup.subtree_control'), '+cpu +memory +pids');
    const driver = detectCgroupDriver({
      procRoot: await fakeProc(PURE_V2_MOUNTINFO, '0::/app\n'),
      sysfsCgroupRoot: sysfs,
      fs: kernel,
    });
    const handle = await driver.create('c1', LIMITS);
    assert.deepEqual(handle.paths, [join(sysfs, 'app/mdocker/c1')]);
    assert.equal(await read(join(sysfs, 'app/mdocker/c1/cpu.max')), '150000 100000');
  });

  it('prefers v1 when memory is in a v1 hierarchy even if cgroup2 offers controllers', async () => {
    const mountinfo = `26 22 0:23 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
27 22 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
28 22 0:25 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
`;
    await mkdir(join(root, 'unified'));
    await writeFile(join(root, 'unified/cgroup.controllers'), 'cpu io\n');
    const driver = detectCgroupDriver({
      procRoot: await fakeProc(mountinfo, '0::/\n4:memory:/\n5:pids:/\n'),
      sysfsCgroupRoot: root,
    });
    assert.ok(driver instanceof CgroupV1Driver);
  });

  it('sees "/" as its own cgroup inside a private cgroup namespace', async () => {
    const mountinfo = '700 690 0:23 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n';
    await writeFile(join(root, 'cgroup.controllers'), 'cpu memory pids\n');
    const driver = detectCgroupDriver({ procRoot: await fakeProc(mountinfo, '0::/\n'), sysfsCgroupRoot: root });
    assert.ok(driver instanceof CgroupV2Driver);
    assert.equal(driver.ownCgroup, '/');
  });

  it('decodes escaped mount points', async () => {
    const mountinfo = '26 22 0:23 / /sys/fs/cgroup/with\\040space rw - cgroup2 cgroup2 rw\n';
    await mkdir(join(root, 'with space'));
    await writeFile(join(root, 'with space/cgroup.controllers'), 'cpu memory pids\n');
    const driver = detectCgroupDriver({ procRoot: await fakeProc(mountinfo, '0::/\n'), sysfsCgroupRoot: root });
    assert.ok(driver instanceof CgroupV2Driver);
    assert.equal(driver.mountPoint, join(root, 'with space'));
  });
});

describe('a container’s own processes (kill proves them)', () => {
  it('owns a process whose /proc/PID/cgroup is the container’s cgroup or below, and no other', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mdocker-cgv2-own-'));
    try {
      const driver = new CgroupV2Driver({ mountPoint: root, ownCgroup: '/', fs: new FakeV2Kernel(root) });
      const handle = { id: 'c1', paths: [join(root, 'mdocker/c1')] };
      assert.equal(driver.ownsProcess(handle, '0::/mdocker/c1\n'), true);
      assert.equal(driver.ownsProcess(handle, '0::/mdocker/c1/inner\n'), true);
      assert.equal(driver.ownsProcess(handle, '0::/mdocker/c10\n'), false, 'a sibling whose name starts alike');
      assert.equal(driver.ownsProcess(handle, '0::/user.slice\n'), false);
      assert.equal(driver.ownsProcess(handle, '0::/mdocker/c1/../../user.slice\n'), false);
      assert.equal(driver.ownsProcess(handle, '12:pids:/mdocker/c1\n'), false, 'a v1 line is not a v2 membership');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('kills the whole cgroup with cgroup.kill where the kernel has it, and says so where not', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mdocker-cgv2-kill-'));
    try {
      const kernel = new FakeV2Kernel(root);
      await kernel.populate(root, ALL);
      const driver = new CgroupV2Driver({ mountPoint: root, ownCgroup: '/', fs: kernel });
      await kernel.writeFile(join(root, 'cgroup.subtree_control'), '+cpu +memory +pids');
      const handle = await driver.create('c1', LIMITS);
      assert.equal(await driver.killAll(handle), false, 'no cgroup.kill before 5.14');
      await writeFile(join(handle.paths[0]!, 'cgroup.kill'), '');
      assert.equal(await driver.killAll(handle), true);
      assert.deepEqual(
        kernel.writes.filter((w) => w.file.endsWith('cgroup.kill')),
        [{ file: 'mdocker/c1/cgroup.kill', data: '1' }],
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
