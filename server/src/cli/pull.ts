/** `mdocker pull REF`: an image from its registry; progress per layer on a terminal. */
import type { Command } from 'commander';
import { collect } from './common.js';

interface PullFlags {
  insecureRegistry: string[];
  quiet?: boolean;
}

export function registerPull(program: Command): void {
  program
    .command('pull')
    .description('pull an image from a registry (linux/amd64 of a multi-platform image)')
    .argument('<reference>', 'NAME[:TAG|@DIGEST], e.g. alpine:3.20 or 127.0.0.1:5000/team/app:v1')
    .option(
      '--insecure-registry <host[:port]>',
      'allow plain HTTP or any certificate for this registry (loopback ones always may)',
      collect,
      [],
    )
    .option('-q, --quiet', 'print only the image reference')
    .action(async (reference: string, flags: PullFlags) => {
      const { pullImageReference } = await import('../runtime/images.js');
      const { LayerProgress } = await import('./progress.js');
      const progress = process.stdout.isTTY && !flags.quiet ? new LayerProgress(process.stdout) : null;
      const result = await pullImageReference(reference, {
        insecureRegistries: flags.insecureRegistry,
        ...(progress === null ? {} : { onProgress: (p) => progress.update(p) }),
      });
      progress?.finish();
      if (!flags.quiet) process.stdout.write(`Digest: ${result.digest}\nImage ID: ${result.id}\n`);
      process.stdout.write(`${result.reference}\n`);
    });
}
