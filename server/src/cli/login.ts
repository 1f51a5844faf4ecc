/** `mdocker login [SERVER]`: keeps a registry's credentials, once the registry took them. */
import type { Command } from 'commander';
import { MdockerError } from '../runtime/errors.js';
import { collect } from './common.js';

interface LoginFlags {
  username?: string;
  password?: string;
  passwordStdin?: boolean;
  insecureRegistry: string[];
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export function registerLogin(program: Command): void {
  program
    .command('login')
    .description('log in to a registry (credentials kept in <data dir>/auth.json, mode 0600)')
    .argument('[server]', 'host[:port] of the registry (default docker.io)')
    .option('-u, --username <name>', 'user name')
    .option('-p, --password <password>', 'password (prefer --password-stdin)')
    .option('--password-stdin', 'read the password from stdin')
    .option('--insecure-registry <host[:port]>', 'allow plain HTTP or any certificate for this registry', collect, [])
    .action(async (server: string | undefined, flags: LoginFlags) => {
      if (flags.username === undefined) throw new MdockerError('INVALID_ARGUMENT', 'login needs --username');
      if (flags.password !== undefined && flags.passwordStdin) {
        throw new MdockerError('INVALID_ARGUMENT', '--password and --password-stdin do not go together');
      }
      const password = flags.passwordStdin ? await readStdin() : (flags.password ?? '');
      const { loginRegistry } = await import('../runtime/images.js');
      const registry = await loginRegistry(server, flags.username, password, {
        insecureRegistries: flags.insecureRegistry,
      });
      process.stdout.write(`Login Succeeded (${registry})\n`);
    });
}
