/**
 * The TCP ports a container listens on, read from its network namespace's
 * /proc/<pid>/net/tcp and tcp6 (the kernel's socket tables, as `ss -ltn` reads them).
 */
import { readFile } from 'node:fs/promises';
import { isAlive, type ProcessRef } from './native.js';

/** The `st` column of a socket in LISTEN (include/net/tcp_states.h: TCP_LISTEN = 10). */
const TCP_LISTEN = '0A';

/**
 * The listening ports of one /proc/net/tcp or tcp6 table, each once, ascending. A line:
 * `sl local_address rem_address st ...`, the local address `HEXADDR:HEXPORT`.
 */
export function parseListeningPorts(text: string): number[] {
  const ports = new Set<number>();
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || fields[3] !== TCP_LISTEN) continue;
    const match = /^[0-9A-Fa-f]+:([0-9A-Fa-f]{4})$/.exec(fields[1]!);
    if (!match) continue;
    const port = parseInt(match[1]!, 16);
    if (port > 0) ports.add(port);
  }
  return [...ports].sort((a, b) => a - b);
}

async function readTable(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    // tcp6 is absent on a kernel without IPv6.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/**
 * The TCP ports listening in the network namespace of the process (a container's init),
 * ascending; null when the process is gone. /proc/<pid>/net follows the namespace of the
 * process at that pid when opened; the start time checked after reading proves it was
 * still this process (a pid is reused only after its process is gone).
 */
export async function listeningPorts(init: ProcessRef): Promise<number[] | null> {
  let tables: string[];
  try {
    tables = await Promise.all([readTable(`/proc/${init.pid}/net/tcp`), readTable(`/proc/${init.pid}/net/tcp6`)]);
  } catch {
    return null;
  }
  if (!isAlive(init)) return null;
  const ports = new Set(tables.flatMap(parseListeningPorts));
  return [...ports].sort((a, b) => a - b);
}
