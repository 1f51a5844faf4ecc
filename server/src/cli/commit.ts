/** `mdocker commit`: a running container's changes as a new image (docker commit). */
import type { Command } from 'commander';
import { openRuntime } from './common.js';

export function registerCommit(program: Command): void {
  program
    .command('commit')
    .description("create a new image from a running container's changes")
    .argument('<container>', 'container id or name')
    .argument('<reference>', 'the new image, as REPOSITORY[:TAG]')
    .option('-m, --message <message>', 'commit message')
    .action(async (container: string, reference: string, flags: { message?: string }) => {
      const { commitContainer } = await import('../runtime/images.js');
      const runtime = await openRuntime({ reap: false });
      const { id } = await commitContainer(container, reference, {
        runtime,
        ...(flags.message === undefined ? {} : { message: flags.message }),
      });
      // As Docker: the new image's id, alone on its line.
      process.stdout.write(`${id}\n`);
    });
}
