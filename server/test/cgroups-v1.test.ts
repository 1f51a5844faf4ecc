import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { nodeCgroupFs, writeCgroupFileEach, type CgroupLimits } from '../src/runtime/cgroups/driver.js';
import { detectCgroupDriver } from '../src/runtime/cgroups/detect.js';
import { CgroupV1Driver, V1_ALLOWED_DEVICES, type V1Hierarchy } from '../src/runtime/cgroups/v1.js';
import { isMdockerError, type ErrorCode } from '../src/runtime/errors.js';
import { FakeCgroupFsBase, checkCpuIdle, errno } from './fake-kernfs-files.js';

const UNLIMITED = '9223372036854771712';
const MiB = 1024 * 1024;

/**
 * Enough of cgroup v1's cgroupfs on a temp dir: mkdir fills in the control files of the
 * hierarchy's controllers, writes are checked the way the kernel checks them (memsw must stay
 * >= the memory limit), rmdir refuses while processes or child cgroups remain.
 */
class FakeV1Kernel extends FakeCgroupFsBase {
  readonly writes: { file: string; data: string }[] = [];
  readonly failingFiles = new Set<string>();
  /** Whether cpu cgroups have cpu.idle (Linux 5.15+). */
  cpuIdle = true;

  constructor(
    private readonly root: string,
    private readonly swapAccounting = true,
  ) {
    super();
  }

  /** Controllers of the hierarchy `path` belongs to: the first directory below root, e.g. "cpu,cpuacct". */
  private controllersOf(path: string): string[] {
    return (relative(this.root, path).split('/')[0] ?? '').split(',');
  }

  async populate(dir: string): Promise<void> {
    const files: Record<string, string> = { 'cgroup.procs': '', tasks: '', notify_on_release: '0\n' };
    for (const controller of this.controllersOf(dir)) {
      if (controller === 'cpu') {
        Object.assign(files, {
          'cpu.cfs_period_us': '100000\n',
          'cpu.cfs_quota_us': '-1\n',
          'cpu.shares': '1024\n',
          ...(this.cpuIdle ? { 'cpu.idle': '0\n' } : {}),
          'cpu.stat': 'nr_periods 0\nnr_throttled 0\nthrottled_time 0\nnr_bursts 0\nburst_time 0\n',
        });
      }
      if (controller === 'cpuacct') Object.assign(files, { 'cpuacct.usage': '0\n' });
      if (controller === 'memory') {
        Object.assign(files, {
          'memory.limit_in_bytes': `${UNLIMITED}\n`,
          'memory.usage_in_bytes': '0\n',
          'memory.stat': 'cache 0\nrss 0\ntotal_inactive_file 0\n',
          'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n',
        });
        if (this.swapAccounting) files['memory.memsw.limit_in_bytes'] = `${UNLIMITED}\n`;
      }
      if (controller === 'pids')
        Object.assign(files, { 'pids.max': 'max\n', 'pids.current': '0\n', 'pids.events': 'max 0\n' });
      if (controller === 'devices')
        Object.assign(files, { 'devices.allow': '', 'devices.deny': '', 'devices.list': '' });
    }
    for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  }

  async mkdir(path: string): Promise<void> {
    await mkdir(path);
    await this.populate(path);
  }

  /** Quota per period, or null for none (-1). */
  private async quotaRatio(dir: string, quotaUsec?: number): Promise<number | null> {
    const quota = quotaUsec ?? Number(await read(join(dir, 'cpu.cfs_quota_us')));
    return quota < 0 ? null : quota / Number(await read(join(dir, 'cpu.cfs_period_us')));
  }

  /** tg_cfs_schedulable_down() on v1: no quota per period above the parent's, none below above its own. */
  private async checkQuota(dir: string, quotaUsec: number): Promise<void> {
    const own = await this.quotaRatio(dir, quotaUsec);
    if (own === null) return;
    if (dir !== join(this.root, 'cpu')) {
      const parent = await this.quotaRatio(dirname(dir));
      if (parent !== null && own > parent) throw errno('EINVAL');
    }
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const child = await this.quotaRatio(join(dir, entry.name));
      if (child !== null && child > own) throw errno('EINVAL');
    }
  }

  async rmdir(path: string): Promise<void> {
    const procs = await readFile(join(path, 'cgroup.procs'), 'utf8').catch(() => {
      throw errno('ENOENT');
    });
    if (procs.trim() !== '') throw errno('EBUSY');
    const entries = await readdir(path, { withFileTypes: true });
    if (entries.some((entry) => entry.isDirectory())) throw errno('EBUSY');
    for (const entry of entries) await rm(join(path, entry.name));
    await rmdir(path);
    this.files.removed(path);
  }

  async readFile(path: string): Promise<string> {
    return readFile(path, 'utf8');
  }

  async writeFile(path: string, data: string): Promise<void> {
    await stat(path); // ENOENT like cgroupfs: control files cannot be created
    const file = basename(path);
    if (this.failingFiles.has(file)) throw errno('EINVAL');
    let stored = data;
    if (file === 'memory.limit_in_bytes' || file === 'memory.memsw.limit_in_bytes') {
      const bytes = data.trim() === '-1' ? BigInt(UNLIMITED) : BigInt(data.trim());
      const limitPath = join(dirname(path), 'memory.limit_in_bytes');
      const memswPath = join(dirname(path), 'memory.memsw.limit_in_bytes');
      const hasMemsw = await stat(memswPath).then(
        () => true,
        () => false,
      );
      // mem_cgroup_resize_max(): memsw may never drop below the memory limit.
      if (hasMemsw && file === 'memory.limit_in_bytes' && bytes > BigInt((await readFile(memswPath, 'utf8')).trim())) {
        throw errno('EINVAL');
      }
      if (file === 'memory.memsw.limit_in_bytes' && bytes < BigInt((await readFile(limitPath, 'utf8')).trim())) {
        throw errno('EINVAL');
      }
      stored = `${bytes}\n`;
    }
    if (file === 'cpu.cfs_quota_us') await this.checkQuota(dirname(path), Number(data.trim()));
    this.writes.push({ file: relative(this.root, path), data });
    // devices.list: "a" in devices.deny empties it, each devices.allow line joins it.
    const list = join(dirname(path), 'devices.list');
    if (file === 'devices.deny' && data === 'a') await writeFile(list, '');
    if (file === 'devices.allow') await writeFile(list, `${await readFile(list, 'utf8')}${data}\n`);
    await writeFile(path, stored);
  }
}

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

