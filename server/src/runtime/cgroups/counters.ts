/**
 * A container's cgroup counter files held open for a stats reader, re-read with pread(2)
 * at offset 0 and parsed from the bytes without building strings.
 */
import { MdockerError } from '../errors.js';
import {
  cgroupFileError,
  errnoCode,
  type CgroupFs,
  type CgroupStats,
  type CgroupStatsReader,
  type KnownLimits,
} from './driver.js';

// One buffer for every reader: reads are synchronous, so two never overlap. The largest
// file read, memory.stat, is 1–2 KiB; a read that fills the buffer is refused, not cut.
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

const NEWLINE = 0x0a;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const MAX = Buffer.from('max');

/** Keys of a flat-keyed file as the bytes that start their line: "name ". */
export function keyedFileKeys(...names: string[]): readonly Buffer[] {
  return names.map((name) => Buffer.from(`${name} `));
}

/** The unsigned decimal starting at `start`, or -1 when no digit is there. */
function decimalAt(buf: Buffer, start: number, end: number): number {
  let value = 0;
  let at = start;
  for (; at < end; at++) {
    const byte = buf[at]!;
    if (byte < DIGIT_0 || byte > DIGIT_9) break;
    value = value * 10 + (byte - DIGIT_0);
  }
  return at === start ? -1 : value;
}

/** Where the run of digits starting at `start` ends. */
function digitsEnd(buf: Buffer, start: number, end: number): number {
  let at = start;
  while (at < end && buf[at]! >= DIGIT_0 && buf[at]! <= DIGIT_9) at++;
  return at;
}

export class CgroupCounterFiles {
  readonly #fs: CgroupFs;
  readonly #id: string;
  readonly #paths: string[] = [];
  readonly #fds: number[] = [];
  #closed = false;

  constructor(fs: CgroupFs, id: string) {
    this.#fs = fs;
    this.#id = id;
  }

  /**
   * Opens a file and returns its slot; -1 for an optional file this kernel lacks (pids.events
   * before 4.19). Any other failure closes every file opened so far.
   */
  open(path: string, optional = false): number {
    if (this.#closed) throw this.#gone(path, 'closed');
    try {
      this.#fds.push(this.#fs.openSync(path));
    } catch (err) {
      if (optional && errnoCode(err) === 'ENOENT') return -1;
      this.close();
      if (errnoCode(err) === 'ENOENT') throw this.#gone(path, 'ENOENT', err);
      throw cgroupFileError('opening', path, err);
    }
    this.#paths.push(path);
    return this.#fds.length - 1;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of this.#fds) {
      try {
        this.#fs.closeSync(fd);
      } catch {
        // close(2) releases the descriptor even when it reports an error.
      }
    }
    this.#fds.length = 0;
  }

  /** A single value (pids.current, memory.max); "max" is null. */
  value(slot: number): number | null {
    const length = this.#read(slot);
    if (length >= MAX.length && READ_BUFFER.compare(MAX, 0, MAX.length, 0, MAX.length) === 0) return null;
    const value = decimalAt(READ_BUFFER, 0, length);
    if (value < 0) throw this.#unexpected(slot, length);
    return value;
  }

  /**
   * A nanosecond counter (cpuacct.usage) in microseconds: the last three digits are dropped
   * before converting, so counters past 2^53 ns (about 104 days) stay exact.
   */
  nanosecondsAsMicroseconds(slot: number): number {
    const length = this.#read(slot);
    const end = digitsEnd(READ_BUFFER, 0, length);
    if (end === 0) throw this.#unexpected(slot, length);
    return end <= 3 ? 0 : decimalAt(READ_BUFFER, 0, end - 3);
  }

  /** The value of a file's one key of interest (keyedFileKeys of one name), 0 when absent. */
  keyedOne(slot: number, keys: readonly Buffer[], scratch: number[]): number {
    this.keyed(slot, keys, scratch);
    return scratch[0] ?? 0;
  }

