/**
 * `mdocker cp`: Docker's copy between a container's files and the host's, or a tar on
 * stdin/stdout, with Docker's rules for where things land. The container's side goes
 * through files.ts (paths resolved inside its root); the host's side is plain fs, under a
 * destination the caller chose, with names that come from the container's directories.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  futimesSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MdockerError } from './errors.js';
import {
  ContainerDir,
  containerSink,
  copyTree,
  exactBytes,
  openContainerRoot,
  openEntry,
  packTar,
  unpackTar,
  walkTree,
  type ContainerRoot,
  type RunningContainer,
  type SkipReporter,
  type TreeEntry,
  type TreeSink,
} from './files.js';

/** One side of a copy: a container's path, a host path, or a tar on stdin/stdout ("-"). */
export type CopyEndpoint =
  { kind: 'container'; container: string; path: string } | { kind: 'host'; path: string } | { kind: 'stdio' };

export interface CopyIo {
  stdin: Readable;
  stdout: Writable;
  onSkip?: SkipReporter;
  /** a running container's init and cgroups by id or name; NOT_FOUND or CONFLICT otherwise */
  initOf(container: string): Promise<RunningContainer & { name: string }>;
}

/**
 * `mdocker cp` SRC DEST: the endpoints' kinds decide what is copied (see parseCopyArgs in
 * the CLI for which pairs are allowed).
 */
export async function copyFiles(src: CopyEndpoint, dest: CopyEndpoint, io: CopyIo): Promise<void> {
  const onSkip = io.onSkip ?? (() => undefined);
  if (src.kind === 'container') {
    const root = await openRoot(io, src.container);
    try {
      if (dest.kind === 'stdio') await pipeline(packTar(root, src.path, { onSkip }), io.stdout, { end: false });
      else if (dest.kind === 'host') await containerToHost(root, src.path, dest.path, onSkip);
      else throw new MdockerError('INVALID_ARGUMENT', 'copying between containers is not supported');
    } finally {
      root.close();
    }
    return;
  }
  if (dest.kind !== 'container') {
    throw new MdockerError('INVALID_ARGUMENT', 'one of SRC and DEST must be a container path (CONTAINER:PATH)');
  }
  const root = await openRoot(io, dest.container);
  try {
    if (src.kind === 'stdio') {
      const dir = ContainerDir.open(root, dest.path);
      try {
        await unpackTar(io.stdin, containerSink(dir), onSkip);
      } finally {
        dir.close();
      }
    } else {
      await hostToContainer(src.path, root, dest.path, onSkip);
    }
  } finally {
    root.close();
  }
}

async function openRoot(io: CopyIo, container: string): Promise<ContainerRoot> {
  const { name, ...running } = await io.initOf(container);
  return openContainerRoot(running, name);
}

/** "dir/." (Docker): the directory's contents, not the directory itself. */
function contentsOnly(path: string): boolean {
  return path === '.' || path.endsWith('/.');
}

function endsWithSlash(path: string): boolean {
  return path.endsWith('/');
}

/** What is at a host path (following a symlink, as Docker does for DEST), or null. */
function hostStat(path: string): Stats | null {
  try {
    return statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw hostError(err, path);
  }
}

