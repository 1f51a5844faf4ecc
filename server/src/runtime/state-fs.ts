/**
 * The state files' metadata calls (create, rename, mkdir, symlink, unlink, rm), made the
 * way the state root's filesystem makes cheap. On a memory filesystem (tmpfs, where /run
 * is on most hosts) a synchronous call costs about 10 µs, a tenth of a thread-pool round
 * trip, so they are made on the event loop. On a filesystem with a journal (ext4 under
 * /run, as on some hosts) each may wait for the journal: 150-500 µs, more
 * while a class creates containers at once, with the event loop standing still. There
 * they go to the thread pool (bench/PROFILE.md, "30 at once").
 *
 * Reads stay synchronous everywhere: they are served from the page cache.
 */
import {
  mkdirSync,
  renameSync,
  rmSync,
  statfsSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  type MakeDirectoryOptions,
  type RmOptions,
  type WriteFileOptions,
} from 'node:fs';
import { mkdir, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;

/** Whether path (or its nearest existing ancestor) is on a memory filesystem. */
export function onMemoryFilesystem(path: string): boolean {
  for (let at = path; ; at = dirname(at)) {
    try {
      const type = statfsSync(at).type;
      return type === TMPFS_MAGIC || type === RAMFS_MAGIC;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(at) === at) return true;
    }
  }
}

export class StateFs {
  readonly #root: string;
  #sync: boolean | null = null;

  constructor(root: string) {
    this.#root = root;
  }

  /** true: calls on the event loop (a memory filesystem); asked once. */
  get sync(): boolean {
    this.#sync ??= onMemoryFilesystem(this.#root);
    return this.#sync;
  }

  async writeFile(path: string, data: string, options: WriteFileOptions): Promise<void> {
    if (this.sync) writeFileSync(path, data, options);
    else await writeFile(path, data, options);
  }

  async rename(from: string, to: string): Promise<void> {
    if (this.sync) renameSync(from, to);
    else await rename(from, to);
  }

  async mkdir(path: string, options: MakeDirectoryOptions): Promise<void> {
    if (this.sync) mkdirSync(path, options);
    else await mkdir(path, options);
  }

  async symlink(target: string, path: string): Promise<void> {
    if (this.sync) symlinkSync(target, path);
    else await symlink(target, path);
  }

  async unlink(path: string): Promise<void> {
    if (this.sync) unlinkSync(path);
    else await unlink(path);
  }

  async rm(path: string, options: RmOptions): Promise<void> {
    if (this.sync) rmSync(path, options);
    else await rm(path, options);
  }
}
