#!/usr/bin/env -S node --max-semi-space-size=64
// --max-semi-space-size=64 (MiB; Node 20's default is 16): the server's young generation.
// A class's terminals printing at once allocate fast, and with the default size V8's
// scavenges ran 25–100 ms, stalling every keystroke's echo behind them; with 64 the
// bench's echo p99 with 50 noisy neighbours went from 87–117 ms to 44–80 ms and the
// server's CPU from 38 % to 30 % of a core (bench/PROFILE.md §2). package.json's start
// script passes the same flag.
/**
 * The `mdocker` command: Docker's verbs and flag names over the runtime library. Thin:
 * parse, call the runtime, print. Heavy modules load inside the verb that needs them,
 * so `mdocker ps` does not pay for the server.
 */
import { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { MdockerError, toMdockerError } from '../runtime/errors.js';
import type { ContainerView, Runtime } from '../runtime/containers.js';
import { ago, duration, quoteCommand, shortId, table } from './format.js';
import { registerInfo } from './info.js';
import { registerServe } from './serve.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function openRuntime(opts: { reap?: boolean } = {}): Promise<Runtime> {
  const { Runtime } = await import('../runtime/containers.js');
  const runtime = await Runtime.open();
  // Leftovers of a killed server or CLI go before we look at or add to the state.
  if (opts.reap !== false) await runtime.reapLeftovers();
  return runtime;
}

function statusText(c: ContainerView): string {
  if (c.status === 'running' && c.startedAt) return `Up ${duration(Date.now() - Date.parse(c.startedAt))}`;
  if (c.status === 'exited') return `Exited (${c.exitCode ?? '?'}) ${c.finishedAt ? ago(c.finishedAt) : ''}`.trim();
  return 'Created';
}

const program = new Command('mdocker')
  .description('a container runtime and a web container playground')
  .enablePositionalOptions()
  .showHelpAfterError(false)
  .configureOutput({ outputError: (str, write) => write(`mdocker: ${str.replace(/^error: /, '')}`) });

interface RunFlags {
  name?: string;
  hostname?: string;
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  env: string[];
  workdir?: string;
  interactive?: boolean;
  tty?: boolean;
  rm?: boolean;
  detach?: boolean;
  rootfs?: string;
  cgroupParent?: string;
  capAdd: string[];
  capDrop: string[];
  securityOpt: string[];
  userns?: string;
}

/** Docker's --userns: "host" turns the user namespace off (for teaching the difference). */
function usernsFrom(value: string | undefined): 'private' | 'host' {
  if (value === undefined || value === '' || value === 'private') return 'private';
  if (value === 'host') return 'host';
  throw new MdockerError('INVALID_ARGUMENT', `unsupported --userns ${JSON.stringify(value)} (known: host, private)`);
}

/** Docker's --security-opt values that mdocker knows. */
function seccompFrom(securityOpt: string[]): 'default' | 'unconfined' {
  let seccomp: 'default' | 'unconfined' = 'default';
  for (const opt of securityOpt) {
    if (opt === 'seccomp=unconfined' || opt === 'seccomp:unconfined') seccomp = 'unconfined';
    else
      throw new MdockerError(
        'INVALID_ARGUMENT',
        `unsupported --security-opt ${JSON.stringify(opt)} (known: seccomp=unconfined)`,
      );
  }
  return seccomp;
}

