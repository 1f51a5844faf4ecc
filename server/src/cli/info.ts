/** `mdocker info`: the host as the runtime uses it, as `docker info` shows its own. */
import type { Command } from 'commander';
import { MdockerError } from '../runtime/errors.js';
import type { HostInfo } from '../runtime/host.js';
import type { Runtime } from '../runtime/containers.js';

export function formatHostInfo(info: HostInfo): string {
  const idmap = info.idmappedMounts;
  const lines: [string, string][] = [
    ['Kernel Version', info.kernelVersion],
    ['Cgroup Version', String(info.cgroupVersion)],
    ['Cgroup Driver', info.cgroupDriver],
    ['Cgroup Parent', info.cgroupParents.join(', ')],
    ...(info.systemdUnit === null ? [] : ([['Systemd Unit', info.systemdUnit]] as [string, string][])),
    ['Controllers', info.controllers.join(' ')],
    ['User Namespaces', info.userNamespaces ? 'yes' : 'no'],
    [
      'Idmapped Mounts',
      idmap.supported
        ? `yes (${idmap.dir})`
        : `no (${idmap.reason ?? idmap.dir}): containers run without a user namespace`,
    ],
    ['State Root', info.stateRoot],
  ];
  return lines.map(([key, value]) => `${key}: ${value}\n`).join('');
}

export function registerInfo(program: Command, openRuntime: () => Promise<Runtime>): void {
  program
    .command('info')
    .description('display how this host runs containers: cgroups, user namespaces, idmapped mounts')
    .option('-f, --format <format>', 'json: one JSON object')
    .action(async (flags: { format?: string }) => {
      if (flags.format !== undefined && flags.format !== 'json') {
        throw new MdockerError(
          'INVALID_ARGUMENT',
          `unsupported --format ${JSON.stringify(flags.format)} (known: json)`,
        );
      }
      const info = await (await openRuntime()).info();
      process.stdout.write(flags.format === 'json' ? `${JSON.stringify(info)}\n` : formatHostInfo(info));
    });
}
