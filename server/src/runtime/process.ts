/**
 * The one module that starts the launcher, for every purpose: a container's init or an
 * exec, on a new pty, on pipes, or detached (its output then goes to the launcher's
 * size-capped log, launcher.ts's outputLog). It hands back
 * one handle: the pid, the exit as Docker reports it, the pty or the pipes, and signals.
 *
 * Every pty is the native addon's (pty.ts), for the CLI and the server alike: it starts
 * the launcher with posix_spawn(3), whose cost does not grow with the caller's memory as
 * node-pty's forkpty(3) does, and it keeps the last KiB of output that node-pty can lose
 * (README, "Terminals").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import type { Readable } from 'node:stream';
import type { LaunchCommand } from './launcher.js';
import { launcherExecFd, launcherPath, spawnInherited, spawnPipedAsync } from './native.js';
import { startPty, type PtyProcess } from './pty.js';
import { SpawningChild } from './spawning-child.js';

export type Stdio =
  /** A new terminal of this size (the container's TERM is the launcher's to set). */
  | { kind: 'pty'; cols: number; rows: number }
  /** stdin from this process's or none; output to this process's own, or piped for the caller to read. */
  | { kind: 'pipes'; stdin: 'inherit' | 'ignore'; output: 'inherit' | 'pipe' }
  /** In its own session, outliving the caller, no stdio of the caller's. */
  | { kind: 'detached' };

export interface LaunchedProcess {
  /** The launcher's pid; -1 until it is spawned (a pty's is spawned off the event loop). */
  readonly pid: number;
  /** Settles once the launcher is spawned: its pid, or the spawn's error (exit is then 125). */
  readonly spawned: Promise<number>;
  /** The launcher's start time once spawned, when the spawn read it (a pty's); else null. */
  readonly startTime: number | null;
  /** The launcher's exit as Docker reports it: its status, or 128+N after signal N. */
  readonly exit: Promise<number>;
  /** The terminal, for a pty. */
  readonly pty: PtyProcess | null;
  /** The output, for pipes with output 'pipe'. */
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Signals the launcher (it forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1/2, SIGWINCH). */
  signal(signal: NodeJS.Signals): void;
  /** Lets this process exit while a detached launcher goes on. */
  unref(): void;
}

/** The launcher's environment: nothing of the caller's reaches a container. */
const LAUNCHER_PATH_ENV = '/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's convention for a process's end: the exit status, or 128+N when signal N killed it. */
export function dockerExitCode(code: number | null, signal: NodeJS.Signals | number | null | undefined): number {
  if (code !== null && (signal === null || signal === undefined || signal === 0)) return code;
  if (typeof signal === 'number') return 128 + signal;
  if (typeof signal === 'string')
    return 128 + ((osConstants.signals as Record<string, number | undefined>)[signal] ?? 0);
  return 125;
}

function launchOnPty(command: LaunchCommand, stdio: Extract<Stdio, { kind: 'pty' }>): LaunchedProcess {
  // The launcher runs from this process's one sealed copy of it (native.ts).
  const execFd = command.file === launcherPath ? launcherExecFd() : undefined;
  const pty = startPty(command.file, command.args, {
    cols: stdio.cols,
    rows: stdio.rows,
    cwd: '/',
    env: { PATH: LAUNCHER_PATH_ENV },
    ...(execFd === undefined ? {} : { execFd }),
  });
  const exit = new Promise<number>((resolve) => {
    pty.onExit(({ exitCode, signal }) => resolve(dockerExitCode(exitCode, signal ?? null)));
  });
  return {
    get pid() {
      return pty.pid;
    },
    spawned: pty.spawned,
    get startTime() {
      return pty.startTime;
    },
    exit,
    pty,
    stdout: null,
    stderr: null,
    signal: (signal) => pty.kill(signal),
    unref: () => undefined,
  };
}