program
  .command('run')
  .description('run a command in a new container (default image busybox, default command /bin/sh)')
  .usage('[OPTIONS] [IMAGE] [COMMAND] [ARG...]')
  .argument('[image]', 'image name; a first argument starting with / is the command, in the busybox image')
  .argument('[command...]', 'command and arguments')
  .passThroughOptions()
  .option('--name <name>', 'assign a name to the container')
  .option('-h, --hostname <name>', 'container host name (default: its short id)')
  .option('-m, --memory <bytes>', 'memory limit, e.g. 64m, 1g (swap is not allowed)')
  .option('--cpus <number>', 'number of CPUs, e.g. 0.5')
  .option('--pids-limit <n>', 'maximum number of processes')
  .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect, [])
  .option('-w, --workdir <dir>', 'working directory inside the container')
  .option('-i, --interactive', 'keep stdin open')
  .option('-t, --tty', 'allocate a terminal')
  .option('--rm', 'remove the container when it exits')
  .option('-d, --detach', 'run in the background and print the container id')
  .option('--rootfs <dir>', 'run a plain directory read-write instead of an image')
  .option('--cgroup-parent <path>', 'parent cgroup for the container (default: mdocker below our own)')
  .option('--cap-add <capability>', 'add a Linux capability (repeatable), e.g. SYS_ADMIN', collect, [])
  .option('--cap-drop <capability>', 'drop a Linux capability (repeatable), or ALL', collect, [])
  .option('--security-opt <option>', 'seccomp=unconfined turns the seccomp filter off (for teaching)', collect, [])
  .option('--userns <mode>', "host: the container's root is the host's (for teaching); default private")
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
    if (!flags.interactive && !flags.tty && !flags.detach && process.stdin.isTTY && process.stdout.isTTY) {
      flags.interactive = true;
      flags.tty = true;
    }
    if (flags.tty && !process.stdin.isTTY)
      throw new MdockerError('INVALID_ARGUMENT', 'the input device is not a TTY (drop -t)');
    if (flags.tty && flags.detach)
      throw new MdockerError('INVALID_ARGUMENT', '-t with -d is not supported: use mdocker exec -it later');

    const runtime = await openRuntime();
    const { DEFAULT_CMD } = await import('../runtime/containers.js');
    const prepared = await runtime.create({
      image: spec.image,
      rootfs: flags.rootfs,
      name: spec.name,
      hostname: spec.hostname,
      cmd: spec.cmd ?? DEFAULT_CMD,
      env: spec.env,
      workdir: flags.workdir,
      tty: flags.tty ?? false,
      limits: spec.limits,
      cgroupParent: flags.cgroupParent,
      security: {
        capAdd: flags.capAdd,
        capDrop: flags.capDrop,
        seccomp: seccompFrom(flags.securityOpt),
        userns: usernsFrom(flags.userns),
      },
      autoRemove: flags.rm ?? false,
      dieWithParent: !flags.detach,
    });
    const id = prepared.record.id;

    if (flags.detach) {
      const { spawn } = await import('node:child_process');
      const { openSync } = await import('node:fs');
      const log = openSync(runtime.state.file(id, 'output.log'), 'a', 0o600);
      const child = spawn(prepared.file, prepared.args, { detached: true, stdio: ['ignore', log, log] });
      const exited = new Promise<number>((resolveExit) =>
        child.on('exit', (code, signal) => resolveExit(code ?? (signal ? 137 : 125))),
      );
      const record = await runtime.started(id, child.pid ?? -1);
      if (!record.init) {
        const code = await exited;
        const { error } = await runtime.exited(id, code);
        throw new MdockerError('LAUNCH_FAILED', error?.message ?? `the container exited at once (${code})`);
      }
      child.unref();
      process.stdout.write(id + '\n');
      return;
    }

    const { attachPipes, attachPty } = await import('./attach.js');
    const attached = flags.tty
      ? await attachPty(prepared)
      : attachPipes(prepared, { interactive: flags.interactive ?? false });
    const started = runtime.started(id, attached.pid).catch(() => undefined);
    const code = await attached.exit;
    await started;
    const { error } = await runtime.exited(id, code);
    if (error) process.stderr.write(`mdocker: ${error.message}\n`);
    process.exitCode = code;
  });

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
      if (flags.tty && !process.stdin.isTTY)
        throw new MdockerError('INVALID_ARGUMENT', 'the input device is not a TTY (drop -t)');
      const runtime = await openRuntime();
      const record = await runtime.get(container);
      const errorFile = join(runtime.state.dir(record.id), `exec-${randomBytes(6).toString('hex')}.error.json`);
      const command = await runtime.execCommand(record.id, {
        cmd,
        tty: flags.tty ?? false,
        env: env.length > 0 ? [...record.env, ...env] : undefined,
        workdir: flags.workdir,
        dieWithParent: true,
        errorFile,
      });
      const { attachPipes, attachPty } = await import('./attach.js');
      const attached = flags.tty
        ? await attachPty(command)
        : attachPipes(command, { interactive: flags.interactive ?? false });
      const code = await attached.exit;
      const { readFile } = await import('node:fs/promises');
      const { parseLaunchError } = await import('../runtime/containers.js');
      const error = parseLaunchError(await readFile(errorFile, 'utf8').catch(() => null));
      await rm(errorFile, { force: true });
      if (error) process.stderr.write(`mdocker: ${error.message}\n`);
      process.exitCode = code;
    },
  );

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
      c.name,
    ]);
    process.stdout.write(table(['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PID', 'NAMES'], rows));
  });