function hostError(err: unknown, path: string): MdockerError {
  if (err instanceof MdockerError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return new MdockerError('NOT_FOUND', `no such file or directory: ${path}`);
  if (e.code === 'ENOTDIR') return new MdockerError('NOT_FOUND', `not a directory: a component of ${path}`);
  if (e.code === 'EEXIST') return new MdockerError('CONFLICT', `${path} exists`);
  return new MdockerError('SYSCALL', `${path}: ${e.message}`, {
    ...(e.syscall === undefined ? {} : { syscall: e.syscall }),
  });
}

/**
 * Where a copy of `srcName` (a file or a directory) lands, by Docker's rules: into DEST
 * when DEST is an existing directory (as DEST/NAME, or DEST itself for "SRC/."),
 * else DEST itself (its parent must exist; "DEST/" must be an existing directory).
 */
function landing(srcIsDir: boolean, srcPath: string, dest: string, destIsDir: boolean | null): string {
  const name = posix.basename(posix.normalize(`/${srcPath}`));
  if (destIsDir === true) return srcIsDir && contentsOnly(srcPath) ? dest : posix.join(dest, name || '.');
  if (destIsDir === false) {
    if (srcIsDir) throw new MdockerError('INVALID_ARGUMENT', `cannot copy a directory to a file: ${dest}`);
    if (endsWithSlash(dest)) throw new MdockerError('NOT_FOUND', `no such directory: ${dest}`);
    return dest;
  }
  if (endsWithSlash(dest) && !srcIsDir) throw new MdockerError('NOT_FOUND', `no such directory: ${dest}`);
  return dest;
}

async function containerToHost(
  root: ContainerRoot,
  srcPath: string,
  dest: string,
  onSkip: SkipReporter,
): Promise<void> {
  const top = openEntry(root, srcPath);
  closeSync(top.fd);
  const destStat = hostStat(dest);
  const target = landing(top.type === 'dir', srcPath, dest, destStat === null ? null : destStat.isDirectory());
  await copyTree(walkTree(root, srcPath, onSkip), hostSink(target));
}

async function hostToContainer(
  srcPath: string,
  root: ContainerRoot,
  dest: string,
  onSkip: SkipReporter,
): Promise<void> {
  let srcStat: Stats;
  try {
    srcStat = statSync(srcPath);
  } catch (err) {
    throw hostError(err, srcPath);
  }
  if (!srcStat.isDirectory() && !srcStat.isFile()) {
    throw new MdockerError('INVALID_ARGUMENT', `${srcPath} is neither a regular file nor a directory`);
  }
  let destIsDir: boolean | null;
  try {
    const entry = openEntry(root, dest);
    closeSync(entry.fd);
    destIsDir = entry.type === 'dir';
  } catch (err) {
    if (!(err instanceof MdockerError && err.code === 'NOT_FOUND')) throw err;
    destIsDir = null;
  }
  const target = landing(srcStat.isDirectory(), srcPath, dest, destIsDir);
  // The sink opens the target's parent (it must exist, as for Docker) and makes the target in it.
  const parentPath = posix.dirname(posix.normalize(`/${target}`));
  const name = posix.basename(posix.normalize(`/${target}`));
  const parent = ContainerDir.open(root, parentPath);
  try {
    await copyTree(walkHost(srcPath, onSkip), prefixed(containerSink(parent), name));
  } finally {
    parent.close();
  }
}

/** A sink whose entries go below `top` (the walk's own top is `top` itself). */
function prefixed(sink: TreeSink, top: string): TreeSink {
  const at = (rel: string) => (top === '' ? rel : rel === '' ? top : `${top}/${rel}`);
  return {
    mkdir: (rel, mode) => sink.mkdir(at(rel), mode),
    writeFile: (rel, content, opts) => sink.writeFile(at(rel), content, opts),
    symlink: (rel, target) => sink.symlink(at(rel), target),
    finish: () => sink.finish(),
  };
}

/**
 * The host's side: everything goes at or below `target`, whose parent must exist.
 * Directories found in place must be directories (never a symlink to follow); files are
 * opened O_NOFOLLOW, and written as the caller (the host user running mdocker).
 */
export function hostSink(target: string): TreeSink {
  const at = (rel: string) => (rel === '' ? target : posix.join(target, rel));
  const modes: { path: string; mode: number }[] = [];
  return {
    mkdir(rel, mode) {
      const path = at(rel);
      try {
        mkdirSync(path, 0o700);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw hostError(err, path);
        if (!lstatSync(path).isDirectory()) throw new MdockerError('CONFLICT', `${path} exists and is not a directory`);
      }
      modes.push({ path, mode });
    },
    async writeFile(rel, content, opts) {
      const path = at(rel);
      let fd: number;
      try {
        fd = openSync(
          path,
          constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
          opts.mode & 0o777,
        );
      } catch (err) {
        throw hostError(err, path);
      }
      try {
        for await (const chunk of content) {
          let offset = 0;
          while (offset < chunk.length) offset += writeSync(fd, chunk, offset);
        }
        fchmodSync(fd, opts.mode & 0o1777);
        futimesSync(fd, opts.mtimeMs / 1000, opts.mtimeMs / 1000);
      } finally {
        closeSync(fd);
      }
    },
    symlink(rel, linkTarget) {
      const path = at(rel);
      try {
        if (!lstatSync(path).isDirectory()) unlinkSync(path);
      } catch {
        // nothing there
      }
      try {
        symlinkSync(linkTarget, path);
      } catch (err) {
        throw hostError(err, path);
      }
    },
    async finish() {
      // Deepest first, so a read-only directory does not stop the mode of one below it.
      for (const { path, mode } of modes.reverse()) {
        try {
          const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
          try {
            fchmodSync(fd, mode & 0o1777);
          } finally {
            closeSync(fd);
          }
        } catch (err) {
          throw hostError(err, path);
        }
      }
    },
  };
}

/** A host tree as walkTree yields a container's (the top followed if a symlink, nothing below). */
export async function* walkHost(top: string, onSkip: SkipReporter = () => undefined): AsyncGenerator<TreeEntry> {
  const ids = (st: Stats) => ({ uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs });
  const file = (rel: string, path: string, st: Stats): TreeEntry => ({
    path: rel,
    type: 'file',
    size: st.size,
    ...ids(st),
    content: () => {
      const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      return exactBytes(fd, st.size);
    },
  });
  const first = statSync(top);
  if (first.isFile()) {
    yield file('', top, first);
    return;
  }
  yield { path: '', type: 'dir', size: 0, ...ids(first) };
  async function* below(dir: string, prefix: string): AsyncGenerator<TreeEntry> {
    for (const name of readdirSync(dir).sort()) {
      const path = posix.join(dir, name);
      const rel = prefix === '' ? name : `${prefix}/${name}`;
      let st: Stats;
      try {
        st = lstatSync(path);
      } catch {
        onSkip(rel, 'changed while read');
        continue;
      }
      if (st.isSymbolicLink()) yield { path: rel, type: 'symlink', size: 0, ...ids(st), target: readlinkSync(path) };
      else if (st.isFile()) yield file(rel, path, st);
      else if (st.isDirectory()) {
        yield { path: rel, type: 'dir', size: 0, ...ids(st) };
        yield* below(path, rel);
      } else onSkip(rel, 'not a regular file, directory or symlink');
    }
  }
  yield* below(top, '');
}
