/**
 * The one place that loads the native addon and names the launcher's path (as
 * node-pty loads its pty.node in one module). Everything else imports from here.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as osConstants } from 'node:os';
import { MdockerError } from './errors.js';
import type { MdockerNativeAddon } from './native-addon.js';

// server/dist/src/runtime/native.js → the repository root is four levels up.
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const releaseDir = resolve(repoRoot, 'native/build/Release');

export const launcherPath = process.env.MDOCKER_INIT ?? resolve(releaseDir, 'mdocker-init');
/** The nftables rules of networks with egress (native/src/nft). */
export const nftPath = resolve(releaseDir, 'mdocker-nft');
/** Writes an upload's bytes from inside the container's cgroups (native/src/copier). */
export const copierPath = resolve(releaseDir, 'mdocker-copier');

let addon: MdockerNativeAddon | undefined;

function load(): MdockerNativeAddon {
  if (addon) return addon;
  const path = resolve(releaseDir, 'mdocker_native.node');
  if (!existsSync(path)) {
    throw new MdockerError('UNSUPPORTED', `native addon missing at ${path}: run npm install (it builds native/)`);
  }
  addon = createRequire(import.meta.url)(path) as MdockerNativeAddon;
  return addon;
}

export function assertLauncherBuilt(): void {
  if (!existsSync(launcherPath)) {
    throw new MdockerError('UNSUPPORTED', `launcher missing at ${launcherPath}: run npm install (it builds native/)`);
  }
}

/** A process named by pid and start time: a pid alone can be reused. */
export interface ProcessRef {
  pid: number;
  startTime: number;
}

export function processStartTime(pid: number): number | null {
  return load().startTime(pid);
}

export function refOf(pid: number): ProcessRef | null {
  const startTime = processStartTime(pid);
  return startTime === null ? null : { pid, startTime };
}

let self: ProcessRef | null = null;

/** This process's own ref: asked once (reading a busy server's /proc/PID/stat can take a
 * millisecond). */
export function selfRef(): ProcessRef | null {
  self ??= refOf(process.pid);
  return self;
}

export function isAlive(ref: ProcessRef | null): boolean {
  return ref !== null && processStartTime(ref.pid) === ref.startTime;
}

export function signalNumber(signal: NodeJS.Signals | number): number {
  if (typeof signal === 'number') return signal;
  const n = (osConstants.signals as Record<string, number | undefined>)[signal];
  if (n === undefined) throw new MdockerError('INVALID_ARGUMENT', `unknown signal ${signal}`);
  return n;
}

/** Signals the process if it is still the one we started; false when it is gone. */
export function signalProcess(ref: ProcessRef, signal: NodeJS.Signals | number): boolean {
  return load().signalProcess(ref.pid, ref.startTime, signalNumber(signal));
}

/**
 * Resolves when the process has exited (at once when it is gone already) or after
 * timeoutMs, with whether it is gone. Waits on a pidfd: no polling.
 */
export function exited(ref: ProcessRef, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | null = null;
    const watching = load().watchExit(ref.pid, ref.startTime, () => {
      if (timer) clearTimeout(timer);
      resolve(true);
    });
    if (!watching) resolve(true);
    else timer = setTimeout(() => resolve(!isAlive(ref)), timeoutMs);
  });
}

/** The hostname a process sees now (its UTS namespace's), or null when it is gone. */
export function utsHostname(ref: ProcessRef): string | null {
  return load().utsHostname(ref.pid, ref.startTime);
}

/**
 * A file of a process's root, read as that process would resolve it (symlinks and ..
 * stay inside the root): its first maxBytes bytes, empty for a directory or any other
 * non-regular file, null when missing or when the process is gone.
 */
export function readFileInRoot(ref: ProcessRef, path: string, maxBytes: number): Buffer | null {
  return load().readFileInRoot(ref.pid, ref.startTime, path, maxBytes);
}

/**
 * The TCP ports listening in the process's network namespace (a container's init), IPv4
 * and IPv6, each once, ascending; null when the process is gone. The addon asks the
 * kernel's sock_diag for LISTEN sockets only, from a socket made in that namespace.
 */
