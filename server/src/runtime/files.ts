/**
 * Files of a running container at paths as the container sees them: read, listed, packed
 * as a tar, written, and unpacked from a tar, never on the host. Every path is resolved by
 * the kernel from an fd of the container's root (the native addon's openat2 with
 * RESOLVE_IN_ROOT: "..", absolute symlinks and symlinks swapped meanwhile all stay
 * inside), and every new entry is made by name in a directory fd, as the container's root
 * (its mapped host ids), then renamed into place. The HTTP routes and `mdocker cp` both
 * come here.
 *
 * Memory: what is written lands in the container's writable layer (a tmpfs under its
 * overlay) or another tmpfs of its own (/tmp), and the kernel charges its pages to the
 * memory cgroup of the task that writes them. The server (or the CLI) only makes the
 * temporary file and renames it; the bytes are written by mdocker-copier (copier.ts), a
 * static program of ours that joins the container's cgroups first, so an upload counts
 * against the container's memory limit as its own writes would: a full container fails
 * its upload (the OOM killer picks the copier) rather than filling the server's cgroup,
 * whose OOM would take every container down. `docker cp` charges dockerd instead; an exec
 * of the image's tar (kubectl cp) would run a program the student can replace. The cost
 * is one process per file written (a directory's files one after another).
 */
import { closeSync, fchmod, fchown, futimes, read } from 'node:fs';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { extract as tarExtract, pack as tarPack } from 'tar-stream';
import { writeInCgroups } from './copier.js';
import { MdockerError } from './errors.js';
import { fileCalls, type ProcessRef } from './native.js';
import type { NativeEntryStat } from './native-addon.js';
import { randomHex } from './random.js';

const readAsync = promisify(read);
const fchmodAsync = promisify(fchmod);
const fchownAsync = promisify(fchown);
const futimesAsync = promisify(futimes);

/** A directory listing stops here (the rest is left out, and said so). */
export const MAX_LIST_ENTRIES = 10_000;
/** A tree walk goes this deep at most (one fd open per level). */
const MAX_DEPTH = 128;
const CHUNK_BYTES = 64 * 1024;
const TEMP_PREFIX = '.mdocker-upload-';

export type EntryType = NativeEntryStat['type'];

/** One entry of a directory, as the wire protocol's FileEntryJson. */
export interface FileEntry {
  name: string;
  type: EntryType;
  size: number;
  /** permission bits (07777) */
  mode: number;
  /** ISO 8601 */
  mtime: string;
}

/** A running container as its files are reached: its init, and the cgroups its writes are charged to. */
export interface RunningContainer {
  init: ProcessRef | null;
  /** the container's cgroup directories (its record's: one per v1 hierarchy, one on v2) */
  cgroupPaths: readonly string[];
}

/** The container's root directory, open, the host ids of its root user, and its cgroups. */
export interface ContainerRoot {
  readonly fd: number;
  readonly uid: number;
  readonly gid: number;
  readonly cgroupPaths: readonly string[];
  close(): void;
}

/**
 * Opens the root of the container whose init is `container.init` (pinned by its start
 * time); a CONFLICT when that process is gone (the container is not running).
 */
export function openContainerRoot(container: RunningContainer, name: string): ContainerRoot {
  const { init } = container;
  const opened = init === null ? null : fileCalls().openRoot(init.pid, init.startTime);
  if (opened === null) throw new MdockerError('CONFLICT', `container ${name} is not running`);
  let open = true;
  return {
    ...opened,
    cgroupPaths: [...container.cgroupPaths],
    close: () => {
      if (open) closeSync(opened.fd);
      open = false;
    },
  };
}

/** Opens the container's root for the length of fn, and closes it after. */
export async function withContainerRoot<T>(
  container: RunningContainer,
  name: string,
  fn: (root: ContainerRoot) => Promise<T>,
): Promise<T> {
  const root = openContainerRoot(container, name);
  try {
    return await fn(root);
  } finally {
    root.close();
  }
}

