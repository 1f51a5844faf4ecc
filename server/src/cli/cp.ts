/** `mdocker cp`: files between a container and the host, or a tar on stdin/stdout, as `docker cp`. */
import type { Command } from 'commander';
import type { CopyEndpoint } from '../runtime/copy.js';
import { MdockerError } from '../runtime/errors.js';
import { openRuntime } from './common.js';

/**
 * One argument of `cp`, as Docker reads it: "-" is a tar on stdin or stdout; NAME:PATH a
 * container's path; anything else (an absolute path, one starting with ".", or without a
 * colon) the host's. A host path with a colon is written ./a:b.
 */
export function parseCopyArg(arg: string): CopyEndpoint {
  if (arg === '') throw new MdockerError('INVALID_ARGUMENT', 'empty path');
  if (arg === '-') return { kind: 'stdio' };
  const colon = arg.indexOf(':');
  if (arg.startsWith('/') || arg.startsWith('.') || colon < 0) return { kind: 'host', path: arg };
  const container = arg.slice(0, colon);
  const path = arg.slice(colon + 1);
  // A container name has no "/": "dir/a:b" is a host path.
  if (container.includes('/')) return { kind: 'host', path: arg };
  if (container === '') throw new MdockerError('INVALID_ARGUMENT', `missing container name in ${JSON.stringify(arg)}`);
  if (path === '')
    throw new MdockerError('INVALID_ARGUMENT', `missing path after "${container}:" (use ${container}:/ for its root)`);
  return { kind: 'container', container, path };
}

/** SRC and DEST: exactly one side is a container; "-" only against a container. */
export function parseCopyArgs(src: string, dest: string): { src: CopyEndpoint; dest: CopyEndpoint } {
  const from = parseCopyArg(src);
  const to = parseCopyArg(dest);
  if (from.kind === 'container' && to.kind === 'container') {
    throw new MdockerError('INVALID_ARGUMENT', 'copying between containers is not supported');
  }
  if (from.kind !== 'container' && to.kind !== 'container') {
    throw new MdockerError('INVALID_ARGUMENT', 'one of SRC and DEST must be a container path (CONTAINER:PATH)');
  }
  return { src: from, dest: to };
}

export function registerCp(program: Command): void {
  program
    .command('cp')
    .description('copy files between a container and the host ("-": a tar on stdin or stdout)')
    .usage('CONTAINER:SRC_PATH DEST_PATH|-\n       mdocker cp SRC_PATH|- CONTAINER:DEST_PATH')
    .argument('<src>')
    .argument('<dest>')
    .action(async (srcArg: string, destArg: string) => {
      const { src, dest } = parseCopyArgs(srcArg, destArg);
      if (src.kind === 'stdio' && process.stdin.isTTY) {
        throw new MdockerError('INVALID_ARGUMENT', 'expected a tar on stdin, not a terminal');
      }
      const { copyFiles } = await import('../runtime/copy.js');
      const runtime = await openRuntime();
      await copyFiles(src, dest, {
        stdin: process.stdin,
        stdout: process.stdout,
        onSkip: (path, why) => process.stderr.write(`mdocker: skipped ${path}: ${why}\n`),
        initOf: async (container) => {
          const view = await runtime.get(container);
          if (view.status !== 'running') {
            throw new MdockerError(
              'CONFLICT',
              `container ${container} is not running (its files live only while it runs)`,
            );
          }
          return { init: view.init, cgroupPaths: view.cgroupPaths, name: container };
        },
      });
    });
}
