/** `mdocker rmi`: removes images, or tags of them; refuses an image a container uses. */
import type { Command } from 'commander';
import { toMdockerError } from '../runtime/errors.js';
import { openRuntime } from './common.js';

export function registerRmi(program: Command): void {
  program
    .command('rmi')
    .description('remove images (a tag of an image with others only untags it)')
    .argument('<images...>', 'references or image ids')
    .option('-f, --force', 'remove an image even if exited containers use it')
    .action(async (names: string[], flags: { force?: boolean }) => {
      const runtime = await openRuntime({ reap: false });
      let failed = false;
      for (const name of names) {
        try {
          const { untagged, deleted } = await runtime.removeImage(name, flags.force ?? false);
          for (const reference of untagged) process.stdout.write(`Untagged: ${reference}\n`);
          if (deleted !== null) process.stdout.write(`Deleted: ${deleted}\n`);
        } catch (err) {
          failed = true;
          process.stderr.write(`mdocker: ${toMdockerError(err).message}\n`);
        }
      }
      if (failed) process.exitCode = 1;
    });
}
