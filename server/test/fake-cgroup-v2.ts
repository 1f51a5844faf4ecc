/** A fake cgroup2fs on a temp dir for the v2 driver's and the delegation's unit tests. */
import { mkdir, readFile, readdir, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { nodeCgroupFs } from '../src/runtime/cgroups/driver.js';
import { FakeCgroupFsBase, errno } from './fake-kernfs-files.js';

/**
 * Enough of cgroup2fs on a temp dir: a new cgroup gets the controllers its parent's
 * cgroup.subtree_control enables, with their files; subtree_control only accepts
 * controllers the cgroup has, and refuses while the cgroup holds processes (the
 * no-internal-processes rule); rmdir refuses while processes or children remain.
 */
export class FakeV2Kernel extends FakeCgroupFsBase {
  readonly writes: { file: string; data: string }[] = [];
  /** Whether cpu cgroups have cpu.idle (Linux 5.15+). */
  cpuIdle = true;

  constructor(
    private readonly root: string,
    private readonly swapAccounting = true,
  ) {
    super();
  }

  async populate(dir: string, controllers: string[]): Promise<void> {
    const files: Record<string, string> = {
      'cgroup.controllers': `${controllers.join(' ')}\n`,
      'cgroup.subtree_control': '\n',
      'cgroup.procs': '',
      'cgroup.events': 'populated 0\nfrozen 0\n',
      'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0\n',
    };
    if (dir !== this.root) {
      files['cgroup.type'] = 'domain\n';
      if (controllers.includes('cpu'))
        Object.assign(files, {
          'cpu.max': 'max 100000\n',
          'cpu.weight': '100\n',
          ...(this.cpuIdle ? { 'cpu.idle': '0\n' } : {}),
        });
      if (controllers.includes('memory')) {
        Object.assign(files, {
          'memory.max': 'max\n',
          'memory.current': '0\n',
          'memory.stat': 'anon 0\nfile 0\ninactive_file 0\n',
          'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n',
        });
        if (this.swapAccounting) files['memory.swap.max'] = 'max\n';
      }
      if (controllers.includes('pids'))
        Object.assign(files, { 'pids.max': 'max\n', 'pids.current': '0\n', 'pids.events': 'max 0\n' });
    }
    for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  }

  async mkdir(path: string): Promise<void> {
    await mkdir(path);
    const enabled = (await readFile(join(dirname(path), 'cgroup.subtree_control'), 'utf8'))
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    await this.populate(path, enabled);
  }

  async rmdir(path: string): Promise<void> {
    const procs = await readFile(join(path, 'cgroup.procs'), 'utf8').catch(() => {
      throw errno('ENOENT');
    });
    const entries = await readdir(path, { withFileTypes: true });
    if (procs.trim() !== '' || entries.some((entry) => entry.isDirectory())) throw errno('EBUSY');
    for (const entry of entries) await rm(join(path, entry.name));
    await rmdir(path);
    this.files.removed(path);
  }

  async readFile(path: string): Promise<string> {
    return readFile(path, 'utf8');
  }

  async writeFile(path: string, data: string): Promise<void> {
    await stat(path); // ENOENT like cgroupfs: control files cannot be created
    let stored = `${data}\n`;
    if (basename(path) === 'cgroup.subtree_control') {
      const dir = dirname(path);
      const available = (await readFile(join(dir, 'cgroup.controllers'), 'utf8')).trim().split(/\s+/);
      const enabled = new Set((await readFile(path, 'utf8')).trim().split(/\s+/).filter(Boolean));
      if (dir !== this.root && (await readFile(join(dir, 'cgroup.procs'), 'utf8')).trim() !== '') throw errno('EBUSY');
      for (const change of data.trim().split(/\s+/)) {
        const name = change.slice(1);
        if (!available.includes(name)) throw errno('ENOENT');
        if (change.startsWith('+')) enabled.add(name);
        else enabled.delete(name);
      }
      stored = `${[...enabled].join(' ')}\n`;
    }
    if (basename(path) === 'cgroup.procs') {
      // A pid written here leaves whichever cgroup held it.
      const pid = data.trim();
      await this.removePid(this.root, pid);
      const procs = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
      stored = `${[...procs, pid].join('\n')}\n`;
    }
    this.writes.push({ file: relative(this.root, path), data });
    await writeFile(path, stored);
  }

  private async removePid(dir: string, pid: string): Promise<void> {
    const file = join(dir, 'cgroup.procs');
    const procs = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
    if (procs.includes(pid))
      await writeFile(
        file,
        procs
          .filter((p) => p !== pid)
          .map((p) => `${p}\n`)
          .join(''),
      );
    for (const child of await nodeCgroupFs.listDirectories(dir)) await this.removePid(join(dir, child), pid);
  }

  /** The cgroup (relative to the root, "/a/b") whose cgroup.procs lists pid, as /proc/PID/cgroup would say. */
  async cgroupOf(pid: number, dir = this.root): Promise<string | null> {
    const procs = (await readFile(join(dir, 'cgroup.procs'), 'utf8')).split('\n');
    if (procs.includes(String(pid))) return `/${relative(this.root, dir)}`;
    for (const child of await nodeCgroupFs.listDirectories(dir)) {
      const found = await this.cgroupOf(pid, join(dir, child));
      if (found !== null) return found;
    }
    return null;
  }
}
