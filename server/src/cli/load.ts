/** `mdocker load -i FILE`: images from a docker save archive or an OCI layout (directory or tar). */
import type { Command } from 'commander';
import { MdockerError } from '../runtime/errors.js';

export function registerLoad(program: Command): void {
  program
    .command('load')
    .description('load images from a docker save archive or an OCI layout (directory or tar)')
    .requiredOption('-i, --input <file>', 'the archive or layout to read')
    .option('-q, --quiet', 'print nothing')
    .action(async (flags: { input: string; quiet?: boolean }) => {
      const { loadImageArchive } = await import('../runtime/images.js');
      const loaded = await loadImageArchive(flags.input);
      if (loaded.length === 0) throw new MdockerError('INVALID_ARGUMENT', `${flags.input} holds no image`);
      if (flags.quiet) return;
      for (const image of loaded) {
        if (image.references.length === 0) process.stdout.write(`Loaded image ID: ${image.id}\n`);
        for (const reference of image.references) process.stdout.write(`Loaded image: ${reference}\n`);
      }
    });
}
