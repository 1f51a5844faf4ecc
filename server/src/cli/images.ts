/** `mdocker images`: the built-in images and the store's. */
import type { Command } from 'commander';
import { ago, table } from './format.js';

export function registerImages(program: Command): void {
  program
    .command('images')
    .description('list images')
    .option('-q, --quiet', 'only image ids')
    .option('--no-trunc', 'full image ids')
    .action(async (flags: { quiet?: boolean; trunc?: boolean }) => {
      const { imageRows } = await import('../runtime/images.js');
      const { formatBytes } = await import('../runtime/units.js');
      const rows = await imageRows();
      const idOf = (id: string | null) =>
        id === null ? 'built-in' : flags.trunc === false ? id : id.slice('sha256:'.length, 'sha256:'.length + 12);
      if (flags.quiet) {
        const ids = [...new Set(rows.filter((r) => r.id !== null).map((r) => idOf(r.id)))];
        process.stdout.write(ids.map((id) => id + '\n').join(''));
        return;
      }
      process.stdout.write(
        table(
          ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'],
          rows.map((r) => [
            r.repository,
            r.tag,
            idOf(r.id),
            r.created === null || Number.isNaN(Date.parse(r.created)) ? 'N/A' : ago(r.created),
            formatBytes(r.sizeBytes),
          ]),
        ),
      );
    });
}
