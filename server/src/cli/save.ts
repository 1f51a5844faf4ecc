/** `mdocker save -o FILE IMAGE`: an image as an OCI archive. */
import type { Command } from 'commander';

export function registerSave(program: Command): void {
  program
    .command('save')
    .description('write an image to an OCI archive (a tar of an OCI image layout)')
    .requiredOption('-o, --output <file>', 'the archive to write')
    .argument('<image>', 'a reference or an image id')
    .action(async (image: string, flags: { output: string }) => {
      const { saveImageArchive } = await import('../runtime/images.js');
      await saveImageArchive(image, flags.output);
    });
}
