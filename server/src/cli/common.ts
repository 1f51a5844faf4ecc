/** What several verbs share: option collectors, opening the runtime, attaching this terminal. */
import type { Runtime } from '../runtime/containers.js';
import type { LaunchedProcess } from '../runtime/process.js';

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

/** This terminal on the launched process: raw mode on its pty with -t, signals passed on either way. */
export async function attach(launched: LaunchedProcess, tty: boolean): Promise<void> {
  const { attachPipes, attachTerminal } = await import('./attach.js');
  if (tty) attachTerminal(launched);
  else attachPipes(launched);
}
