/** `mdocker run`: a new container, in the foreground on this terminal, or detached. */
import type { Command } from 'commander';
import { MdockerError } from '../runtime/errors.js';
import { isTerminal } from '../runtime/native.js';
import { parseSizeBytes } from '../runtime/units.js';
import { attachUntilExit, collect, foregroundStdio, openRuntime } from './common.js';

const DEFAULT_LOG_MAX_BYTES = 8 * 1024 * 1024;

interface RunFlags {
  name?: string;
  hostname?: string;
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  env: string[];
  workdir?: string;
  groupAdd: string[];
  interactive?: boolean;
  tty?: boolean;
  rm?: boolean;
  detach?: boolean;
  rootfs?: string;
  cgroupParent?: string;
  capAdd: string[];
  capDrop: string[];
  securityOpt: string[];
  logOpt: string[];
  userns?: string;
  network?: string;
  entrypoint?: string;
  user?: string;
}

/** Docker's --userns: "host" turns the user namespace off (for teaching the difference). */
function usernsFrom(value: string | undefined): 'private' | 'host' {
  if (value === undefined || value === '' || value === 'private') return 'private';
  if (value === 'host') return 'host';
  throw new MdockerError('INVALID_ARGUMENT', `unsupported --userns ${JSON.stringify(value)} (known: host, private)`);
}

/** Docker's --security-opt values that mdocker knows. */
/** Docker's --log-opt max-size=SIZE for the detached output log (the only option known). */
function logMaxBytesFrom(logOpt: string[]): number {
  let maxBytes = DEFAULT_LOG_MAX_BYTES;
  for (const opt of logOpt) {
    const match = /^max-size=(.+)$/.exec(opt);
    if (!match)
      throw new MdockerError('INVALID_ARGUMENT', `unsupported --log-opt ${JSON.stringify(opt)} (known: max-size)`);
    maxBytes = parseSizeBytes(match[1]!, '--log-opt max-size');
  }
  return maxBytes;
}

