/**
 * This terminal attached to a launched container process, as `docker run`/`docker exec`
 * do: with -t, this terminal in raw mode feeding the process's pty, window size changes
 * passed on; without -t the process has this terminal's stdio itself (Runtime.start and
 * exec launched it on inherited pipes), and only signals sent to us alone are passed on.
 */
import type { LaunchedProcess } from '../runtime/process.js';

/** Lets the container go after a hangup if it ignores the signal (a shell as PID 1 may). */
const HANGUP_GRACE_MS = 2000;

/**
 * Passes SIGTERM and SIGHUP on; Ctrl-C already reaches the launcher (same process group).
 * After a hangup this terminal is gone: the CLI then exits, and its container with it
 * (the launcher dies with its parent), rather than live on unowned.
 */
function forwardSignals(process_: LaunchedProcess): void {
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => process_.signal('SIGTERM'));
  process.on('SIGHUP', () => {
    process_.signal('SIGHUP');
    setTimeout(() => process.exit(128 + 1), HANGUP_GRACE_MS).unref();
  });
}

export function attachPipes(launched: LaunchedProcess): void {
  forwardSignals(launched);
}

export function attachTerminal(launched: LaunchedProcess): void {
  const pty = launched.pty;
  if (pty === null) throw new Error('attachTerminal: the process has no pty');
  const { stdin, stdout } = process;
  forwardSignals(launched);
  stdin.setRawMode(true);
  stdin.resume();
  const onInput = (data: Buffer): void => pty.write(data);
  stdin.on('data', onInput);
  pty.onData((data: Buffer | string) => {
    // Flow control: a slow terminal pauses the container's output instead of letting
    // it pile up in this process.
    if (!stdout.write(data)) {
      pty.pause();
      stdout.once('drain', () => pty.resume());
    }
  });
  const onResize = (): void => pty.resize(stdout.columns || 80, stdout.rows || 24);
  stdout.on('resize', onResize);
  void launched.exit.then(() => {
    stdin.off('data', onInput);
    stdout.off('resize', onResize);
    stdin.setRawMode(false);
    stdin.pause();
  });
}
