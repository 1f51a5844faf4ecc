/**
 * Docker-style units for display and for form input: 67108864 bytes shows as "64m", the
 * same spelling `mdocker run --memory` and the API accept.
 */
import type { ContainerJson, ExitReason } from '../../server/src/protocol/index';

const UNITS: [suffix: string, bytes: number][] = [
  ['g', 1024 ** 3],
  ['m', 1024 ** 2],
  ['k', 1024],
];

export function formatMemory(bytes: number | null): string {
  if (bytes === null) return '';
  for (const [suffix, size] of UNITS) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${suffix}`;
  }
  return String(bytes);
}

export function formatBytesHuman(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(0)} KiB`;
  return `${bytes} B`;
}

export function formatCpus(cpus: number | null): string {
  if (cpus === null) return '';
  return String(Math.round(cpus * 1000) / 1000);
}

/** A memory field's text as the API wants it: a plain number of bytes, or "64m" as typed. */
export function parseMemoryInput(text: string): number | string | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  return /^\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
}

export function parseCpusInput(text: string): number | string | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : trimmed;
}

/** Returns undefined for an empty field; NaN (refused by the server with a clear error)
 * when the text is not an integer. */
export function parsePidsInput(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  return /^\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
}

export function limitsSummary(c: ContainerJson): string {
  const parts = [
    c.limits.memoryBytes === null ? 'memory: no limit' : `memory ${formatMemory(c.limits.memoryBytes)}`,
    c.limits.cpus === null ? 'cpus: no limit' : `${formatCpus(c.limits.cpus)} cpus`,
    c.limits.pidsLimit === null ? 'pids: no limit' : `${c.limits.pidsLimit} pids`,
  ];
  return parts.join(' · ');
}

export function stateSummary(c: ContainerJson): string {
  if (c.state === 'exited') return `exited (${describeExit(c.exitCode, c.exitReason)})`;
  return c.state;
}

export function describeExit(exitCode: number | null, reason: ExitReason | null): string {
  const status = exitCode === null ? 'no exit status' : `exit status ${exitCode}`;
  const signal = exitCode !== null && exitCode > 128 && exitCode < 160 ? ` (signal ${exitCode - 128})` : '';
  const why: Record<ExitReason, string> = {
    exited: 'its process exited',
    killed: 'it was killed',
    oom: 'the kernel’s OOM killer ended it: it ran out of its memory limit',
    idle: 'no one was attached for longer than the idle timeout',
    lifetime: 'it reached the maximum lifetime',
    shutdown: 'the server is shutting down',
    'class-ended': 'the teacher ended the class',
    reset: 'the teacher reset the container',
    'launch-failed': 'the container could not be started',
  };
  return `${status}${signal}${reason ? ` — ${why[reason] ?? reason}` : ''}`;
}
