/** `mdocker network create|ls|rm`: networks containers join with `run --network NAME`. */
import type { Command } from 'commander';
import { toMdockerError } from '../runtime/errors.js';
import { ago, table } from './format.js';
import { openRuntime } from './common.js';

export function registerNetwork(program: Command): void {
  const network = program.command('network').description('manage networks');
  network
    .command('create')
    .description('create a network: a bridge in a network namespace of its own, with no route out')
    .argument('<name>')
    .option('--subnet <cidr>', 'the subnet, e.g. 10.89.7.0/24 (default: the next free /24 of 10.89.0.0/16)')
    .option(
      '--egress',
      'let its containers reach public addresses, through NAT (never the host, private or link-local ones)',
    )
    .action(async (name: string, flags: { subnet?: string; egress?: boolean }) => {
      const runtime = await openRuntime();
      await runtime.networks.create(name, {
        ...(flags.subnet === undefined ? {} : { subnet: flags.subnet }),
        egress: flags.egress === true,
      });
      const problem = flags.egress ? (await import('../runtime/networks.js')).hostForwardingProblem() : null;
      if (problem) process.stderr.write(`mdocker: warning: ${problem}\n`);
      process.stdout.write(name + '\n');
    });
  network
    .command('ls')
    .description('list networks')
    .action(async () => {
      const runtime = await openRuntime();
      const rows = (await runtime.networks.list()).map((n) => [
        n.name,
        n.subnet,
        n.egress ? 'yes' : 'no',
        String(runtime.networks.members(n.name).length),
        n.owner === null ? '' : `pid ${n.owner.pid}`,
        ago(n.createdAt),
      ]);
      process.stdout.write(table(['NAME', 'SUBNET', 'EGRESS', 'CONTAINERS', 'OWNER', 'CREATED'], rows));
    });
  network
    .command('rm')
    .description('remove networks (refused while a container uses one)')
    .argument('<names...>')
    .action(async (names: string[]) => {
      const runtime = await openRuntime();
      for (const name of names) {
        try {
          await runtime.removeNetwork(name);
          process.stdout.write(name + '\n');
        } catch (err) {
          process.exitCode = 1;
          process.stderr.write(`mdocker: ${toMdockerError(err).message}\n`);
        }
      }
    });
}
