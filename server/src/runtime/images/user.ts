/**
 * An image's User as Docker resolves it: `name`, `uid`, `name:group`, `uid:gid`, names
 * through the image's own /etc/passwd and /etc/group (read from its layers, top first,
 * never following a symlink), HOME from the passwd entry, and the supplementary groups:
 * those of /etc/group that list the user's name, then --group-add's.
 */
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MdockerError } from '../errors.js';

const MAX_ACCOUNT_FILE_BYTES = 1024 * 1024;
/** A container's ids: its user namespace maps 0..65535. */
const MAX_CONTAINER_ID = 65535;

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** The passwd entry's home, else / as Docker sets it. */
  home: string;
  /** Supplementary gids, without duplicates (the primary gid may be among them). */
  groups: number[];
}

interface Account {
  name: string;
  id: number;
  gid: number;
  home: string;
  /** /etc/group's fourth field: the names of the group's members. */
  members: string[];
}

function parseAccounts(text: string): Account[] {
  const out: Account[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields.length < 3 || !/^\d+$/.test(fields[2]!)) continue;
    out.push({
      name: fields[0]!,
      id: Number(fields[2]),
      gid: /^\d+$/.test(fields[3] ?? '') ? Number(fields[3]) : 0,
      home: fields[5] || '/',
      members: (fields[3] ?? '').split(',').filter((m) => m !== ''),
    });
  }
  return out;
}

function checkedId(value: number, what: string, spec: string): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_CONTAINER_ID) {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `invalid user ${JSON.stringify(spec)}: ${what} must be 0..${MAX_CONTAINER_ID}`,
    );
  }
  return value;
}

function groupIdByName(name: string, groups: Account[]): number {
  if (/^\d+$/.test(name)) return Number(name);
  const found = groups.find((g) => g.name === name);
  if (found === undefined) {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `unable to find group ${name}: no matching entries in the image's /etc/group`,
    );
  }
  return found.id;
}

/**
 * Resolves a user spec against the image's passwd and group texts (empty when absent),
 * with --group-add's names or gids. A supplementary group the container's user namespace
 * does not map is refused: setgroups(2) could not set it.
 */
export function resolveUser(spec: string, passwd: string, group: string, groupAdd: string[] = []): ResolvedUser {
  const [userPart = '', groupPart] = spec.split(':', 2);
  if (userPart === '' || spec.includes('\0')) {
    throw new MdockerError('INVALID_ARGUMENT', `invalid user ${JSON.stringify(spec.slice(0, 64))}`);
  }
  const users = parseAccounts(passwd);
  const groups = parseAccounts(group);
  const numeric = /^\d+$/.test(userPart);
  const account = numeric ? users.find((u) => u.id === Number(userPart)) : users.find((u) => u.name === userPart);
  if (!numeric && account === undefined) {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `unable to find user ${userPart}: no matching entries in the image's /etc/passwd`,
    );
  }
  const uid = checkedId(numeric ? Number(userPart) : account!.id, 'the uid', spec);
  let gid = account?.gid ?? 0;
  if (groupPart !== undefined && groupPart !== '') gid = groupIdByName(groupPart, groups);
  const supplementary = new Map<number, string>();
  if (account !== undefined) {
    for (const g of groups) if (g.members.includes(account.name)) supplementary.set(g.id, g.name);
  }
  for (const name of groupAdd) supplementary.set(groupIdByName(name, groups), name);
  for (const [id, name] of supplementary) {
    if (id > MAX_CONTAINER_ID) {
      throw new MdockerError(
        'INVALID_ARGUMENT',
        `group ${name} (gid ${id}) of user ${userPart} lies outside the container's ids 0..${MAX_CONTAINER_ID}`,
      );
    }
  }
  return {
    uid,
    gid: checkedId(gid, 'the gid', spec),
    home: account?.home ?? '/',
    groups: [...supplementary.keys()],
  };
}

/**
 * A small file of the image as the container would see it (rel such as etc/passwd): the
 * topmost layer that has it, or '' when none does or a layer deletes it. Symlinks are not
 * followed, in the path or at its end.
 */
export async function readImageFile(layerRoots: string[], rel: string): Promise<string> {
  const parts = rel.split('/');
  for (const root of [...layerRoots].reverse()) {
    let path = root;
    let hidden = false;
    let present = true;
    for (const [i, part] of parts.entries()) {
      path = join(path, part);
      let stats;
      try {
        stats = await lstat(path);
      } catch {
        present = false;
        break;
      }
      // An overlay whiteout (character device 0/0) deletes what lies below.
      if (stats.isCharacterDevice() && stats.rdev === 0) hidden = true;
      const last = i === parts.length - 1;
      if (hidden || (!last && !stats.isDirectory()) || (last && !stats.isFile())) {
        present = false;
        break;
      }
    }
    if (hidden) return '';
    if (!present) continue;
    const bytes = await readFile(path);
    return bytes.subarray(0, MAX_ACCOUNT_FILE_BYTES).toString('utf8');
  }
  return '';
}
