/**
 * The working directory of the program a launcher started in a container (a terminal's
 * shell), as the container sees the path.
 */
import { readFile, readlink } from 'node:fs/promises';

/** The launcher's children that live in a PID namespace below ours (NSpid has more than
 * one PID): the container's process, not a helper the launcher forked on the host side. */
async function containerChildren(launcherPid: number): Promise<number[]> {
  let text: string;
  try {
    text = await readFile(`/proc/${launcherPid}/task/${launcherPid}/children`, 'utf8');
  } catch {
    return [];
  }
  const found: number[] = [];
  for (const pid of text.trim().split(/\s+/).filter(Boolean).map(Number)) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const nsPids = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
    if (nsPids.length > 1) found.push(pid);
  }
  return found;
}

async function parentOf(pid: number): Promise<number | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ")".
  const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  return Number.isInteger(ppid) ? ppid : null;
}

/**
 * The cwd of the launcher's process in the container, or null (gone, its directory
 * removed). The kernel writes /proc/PID/cwd by walking up from the directory until it
 * meets the reader's root; in the container's mount namespace, after its pivot_root, it
 * never does and stops at that namespace's root mount, the container's /: the path is
 * the container's. The parent is read again after the link, so a PID reused meanwhile
 * is not taken for the shell.
 */
export async function shellCwd(launcherPid: number): Promise<string | null> {
  for (const pid of await containerChildren(launcherPid)) {
    let cwd: string;
    try {
      cwd = await readlink(`/proc/${pid}/cwd`);
    } catch {
      continue;
    }
    if ((await parentOf(pid)) !== launcherPid) continue;
    if (!cwd.startsWith('/') || cwd.endsWith(' (deleted)')) return null;
    return cwd;
  }
  return null;
}
