/**
 * Runs a launcher command in the foreground of this terminal, as `docker run`/`docker
 * exec` do: with -t through a new pty (node-pty), this terminal in raw mode and window
 * size changes passed on; without -t through plain pipes, stdout and stderr apart.
 * Resolves with the launcher's exit code (the container's, in Docker's conventions).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { LaunchCommand } from '../runtime/launcher.js';

export interface Attached {
  pid: number;
  exit: Promise<number>;
}

function codeOf(code: number | null, signal: NodeJS.Signals | number | null): number {
  if (code !== null) return code;
  if (typeof signal === 'number') return 128 + signal;
  if (signal) return 128 + ((osConstants.signals as Record<string, number | undefined>)[signal] ?? 0);
  return 125;
}

export function attachPipes(command: LaunchCommand, opts: { interactive: boolean }): Attached {
  const child: ChildProcess = spawn(command.file, command.args, {
    stdio: [opts.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'],
  });
  // Ctrl-C reaches the launcher too (same process group); it forwards it to the
  // container. We only pass on what is sent to us alone.
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', forward('SIGTERM'));
  process.on('SIGHUP', forward('SIGHUP'));
  const exit = new Promise<number>((resolveExit) => {
    child.on('exit', (code, signal) => resolveExit(codeOf(code, signal)));
    child.on('error', () => resolveExit(125));
  });
  return { pid: child.pid ?? -1, exit };
}

export async function attachPty(command: LaunchCommand): Promise<Attached> {
  const pty = await import('node-pty');
  const stdin = process.stdin;
  const stdout = process.stdout;
  const term = pty.spawn(command.file, command.args, {
    name: process.env.TERM ?? 'xterm-256color',
    cols: stdout.columns || 80,
    rows: stdout.rows || 24,
    env: process.env as Record<string, string>,
    encoding: null,
  } as Parameters<typeof pty.spawn>[2]);

  stdin.setRawMode(true);
  stdin.resume();
  const onInput = (data: Buffer) => term.write(data as unknown as string);
  stdin.on('data', onInput);
  term.onData((data: string | Buffer) => {
    // Flow control: a slow terminal pauses the container's output instead of letting
    // it pile up in this process.
    if (!stdout.write(data)) {
      term.pause();
      stdout.once('drain', () => term.resume());
    }
  });
  const onResize = () => term.resize(stdout.columns || 80, stdout.rows || 24);
  stdout.on('resize', onResize);
  process.on('SIGTERM', () => term.kill('SIGTERM'));
  process.on('SIGHUP', () => term.kill('SIGHUP'));

  const exit = new Promise<number>((resolveExit) => {
    term.onExit(({ exitCode, signal }) => {
      stdin.off('data', onInput);
      stdout.off('resize', onResize);
      stdin.setRawMode(false);
      stdin.pause();
      resolveExit(signal ? 128 + signal : exitCode);
    });
  });
  return { pid: term.pid, exit };
}
