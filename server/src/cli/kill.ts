/** `mdocker kill`: a signal to a container's init. */
import type { Command } from 'commander';
import { openRuntime } from './common.js';

export function registerKill(program: Command): void {
  program
    .command('kill')
    .description("send a signal to containers' init (default SIGKILL)")
    .argument('<containers...>')
    .option('-s, --signal <signal>', 'signal to send', 'SIGKILL')
    .action(async (names: string[], flags: { signal: string }) => {
      const signal = /^\d+$/.test(flags.signal)
        ? Number(flags.signal)
        : (flags.signal.toUpperCase().replace(/^(?!SIG)/, 'SIG') as NodeJS.Signals);
      const runtime = await openRuntime();
      for (const name of names) {
        await runtime.kill(name, signal);
        process.stdout.write(name + '\n');
      }
    });
}
