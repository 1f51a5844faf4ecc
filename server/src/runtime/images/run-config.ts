/**
 * What a container runs, from its image's config and the user's overrides, as Docker
 * decides it: the entrypoint (or --entrypoint) followed by the command given, else the
 * image's Cmd (which --entrypoint resets); the image's Env with -e on top; -w, else the
 * image's WorkingDir, else /; --user, else the image's User, resolved in the image.
 */
import { MdockerError } from '../errors.js';
import type { RunConfig } from './oci.js';
import { readImageFile, resolveUser } from './user.js';

export interface RunOverrides {
  cmd?: string[];
  /** --entrypoint: replaces the image's ([] : none). */
  entrypoint?: string[];
  env?: string[];
  workdir?: string;
  user?: string;
  /** --group-add: more supplementary groups, names of the image's /etc/group or gids. */
  groupAdd?: string[];
}

export interface RunSettings {
  cmd: string[];
  env: string[];
  workdir: string;
  /** "uid:gid", or null for the container's root. */
  user: string | null;
  /** The user's supplementary gids ([] for the container's root). */
  groups: number[];
}

function envKey(entry: string): string {
  const equals = entry.indexOf('=');
  return equals === -1 ? entry : entry.slice(0, equals);
}

/** Entries of later lists replace earlier ones of the same key, in place. */
export function mergeEnv(...lists: string[][]): string[] {
  const merged = new Map<string, string>();
  for (const list of lists) {
    for (const entry of list) {
      // An image's "KEY" without "=" sets nothing.
      if (!entry.includes('=')) continue;
      merged.set(envKey(entry), entry);
    }
  }
  return [...merged.values()];
}

export async function runSettings(
  config: RunConfig,
  overrides: RunOverrides,
  layerRoots: string[],
): Promise<RunSettings> {
  const entrypoint = overrides.entrypoint ?? config.entrypoint;
  const givenCmd = overrides.cmd !== undefined && overrides.cmd.length > 0 ? overrides.cmd : undefined;
  const cmd = [...entrypoint, ...(givenCmd ?? (overrides.entrypoint !== undefined ? [] : config.cmd))];
  if (cmd.length === 0 || cmd[0] === '') {
    throw new MdockerError('INVALID_ARGUMENT', 'no command specified: the image has no Entrypoint or Cmd, give one');
  }
  const groupAdd = overrides.groupAdd ?? [];
  // --group-add alone gives the container's root the groups, as root.
  const userSpec = overrides.user ?? (config.user === '' && groupAdd.length > 0 ? '0' : config.user);
  let env = mergeEnv(config.env, overrides.env ?? []);
  let user: string | null = null;
  let groups: number[] = [];
  if (userSpec !== '') {
    const [passwd, group] = await Promise.all([
      readImageFile(layerRoots, 'etc/passwd'),
      readImageFile(layerRoots, 'etc/group'),
    ]);
    const resolved = resolveUser(userSpec, passwd, group, groupAdd);
    user = `${resolved.uid}:${resolved.gid}`;
    groups = resolved.groups;
    if (!env.some((entry) => envKey(entry) === 'HOME')) env = [...env, `HOME=${resolved.home}`];
  }
  const workdir = overrides.workdir ?? (config.workdir !== '' ? config.workdir : '/');
  if (!workdir.startsWith('/')) {
    throw new MdockerError('INVALID_ARGUMENT', `the working directory must be absolute: ${workdir.slice(0, 200)}`);
  }
  return { cmd, env, workdir, user, groups };
}
