/** `mdocker exec`: a new process in a running container. */
import type { Command } from 'commander';
import { MdockerError } from '../runtime/errors.js';
import { isTerminal } from '../runtime/native.js';
import { attachUntilExit, collect, foregroundStdio, openRuntime } from './common.js';

export function registerExec(program: Command): void {
  program
    .command('exec')
    .description('run a command in a running container')
    .usage('[OPTIONS] CONTAINER COMMAND [ARG...]')
    .argument('<container>')
    .argument('<command...>')
    .passThroughOptions()
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-i, --interactive', 'keep stdin open')
    .option('-t, --tty', 'allocate a terminal')
    .action(
      async (
        container: string,
        cmd: string[],
        flags: { env: string[]; workdir?: string; interactive?: boolean; tty?: boolean },
      ) => {
        const { validateInput, envSchema } = await import('../runtime/spec.js');
        const env = validateInput(envSchema, flags.env);
        if (flags.tty && !isTerminal(0))
          throw new MdockerError('INVALID_ARGUMENT', 'the input device is not a TTY (drop -t)');
        const runtime = await openRuntime();
        const record = await runtime.get(container);
        const exec = await runtime.exec(
          record.id,
          {
            cmd,
            tty: flags.tty ?? false,
            env: env.length > 0 ? [...record.env, ...env] : undefined,
            workdir: flags.workdir,
            dieWithParent: true,
          },
          foregroundStdio(flags),
        );
        await attachUntilExit(exec, flags.tty ?? false);
      },
    );
}
