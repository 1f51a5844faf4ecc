/**
 * Builds mdocker-init's command lines (native/README.md documents the flags). The only
 * module that knows them; the launcher's path comes from native.ts.
 */
import { launcherPath } from './native.js';

/** What the launcher applies before exec; the defaults (all empty) are the safe ones. */
export interface SecurityOptions {
  capAdd: string[];
  capDrop: string[];
  seccomp: 'default' | 'unconfined';
}

export const DEFAULT_SECURITY: SecurityOptions = { capAdd: [], capDrop: [], seccomp: 'default' };

export interface LaunchCommand {
  file: string;
  args: string[];
}

export interface RunLaunch {
  id: string;
  hostname: string;
  imagePath: string | null;
  rootfs: string | null;
  layerDir: string;
  layerSizeBytes: number;
  cgroupPaths: string[];
  env: string[];
  workdir: string;
  tty: boolean;
  pidFile: string;
  errorFile: string;
  exitFile: string;
  /** Removed by the launcher once the container is gone (--rm of a detached container). */
  cleanupDir: string | null;
  dieWithParent: boolean;
  security: SecurityOptions;
  cmd: string[];
}

export interface ExecLaunch {
  initPid: number;
  cgroupPaths: string[];
  env: string[];
  workdir: string | null;
  tty: boolean;
  pidFile: string | null;
  errorFile: string | null;
  dieWithParent: boolean;
  security: SecurityOptions;
  cmd: string[];
}

function common(
  args: string[],
  opts: {
    cgroupPaths: string[];
    env: string[];
    tty: boolean;
    dieWithParent: boolean;
    workdir: string | null;
    security: SecurityOptions;
  },
): void {
  for (const cap of opts.security.capAdd) args.push('--cap-add', cap);
  for (const cap of opts.security.capDrop) args.push('--cap-drop', cap);
  if (opts.security.seccomp !== 'default') args.push('--seccomp', opts.security.seccomp);
  for (const path of opts.cgroupPaths) args.push('--cgroup', path);
  for (const entry of opts.env) args.push('--env', entry);
  if (opts.workdir) args.push('--workdir', opts.workdir);
  if (opts.tty) args.push('--tty');
  if (opts.dieWithParent) args.push('--die-with-parent');
}

export function runCommand(launch: RunLaunch): LaunchCommand {
  const args = ['run', '--id', launch.id, '--hostname', launch.hostname];
  if (launch.imagePath) args.push('--image', launch.imagePath, '--layer-size', String(launch.layerSizeBytes));
  else if (launch.rootfs) args.push('--rootfs', launch.rootfs);
  args.push('--layer-dir', launch.layerDir);
  common(args, launch);
  args.push('--pid-file', launch.pidFile, '--error-file', launch.errorFile, '--exit-file', launch.exitFile);
  if (launch.cleanupDir) args.push('--cleanup-dir', launch.cleanupDir);
  args.push('--', ...launch.cmd);
  return { file: launcherPath, args };
}

export function execCommand(launch: ExecLaunch): LaunchCommand {
  const args = ['exec', '--pid', String(launch.initPid)];
  common(args, launch);
  if (launch.pidFile) args.push('--pid-file', launch.pidFile);
  if (launch.errorFile) args.push('--error-file', launch.errorFile);
  args.push('--', ...launch.cmd);
  return { file: launcherPath, args };
}