/** A container path as given (relative ones start at its root); INVALID_ARGUMENT when unusable. */
export function checkContainerPath(path: unknown): string {
  if (typeof path !== 'string' || path === '') throw new MdockerError('INVALID_ARGUMENT', 'missing path');
  if (path.includes('\0')) throw new MdockerError('INVALID_ARGUMENT', 'invalid path: it holds a NUL byte');
  if (Buffer.byteLength(path) > 4096)
    throw new MdockerError('INVALID_ARGUMENT', 'invalid path: longer than 4096 bytes');
  return path;
}

/**
 * The directory and the name a write makes: the last component must be a name ("x/.."
 * or "dir/" names no file to write). The directory part is resolved by the kernel later.
 */
export function splitWritePath(path: string): { dir: string; name: string } {
  checkContainerPath(path);
  const slash = path.lastIndexOf('/');
  const name = path.slice(slash + 1);
  if (name === '' || name === '.' || name === '..') {
    throw new MdockerError('INVALID_ARGUMENT', `invalid path ${JSON.stringify(path)}: it must end with a file name`);
  }
  if (Buffer.byteLength(name) > 255)
    throw new MdockerError('INVALID_ARGUMENT', 'invalid path: a name is longer than 255 bytes');
  return { dir: slash < 0 ? '/' : path.slice(0, slash) || '/', name };
}

/** A native file call's SystemError in the house's terms, naming the container path. */
export function fileError(err: unknown, path: string): MdockerError {
  if (err instanceof MdockerError) return err;
  const e = err as NodeJS.ErrnoException;
  const where = JSON.stringify(path);
  switch (e.code) {
    case 'ENOENT':
      return new MdockerError('NOT_FOUND', `no such file or directory in the container: ${where}`);
    case 'ENOTDIR':
      return new MdockerError('NOT_FOUND', `not a directory in the container: a component of ${where}`);
    case 'ELOOP':
      return new MdockerError('INVALID_ARGUMENT', `too many levels of symbolic links: ${where}`);
    case 'ENAMETOOLONG':
      return new MdockerError('INVALID_ARGUMENT', `file name too long: ${where}`);
    case 'EISDIR':
      return new MdockerError('CONFLICT', `${where} is a directory`);
    case 'ENOTEMPTY':
    case 'EEXIST':
      return new MdockerError('CONFLICT', `${where} exists`);
    case 'EBUSY':
      return new MdockerError('CONFLICT', `${where} is a mount point`);
    case 'EREMOTEIO':
      return new MdockerError(
        'FORBIDDEN',
        `${where} is on a kernel filesystem (proc, sysfs, cgroup, ...): read it inside the container`,
      );
    case 'EACCES':
    case 'EPERM':
      return new MdockerError('FORBIDDEN', `permission denied: ${where}`);
    case 'EROFS':
      return new MdockerError('FORBIDDEN', `${where} is on a read-only filesystem`);
    case 'ENOMEM':
      return new MdockerError('LIMIT_EXCEEDED', `${where} does not fit in the container's memory limit`, {
        cap: 'memoryBytes',
      });
    case 'ENOSPC':
    case 'EDQUOT':
      return new MdockerError(
        'LIMIT_EXCEEDED',
        `no space left in the container for ${where} (its writable layer is full)`,
      );
    case 'EXDEV':
      return new MdockerError('INVALID_ARGUMENT', `${where} leaves its directory`);
    default:
      return new MdockerError('SYSCALL', `${e.syscall ?? 'file'} ${where}: ${e.message}`, {
        ...(typeof e.errno === 'number' ? { errno: Math.abs(e.errno) } : {}),
        ...(e.syscall === undefined ? {} : { syscall: e.syscall }),
      });
  }
}

function toEntry(name: string, stat: NativeEntryStat): FileEntry {
  return {
    name,
    type: stat.type,
    size: stat.size,
    mode: stat.mode,
    mtime: new Date(stat.mtimeMs).toISOString(),
  };
}

