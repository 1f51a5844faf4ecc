/** `mdocker images`: the images in the store. */
import type { Command } from 'commander';
import { table } from './format.js';

export function registerImages(program: Command): void {
  program
    .command('images')
    .description('list images')
    .action(async () => {
      const { listImages } = await import('../runtime/images.js');
      const { formatBytes } = await import('../runtime/units.js');
      const images = await listImages();
      process.stdout.write(
        table(
          ['REPOSITORY', 'SIZE'],
          images.map((i) => [i.name, formatBytes(i.sizeBytes)]),
        ),
      );
    });
}
