/**
 * Runs a short native helper to its end (the launcher's network verbs and netinfo,
 * mdocker-nft) and hands back what it printed. Started with the addon's posix_spawn on
 * pipes rather than child_process.execFile: execFile forks the server, which costs CPU in
 * proportion to its resident memory (about 8 ms at 50 MB here against 2.5 ms, and four
 * times that at 900 MB), on the event loop, once or twice per session's network.
 */
import { Socket } from 'node:net';
import { MdockerError } from './errors.js';
import { launcherExecFd, launcherPath, spawnPipedAsync } from './native.js';
import { SpawningChild } from './spawning-child.js';

export interface HelperResult {
  /** The exit code, or null when a signal ended the helper. */
  code: number | null;
  signal: number | null;
  stdout: string;
  stderr: string;
}

export interface HelperOptions {
  /** Written to the helper's stdin, which is then closed (closed at once without). */
  input?: string;
  /** Past this the helper is killed and the call fails. */
  timeoutMs: number;
  /** stdout and stderr are each cut off here, and the helper is killed. */
  maxBuffer: number;
}

export function runHelper(file: string, args: string[], options: HelperOptions): Promise<HelperResult> {
  const name = file.slice(file.lastIndexOf('/') + 1);
  return new Promise((resolve, reject) => {
    let exit: { code: number; signal: number } | null = null;
    let failure: Error | null = null;
    let open = 2;
    const out: Buffer[][] = [[], []];
    const sizes = [0, 0];
    const env = Object.entries(process.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
    const execFd = file === launcherPath ? launcherExecFd() : undefined;
    /** A kill asked before the pid is known is done then. */
    const launched = new SpawningChild();
    const child = spawnPipedAsync(
      file,
      [file, ...args],
      env,
      (code, signal) => {
        launched.reaped();
        exit = { code, signal };
        clearTimeout(timer);
        settle();
      },
      (error, pid) => {
        if (launched.settle(error, pid)) return;
        // No child: its pipes' other ends are closed, so the reads end; the call fails
        // with the spawn's SystemError-shaped error.
        failure ??= error ?? new MdockerError('RUNTIME', `${name} could not be started`);
        exit = { code: 125, signal: 0 };
        clearTimeout(timer);
        settle();
      },
      ...(execFd === undefined ? [] : [execFd]),
    );
    const kill = (why: MdockerError): void => {
      failure ??= why;
      launched.kill('SIGKILL');
    };
    const timer = setTimeout(
      () => kill(new MdockerError('RUNTIME', `${name} ${args[0] ?? ''} took longer than ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    const settle = (): void => {
      if (exit === null || open > 0) return;
      if (failure !== null) {
        reject(failure);
        return;
      }
      resolve({
        code: exit.signal === 0 ? exit.code : null,
        signal: exit.signal === 0 ? null : exit.signal,
        stdout: Buffer.concat(out[0]!).toString('utf8'),
        stderr: Buffer.concat(out[1]!).toString('utf8'),
      });
    };
    [child.stdout, child.stderr].forEach((fd, i) => {
      const stream = new Socket({ fd, readable: true, writable: false });
      stream.on('data', (chunk: Buffer) => {
        sizes[i]! += chunk.length;
        if (sizes[i]! > options.maxBuffer) {
          kill(new MdockerError('RUNTIME', `${name} ${args[0] ?? ''} printed more than ${options.maxBuffer} bytes`));
          stream.destroy();
          return;
        }
        out[i]!.push(chunk);
      });
      stream.on('error', () => undefined);
      stream.on('close', () => {
        open--;
        settle();
      });
    });
    const stdin = new Socket({ fd: child.stdin, readable: false, writable: true });
    // A helper that fails before reading its input closes the pipe: its answer says why.
    stdin.on('error', () => undefined);
    stdin.end(options.input ?? '');
  });
}