/** An entry opened for reading: a regular file or a directory (fd ours to close). */
export interface OpenedEntry extends NativeEntryStat {
  type: 'file' | 'dir';
  fd: number;
  name: string;
}

/** Opens path (symlinks followed inside the root) for reading; INVALID_ARGUMENT for anything but a file or a directory. */
export function openEntry(root: ContainerRoot, path: string): OpenedEntry {
  checkContainerPath(path);
  let opened: NativeEntryStat & { fd: number };
  try {
    opened = fileCalls().openInRoot(root.fd, path, true);
  } catch (err) {
    throw fileError(err, path);
  }
  if (opened.type !== 'file' && opened.type !== 'dir') {
    if (opened.fd >= 0) closeSync(opened.fd);
    throw new MdockerError('INVALID_ARGUMENT', `${JSON.stringify(path)} is neither a regular file nor a directory`);
  }
  return { ...opened, type: opened.type, name: posix.basename(posix.normalize(`/${path}`)) };
}

/** A directory's entries, sorted by name (a symlink is itself: type 'symlink'). */
export function listDirectory(
  root: ContainerRoot,
  path: string,
  maxEntries = MAX_LIST_ENTRIES,
): { entries: FileEntry[]; truncated: boolean } {
  const dir = openEntry(root, path);
  try {
    if (dir.type !== 'dir') throw new MdockerError('INVALID_ARGUMENT', `${JSON.stringify(path)} is not a directory`);
    const listed = fileCalls().listDir(dir.fd, maxEntries);
    const entries = listed.entries.map((entry) => toEntry(entry.name, entry));
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { entries, truncated: listed.truncated };
  } catch (err) {
    throw fileError(err, path);
  } finally {
    closeSync(dir.fd);
  }
}

/**
 * Exactly `size` bytes of an open file from offset 0, then closes it: a file that grows
 * while it is read stops at the size it had when opened (one that grows forever ends
 * too), one that shrinks is padded with zeros (a tar header or a Content-Length already
 * promised the size). Pulled chunk by chunk: a slow reader holds the next read back.
 */
