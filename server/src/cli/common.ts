/** What several verbs share: option collectors, opening the runtime, attaching this terminal. */
import type { ContainerProcess, Runtime } from '../runtime/containers.js';
import type { Stdio } from '../runtime/process.js';
import { attachPipes, attachTerminal } from './attach.js';

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export async function openRuntime(opts: { reap?: boolean } = {}): Promise<Runtime> {
  const { Runtime } = await import('../runtime/containers.js');
  const runtime = await Runtime.open();
  // Leftovers of a killed server or CLI go before we look at or add to the state.
  if (opts.reap !== false) await runtime.reapLeftovers();
  return runtime;
}

/** How `run` and `exec` in the foreground launch: on a new pty with -t, else on this terminal's stdio. */
export function foregroundStdio(flags: { tty?: boolean; interactive?: boolean }): Stdio {
  if (flags.tty) return { kind: 'pty', cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 };
  return { kind: 'pipes', stdin: flags.interactive ? 'inherit' : 'ignore', output: 'inherit' };
}

/**
 * This terminal on a process launched with foregroundStdio, until it ends: prints the
 * launcher's own error and exits with the container's code, as docker run and exec do.
 */
export async function attachUntilExit(launched: ContainerProcess, tty: boolean): Promise<void> {
  if (tty) attachTerminal(launched.process);
  else attachPipes(launched.process);
  const { code, error } = await launched.done;
  if (error) process.stderr.write(`mdocker: ${error.message}\n`);
  process.exitCode = code;
}
