// The open-file half of the fake cgroup trees (cgroups-v1/v2 tests), and the contracts both
// drivers keep (checkCpuIdle). The fake's control
// files are regular files, which stay readable through an open fd after they are deleted;
// kernfs instead answers ENODEV once the cgroup is removed. This class behaves like kernfs
// and counts what is open, so tests can prove that nothing leaks.
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { nodeCgroupFs, type CgroupDriver, type CgroupFs, type CgroupLimits } from '../src/runtime/cgroups/driver.js';

export function errno(code: string): Error {
  return Object.assign(new Error(code), { code });
}

export class FakeKernfsFiles {
  /** Every path ever opened, in order. */
  readonly opened: string[] = [];
  readonly #open = new Map<number, { path: string; removed: boolean }>();

  openSync(path: string): number {
    const fd = openSync(path, 'r');
    this.#open.set(fd, { path, removed: false });
    this.opened.push(path);
    return fd;
  }

  preadSync(fd: number, buffer: Buffer): number {
    const file = this.#open.get(fd);
    if (file === undefined) throw errno('EBADF');
    if (file.removed) throw errno('ENODEV');
    return readSync(fd, buffer, 0, buffer.length, 0);
  }

  closeSync(fd: number): void {
    if (!this.#open.delete(fd)) throw errno('EBADF');
    closeSync(fd);
  }

  /** The fake's rmdir calls this: files open in `dir` answer ENODEV from now on. */
  removed(dir: string): void {
    for (const file of this.#open.values()) if (dirname(file.path) === dir) file.removed = true;
  }

  /** Paths open now. */
  get openPaths(): string[] {
    return [...this.#open.values()].map((file) => file.path);
  }
}

/**
 * What both fake trees do alike: directories and existence as on disk, counter files
 * through FakeKernfsFiles. Each fake adds the kernel's rules for mkdir, rmdir and writes.
 */
export abstract class FakeCgroupFsBase implements CgroupFs {
  readonly files = new FakeKernfsFiles();

  abstract mkdir(path: string): Promise<void>;
  abstract rmdir(path: string): Promise<void>;
  abstract readFile(path: string): Promise<string>;
  abstract writeFile(path: string, data: string): Promise<void>;

  /** Each value through writeFile: the fake's rules apply to each write, as the kernel's. */
  async writeEach(path: string, values: string[]): Promise<void> {
    for (const value of values) {
      try {
        await this.writeFile(path, value);
      } catch (err) {
        throw Object.assign(err as Error, { cgroupValue: value });
      }
    }
  }

  exists(path: string): Promise<boolean> {
    return nodeCgroupFs.exists(path);
  }

  listDirectories(path: string): Promise<string[]> {
    return nodeCgroupFs.listDirectories(path);
  }

  openSync(path: string): number {
    return this.files.openSync(path);
  }

  preadSync(fd: number, buffer: Buffer): number {
    return this.files.preadSync(fd, buffer);
  }

  closeSync(fd: number): void {
    this.files.closeSync(fd);
  }
}

/**
 * CgroupDriver.setCpuIdle's contract on a fake kernel: the idle class and back, NOT_FOUND
 * once the cgroup is gone, UNSUPPORTED where cgroups have no cpu.idle (before Linux 5.15).
 */
export async function checkCpuIdle(
  driver: CgroupDriver,
  kernel: { cpuIdle: boolean },
  limits: CgroupLimits,
): Promise<void> {
  const read = async (path: string): Promise<string> => (await readFile(path, 'utf8')).trim();
  const handle = await driver.create('c1', limits);
  const cpu = handle.paths[0] ?? '';
  await driver.setCpuIdle(handle, true);
  assert.equal(await read(join(cpu, 'cpu.idle')), '1');
  await driver.setCpuIdle(handle, false);
  assert.equal(await read(join(cpu, 'cpu.idle')), '0');
  await driver.remove(handle);
  await assert.rejects(driver.setCpuIdle(handle, true), { code: 'NOT_FOUND' });
  kernel.cpuIdle = false;
  const old = await driver.create('c2', limits);
  await assert.rejects(driver.setCpuIdle(old, true), { code: 'UNSUPPORTED', message: /Linux 5\.15/ });
  await driver.remove(old);
}