program
  .command('stats')
  .description("display a live stream of containers' resource usage, read from their cgroups")
  .argument('[containers...]')
  .option('--no-stream', 'print one sample and exit')
  .action(async (names: string[], flags: { stream: boolean }) => {
    const { formatBytes } = await import('../runtime/units.js');
    const runtime = await openRuntime();
    const pick = async () =>
      names.length > 0
        ? Promise.all(names.map((n) => runtime.get(n)))
        : (await runtime.list()).filter((c) => c.status === 'running');
    const previous = new Map<string, { usec: number; at: number }>();
    const sample = async () => {
      const rows: string[][] = [];
      for (const c of await pick()) {
        if (c.status !== 'running') continue;
        const s = await runtime.stats(c.id).catch(() => null);
        if (!s) continue;
        const at = performance.now();
        const prev = previous.get(c.id);
        previous.set(c.id, { usec: s.cpuUsageUsec, at });
        const cpu = prev ? ((s.cpuUsageUsec - prev.usec) / ((at - prev.at) * 1000)) * 100 : 0;
        rows.push([
          shortId(c.id),
          c.name,
          `${cpu.toFixed(2)}%`,
          `${formatBytes(s.memoryBytes)} / ${s.memoryLimitBytes === null ? 'unlimited' : formatBytes(s.memoryLimitBytes)}`,
          s.memoryLimitBytes ? `${((s.memoryBytes / s.memoryLimitBytes) * 100).toFixed(2)}%` : '--',
          s.pidsLimit === null ? String(s.pids) : `${s.pids} / ${s.pidsLimit}`,
          String(s.pidsLimitHits),
          String(s.oomKills),
          String(s.cpuThrottledPeriods),
        ]);
      }
      return table(
        [
          'CONTAINER ID',
          'NAME',
          'CPU %',
          'MEM USAGE / LIMIT',
          'MEM %',
          'PIDS',
          'PIDS LIMIT HITS',
          'OOM KILLS',
          'THROTTLED',
        ],
        rows,
      );
    };
    await sample();
    await sleep(500);
    if (!flags.stream) {
      process.stdout.write(await sample());
      return;
    }
    process.on('SIGINT', () => process.exit(0));
    for (;;) {
      const text = await sample();
      process.stdout.write('\x1b[2J\x1b[H' + text);
      await sleep(1000);
    }
  });

program
  .command('update')
  .description("change a running container's limits")
  .argument('<containers...>')
  .option('-m, --memory <bytes>', 'memory limit, e.g. 64m')
  .option('--cpus <number>', 'number of CPUs')
  .option('--pids-limit <n>', 'maximum number of processes')
  .action(async (names: string[], flags: { memory?: string; cpus?: string; pidsLimit?: string }) => {
    const { validateInput, limitsUpdateSchema } = await import('../runtime/spec.js');
    const limits = validateInput(
      limitsUpdateSchema,
      Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)),
    );
    const runtime = await openRuntime();
    for (const name of names) {
      await runtime.update(name, limits);
      process.stdout.write(name + '\n');
    }
  });

program
  .command('kill')
  .description("send a signal to containers' init (default SIGKILL)")
  .argument('<containers...>')
  .option('-s, --signal <signal>', 'signal to send', 'SIGKILL')
  .action(async (names: string[], flags: { signal: string }) => {
    const signal = /^\d+$/.test(flags.signal)
      ? Number(flags.signal)
      : (flags.signal.toUpperCase().replace(/^(?!SIG)/, 'SIG') as NodeJS.Signals);
    const runtime = await openRuntime();
    for (const name of names) {
      await runtime.kill(name, signal);
      process.stdout.write(name + '\n');
    }
  });

program
  .command('rm')
  .description('remove containers')
  .argument('<containers...>')
  .option('-f, --force', 'kill and remove a running container')
  .action(async (names: string[], flags: { force?: boolean }) => {
    const runtime = await openRuntime();
    let failed = false;
    for (const name of names) {
      try {
        await runtime.remove(name, { force: flags.force ?? false });
        process.stdout.write(name + '\n');
      } catch (err) {
        failed = true;
        process.stderr.write(`mdocker: ${toMdockerError(err).message}\n`);
      }
    }
    if (failed) process.exitCode = 1;
  });

registerInfo(program, () => openRuntime({ reap: false }));

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

registerServe(program);

function exitCodeFor(err: MdockerError, verb: string | undefined): number {
  // docker run reports its own failures as 125; other verbs as 1.
  return verb === 'run' || verb === 'exec' ? 125 : 1;
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const e = toMdockerError(err);
  process.stderr.write(`mdocker: ${e.message}\n`);
  process.exitCode = exitCodeFor(e, process.argv[2]);
}
