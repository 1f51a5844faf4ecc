/** `mdocker inspect`: containers' records as JSON (state, limits, network address), as docker inspect. */
import type { Command } from 'commander';
import { toMdockerError } from '../runtime/errors.js';
import { openRuntime } from './common.js';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('display containers in detail, as JSON')
    .argument('<containers...>')
    .action(async (names: string[]) => {
      const runtime = await openRuntime();
      const views = [];
      for (const name of names) {
        try {
          views.push(await runtime.get(name));
        } catch (err) {
          process.exitCode = 1;
          process.stderr.write(`mdocker: ${toMdockerError(err).message}\n`);
        }
      }
      process.stdout.write(JSON.stringify(views, null, 2) + '\n');
    });
}