export function listeningTcpPorts(ref: ProcessRef): number[] | null {
  return load().listeningTcpPorts(ref.pid, ref.startTime);
}

/**
 * A connected TCP socket fd to the port on the loopback of the process's network
 * namespace (the container's), or null when the process is gone. Rejects with the
 * errno's error (code ECONNREFUSED: nothing listens there; ETIMEDOUT: the listener's
 * backlog is full). Wrap it with `new net.Socket({ fd })`.
 */
export function connectInNetns(ref: ProcessRef, port: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const started = load().connectInNetns(ref.pid, ref.startTime, port, (err, fd) => {
      if (err) reject(err);
      else resolve(fd);
    });
    if (!started) resolve(null);
  });
}

/** The overlayfs marks of an unpacked image layer (the addon's; Node has no mknod or setxattr). */
export function overlayWhiteout(dir: string, name: string): void {
  load().overlayWhiteout(dir, name);
}

export function overlayOpaque(dir: string): void {
  load().overlayOpaque(dir);
}

/** A file capability of an unpacked layer's file, on its open fd (after chown, which clears it). */
export function setFileCapability(fd: number, value: Buffer): void {
  load().setFileCapability(fd, value);
}

/** The soft limit on open files raised to the hard one (see the addon); both returned. */
export function raiseOpenFilesLimit(): { soft: number; hard: number } {
  return load().raiseOpenFilesLimit();
}

/** isatty(3): node:tty's isatty without loading node:tty (and net, and the streams). */
export function isTerminal(fd: number): boolean {
  return load().isTerminal(fd);
}

/** Replaces this process with `path` run as `argv` (execv(3)): same pid, same environment. */
export function replaceProcess(path: string, argv: string[]): never {
  return load().replaceProcess(path, argv);
}

let launcherCopy: number | undefined;

/**
 * One sealed memfd copy of the launcher for this process (made on first use), to start
 * every launcher from: the launcher then skips making its own copy (CVE-2019-5736), which
 * costs each start a copy of its binary in time and in memory (bench/PROFILE.md).
 */
export function launcherExecFd(): number {
  launcherCopy ??= load().sealedCopy(launcherPath);
  return launcherCopy;
}

/** The addon's pty calls, for pty.ts. */
export function ptyCalls(): Pick<MdockerNativeAddon, 'spawnPty' | 'spawnPtyAsync' | 'resizePty'> {
  const native = load();
  return { spawnPty: native.spawnPty, spawnPtyAsync: native.spawnPtyAsync, resizePty: native.resizePty };
}

/** The addon's spawnInherited, for process.ts. */
export function spawnInherited(
  ...args: Parameters<MdockerNativeAddon['spawnInherited']>
): ReturnType<MdockerNativeAddon['spawnInherited']> {
  return load().spawnInherited(...args);
}

/** The addon's spawnPipedAsync, for helper.ts and process.ts. */
export function spawnPipedAsync(
  ...args: Parameters<MdockerNativeAddon['spawnPipedAsync']>
): ReturnType<MdockerNativeAddon['spawnPipedAsync']> {
  return load().spawnPipedAsync(...args);
}

/** The addon's calls on a container's files, for files.ts. */
export function fileCalls(): Pick<
  MdockerNativeAddon,
  'openRoot' | 'openInRoot' | 'listDir' | 'createAt' | 'mkdirAt' | 'symlinkAt' | 'renameAt' | 'unlinkAt'
> {
  const native = load();
  return {
    openRoot: native.openRoot,
    openInRoot: native.openInRoot,
    listDir: native.listDir,
    createAt: native.createAt,
    mkdirAt: native.mkdirAt,
    symlinkAt: native.symlinkAt,
    renameAt: native.renameAt,
    unlinkAt: native.unlinkAt,
  };
}

/** The addon's calls on a container's upper layer, for images/commit.ts. */
export function layerFileCalls(): Pick<MdockerNativeAddon, 'takeContainerLayer' | 'listLayerDir' | 'openInRoot'> {
  const native = load();
  return {
    takeContainerLayer: native.takeContainerLayer,
    listLayerDir: native.listLayerDir,
    openInRoot: native.openInRoot,
  };
}