  /**
   * Fills `values` with the values of `keys` (from keyedFileKeys) in a flat-keyed file
   * (cpu.stat, memory.stat, memory.events, pids.events); a key absent, or a slot of an
   * absent optional file, reads 0.
   */
  keyed(slot: number, keys: readonly Buffer[], values: number[]): void {
    values.fill(0, 0, keys.length);
    if (slot === -1) return;
    const length = this.#read(slot);
    const buf = READ_BUFFER;
    let line = 0;
    while (line < length) {
      let end = line;
      while (end < length && buf[end] !== NEWLINE) end++;
      for (let k = 0; k < keys.length; k++) {
        const key = keys[k]!;
        const valueAt = line + key.length;
        if (valueAt <= end && buf[line] === key[0] && buf.compare(key, 0, key.length, line, valueAt) === 0) {
          values[k] = Math.max(0, decimalAt(buf, valueAt, end));
          break;
        }
      }
      line = end + 1;
    }
  }

  /** pread(2) at offset 0: cgroupfs regenerates the content for every read from the start. */
  #read(slot: number): number {
    const path = this.#paths[slot] ?? `slot ${slot}`;
    const fd = this.#fds[slot];
    if (this.#closed || fd === undefined) throw this.#gone(path, 'closed');
    let length: number;
    try {
      length = this.#fs.preadSync(fd, READ_BUFFER);
    } catch (err) {
      // kernfs answers ENODEV for a file whose cgroup was removed while it was open.
      const errno = errnoCode(err);
      if (errno === 'ENODEV' || errno === 'ENOENT') {
        this.close();
        throw this.#gone(path, errno, err);
      }
      throw cgroupFileError('reading', path, err);
    }
    if (length >= READ_BUFFER.length) {
      throw new MdockerError('INTERNAL', `${path} is larger than ${READ_BUFFER.length} bytes`, { path });
    }
    return length;
  }

  #gone(path: string, reason: string, cause?: unknown): MdockerError {
    return new MdockerError(
      'NOT_FOUND',
      `the cgroup of container ${this.#id} is gone (${path}: ${reason})`,
      { path, errno: reason },
      cause === undefined ? undefined : { cause },
    );
  }

  #unexpected(slot: number, length: number): MdockerError {
    const path = this.#paths[slot] ?? `slot ${slot}`;
    const content = READ_BUFFER.toString('latin1', 0, Math.min(length, 32)).trim();
    return new MdockerError('INTERNAL', `unexpected content ${JSON.stringify(content)} in ${path}`, { path });
  }
}

/** Docker's memory "usage": page cache the kernel can drop at once is not the container's. */
export function usageWithoutInactiveFile(usageBytes: number, inactiveFileBytes: number): number {
  return inactiveFileBytes < usageBytes ? usageBytes - inactiveFileBytes : usageBytes;
}

/** What a reader reads from its counter files; the limits come from `limits()` or the caller. */
export type CgroupCounters = Omit<CgroupStats, 'memoryLimitBytes' | 'pidsLimit'>;

/**
 * A container's counters, opened once and re-read on every sample. Each cgroup version
 * says which files hold them (`counters`) and where its limits are (`limits`, opened only
 * when a caller does not know them).
 */
export abstract class CounterStatsReader implements CgroupStatsReader {
  protected readonly files: CgroupCounterFiles;
  /** Scratch for `keyed`: as long as the longest key list a reader passes. */
  protected readonly values: number[] = [0, 0, 0, 0];

  constructor(fs: CgroupFs, id: string) {
    this.files = new CgroupCounterFiles(fs, id);
  }

  read(known?: KnownLimits): CgroupStats {
    const counters = this.counters();
    const { memoryBytes: memoryLimitBytes, pidsLimit } = known ?? this.limits();
    return { ...counters, memoryLimitBytes, pidsLimit };
  }

  close(): void {
    this.files.close();
  }

  protected abstract counters(): CgroupCounters;
  protected abstract limits(): KnownLimits;
}

/** One sample, the files closed after it. */
export function readOnce(reader: CgroupStatsReader): CgroupStats {
  try {
    return reader.read();
  } finally {
    reader.close();
  }
}
