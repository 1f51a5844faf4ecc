/**
 * Container state on disk: one directory per container under /run/mdocker (tmpfs on
 * most hosts: a reboot forgets containers, as it kills them), so `mdocker ps` in one
 * shell sees what `mdocker run` started in another, and a crashed server's leftovers
 * are found at its next start.
 *
 *   /run/mdocker/<id>/state.json   the record (written atomically)
 *   /run/mdocker/<id>/layer/       the launcher mounts the writable layer's tmpfs here,
 *                                  inside the container's mount namespace only
 *   /run/mdocker/<id>/init.pid     the init's host pid, written by the launcher
 *   /run/mdocker/<id>/error.json   the launcher's JSON error line, if it failed
 *   /run/mdocker/<id>/exit.json    the exit code, written by the launcher
 *   /run/mdocker/names/<name>      symlink to ../<id>: names are unique
 *   /run/mdocker/groups/<name>.json a group's record (a class's cgroup and its owner), so
 *                                  the next start reaps the group of a server killed -9
 */
// Synchronous calls behind the async methods: one container's state is a few small files
// on tmpfs, where a synchronous call costs a tenth of a thread-pool round trip and a
// create or a start makes a dozen (bench/PROFILE.md §4).
import {
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { MdockerError } from './errors.js';
import type { Limits } from './units.js';
import type { ProcessRef } from './native.js';
import type { SecurityOptions } from './launcher.js';

export interface ContainerRecord {
  id: string;
  name: string;
  image: string | null;
  /** The stored image's id (images/store.ts) it runs from; null or absent: a built-in image or a rootfs. */
  imageId?: string | null;
  rootfs: string | null;
  hostname: string;
  cmd: string[];
  env: string[];
  workdir: string;
  /** "uid:gid" its command runs as (the image's User or --user); absent: the container's root. */
  user?: string;
  /** That user's supplementary gids (the image's /etc/group, --group-add); absent: none. */
  groups?: number[];
  tty: boolean;
  limits: Limits;
  security: SecurityOptions;
  cgroupPaths: string[];
  /** The group (createGroup) whose cgroup holds the container's; absent in older records. */
  group?: string | null;
  /** The network it is on and its address there; null or absent: none (only lo). */
  network?: { name: string; ip: string } | null;
  /** Removed with all its state when it ends (docker run --rm; every playground container). */
  autoRemove: boolean;
  /** Who started it: its containers die with it (the launcher's --die-with-parent). */
  owner: ProcessRef | null;
  createdAt: string;
  launcher: ProcessRef | null;
  init: ProcessRef | null;
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
}

/** A group of containers sharing a budget (a playground class), and who made it. */
export interface GroupRecord {
  name: string;
  budget: { memoryBytes: number | null; cpus: number | null };
  /** The --cgroup-parent it was made below; null for the default one. */
  cgroupParent: string | null;
  /** Its directories, once made (absolute, like a container's). */
  cgroupPaths: string[];
  /** The process that made it: the group is a leftover once it is gone. */
  owner: ProcessRef | null;
  createdAt: string;
}

let tmpCounter = 0;

function writeAtomically(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.${(tmpCounter++).toString(36)}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}

export const ID_PATTERN = /^[0-9a-f]{32}$/;

export class StateStore {
  readonly root: string;

  constructor(root: string = process.env.MDOCKER_STATE_ROOT ?? '/run/mdocker') {
    this.root = root;
  }

  dir(id: string): string {
    if (!ID_PATTERN.test(id)) throw new MdockerError('INVALID_ARGUMENT', `invalid container id ${JSON.stringify(id)}`);
    return join(this.root, id);
  }

  file(id: string, name: 'state.json' | 'init.pid' | 'error.json' | 'exit.json' | 'layer' | 'output.log'): string {
    return join(this.dir(id), name);
  }

  /** Makes the container's directory and reserves its name; CONFLICT if the name is taken. */
  async createDir(record: ContainerRecord): Promise<void> {
    mkdirSync(join(this.root, 'names'), { recursive: true, mode: 0o700 });
    mkdirSync(this.dir(record.id), { mode: 0o700 });
    mkdirSync(this.file(record.id, 'layer'), { mode: 0o700 });
    try {
      await this.reserveName(record.name, record.id);
      await this.write(record);
    } catch (err) {
      rmSync(this.dir(record.id), { recursive: true, force: true });
      throw err;
    }
  }

  private async reserveName(name: string, id: string): Promise<void> {
    const link = join(this.root, 'names', name);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        symlinkSync(`../${id}`, link);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        // A name whose container is gone (removed by a launcher's --cleanup-dir) is free.
        const holder = await this.nameHolder(name);
        if (holder !== null) {
          throw new MdockerError(
            'CONFLICT',
            `the container name "${name}" is already in use by ${holder.slice(0, 12)}`,
          );
        }
        try {
          unlinkSync(link);
        } catch {
          // gone already
        }
      }
    }
    throw new MdockerError('CONFLICT', `the container name "${name}" is already in use`);
  }

  /** The id holding name, or null when the name is free. */
  async nameHolder(name: string): Promise<string | null> {
    try {
      const target = readlinkSync(join(this.root, 'names', name));
      const id = target.replace(/^\.\.\//, '');
      statSync(join(this.root, id, 'state.json'));
      return id;
    } catch {
      return null;
    }
  }

  async write(record: ContainerRecord): Promise<void> {
    writeAtomically(this.file(record.id, 'state.json'), record);
  }

  /** The group's record file; the name is checked by the caller (validateGroupName). */
  private groupFile(name: string): string {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) {
      throw new MdockerError('INVALID_ARGUMENT', `invalid group name ${JSON.stringify(name.slice(0, 64))}`);
    }
    return join(this.root, 'groups', `${name}.json`);
  }

  async writeGroup(record: GroupRecord): Promise<void> {
    // The directory goes with its last record: a removal may take it between the two steps.
    for (let attempt = 0; ; attempt++) {
      mkdirSync(join(this.root, 'groups'), { recursive: true, mode: 0o700 });
      try {
        writeAtomically(this.groupFile(record.name), record);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 3) throw err;
      }
    }
  }

  async readGroup(name: string): Promise<GroupRecord | null> {
    try {
      return JSON.parse(readFileSync(this.groupFile(name), 'utf8')) as GroupRecord;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || err instanceof SyntaxError) return null;
      throw err;
    }
  }

  async readAllGroups(): Promise<GroupRecord[]> {
    let files: string[];
    try {
      files = readdirSync(join(this.root, 'groups')).filter((file) => file.endsWith('.json'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const records = await Promise.all(
      files.map((file) => this.readGroup(file.slice(0, -'.json'.length)).catch(() => null)),
    );
    return records.filter((r): r is GroupRecord => r !== null);
  }

  async removeGroup(name: string): Promise<void> {
    rmSync(this.groupFile(name), { force: true });
    try {
      rmdirSync(join(this.root, 'groups'));
    } catch {
      // others' records are still there (ENOTEMPTY), or it is gone already
    }
  }

  async read(id: string): Promise<ContainerRecord | null> {
    try {
      return JSON.parse(readFileSync(this.file(id, 'state.json'), 'utf8')) as ContainerRecord;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || err instanceof SyntaxError) return null;
      throw err;
    }
  }

  async ids(): Promise<string[]> {
    try {
      return readdirSync(this.root).filter((name) => ID_PATTERN.test(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async readAll(): Promise<ContainerRecord[]> {
    const records = await Promise.all((await this.ids()).map((id) => this.read(id)));
    return records.filter((r): r is ContainerRecord => r !== null);
  }

  /** Resolves a full id, a unique id prefix (as docker does) or a name. */
  async resolve(idOrName: string): Promise<string> {
    if (ID_PATTERN.test(idOrName) && (await this.read(idOrName))) return idOrName;
    if (/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(idOrName)) {
      const holder = await this.nameHolder(idOrName);
      if (holder) return holder;
    }
    if (/^[0-9a-f]{1,31}$/.test(idOrName)) {
      const matches = (await this.ids()).filter((id) => id.startsWith(idOrName));
      if (matches.length === 1 && matches[0]) return matches[0];
      if (matches.length > 1)
        throw new MdockerError('CONFLICT', `"${idOrName}" matches ${matches.length} containers: give more of the id`);
    }
    throw new MdockerError('NOT_FOUND', `no such container: ${idOrName}`);
  }

  async readText(id: string, name: 'init.pid' | 'error.json' | 'exit.json'): Promise<string | null> {
    try {
      return readFileSync(this.file(id, name), 'utf8');
    } catch {
      return null;
    }
  }

  async remove(record: ContainerRecord): Promise<void> {
    const link = join(this.root, 'names', record.name);
    try {
      if (readlinkSync(link) === `../${record.id}`) unlinkSync(link);
    } catch {
      // no name link, or another container's: leave it
    }
    removeStateDir(this.dir(record.id));
  }
}

/**
 * rmSync(dir, { recursive: true, force: true }) for a container's directory, which holds
 * files and an empty `layer` directory: one readdir, an unlink or rmdir per entry, one
 * rmdir. Node's recursive rm lstats every entry and tries the rmdir first, and its module
 * alone costs a CLI run 2 ms to load. Anything else (a layer left full) goes to rmSync.
 */
function removeStateDir(dir: string): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    // d_type: a symlink is unlinked, never followed.
    for (const entry of entries) (entry.isDirectory() ? rmdirSync : unlinkSync)(join(dir, entry.name));
    rmdirSync(dir);
  } catch {
    rmSync(dir, { recursive: true, force: true });
  }
}
