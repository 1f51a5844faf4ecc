/** The raw addon native/build/Release/mdocker_native.node (native/src/addon/addon.cc). */
export interface MdockerNativeAddon {
  /** Sends signal to pid through a pidfd, only if the process there still has this
   * start time. true when sent, false when that process is gone. */
  signalProcess(pid: number, startTime: number, signal: number): boolean;
  /** Start time of pid in clock ticks since boot, or null when there is no such process. */
  startTime(pid: number): number | null;
  /** Starts file (args include argv[0]) on a new pty: a session leader without a
   * controlling terminal, stdio on the pty, cwd as given, env exactly env. Returns the
   * child's pid, the pty master (non-blocking, close-on-exec) and our copy of the slave
   * (to close after the child's last output is read); onExit runs once the child is
   * reaped: (exit code, 0) or (0, signal number). With execFd the program run is that
   * fd's content (fd 3 of the child), file only its argv[0]. */
  spawnPty(
    file: string,
    args: string[],
    env: string[],
    cwd: string,
    cols: number,
    rows: number,
    onExit: (code: number, signal: number) => void,
    execFd?: number,
  ): { pid: number; fd: number; slave: number };
  /** spawnPty, but posix_spawn runs on the addon's spawner thread (a vfork waits there,
   * not on the event loop): returns the master and our slave at once; onSpawned is called
   * on the event loop with the pid and its start time (read on that thread; null if it
   * could not be), or with the error and no child. The caller closes
   * fd and slave either way; onExit only follows a spawned child. */
  spawnPtyAsync(
    file: string,
    args: string[],
    env: string[],
    cwd: string,
    cols: number,
    rows: number,
    onExit: (code: number, signal: number) => void,
    onSpawned: (error: Error | null, pid: number | null, startTime: number | null) => void,
    execFd?: number,
  ): { fd: number; slave: number };
  /** A program on three pipes, started with posix_spawn on the spawner thread as
   * spawnPtyAsync's: stdin is the write end, stdout and stderr the read ends, all
   * non-blocking, returned at once; then onSpawned tells of the child (pid, start time) or
   * of the error (no child). The caller closes the three fds either way; onExit as
   * spawnPty's. */
  spawnPipedAsync(
    file: string,
    args: string[],
    env: string[],
    onExit: (code: number, signal: number) => void,
    onSpawned: (error: Error | null, pid: number | null, startTime: number | null) => void,
    execFd?: number,
  ): { stdin: number; stdout: number; stderr: number };
  /** A foreground child on this process's stdout and stderr (and stdin, unless stdinNull:
   * /dev/null), in /, no other fd, started with posix_spawn; onExit as spawnPty's. */
  spawnInherited(
    file: string,
    args: string[],
    env: string[],
    stdinNull: boolean,
    onExit: (code: number, signal: number) => void,
    execFd?: number,
  ): number;
  /** A sealed, close-on-exec memfd copy of the file (to run the launcher from). */
  sealedCopy(path: string): number;
  /** Sets the terminal size on a pty master (TIOCSWINSZ). */
  resizePty(fd: number, cols: number, rows: number): void;
  /** Calls onExit once pid (with this start time) has exited; false when it is gone already. */
  watchExit(pid: number, startTime: number, onExit: () => void): boolean;
  /** The hostname pid sees now (uname in its UTS namespace, from a short-lived thread of
   * our own), or null when the process with this start time is gone. */
  utsHostname(pid: number, startTime: number): string | null;
  /** The first maxBytes bytes of path resolved inside pid's root (openat2 RESOLVE_IN_ROOT |
   * RESOLVE_NO_MAGICLINKS: symlinks and .. never leave it); empty for anything but a regular
   * file; null when there is no such file or the process with this start time is gone. */
  readFileInRoot(pid: number, startTime: number, path: string, maxBytes: number): Buffer | null;
  /** pid's root directory as it sees it (O_PATH fd, ours to close) and the host ids of its
   * root (-1: unmapped), or null when the process with this start time is gone. */
  openRoot(pid: number, startTime: number): { fd: number; uid: number; gid: number } | null;
  /** path resolved with dirFd as the root (follow: RESOLVE_IN_ROOT, symlinks followed
   * inside) or one name in dirFd (not followed); its lstat/stat and, for a regular file or
   * a directory, an fd open for reading (else -1). Throws SystemErrors; EREMOTEIO for an
   * entry on a kernel filesystem (proc, sysfs, cgroup, ...), which is never opened. */
  openInRoot(dirFd: number, path: string, follow: boolean): NativeEntryStat & { fd: number };
  /** The entries of an open directory but . and .. (lstat'ed, symlinks with their target), at most maxEntries. */
  listDir(
    dirFd: number,
    maxEntries: number,
  ): { entries: (NativeEntryStat & { name: string; target?: string })[]; truncated: boolean };
  /** The calls below act with the filesystem ids uid:gid (the container root's host ids). */
  /** A new regular file named name in dirFd (O_EXCL, never through a symlink), open for writing. */
  createAt(dirFd: number, name: string, mode: number, uid: number, gid: number): number;
  /** A new directory; false when name exists already. */
  mkdirAt(dirFd: number, name: string, mode: number, uid: number, gid: number): boolean;
  symlinkAt(dirFd: number, name: string, target: string, uid: number, gid: number): void;
  /** renameat(2) within dirFd: `to` (a symlink itself, never its target) is replaced. */
  renameAt(dirFd: number, from: string, to: string, uid: number, gid: number): void;
  /** Removes a non-directory entry; false when there was none. */
  unlinkAt(dirFd: number, name: string, uid: number, gid: number): boolean;
  /** Connects to 127.0.0.1:port, else [::1]:port, inside pid's network namespace, on a
   * short-lived thread of our own (never the loop's or libuv's pool); false when the process
   * with this start time is gone, else done(null, fd) with a connected TCP socket
   * (non-blocking, close-on-exec, ours to close), done(null, null) when the process went
   * meanwhile, done(err) with ECONNREFUSED (nothing listens) or ETIMEDOUT (no answer in 1 s). */
  /** The TCP ports in LISTEN in pid's network namespace (v4 and v6, each once, ascending;
   * sock_diag, at most 16384 sockets read), or null when the process with this start time
   * is gone. */
  listeningTcpPorts(pid: number, startTime: number): number[] | null;
  connectInNetns(
    pid: number,
    startTime: number,
    port: number,
    done: (err: NodeJS.ErrnoException | null, fd: number | null) => void,
  ): boolean;
  /** Makes dir/name an overlayfs whiteout (character device 0/0); dir is opened O_NOFOLLOW. */
  overlayWhiteout(dir: string, name: string): void;
  /** Marks dir opaque for overlayfs (trusted.overlay.opaque and user.overlay.opaque "y"). */
  overlayOpaque(dir: string): void;
  /** Writes value (a vfs_cap_data, v2 or v3) as the open file's security.capability. */
  setFileCapability(fd: number, value: Buffer): void;
  /** The upper layer of the container whose run launcher is pid (pinned by its start
   * time), taken from the launcher with pidfd_getfd: a directory fd open for reading, ours
   * to close; null when that launcher is gone. Throws EBADF when the launcher keeps no
   * layer (a --rootfs; its root not built yet). */
  takeContainerLayer(launcherPid: number, startTime: number): number | null;
  /** listDir for a commit: each entry lstat'ed with its kind, owner (host ids), inode,
   * link count, device numbers, a symlink's target and its extended attributes. */
  listLayerDir(dirFd: number, maxEntries: number): { entries: NativeLayerEntry[]; truncated: boolean };
  /** Raises the soft RLIMIT_NOFILE to the hard limit; returns both. */
  raiseOpenFilesLimit(): { soft: number; hard: number };
  /** isatty(3) of an fd. */
  isTerminal(fd: number): boolean;
  /** execv(3) in this process (its pid, environment and inherited fds); throws on failure. */
  replaceProcess(path: string, argv: string[]): never;
}

/** What the addon's file calls tell of an entry (mode: permission bits; uid, gid: host ids). */
export interface NativeEntryStat {
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  mode: number;
  mtimeMs: number;
  uid: number;
  gid: number;
}

/** An entry of listLayerDir (mode: permission bits; uid, gid: host ids). */
export interface NativeLayerEntry {
  name: string;
  kind: 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  ino: number;
  nlink: number;
  rdevMajor: number;
  rdevMinor: number;
  target?: string;
  xattrs: Record<string, Buffer>;
}
