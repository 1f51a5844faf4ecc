/** `mdocker logout [SERVER]`: forgets a registry's credentials. */
import type { Command } from 'commander';

export function registerLogout(program: Command): void {
  program
    .command('logout')
    .description("forget a registry's credentials")
    .argument('[server]', 'host[:port] of the registry (default docker.io)')
    .action(async (server: string | undefined) => {
      const { logoutRegistry } = await import('../runtime/images.js');
      process.stdout.write(`Removing login credentials for ${await logoutRegistry(server)}\n`);
    });
}