const LIMITS: CgroupLimits = { memoryBytes: 64 * MiB, cpus: 0.5, pidsLimit: 100 };
const OWN_MEMORY_CGROUP = '/process_api/830b07797241eb96655df95406559bc1';

describe('cgroup v1 driver', () => {
  let root: string;
  let kernel: FakeV1Kernel;
  let driver: CgroupV1Driver;

  /** This machine's layout: separate cpu, cpuacct, memory, pids mounts; memory in a sub-cgroup. */
  async function makeHierarchies(names: string[], ownCgroups: Record<string, string> = {}): Promise<V1Hierarchy[]> {
    const hierarchies: V1Hierarchy[] = [];
    for (const name of names) {
      const mountPoint = join(root, name);
      await mkdir(mountPoint);
      await kernel.populate(mountPoint);
      const ownCgroup = ownCgroups[name] ?? '/';
      let dir = mountPoint;
      for (const segment of ownCgroup.split('/').filter(Boolean)) {
        dir = join(dir, segment);
        await kernel.mkdir(dir);
      }
      hierarchies.push({ controllers: name.split(','), mountPoint, ownCgroup });
    }
    kernel.writes.length = 0;
    return hierarchies;
  }

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'mdocker-cgv1-'));
    kernel = new FakeV1Kernel(root);
    driver = new CgroupV1Driver({
      hierarchies: await makeHierarchies(['cpu', 'cpuacct', 'memory', 'pids'], { memory: OWN_MEMORY_CGROUP }),
      fs: kernel,
    });
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates one cgroup per hierarchy below its own cgroup, in an mdocker directory', async () => {
    const handle = await driver.create('c1', LIMITS);
    assert.equal(driver.version, 1);
    assert.deepEqual(handle, {
      id: 'c1',
      paths: [
        join(root, 'cpu/mdocker/c1'),
        join(root, 'cpuacct/mdocker/c1'),
        join(root, 'memory', OWN_MEMORY_CGROUP, 'mdocker/c1'),
        join(root, 'pids/mdocker/c1'),
      ],
    });
  });

  it('sets the CPU weight as the cpu.shares it stands for, and NOT_FOUND once the cgroup is gone', async () => {
    const handle = await driver.create('c1', LIMITS);
    const cpu = handle.paths[0] ?? '';
    await driver.setCpuWeight(handle, 1000);
    assert.equal(await read(join(cpu, 'cpu.shares')), '10240');
    await driver.setCpuWeight(handle, 100);
    assert.equal(await read(join(cpu, 'cpu.shares')), '1024');
    await driver.setCpuWeight(handle, 1);
    assert.equal(await read(join(cpu, 'cpu.shares')), '10');
    await assert.rejects(driver.setCpuWeight(handle, 0), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(driver.setCpuWeight(handle, 10_001), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(driver.setCpuWeight(handle, 1.5), { code: 'INVALID_ARGUMENT' });
    await driver.remove(handle);
    await assert.rejects(driver.setCpuWeight(handle, 1000), { code: 'NOT_FOUND' });
  });

  it('puts the container in the idle class and back; UNSUPPORTED without cpu.idle, NOT_FOUND once gone', async () => {
    await checkCpuIdle(driver, kernel, LIMITS);
  });

  it('writes the limits before create returns', async () => {
    const handle = await driver.create('c1', LIMITS);
    const [cpu, , memory, pids] = handle.paths as [string, string, string, string];
    assert.equal(await read(join(cpu, 'cpu.cfs_period_us')), '100000');
    assert.equal(await read(join(cpu, 'cpu.cfs_quota_us')), '50000');
    assert.equal(await read(join(memory, 'memory.limit_in_bytes')), String(64 * MiB));
    assert.equal(await read(join(memory, 'memory.memsw.limit_in_bytes')), String(64 * MiB));
    assert.equal(await read(join(pids, 'pids.max')), '100');
  });

  it('denies every device, then allows the bound nodes and the ptys, before create returns', async () => {
    await rm(root, { recursive: true, force: true });
    root = await mkdtemp(join(tmpdir(), 'mdocker-cgv1-'));
    kernel = new FakeV1Kernel(root);
    driver = new CgroupV1Driver({
      hierarchies: await makeHierarchies(['cpu', 'cpuacct', 'memory', 'pids', 'devices']),
      fs: kernel,
    });
    const handle = await driver.create('c1', LIMITS);
    const devices = join(root, 'devices/mdocker/c1');
    assert.equal(handle.paths.at(-1), devices);
    const writes = kernel.writes.filter((write) => write.file.startsWith('devices/'));
    assert.deepEqual(
      writes.map((write) => `${basename(write.file)} ${write.data}`),
      [
        'devices.deny a',
        ...[
          '1:3',
          '1:5',
          '1:7',
          '1:8',
          '1:9',
          '5:0',
          '5:2',
          ...[136, 137, 138, 139, 140, 141, 142, 143].map((m) => `${m}:*`),
        ].map((node) => `devices.allow c ${node} rw`),
      ],
    );
    assert.deepEqual((await read(join(devices, 'devices.list'))).split('\n'), [...V1_ALLOWED_DEVICES]);
    assert.ok(
      !V1_ALLOWED_DEVICES.some((rule) => rule.startsWith('b ') || rule.includes('m')),
      'no block device, no mknod',
    );
  });

  it("allows exactly what the launcher's cgroup v2 device program allows (devices.c)", async () => {
    const source = await readFile(new URL('../../../native/src/launcher/devices.c', import.meta.url), 'utf8');
    const rules = [...source.matchAll(/\{ BPF_DEVCG_DEV_(CHAR|BLOCK), (\d+), (\d+|ANY_MINOR), ([A-Z_ |]+) \}/g)].map(
      ([, type, major, minor, access]) =>
        `${type === 'CHAR' ? 'c' : 'b'} ${major}:${minor === 'ANY_MINOR' ? '*' : minor} ` +
        `${access?.includes('READ') ? 'r' : ''}${access?.includes('WRITE') ? 'w' : ''}${access?.includes('MKNOD') ? 'm' : ''}`,
    );
    assert.deepEqual(rules, [...V1_ALLOWED_DEVICES]);
  });

  it('leaves "no limit" as -1 and max', async () => {
    const handle = await driver.create('c1', { memoryBytes: null, cpus: null, pidsLimit: null });
    const [cpu, , memory, pids] = handle.paths as [string, string, string, string];
    assert.equal(await read(join(cpu, 'cpu.cfs_quota_us')), '-1');
    assert.equal(await read(join(memory, 'memory.limit_in_bytes')), UNLIMITED);
    assert.equal(await read(join(pids, 'pids.max')), 'max');
  });

  it('lowers the memory limit before memsw and raises memsw before the limit', async () => {
    const handle = await driver.create('c1', LIMITS);
    const memoryWrites = () =>
      kernel.writes
        .filter((write) => write.file.startsWith('memory/'))
        .map((write) => `${basename(write.file)}=${write.data}`);
    assert.deepEqual(memoryWrites(), [`memory.limit_in_bytes=${64 * MiB}`, `memory.memsw.limit_in_bytes=${64 * MiB}`]);

    kernel.writes.length = 0;
    await driver.update(handle, { memoryBytes: 128 * MiB });
    assert.deepEqual(memoryWrites(), [
      `memory.memsw.limit_in_bytes=${128 * MiB}`,
      `memory.limit_in_bytes=${128 * MiB}`,
    ]);

    kernel.writes.length = 0;
    await driver.update(handle, { memoryBytes: 32 * MiB });
    assert.deepEqual(memoryWrites(), [`memory.limit_in_bytes=${32 * MiB}`, `memory.memsw.limit_in_bytes=${32 * MiB}`]);

    kernel.writes.length = 0;
    await driver.update(handle, { memoryBytes: null });
    assert.deepEqual(memoryWrites(), ['memory.memsw.limit_in_bytes=-1', 'memory.limit_in_bytes=-1']);
    assert.equal(await read(join(handle.paths[2] ?? '', 'memory.memsw.limit_in_bytes')), UNLIMITED);
  });

  it('the fake kernel enforces memsw >= limit, so the ordering test above can fail', async () => {
    const handle = await driver.create('c1', LIMITS);
    const memory = handle.paths[2] ?? '';
    await assert.rejects(kernel.writeFile(join(memory, 'memory.limit_in_bytes'), String(128 * MiB)), {
      code: 'EINVAL',
    });
  });

  it('writes only memory.limit_in_bytes without swap accounting', async () => {
    await rm(root, { recursive: true, force: true });
    root = await mkdtemp(join(tmpdir(), 'mdocker-cgv1-'));
    kernel = new FakeV1Kernel(root, false);
    driver = new CgroupV1Driver({
      hierarchies: await makeHierarchies(['cpu', 'cpuacct', 'memory', 'pids']),
      fs: kernel,
    });
    const handle = await driver.create('c1', LIMITS);
    assert.equal(await read(join(handle.paths[2] ?? '', 'memory.limit_in_bytes')), String(64 * MiB));
    assert.equal(await exists(join(handle.paths[2] ?? '', 'memory.memsw.limit_in_bytes')), false);
  });

  it('updates only the limits given', async () => {
    const handle = await driver.create('c1', LIMITS);
    kernel.writes.length = 0;
    await driver.update(handle, { pidsLimit: 20, cpus: null });
    assert.deepEqual(
      kernel.writes.map((write) => `${write.file}=${write.data}`),
      ['cpu/mdocker/c1/cpu.cfs_period_us=100000', 'cpu/mdocker/c1/cpu.cfs_quota_us=-1', 'pids/mdocker/c1/pids.max=20'],
    );
  });

  it('places the cgroup below --cgroup-parent in every hierarchy and keeps that parent on remove', async () => {
    const handle = await driver.create('c1', LIMITS, '/ci/jobs');
    assert.deepEqual(handle.paths, [
      join(root, 'cpu/ci/jobs/c1'),
      join(root, 'cpuacct/ci/jobs/c1'),
      join(root, 'memory/ci/jobs/c1'),
      join(root, 'pids/ci/jobs/c1'),
    ]);
    await driver.remove(handle);
    assert.equal(await exists(join(root, 'memory/ci/jobs/c1')), false);
    assert.equal(await exists(join(root, 'memory/ci/jobs')), true);
  });

  it('refuses a --cgroup-parent that climbs out of the hierarchy, and bad ids', async () => {
    await assertRejectsWith(
      driver.create('c1', LIMITS, '../escape'),
      'INVALID_ARGUMENT',
      /invalid cgroup parent "..\/escape"/,
    );
    await assertRejectsWith(driver.create('../c1', LIMITS), 'INVALID_ARGUMENT', /invalid cgroup id/);
    await assertRejectsWith(driver.create('.hidden', LIMITS), 'INVALID_ARGUMENT', /invalid cgroup id/);
    assert.equal(await exists(join(root, 'cpu/mdocker')), false);
  });

  it('refuses to reuse an existing cgroup', async () => {
    await driver.create('c1', LIMITS);
    await assertRejectsWith(driver.create('c1', LIMITS), 'CONFLICT', /cgroup .*\/cpu\/mdocker\/c1 already exists/);
  });

  it('removes what it created when writing a limit fails', async () => {
    kernel.failingFiles.add('pids.max');
    await assertRejectsWith(
      driver.create('c1', LIMITS),
      'INVALID_ARGUMENT',
      /writing "100" to .*pids\/mdocker\/c1\/pids.max failed: EINVAL/,
    );
    for (const name of ['cpu', 'cpuacct', 'pids']) assert.equal(await exists(join(root, name, 'mdocker')), false, name);
    assert.equal(await exists(join(root, 'memory', OWN_MEMORY_CGROUP, 'mdocker')), false);
  });

  it('says which controller is missing', async () => {
    const partial = new CgroupV1Driver({
      hierarchies: driver.hierarchies.filter((hierarchy) => !hierarchy.controllers.includes('pids')),
      fs: kernel,
    });
    await assertRejectsWith(
      partial.create('c1', LIMITS),
      'UNSUPPORTED',
      /^cgroup v1: no hierarchy is mounted for controller pids$/,
    );
  });

  it('reads stats the way docker does from realistic files', async () => {
    const handle = await driver.create('c1', LIMITS);
    const [cpu, cpuacct, memory, pids] = handle.paths as [string, string, string, string];
    await writeFile(join(cpuacct, 'cpuacct.usage'), '123456789012\n');
    await writeFile(
      join(cpu, 'cpu.stat'),
      'nr_periods 420\nnr_throttled 17\nthrottled_time 2345678901\nnr_bursts 0\nburst_time 0\n',
    );
    await writeFile(join(memory, 'memory.usage_in_bytes'), '31457280\n');
    await writeFile(
      join(memory, 'memory.stat'),
      [
        'cache 27938816',
        'rss 1679360',
        'inactive_file 11776000',
        `hierarchical_memory_limit ${64 * MiB}`,
        'total_cache 27938816',
        'total_rss 1679360',
        'total_inactive_file 10485760',
        'total_active_file 16162816',
        '',
      ].join('\n'),
    );
    await writeFile(join(memory, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    await writeFile(join(pids, 'pids.current'), '7\n');
    await writeFile(join(pids, 'pids.events'), 'max 3\n');

    assert.deepEqual(await driver.stats(handle), {
      cpuUsageUsec: 123456789,
      cpuPeriods: 420,
      cpuThrottledPeriods: 17,
      cpuThrottledUsec: 2345678,
      memoryBytes: 31457280 - 10485760,
      memoryLimitBytes: 64 * MiB,
      pids: 7,
      pidsLimit: 100,
      oomKills: 2,
      pidsLimitHits: 3,
    });
  });

  it('reports unlimited memory and pids as null', async () => {
    const handle = await driver.create('c1', { memoryBytes: null, cpus: null, pidsLimit: null });
    const stats = await driver.stats(handle);
    assert.equal(stats.memoryLimitBytes, null);
    assert.equal(stats.pidsLimit, null);
  });

  it("re-reads its open files in place, one open per file for the reader's life", async () => {
    const handle = await driver.create('c1', LIMITS);
    const [cpu, cpuacct, memory, pids] = handle.paths as [string, string, string, string];
    await writeFile(join(cpu, 'cpu.stat'), 'nr_periods 10\nnr_throttled 2\nthrottled_time 5000000\n');
    await writeFile(join(memory, 'memory.usage_in_bytes'), '4194304\n');
    await writeFile(join(memory, 'memory.stat'), 'cache 0\ninactive_file 7\ntotal_inactive_file 1048576\n');
    const expected = await driver.stats(handle);
    const reader = driver.openStats(handle);
    try {
      const first = reader.read();
      assert.deepEqual(first, expected);
      assert.equal(first.memoryBytes, 3 * MiB);
      assert.equal(first.cpuThrottledUsec, 5000);
      const opened = kernel.files.opened.length;
      const open = kernel.files.openPaths;
      // seven counter files, plus the two limit files for the read without known limits
      assert.equal(open.length, 9);

      // Counters past 2^53 ns (about 104 days of CPU) stay exact in microseconds.
      await writeFile(join(cpuacct, 'cpuacct.usage'), '9007199254740992999\n');
      await writeFile(join(pids, 'pids.current'), '12\n');
      await writeFile(join(pids, 'pids.events'), 'max 4\n');
      await writeFile(join(memory, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n');
      const second = reader.read();
      assert.equal(second.cpuUsageUsec, 2 ** 53);
      assert.equal(second.pids, 12);
      assert.equal(second.pidsLimitHits, 4);
      assert.equal(second.oomKills, 1);
      assert.equal(kernel.files.opened.length, opened, 'nothing opened again');
      assert.deepEqual(kernel.files.openPaths, open);
    } finally {
      reader.close();
    }
    assert.deepEqual(kernel.files.openPaths, []);
  });

  it('takes the limits from the caller without opening the limit files', async () => {
    const handle = await driver.create('c1', LIMITS);
    const reader = driver.openStats(handle);
    try {
      const stats = reader.read({ memoryBytes: 32 * MiB, pidsLimit: 7 });
      assert.equal(stats.memoryLimitBytes, 32 * MiB);
      assert.equal(stats.pidsLimit, 7);
      assert.equal(reader.read({ memoryBytes: null, pidsLimit: null }).memoryLimitBytes, null);
      const names = kernel.files.opened.map((path) => basename(path));
      assert.ok(!names.includes('memory.limit_in_bytes') && !names.includes('pids.max'), names.join(' '));
      // Without them it asks the kernel (as `mdocker stats` does).
      const fromKernel = reader.read();
      assert.equal(fromKernel.memoryLimitBytes, 64 * MiB);
      assert.equal(fromKernel.pidsLimit, 100);
    } finally {
      reader.close();
    }
    assert.deepEqual(kernel.files.openPaths, []);
  });

  it('answers NOT_FOUND and closes every file once the cgroup is removed under it', async () => {
    const handle = await driver.create('c1', LIMITS);
    const reader = driver.openStats(handle);
    reader.read();
    assert.ok(kernel.files.openPaths.length >= 7);
    await driver.remove(handle);
    assert.throws(
      () => reader.read(),
      (err: unknown) =>
        isMdockerError(err) && err.code === 'NOT_FOUND' && /cgroup of container c1 is gone/.test(err.message),
    );
    assert.deepEqual(kernel.files.openPaths, [], 'the failed read closed the files');
    assert.throws(
      () => reader.read(),
      (err: unknown) => isMdockerError(err) && err.code === 'NOT_FOUND',
    );
    reader.close();
    reader.close();
    // Opening a reader for a cgroup that is already gone fails the same way and leaks nothing.
    assert.throws(
      () => driver.openStats(handle),
      (err: unknown) => isMdockerError(err) && err.code === 'NOT_FOUND',
    );
    assert.deepEqual(kernel.files.openPaths, []);
    await assertRejectsWith(driver.stats(handle), 'NOT_FOUND', /is gone/);
  });

  it('reads 0 for the events an older kernel does not count', async () => {
    const handle = await driver.create('c1', LIMITS);
    const [, , memory, pids] = handle.paths as [string, string, string, string];
    await rm(join(pids, 'pids.events'));
    await writeFile(join(memory, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\n');
    const stats = await driver.stats(handle);
    assert.equal(stats.pidsLimitHits, 0);
    assert.equal(stats.oomKills, 0);
    assert.deepEqual(kernel.files.openPaths, []);
  });

  it('lists the processes in the cgroup', async () => {
    const handle = await driver.create('c1', LIMITS);
    await writeFile(join(handle.paths[3] ?? '', 'cgroup.procs'), '4242\n4243\n');
    assert.deepEqual(await driver.procs(handle), [4242, 4243]);
  });

  it('removes every directory and the empty mdocker parent, and is idempotent', async () => {
    const handle = await driver.create('c1', LIMITS);
    await driver.remove(handle);
    for (const path of handle.paths) {
      assert.equal(await exists(path), false, path);
      assert.equal(await exists(dirname(path)), false, dirname(path));
    }
    assert.equal(await exists(join(root, 'memory', OWN_MEMORY_CGROUP)), true);
    await driver.remove(handle);
  });

  it('keeps the mdocker parent while another container lives in it', async () => {
    const first = await driver.create('c1', LIMITS);
    const second = await driver.create('c2', LIMITS);
    await driver.remove(first);
    assert.equal(await exists(join(root, 'cpu/mdocker/c2')), true);
    await driver.remove(second);
    assert.equal(await exists(join(root, 'cpu/mdocker')), false);
  });

  it('retries while processes are still leaving, then removes', async () => {
    const handle = await driver.create('c1', LIMITS);
    const pidsDir = handle.paths[3] ?? '';
    await writeFile(join(pidsDir, 'cgroup.procs'), '4242\n');
    setTimeout(() => void writeFile(join(pidsDir, 'cgroup.procs'), ''), 100);
    await driver.remove(handle, 3000);
    assert.equal(await exists(pidsDir), false);
  });

  it('gives up with TIMEOUT when processes stay, after trying every hierarchy', async () => {
    const handle = await driver.create('c1', LIMITS);
    const pidsDir = handle.paths[3] ?? '';
    await writeFile(join(pidsDir, 'cgroup.procs'), '4242\n');
    await assertRejectsWith(driver.remove(handle, 100), 'TIMEOUT', /removing cgroup .*pids\/mdocker\/c1 failed: EBUSY/);
    assert.equal(await exists(handle.paths[0] ?? ''), false);
    assert.equal(await exists(pidsDir), true);
  });

  it('removes cgroups a container created below its own', async () => {
    const handle = await driver.create('c1', LIMITS);
    await kernel.mkdir(join(handle.paths[2] ?? '', 'nested'));
    await driver.remove(handle);
    assert.equal(await exists(handle.paths[2] ?? ''), false);
  });

  it('rebuilds handles from saved paths, refusing foreign ones', async () => {
    const handle = await driver.create('c1', LIMITS);
    assert.deepEqual(driver.handleFromPaths('c1', [...handle.paths]), handle);
    await assertRejectsWith(
      Promise.resolve().then(() => driver.handleFromPaths('c1', ['/etc/c1'])),
      'INVALID_ARGUMENT',
      /saved cgroup path "\/etc\/c1"/,
    );
    await assertRejectsWith(
      Promise.resolve().then(() => driver.handleFromPaths('c2', [...handle.paths])),
      'INVALID_ARGUMENT',
      /is not a cgroup named "c2"/,
    );
    await assertRejectsWith(
      Promise.resolve().then(() => driver.handleFromPaths('c1', [join(root, 'cpu/mdocker/../../../etc/c1')])),
      'INVALID_ARGUMENT',
      /saved cgroup path/,
    );
  });

  describe('a group (a class) with a budget', () => {
    const BUDGET = { memoryBytes: 256 * MiB, cpus: 0.5 };
    const groupPaths = (name: string): string[] => [
      join(root, 'cpu/mdocker', name),
      join(root, 'cpuacct/mdocker', name),
      join(root, 'memory', OWN_MEMORY_CGROUP, 'mdocker', name),
      join(root, 'pids/mdocker', name),
    ];

    it('creates the group in every hierarchy with its budget written', async () => {
      const group = await driver.createGroup('class-3f9a', BUDGET);
      assert.deepEqual(group, { id: 'class-3f9a', paths: groupPaths('class-3f9a') });
      const [cpu, , memory, pids] = group.paths as [string, string, string, string];
      assert.equal(await read(join(cpu, 'cpu.cfs_period_us')), '100000');
      assert.equal(await read(join(cpu, 'cpu.cfs_quota_us')), '50000');
      assert.equal(await read(join(memory, 'memory.limit_in_bytes')), String(256 * MiB));
      assert.equal(await read(join(memory, 'memory.memsw.limit_in_bytes')), String(256 * MiB));
      assert.equal(await read(join(pids, 'pids.max')), 'max');
    });

    it('puts a container below the group in every hierarchy, its quota capped at the budget', async () => {
      await driver.createGroup('class-3f9a', BUDGET);
      // One whole CPU in a group of half of one: v1 refuses such a quota (EINVAL).
      const handle = await driver.create('c1', { ...LIMITS, cpus: 1 }, undefined, 'class-3f9a');
      assert.deepEqual(
        handle.paths,
        groupPaths('class-3f9a').map((path) => join(path, 'c1')),
      );
      const [cpu, , memory, pids] = handle.paths as [string, string, string, string];
      assert.equal(await read(join(cpu, 'cpu.cfs_quota_us')), '50000');
      assert.equal(await read(join(memory, 'memory.limit_in_bytes')), String(64 * MiB));
      assert.equal(await read(join(pids, 'pids.max')), '100');
      const small = await driver.create('c2', { ...LIMITS, cpus: 0.2 }, undefined, 'class-3f9a');
      assert.equal(await read(join(small.paths[0] ?? '', 'cpu.cfs_quota_us')), '20000');
      assert.deepEqual(driver.handleFromPaths('c1', [...handle.paths]), handle);
    });

    it('lowers the quota of the containers above a lower budget first, as v1 demands', async () => {
      await driver.createGroup('class-3f9a', BUDGET);
      const handle = await driver.create('c1', { ...LIMITS, cpus: 0.4 }, undefined, 'class-3f9a');
      const small = await driver.create('c2', { ...LIMITS, cpus: 0.1 }, undefined, 'class-3f9a');
      await driver.createGroup('class-3f9a', { memoryBytes: 128 * MiB, cpus: 0.25 });
      assert.equal(await read(join(groupPaths('class-3f9a')[0] ?? '', 'cpu.cfs_quota_us')), '25000');
      assert.equal(await read(join(handle.paths[0] ?? '', 'cpu.cfs_quota_us')), '25000');
      assert.equal(await read(join(small.paths[0] ?? '', 'cpu.cfs_quota_us')), '10000');
      assert.equal(await read(join(groupPaths('class-3f9a')[2] ?? '', 'memory.limit_in_bytes')), String(128 * MiB));
      await driver.createGroup('class-3f9a', { memoryBytes: null, cpus: null });
      assert.equal(await read(join(groupPaths('class-3f9a')[0] ?? '', 'cpu.cfs_quota_us')), '-1');
      assert.equal(await read(join(groupPaths('class-3f9a')[2] ?? '', 'memory.limit_in_bytes')), UNLIMITED);
    });

    it('refuses a container in a group that does not exist, and makes nothing', async () => {
      await assertRejectsWith(driver.create('c1', LIMITS, undefined, 'class-none'), 'NOT_FOUND', /no such group/);
      for (const path of groupPaths('class-none')) assert.equal(await exists(path), false, path);
    });

    it('refuses names that are not lower-case names, or look like a container id', async () => {
      for (const name of ['', 'Class-1', 'class.1', '../x', 'a/b', 'x'.repeat(64), 'f'.repeat(32)]) {
        await assertRejectsWith(driver.createGroup(name, BUDGET), 'INVALID_ARGUMENT', /invalid group name/);
        await assertRejectsWith(driver.create('c1', LIMITS, undefined, name), 'INVALID_ARGUMENT', /invalid group name/);
      }
      assert.equal(await exists(join(root, 'cpu/mdocker')), false);
    });

    it('removes a container without its group, then the group and the empty mdocker directories', async () => {
      const group = await driver.createGroup('class-3f9a', BUDGET);
      const handle = await driver.create('c1', LIMITS, undefined, 'class-3f9a');
      await driver.remove(handle);
      for (const path of group.paths) assert.equal(await exists(path), true, path);
      assert.deepEqual(await driver.groupHandle('class-3f9a'), group);
      await driver.remove(group);
      for (const path of group.paths) {
        assert.equal(await exists(path), false, path);
        assert.equal(await exists(dirname(path)), false, dirname(path));
      }
      await driver.remove(group);
    });

    it('lists the empty class groups of the default parents for a reap, and no other cgroup', async () => {
      await driver.createGroup('class-empty', BUDGET);
      await driver.createGroup('class-busy', BUDGET);
      await driver.createGroup('other', BUDGET);
      await driver.create('c1', LIMITS, undefined, 'class-busy');
      await driver.create('c2', LIMITS);
      assert.deepEqual(await driver.listEmptyGroups('class-'), [
        { id: 'class-empty', paths: groupPaths('class-empty') },
      ]);
    });
  });
});

describe('cgroup detection (v1 hosts)', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'mdocker-detect-'));
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

  // Verbatim from the machine this was written on: v1 per controller, an empty cgroup2.
  const HYBRID_MOUNTINFO = `22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 30 0:32 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
  const HYBRID_CGROUP = `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:${OWN_MEMORY_CGROUP}
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`;

  it('picks v1 on a hybrid host and ignores the empty unified hierarchy', async () => {
    await mkdir(join(root, 'unified'));
    await writeFile(join(root, 'unified/cgroup.controllers'), '\n');
    const driver = detectCgroupDriver({
      procRoot: await fakeProc(HYBRID_MOUNTINFO, HYBRID_CGROUP),
      sysfsCgroupRoot: root,
    });
    assert.ok(driver instanceof CgroupV1Driver);
    assert.equal(driver.version, 1);
    const byController = (controller: string) =>
      driver.hierarchies.find((hierarchy) => hierarchy.controllers.includes(controller));
    assert.deepEqual(byController('memory'), {
      controllers: ['memory'],
      mountPoint: join(root, 'memory'),
      ownCgroup: OWN_MEMORY_CGROUP,
    });
    assert.deepEqual(byController('cpu'), { controllers: ['cpu'], mountPoint: join(root, 'cpu'), ownCgroup: '/' });
    assert.deepEqual(byController('pids')?.mountPoint, join(root, 'pids'));
    assert.equal(
      driver.hierarchies.some((hierarchy) => hierarchy.mountPoint.endsWith('systemd')),
      false,
      'name=systemd carries no controller',
    );
  });

  it('creates through the detected driver on the fake tree', async () => {
    const kernel = new FakeV1Kernel(root);
    for (const name of ['cpu', 'cpuacct', 'memory', 'pids', 'devices']) {
      await mkdir(join(root, name));
      await kernel.populate(join(root, name));
    }
    await mkdir(join(root, 'memory', OWN_MEMORY_CGROUP), { recursive: true });
    const driver = detectCgroupDriver({
      procRoot: await fakeProc(HYBRID_MOUNTINFO, HYBRID_CGROUP),
      sysfsCgroupRoot: root,
      fs: kernel,
    });
    const handle = await driver.create('c1', LIMITS);
    assert.equal(
      await read(join(root, 'memory', OWN_MEMORY_CGROUP, 'mdocker/c1/memory.limit_in_bytes')),
      String(64 * MiB),
    );
    assert.equal(handle.paths.length, 5, 'cpu, cpuacct, memory, pids and devices');
    assert.match(await read(join(root, 'devices/mdocker/c1/devices.list')), /^c 1:3 rw\n/);
  });

  it('treats co-mounted cpu,cpuacct as one hierarchy with one directory', async () => {
    const mountinfo = `30 22 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755
31 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,name=systemd
32 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
33 30 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
34 30 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,pids
`;
    const cgroup = `12:pids:/user.slice/user-1000.slice/session-2.scope
4:memory:/user.slice/user-1000.slice/session-2.scope
3:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-2.scope
`;
    const kernel = new FakeV1Kernel(root);
    const driver = detectCgroupDriver({
      procRoot: await fakeProc(mountinfo, cgroup),
      sysfsCgroupRoot: root,
      fs: kernel,
    });
    assert.ok(driver instanceof CgroupV1Driver);
    const cpu = driver.hierarchies.find((hierarchy) => hierarchy.controllers.includes('cpuacct'));
    assert.deepEqual(cpu, {
      controllers: ['cpu', 'cpuacct'],
      mountPoint: join(root, 'cpu,cpuacct'),
      ownCgroup: '/user.slice',
    });

    for (const name of ['cpu,cpuacct', 'memory', 'pids']) {
      await mkdir(join(root, name));
      await kernel.populate(join(root, name));
    }
    await mkdir(join(root, 'cpu,cpuacct/user.slice'));
    for (const name of ['memory', 'pids'])
      await mkdir(join(root, name, 'user.slice/user-1000.slice/session-2.scope'), { recursive: true });
    const handle = await driver.create('c1', LIMITS);
    assert.deepEqual(handle.paths, [
      join(root, 'cpu,cpuacct/user.slice/mdocker/c1'),
      join(root, 'memory/user.slice/user-1000.slice/session-2.scope/mdocker/c1'),
      join(root, 'pids/user.slice/user-1000.slice/session-2.scope/mdocker/c1'),
    ]);
    await writeFile(join(handle.paths[0] ?? '', 'cpuacct.usage'), '5000\n');
    assert.equal((await driver.stats(handle)).cpuUsageUsec, 5);
    assert.equal(await read(join(handle.paths[0] ?? '', 'cpu.cfs_quota_us')), '50000');
  });

  it('maps a container that sees its own cgroup as the mount root to "/"', async () => {
    const mountinfo = `40 30 0:31 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
41 30 0:35 /docker/abc /sys/fs/cgroup/pids ro,nosuid - cgroup cgroup rw,pids
42 30 0:28 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct
`;
    const cgroup = '4:memory:/docker/abc\n8:pids:/docker/abc\n1:cpu,cpuacct:/docker/abc\n';
    const driver = detectCgroupDriver({ procRoot: await fakeProc(mountinfo, cgroup), sysfsCgroupRoot: root });
    assert.ok(driver instanceof CgroupV1Driver);
    assert.deepEqual(
      driver.hierarchies.map((hierarchy) => hierarchy.ownCgroup),
      ['/', '/', '/'],
    );
  });

  it('refuses hosts without any cgroup filesystem', () => {
    return fakeProc('22 1 0:21 / /sys rw - sysfs sysfs rw\n', '0::/\n').then((procRoot) => {
      assert.throws(
        () => detectCgroupDriver({ procRoot, sysfsCgroupRoot: root }),
        (err: unknown) =>
          isMdockerError(err) && err.code === 'UNSUPPORTED' && /no cgroup filesystem is mounted/.test(err.message),
      );
    });
  });
});

describe('cgroupfs writes of a list of rules', () => {
  it('writes each value in a write of its own through one open, and names the value a write refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mdocker-write-each-'));
    try {
      const file = join(dir, 'devices.allow');
      await writeFile(file, '');
      await nodeCgroupFs.writeEach(file, ['c 1:3 rwm', '|', 'c 1:5 rwm']);
      assert.equal(await readFile(file, 'utf8'), 'c 1:3 rwm|c 1:5 rwm');
      await assert.rejects(nodeCgroupFs.writeEach(join(dir, 'missing'), ['a']), { code: 'ENOENT' });

      const refusing = new (class extends FakeCgroupFsBase {
        async mkdir(): Promise<void> {}
        async rmdir(): Promise<void> {}
        async readFile(): Promise<string> {
          return '';
        }
        async writeFile(_path: string, data: string): Promise<void> {
          if (data.startsWith('b ')) throw errno('EINVAL');
        }
      })();
      await assert.rejects(
        writeCgroupFileEach(refusing, file, ['c 1:3 rwm', 'b 8:0 rwm', 'c 1:5 rwm']),
        (err: Error) => {
          assert.ok(isMdockerError(err));
          assert.match(err.message, /"b 8:0 rwm"/);
          assert.match(err.message, /devices\.allow/);
          return true;
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