export async function* exactBytes(fd: number, size: number): AsyncGenerator<Buffer> {
  try {
    let position = 0;
    while (position < size) {
      const want = Math.min(CHUNK_BYTES, size - position);
      const buffer = Buffer.allocUnsafe(want);
      const { bytesRead } = await readAsync(fd, buffer, 0, want, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
    while (position < size) {
      const pad = Math.min(CHUNK_BYTES, size - position);
      position += pad;
      yield Buffer.alloc(pad);
    }
  } finally {
    closeSync(fd);
  }
}

async function* noBytes(): AsyncGenerator<Buffer> {}

/** One entry of a tree walk: its path below the walk's top ('' is the top itself). */
export interface TreeEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  mtimeMs: number;
  size: number;
  /** the container's ids (its root is 0) */
  uid: number;
  gid: number;
  /** a symlink's target, as written */
  target?: string;
  /** a file's bytes (exactBytes); read before asking for the next entry */
  content?: () => AsyncIterable<Buffer>;
}

/** What a walk could not take along: devices, FIFOs, sockets, entries on kernel filesystems. */
export type SkipReporter = (path: string, why: string) => void;

function containerId(hostId: number, rootId: number): number {
  return hostId >= rootId && rootId >= 0 ? hostId - rootId : 0;
}

/**
 * The tree at path, depth first, parents before children, names sorted. The top is
 * followed if a symlink (inside the root); below it every entry is opened by name in its
 * parent's fd with no symlink followed, so an entry swapped meanwhile is skipped, never
 * followed. Directories on kernel filesystems (/proc, /sys) are skipped.
 */
export async function* walkTree(
  root: ContainerRoot,
  path: string,
  onSkip: SkipReporter = () => undefined,
): AsyncGenerator<TreeEntry> {
  const calls = fileCalls();
  const top = openEntry(root, path);
  const ids = (stat: NativeEntryStat) => ({
    uid: containerId(stat.uid, root.uid),
    gid: containerId(stat.gid, root.gid),
  });
  if (top.type === 'file') {
    yield {
      path: '',
      type: 'file',
      mode: top.mode,
      mtimeMs: top.mtimeMs,
      size: top.size,
      ...ids(top),
      content: () => exactBytes(top.fd, top.size),
    };
    return;
  }
  async function* below(dirFd: number, prefix: string, depth: number): AsyncGenerator<TreeEntry> {
    const listed = calls.listDir(dirFd, MAX_LIST_ENTRIES);
    if (listed.truncated) onSkip(prefix || '.', `more than ${MAX_LIST_ENTRIES} entries: the rest left out`);
    const entries = listed.entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      if (entry.type === 'symlink' && entry.target !== undefined) {
        yield {
          path: rel,
          type: 'symlink',
          mode: 0o777,
          mtimeMs: entry.mtimeMs,
          size: 0,
          target: entry.target,
          ...ids(entry),
        };
        continue;
      }
      if (entry.type !== 'file' && entry.type !== 'dir') {
        onSkip(rel, 'not a regular file, directory or symlink');
        continue;
      }
      let opened: NativeEntryStat & { fd: number };
      try {
        opened = calls.openInRoot(dirFd, entry.name, false);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        onSkip(rel, code === 'EREMOTEIO' ? 'on a kernel filesystem' : `changed while read (${String(code)})`);
        continue;
      }
      if (opened.type === 'file') {
        const { fd, size } = opened;
        let consumed = false;
        try {
          yield {
            path: rel,
            type: 'file',
            mode: opened.mode,
            mtimeMs: opened.mtimeMs,
            size,
            ...ids(opened),
            content: () => {
              consumed = true;
              return exactBytes(fd, size);
            },
          };
        } finally {
          if (!consumed) closeSync(fd);
        }
      } else if (opened.type === 'dir') {
        try {
          yield { path: rel, type: 'dir', mode: opened.mode, mtimeMs: opened.mtimeMs, size: 0, ...ids(opened) };
          if (depth + 1 >= MAX_DEPTH) onSkip(rel, `deeper than ${MAX_DEPTH} levels: its entries left out`);
          else yield* below(opened.fd, rel, depth + 1);
        } finally {
          closeSync(opened.fd);
        }
      } else {
        if (opened.fd >= 0) closeSync(opened.fd);
        onSkip(rel, 'changed while read');
      }
    }
  }
  try {
    yield { path: '', type: 'dir', mode: top.mode, mtimeMs: top.mtimeMs, size: 0, ...ids(top) };
    yield* below(top.fd, '', 0);
  } finally {
    closeSync(top.fd);
  }
}

/** Resolves once the entry is writable again; rejects if it or the whole tar closes first. */
function drained(entry: NodeJS.EventEmitter, pack: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: unknown) => {
      entry.off('drain', onDrain);
      entry.off('close', onClose);
      pack.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new MdockerError('INTERNAL', 'the tar stream closed'));
    entry.on('drain', onDrain);
    entry.on('close', onClose);
    pack.on('close', onClose);
  });
}

/**
 * A tar (ustar, as Docker's `cp` writes) of the tree at path, its entries named below
 * the top's own name (`etc/passwd` for /etc): any walk's entries, streamed with
 * backpressure. Past maxBytes of file data the stream fails with LIMIT_EXCEEDED.
 */