function launchChild(command: LaunchCommand, stdio: Exclude<Stdio, { kind: 'pty' }>): LaunchedProcess {
  let child: ChildProcess;
  const env = { PATH: LAUNCHER_PATH_ENV };
  if (stdio.kind === 'detached') {
    child = spawn(command.file, command.args, { detached: true, stdio: 'ignore', env, cwd: '/' });
  } else {
    child = spawn(command.file, command.args, {
      stdio: [stdio.stdin, stdio.output, stdio.output],
      env,
      cwd: '/',
    });
  }
  let reaped = false;
  const exit = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => {
      reaped = true;
      resolve(dockerExitCode(code, signal));
    });
    // spawn(2) itself failed (ENOENT, EACCES): Docker's "the runtime failed".
    child.once('error', () => {
      reaped = true;
      resolve(125);
    });
  });
  const spawned = child.pid === undefined ? Promise.reject(new Error('spawn failed')) : Promise.resolve(child.pid);
  // The exit (125) tells of a failed spawn too: nobody has to wait for this.
  spawned.catch(() => undefined);
  return {
    pid: child.pid ?? -1,
    spawned,
    startTime: null,
    exit,
    pty: null,
    stdout: child.stdout,
    stderr: child.stderr,
    // Once reaped, the pid may be another process's.
    signal: (signal) => {
      if (!reaped) child.kill(signal);
    },
    unref: () => child.unref(),
  };
}

/**
 * The CLI's run and exec without a terminal: the launcher on this process's own stdout and
 * stderr (stdin too with -i), started by the addon's posix_spawn from the sealed copy, not
 * by child_process, whose spawn forks the whole Node process (6-13 ms of the CLI's start,
 * bench/PROFILE.md). A spawn that fails exits 125, as child_process's did.
 */
function launchInherited(command: LaunchCommand, stdin: 'inherit' | 'ignore'): LaunchedProcess {
  const execFd = command.file === launcherPath ? launcherExecFd() : undefined;
  let reaped = false;
  let onExit: (code: number) => void = () => undefined;
  const exit = new Promise<number>((resolve) => (onExit = resolve));
  let pid = -1;
  try {
    pid = spawnInherited(
      command.file,
      [command.file, ...command.args],
      [`PATH=${LAUNCHER_PATH_ENV}`],
      stdin === 'ignore',
      (code, signal) => {
        reaped = true;
        onExit(dockerExitCode(code, signal));
      },
      ...(execFd === undefined ? [] : [execFd]),
    );
  } catch {
    reaped = true;
    onExit(125);
  }
  const spawned = pid > 0 ? Promise.resolve(pid) : Promise.reject(new Error('spawn failed'));
  spawned.catch(() => undefined);
  return {
    pid,
    spawned,
    startTime: null,
    exit,
    pty: null,
    stdout: null,
    stderr: null,
    // Our own child: its pid is its own until reaped.
    signal: (signal) => {
      if (!reaped) process.kill(pid, signal);
    },
    unref: () => undefined,
  };
}

/**
 * The server's execs on pipes (a lesson's script check, an exec without a terminal): the
 * addon's posix_spawn, as for a pty, whose cost does not grow with the server's memory as
 * child_process's fork does, and on the addon's spawner thread: posix_spawn is a vfork, and
 * the caller waits until the child has exec'd (bench/PROFILE.md). The pipes are returned at
 * once; a signal sent before the pid is known is delivered once it is. stdin is a pipe
 * closed at once: the command reads EOF. A spawn that fails exits 125.
 */
function launchPiped(command: LaunchCommand): LaunchedProcess {
  const execFd = command.file === launcherPath ? launcherExecFd() : undefined;
  const launched = new SpawningChild();
  let onExit: (code: number) => void = () => undefined;
  const exit = new Promise<number>((resolve) => (onExit = resolve));
  const child = spawnPipedAsync(
    command.file,
    [command.file, ...command.args],
    [`PATH=${LAUNCHER_PATH_ENV}`],
    (code, signal) => {
      launched.reaped();
      onExit(dockerExitCode(code, signal));
    },
    (error, pid) => {
      // No child: the pipes' other ends are closed, so the reads end.
      if (!launched.settle(error, pid)) onExit(125);
    },
    ...(execFd === undefined ? [] : [execFd]),
  );
  closeSync(child.stdin);
  return {
    get pid() {
      return launched.pid;
    },
    spawned: launched.spawned,
    startTime: null,
    exit,
    pty: null,
    stdout: new Socket({ fd: child.stdout, readable: true, writable: false }),
    stderr: new Socket({ fd: child.stderr, readable: true, writable: false }),
    signal: (signal) => launched.kill(signal),
    unref: () => undefined,
  };
}

/** Starts `command` (the launcher's, from launcher.ts) with the given stdio. */
export function launch(command: LaunchCommand, stdio: Stdio): LaunchedProcess {
  if (stdio.kind === 'pty') return launchOnPty(command, stdio);
  if (stdio.kind === 'pipes' && stdio.stdin === 'ignore' && stdio.output === 'pipe') return launchPiped(command);
  if (stdio.kind === 'pipes' && stdio.output === 'inherit') return launchInherited(command, stdio.stdin);
  return launchChild(command, stdio);
}
