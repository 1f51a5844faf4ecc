/** `mdocker update`: a running container's limits, changed live. */
import type { Command } from 'commander';
import { openRuntime } from './common.js';

export function registerUpdate(program: Command): void {
  program
    .command('update')
    .description("change a running container's limits")
    .argument('<containers...>')
    .option('-m, --memory <bytes>', 'memory limit, e.g. 64m')
    .option('--cpus <number>', 'number of CPUs')
    .option('--pids-limit <n>', 'maximum number of processes')
    .action(async (names: string[], flags: { memory?: string; cpus?: string; pidsLimit?: string }) => {
      const { validateInput, limitsUpdateSchema } = await import('../runtime/spec.js');
      const limits = validateInput(
        limitsUpdateSchema,
        Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)),
      );
      const runtime = await openRuntime();
      for (const name of names) {
        await runtime.update(name, limits);
        process.stdout.write(name + '\n');
      }
    });
}