export function packTar(
  root: ContainerRoot,
  path: string,
  opts: { maxBytes?: number; onSkip?: SkipReporter } = {},
): Readable {
  const pack = tarPack();
  const top = posix.basename(posix.normalize(`/${path}`));
  const maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY;
  const walk = walkTree(root, path, opts.onSkip);
  let total = 0;
  const closed = new Promise<never>((_resolve, reject) =>
    pack.once('close', () => reject(new MdockerError('INTERNAL', 'the tar stream closed'))),
  );
  closed.catch(() => undefined);
  void (async () => {
    try {
      for await (const entry of walk) {
        if (pack.destroyed) break;
        const name = entry.path === '' ? top || '.' : top === '' ? entry.path : `${top}/${entry.path}`;
        const header = {
          name,
          mode: entry.mode,
          mtime: new Date(entry.mtimeMs),
          uid: entry.uid,
          gid: entry.gid,
        };
        if (entry.type === 'dir') {
          pack.entry({ ...header, type: 'directory' });
        } else if (entry.type === 'symlink') {
          pack.entry({ ...header, type: 'symlink', linkname: entry.target ?? '' });
        } else {
          total += entry.size;
          if (total > maxBytes) {
            throw new MdockerError('LIMIT_EXCEEDED', `more than ${maxBytes} bytes to download (this server's cap)`, {
              cap: 'downloadBytes',
              limit: maxBytes,
            });
          }
          const done = new Promise<void>((resolve, reject) => {
            const sink = pack.entry({ ...header, type: 'file', size: entry.size }, (err) =>
              err ? reject(err) : resolve(),
            );
            // Its failure reaches us through the callback; the tar's own 'error' is its reader's.
            sink.on('error', () => undefined);
            void (async () => {
              try {
                for await (const chunk of entry.content?.() ?? noBytes()) {
                  if (!sink.write(chunk)) await drained(sink, pack);
                }
                sink.end(undefined);
              } catch (err) {
                sink.destroy(err as Error);
                reject(err instanceof Error ? err : new Error(String(err)));
              }
            })();
          });
          // A tar closed meanwhile (the client went away) never calls the entry back.
          await Promise.race([done, closed]);
        }
      }
      if (!pack.destroyed) pack.finalize();
    } catch (err) {
      await walk.return(undefined).catch(() => undefined);
      if (!pack.destroyed) pack.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  })();
  return pack as unknown as Readable;
}

/** Where a write or an unpack puts things: a directory of the container, open. */
export class ContainerDir {
  private readonly dirs = new Map<string, number>();
  private readonly pendingModes: { fd: number; mode: number }[] = [];

  private constructor(
    private readonly root: ContainerRoot,
    private readonly path: string,
    fd: number,
  ) {
    this.dirs.set('', fd);
  }

  /** Opens the directory at path (symlinks followed inside the root); NOT_FOUND or INVALID_ARGUMENT otherwise. */
  static open(root: ContainerRoot, path: string): ContainerDir {
    const dir = openEntry(root, path);
    if (dir.type !== 'dir') {
      closeSync(dir.fd);
      throw new MdockerError('INVALID_ARGUMENT', `${JSON.stringify(path)} is not a directory`);
    }
    return new ContainerDir(root, path, dir.fd);
  }

  close(): void {
    for (const fd of this.dirs.values()) closeSync(fd);
    this.dirs.clear();
  }

  private where(rel: string): string {
    return posix.join(this.path, rel);
  }

  /** The fd of the directory rel (below this one), made (0755) where missing. */
  private dirFd(rel: string): number {
    const known = this.dirs.get(rel);
    if (known !== undefined) return known;
    const parent = this.dirFd(posix.dirname(rel) === '.' ? '' : posix.dirname(rel));
    const name = posix.basename(rel);
    const calls = fileCalls();
    try {
      calls.mkdirAt(parent, name, 0o755, this.root.uid, this.root.gid);
      const opened = calls.openInRoot(parent, name, false);
      if (opened.type !== 'dir') {
        if (opened.fd >= 0) closeSync(opened.fd);
        throw new MdockerError('CONFLICT', `${JSON.stringify(this.where(rel))} exists and is not a directory`);
      }
      this.dirs.set(rel, opened.fd);
      return opened.fd;
    } catch (err) {
      throw fileError(err, this.where(rel));
    }
  }

  private split(rel: string): { parent: number; name: string } {
    const dir = posix.dirname(rel);
    return { parent: this.dirFd(dir === '.' ? '' : dir), name: posix.basename(rel) };
  }

  /** A directory at rel (kept if one is there); mode applies to a new one. */
  mkdir(rel: string, mode: number): void {
    if (rel === '') return;
    // Its own mode comes last (finish): a 0555 directory would refuse what goes below it.
    this.pendingModes.push({ fd: this.dirFd(rel), mode });
  }

  /** Gives the directories made by mkdir their own modes (after what went into them). */
  async finish(): Promise<void> {
    for (const { fd, mode } of this.pendingModes.splice(0)) await fchmodAsync(fd, mode & 0o1777);
  }

  /** A symlink at rel, replacing a file or symlink there. */
  symlink(rel: string, target: string): void {
    const { parent, name } = this.split(rel);
    const calls = fileCalls();
    const temp = tempName();
    try {
      calls.symlinkAt(parent, temp, target, this.root.uid, this.root.gid);
      calls.renameAt(parent, temp, name, this.root.uid, this.root.gid);
    } catch (err) {
      try {
        calls.unlinkAt(parent, temp, this.root.uid, this.root.gid);
      } catch {
        // the temporary link was never made
      }
      throw fileError(err, this.where(rel));
    }
  }

  /**
   * A regular file at rel with the bytes of content, owned by the container's root:
   * made under a temporary name in the same directory, filled by the copier from inside
   * the container's cgroups (see the top of this file), then renamed over rel (a file or
   * a symlink there is replaced, never followed). Past maxBytes it stops with TOO_LARGE;
   * on any failure the temporary file is removed and rel left as it was.
   * mode: the new file's (default: the replaced regular file's, else 0644).
   */
  async writeFile(
    rel: string,
    content: AsyncIterable<Buffer | string>,
    opts: { maxBytes?: number; mode?: number; mtimeMs?: number; capName?: string } = {},
  ): Promise<{ entry: FileEntry; created: boolean }> {
    const { parent, name } = this.split(rel);
    const where = this.where(rel);
    const calls = fileCalls();
    const existing = existingFile(parent, name);
    const mode = (opts.mode ?? existing?.mode ?? 0o644) & 0o1777;
    const maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY;
    const temp = tempName();
    let fd: number;
    try {
      fd = calls.createAt(parent, temp, 0o600, this.root.uid, this.root.gid);
    } catch (err) {
      throw fileError(err, where);
    }
    let size = 0;
    // Counted here too (the copier stops at the same cap): the cap's error names the option.
    async function* capped(): AsyncGenerator<Buffer> {
      for await (const piece of content) {
        const chunk = typeof piece === 'string' ? Buffer.from(piece) : piece;
        size += chunk.length;
        if (size > maxBytes) {
          throw new MdockerError(
            'TOO_LARGE',
            `larger than the upload cap of ${maxBytes} bytes (${opts.capName ?? 'maxBytes'})`,
            {
              cap: 'uploadBytes',
              limit: maxBytes,
            },
          );
        }
        yield chunk;
      }
    }
    try {
      await writeInCgroups(fd, this.root.cgroupPaths, capped(), maxBytes);
      await fchmodAsync(fd, mode);
      if (opts.mtimeMs !== undefined) await futimesAsync(fd, opts.mtimeMs / 1000, opts.mtimeMs / 1000);
      // Created with the container root's ids already (createAt); said again for a
      // root whose ids the kernel gave differently (a setgid directory's group).
      await fchownAsync(fd, this.root.uid, this.root.gid);
      calls.renameAt(parent, temp, name, this.root.uid, this.root.gid);
    } catch (err) {
      closeSync(fd);
      try {
        calls.unlinkAt(parent, temp, this.root.uid, this.root.gid);
      } catch {
        // gone already: what we wanted
      }
      throw fileError(err, where);
    }
    closeSync(fd);
    return {
      entry: { name, type: 'file', size, mode, mtime: new Date(opts.mtimeMs ?? Date.now()).toISOString() },
      created: existing === null,
    };
  }
}

function tempName(): string {
  return `${TEMP_PREFIX}${randomHex(8)}`;
}

/** The regular file named name in dirFd (not through a symlink), or null. */
function existingFile(dirFd: number, name: string): NativeEntryStat | null {
  try {
    const opened = fileCalls().openInRoot(dirFd, name, false);
    if (opened.fd >= 0) closeSync(opened.fd);
    return opened.type === 'file' ? opened : null;
  } catch {
    return null;
  }
}

/** Writes one file at path in the container (see ContainerDir.writeFile). */
export async function writeContainerFile(
  root: ContainerRoot,
  path: string,
  content: AsyncIterable<Buffer | string>,
  opts: { maxBytes?: number; capName?: string } = {},
): Promise<{ entry: FileEntry; created: boolean }> {
  const { dir, name } = splitWritePath(path);
  const target = ContainerDir.open(root, dir);
  try {
    return await target.writeFile(name, content, opts);
  } finally {
    target.close();
  }
}

/**
 * The path of a tar entry below the destination: "." and empty components dropped, a
 * leading "/" taken as relative (as GNU tar does); a ".." is refused.
 */
export function tarEntryPath(name: string): string {
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..')
      throw new MdockerError('INVALID_ARGUMENT', `tar entry ${JSON.stringify(name)} leaves the destination`);
    parts.push(part);
  }
  return parts.join('/');
}

