/**
 * Docker-style resource units: `--memory 64m`, `--cpus 0.5`, `--pids-limit 100`, parsed into
 * plain numbers with their unit in the name, and byte counts formatted the way
 * `docker stats` prints them.
 */
import { availableParallelism } from 'node:os';
import { MdockerError } from './errors.js';

export interface Limits {
  memoryBytes: number | null;
  cpus: number | null;
  pidsLimit: number | null;
}

export interface LimitsInput {
  memory?: string | number | null | undefined;
  cpus?: string | number | null | undefined;
  pidsLimit?: string | number | null | undefined;
}

/** Docker refuses smaller limits: the container would be OOM-killed while starting. */
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;

/** The kernel rejects a CFS quota below 1 ms of a 100 ms period, i.e. 0.01 CPUs. */
export const MIN_CPUS = 0.01;

/** PID_MAX_LIMIT on 64-bit kernels; pids.max rejects anything above it. */
export const MAX_PIDS_LIMIT = 4 * 1024 * 1024;

const BINARY_MULTIPLIERS: Readonly<Record<string, number>> = {
  '': 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
};

// Mirrors docker's RAMInBytes: "64m", "64mb", "64MiB", "1.5g", "100b", "100".
const MEMORY_PATTERN = /^(\d+(?:\.\d+)?) ?(?:([kmgt])i?)?b?$/i;

function invalid(message: string, details?: Record<string, unknown>): MdockerError {
  return new MdockerError('INVALID_ARGUMENT', message, details);
}

/** Quotes user input for an error line without letting control characters through. */
function quote(input: string | number): string {
  return JSON.stringify(typeof input === 'number' ? String(input) : input.slice(0, 64));
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Sizes of buffers and files ("16k", "1m"), not container memory (parseMemoryBytes). */
export function parseSizeBytes(input: string | number, what: string): number {
  const match = /^(\d+)\s*([kmg]?)i?b?$/i.exec(String(input).trim());
  const shown = JSON.stringify(String(input).slice(0, 64));
  if (!match) throw invalid(`invalid ${what} ${shown}: expected a size such as 16k or 1m`, { option: what });
  const bytes = Number(match[1]) * SIZE_UNITS[match[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw invalid(`invalid ${what} ${shown}: must be a positive size`, { option: what });
  }
  return bytes;
}

export function parseMemoryBytes(input: string | number): number {
  const expected = `invalid memory ${quote(input)}: expected bytes or a number with b, k, m, g or t`;
  let bytes: number;
  if (typeof input === 'number') {
    if (!Number.isInteger(input)) throw invalid(`${expected} (a plain number must be whole bytes)`);
    bytes = input;
  } else {
    const match = MEMORY_PATTERN.exec(input.trim());
    if (!match) throw invalid(expected);
    const multiplier = BINARY_MULTIPLIERS[(match[2] ?? '').toLowerCase()] ?? 1;
    // Docker truncates fractional bytes ("1.3k" is 1331), so do we.
    bytes = Math.floor(Number(match[1]) * multiplier);
  }
  if (!Number.isSafeInteger(bytes) || bytes > Number.MAX_SAFE_INTEGER) {
    throw invalid(`invalid memory ${quote(input)}: too large`);
  }
  if (bytes <= 0) throw invalid(`invalid memory ${quote(input)}: must be greater than zero`);
  if (bytes < MIN_MEMORY_BYTES) {
    throw invalid(`invalid memory ${quote(input)}: minimum memory limit allowed is 6MB`, {
      minBytes: MIN_MEMORY_BYTES,
    });
  }
  return bytes;
}

/**
 * `hostCpus` bounds the value like docker does ("range of CPUs is from 0.01 to 4.00");
 * a quota above the host's CPU count would be a limit that never limits.
 */
export function parseCpus(input: string | number, hostCpus: number = availableParallelism()): number {
  const text = typeof input === 'number' ? String(input) : input.trim();
  if (!/^(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i.test(text)) {
    throw invalid(`invalid cpus ${quote(input)}: expected a number of CPUs such as 0.5 or 2`);
  }
  const cpus = Number(text);
  if (!Number.isFinite(cpus)) throw invalid(`invalid cpus ${quote(input)}: too large`);
  if (cpus <= 0) throw invalid(`invalid cpus ${quote(input)}: must be greater than zero`);
  if (cpus < MIN_CPUS || cpus > hostCpus) {
    throw invalid(
      `invalid cpus ${quote(input)}: range of CPUs is from ${MIN_CPUS.toFixed(2)} to ${hostCpus.toFixed(2)}, ` +
        `as there ${hostCpus === 1 ? 'is only 1 CPU' : `are only ${hostCpus} CPUs`} available`,
      { minCpus: MIN_CPUS, maxCpus: hostCpus },
    );
  }
  return cpus;
}

export function parsePidsLimit(input: string | number): number {
  const text = typeof input === 'number' ? String(input) : input.trim();
  if (!/^-?\d+$/.test(text)) throw invalid(`invalid pids limit ${quote(input)}: expected a whole number`);
  const pids = Number(text);
  if (pids <= 0) throw invalid(`invalid pids limit ${quote(input)}: must be greater than zero`);
  if (pids > MAX_PIDS_LIMIT) {
    throw invalid(`invalid pids limit ${quote(input)}: the kernel allows at most ${MAX_PIDS_LIMIT}`, {
      maxPidsLimit: MAX_PIDS_LIMIT,
    });
  }
  return pids;
}

/** Absent (undefined or null) means "no limit". */
export function parseLimits(input: LimitsInput, hostCpus?: number): Limits {
  return {
    memoryBytes: input.memory == null ? null : parseMemoryBytes(input.memory),
    cpus: input.cpus == null ? null : parseCpus(input.cpus, hostCpus),
    pidsLimit: input.pidsLimit == null ? null : parsePidsLimit(input.pidsLimit),
  };
}

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/** Like `docker stats` (go-units BytesSize): four significant digits, binary units, "12.3MiB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  let size = Math.abs(bytes);
  let unitIndex = 0;
  while (size >= 1024 && unitIndex < BINARY_UNITS.length - 1) {
    size /= 1024;
    unitIndex++;
  }
  // toPrecision keeps trailing zeros ("12.30"); %g in Go drops them.
  const digits = Number(size.toPrecision(4)).toString();
  return `${bytes < 0 ? '-' : ''}${digits}${BINARY_UNITS[unitIndex]}`;
}
