/** `mdocker rm`: removes containers and what the runtime made for them. */
import type { Command } from 'commander';
import { toMdockerError } from '../runtime/errors.js';
import { openRuntime } from './common.js';

export function registerRm(program: Command): void {
  program
    .command('rm')
    .description('remove containers')
    .argument('<containers...>')
    .option('-f, --force', 'kill and remove a running container')
    .action(async (names: string[], flags: { force?: boolean }) => {
      const runtime = await openRuntime();
      let failed = false;
      for (const name of names) {
        try {
          await runtime.remove(name, { force: flags.force ?? false });
          process.stdout.write(name + '\n');
        } catch (err) {
          failed = true;
          process.stderr.write(`mdocker: ${toMdockerError(err).message}\n`);
        }
      }
      if (failed) process.exitCode = 1;
    });
}