/** Docker's --security-opt values that mdocker knows: seccomp=unconfined, no-new-privileges[=BOOL]. */
function securityOptsFrom(securityOpt: string[]): { seccomp: 'default' | 'unconfined'; noNewPrivs: boolean } {
  let seccomp: 'default' | 'unconfined' = 'default';
  let noNewPrivs = true;
  for (const opt of securityOpt) {
    const nnp = /^no-new-privileges(?:[=:](true|false))?$/.exec(opt);
    if (opt === 'seccomp=unconfined' || opt === 'seccomp:unconfined') seccomp = 'unconfined';
    else if (nnp) noNewPrivs = nnp[1] !== 'false';
    else
      throw new MdockerError(
        'INVALID_ARGUMENT',
        `unsupported --security-opt ${JSON.stringify(opt)} (known: seccomp=unconfined, no-new-privileges=true|false)`,
      );
  }
  return { seccomp, noNewPrivs };
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a command in a new container (default image busybox, default command /bin/sh)')
    .usage('[OPTIONS] [IMAGE] [COMMAND] [ARG...]')
    .argument(
      '[image]',
      'image name, reference or id; a first argument starting with / is the command, in the busybox image',
    )
    .argument('[command...]', 'command and arguments')
    .passThroughOptions()
    .option('--name <name>', 'assign a name to the container')
    .option('-h, --hostname <name>', 'container host name (default: its short id)')
    .option('-m, --memory <bytes>', 'memory limit, e.g. 64m, 1g (swap is not allowed)')
    .option('--cpus <number>', 'number of CPUs, e.g. 0.5')
    .option('--pids-limit <n>', 'maximum number of processes')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('--entrypoint <command>', 'replace the image\'s entrypoint ("" for none)')
    .option('-u, --user <user>', "name, uid, name:group or uid:gid to run as (default: the image's User)")
    .option('--group-add <group>', "add a supplementary group, by name (the image's /etc/group) or gid", collect, [])
    .option('-i, --interactive', 'keep stdin open')
    .option('-t, --tty', 'allocate a terminal')
    .option('--rm', 'remove the container when it exits')
    .option('-d, --detach', 'run in the background and print the container id')
    .option('--rootfs <dir>', 'run a plain directory read-write instead of an image')
    .option('--cgroup-parent <path>', 'parent cgroup for the container (default: mdocker below our own)')
    .option('--cap-add <capability>', 'add a Linux capability (repeatable), e.g. SYS_ADMIN', collect, [])
    .option('--cap-drop <capability>', 'drop a Linux capability (repeatable), or ALL', collect, [])
    .option(
      '--security-opt <option>',
      'seccomp=unconfined turns the seccomp filter off (for teaching); no-new-privileges=false lets setuid files and file capabilities work',
      collect,
      [],
    )
    .option('--network <name>', 'connect the container to a network (mdocker network create); default none: only lo')
    .option('--userns <mode>', "host: the container's root is the host's (for teaching); default private")
    .option(
      '--log-opt <option>',
      "max-size=SIZE: the most of a detached container's output kept (default 8m)",
      collect,
      [],
    )
    .helpOption('--help', 'display help for command')
    .action(async (imageArg: string | undefined, commandArgs: string[], flags: RunFlags) => {
      const { validateInput, containerSpecInputSchema } = await import('../runtime/spec.js');
      let image: string | undefined = imageArg;
      let cmd = commandArgs;
      // The seed's demo: `mdocker run /bin/sh` runs /bin/sh in the default image.
      if (image !== undefined && (image.startsWith('/') || image.startsWith('.') || flags.rootfs)) {
        cmd = [image, ...cmd];
        image = undefined;
      }
      const spec = validateInput(containerSpecInputSchema, {
        image,
        name: flags.name,
        hostname: flags.hostname,
        env: flags.env,
        cmd: cmd.length > 0 ? cmd : undefined,
        memory: flags.memory,
        cpus: flags.cpus,
        pidsLimit: flags.pidsLimit,
      });
      // The original mdocker's `run /bin/sh` gave the container this terminal: with none of
      // -i, -t, -d on a terminal, run interactively with a tty (docker would exit at once).
      // isatty(3), not process.stdin.isTTY: that getter builds a stream over fd 0 (loading
      // Node's stream modules, and making a pipe non-blocking) that only -t reads.
      if (!flags.interactive && !flags.tty && !flags.detach && isTerminal(0) && isTerminal(1)) {
        flags.interactive = true;
        flags.tty = true;
      }
      if (flags.tty && !isTerminal(0))
        throw new MdockerError('INVALID_ARGUMENT', 'the input device is not a TTY (drop -t)');
      if (flags.tty && flags.detach)
        throw new MdockerError('INVALID_ARGUMENT', '-t with -d is not supported: use mdocker exec -it later');

      const runtime = await openRuntime();
      const prepared = await runtime.create({
        image: spec.image,
        rootfs: flags.rootfs,
        name: spec.name,
        hostname: spec.hostname,
        ...(spec.cmd === undefined ? {} : { cmd: spec.cmd }),
        ...(flags.entrypoint === undefined ? {} : { entrypoint: flags.entrypoint === '' ? [] : [flags.entrypoint] }),
        ...(flags.user === undefined ? {} : { user: flags.user }),
        ...(flags.groupAdd.length === 0 ? {} : { groupAdd: flags.groupAdd }),
        env: spec.env,
        workdir: flags.workdir,
        tty: flags.tty ?? false,
        limits: spec.limits,
        cgroupParent: flags.cgroupParent,
        security: {
          capAdd: flags.capAdd,
          capDrop: flags.capDrop,
          ...securityOptsFrom(flags.securityOpt),
          userns: usernsFrom(flags.userns),
        },
        autoRemove: flags.rm ?? false,
        ...(flags.network === undefined ? {} : { network: flags.network }),
        dieWithParent: !flags.detach,
        ...(flags.detach ? { outputLogMaxBytes: logMaxBytesFrom(flags.logOpt) } : {}),
      });
      const id = prepared.record.id;

      if (flags.detach) {
        const run = runtime.start(prepared, { kind: 'detached' });
        const record = await run.started;
        if (!record.init) {
          const { code, error } = await run.done;
          throw new MdockerError('LAUNCH_FAILED', error?.message ?? `the container exited at once (${code})`);
        }
        run.process.unref();
        process.stdout.write(id + '\n');
        return;
      }

      await attachUntilExit(runtime.start(prepared, foregroundStdio(flags)), flags.tty ?? false);
    });
}