/** Where a tree is copied to: a container directory (ContainerDir) or a host one (copy.ts). */
export interface TreeSink {
  mkdir(rel: string, mode: number): void | Promise<void>;
  writeFile(rel: string, content: AsyncIterable<Buffer>, opts: { mode: number; mtimeMs: number }): Promise<unknown>;
  symlink(rel: string, target: string): void | Promise<void>;
  finish(): Promise<void>;
}

/**
 * Unpacks a tar (as `docker cp -` takes) into sink: directories, regular files and
 * symlinks; hard links, devices and FIFOs are skipped and reported.
 */
export async function unpackTar(
  source: Readable,
  sink: TreeSink,
  onSkip: SkipReporter = () => undefined,
): Promise<void> {
  const extract = tarExtract();
  source.on('error', (err) => extract.destroy(err));
  source.pipe(extract as unknown as NodeJS.WritableStream);
  for await (const entry of extract) {
    const header = entry.header;
    const rel = tarEntryPath(header.name);
    const mode = header.mode ?? 0o644;
    const mtimeMs = (header.mtime ?? new Date()).getTime();
    if (header.type === 'file' || header.type === 'contiguous-file') {
      if (rel === '')
        throw new MdockerError('INVALID_ARGUMENT', `tar entry ${JSON.stringify(header.name)} names no file`);
      await sink.writeFile(rel, entry as AsyncIterable<Buffer>, { mode, mtimeMs });
      continue;
    }
    if (header.type === 'directory') await sink.mkdir(rel, mode);
    else if (header.type === 'symlink' && rel !== '') await sink.symlink(rel, header.linkname ?? '');
    else onSkip(header.name, `a ${header.type ?? 'special'} entry: skipped`);
    entry.resume();
  }
  await sink.finish();
}

/** Copies a walk's entries into sink (their paths below sink's top). */
export async function copyTree(entries: AsyncIterable<TreeEntry>, sink: TreeSink): Promise<void> {
  for await (const entry of entries) {
    if (entry.type === 'dir') await sink.mkdir(entry.path, entry.mode);
    else if (entry.type === 'symlink') await sink.symlink(entry.path, entry.target ?? '');
    else await sink.writeFile(entry.path, entry.content?.() ?? noBytes(), { mode: entry.mode, mtimeMs: entry.mtimeMs });
  }
  await sink.finish();
}

/** ContainerDir as a TreeSink. */
export function containerSink(dir: ContainerDir): TreeSink {
  return {
    mkdir: (rel, mode) => dir.mkdir(rel, mode),
    writeFile: (rel, content, opts) => dir.writeFile(rel, content, opts),
    symlink: (rel, target) => dir.symlink(rel, target),
    finish: () => dir.finish(),
  };
}
