/** `mdocker ps`: the containers, with the host PID of each init and its network address. */
import type { Command } from 'commander';
import type { ContainerView } from '../runtime/containers.js';
import { ago, duration, quoteCommand, shortId, table } from './format.js';
import { openRuntime } from './common.js';

function statusText(c: ContainerView): string {
  if (c.status === 'running' && c.startedAt) return `Up ${duration(Date.now() - Date.parse(c.startedAt))}`;
  if (c.status === 'exited') return `Exited (${c.exitCode ?? '?'}) ${c.finishedAt ? ago(c.finishedAt) : ''}`.trim();
  return 'Created';
}

export function registerPs(program: Command): void {
  program
    .command('ps')
    .description('list containers')
    .option('-a, --all', 'show all containers (default: running only)')
    .option('-q, --quiet', 'only display ids')
    .option('--no-trunc', 'do not truncate ids and commands')
    .action(async (flags: { all?: boolean; quiet?: boolean; trunc: boolean }) => {
      const runtime = await openRuntime();
      const containers = (await runtime.list()).filter((c) => flags.all || c.status === 'running');
      if (flags.quiet) {
        process.stdout.write(containers.map((c) => (flags.trunc ? shortId(c.id) : c.id) + '\n').join(''));
        return;
      }
      const rows = containers.map((c) => [
        flags.trunc ? shortId(c.id) : c.id,
        c.image ?? `rootfs:${c.rootfs}`,
        flags.trunc ? quoteCommand(c.cmd) : JSON.stringify(c.cmd.join(' ')),
        ago(c.createdAt),
        statusText(c),
        String(c.init?.pid ?? ''),
        c.network ? `${c.network.ip} (${c.network.name})` : '',
        c.name,
      ]);
      process.stdout.write(
        table(['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PID', 'ADDRESS', 'NAMES'], rows),
      );
    });
}
