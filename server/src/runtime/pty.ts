/**
 * A process on a new terminal: the launcher of a container or of an exec, for the server
 * and the CLI alike (process.ts). The shape is node-pty's `IPty` (the part the terminals
 * use), plus the level of the input queue, which node-pty does not tell.
 *
 * Why not node-pty: on Linux it starts the process with forkpty(3), a fork() of the whole
 * caller on its main thread. Its cost grows with the caller's resident memory, and every
 * container create pays it (bench/PROFILE.md §3; README, "Terminals"). The native addon opens the pty and starts the process with posix_spawn(3),
 * which costs the same at any size; the master is read here with a `tty.ReadStream`, as
 * node-pty does. It also keeps a copy of the slave until the child's output is read to
 * the end: on Linux the master may read EIO before the last few KiB once every slave is
 * closed, and node-pty loses them (bench/PROFILE.md).
 */
import { closeSync, writeSync } from 'node:fs';
import { ReadStream } from 'node:tty';
import { ptyCalls } from './native.js';
import { SpawningChild } from './spawning-child.js';

export interface PtyExit {
  exitCode: number;
  signal?: number;
}

export interface PtyProcess {
  /** The child's pid; -1 until it is spawned (startPty), and for good if that failed. */
  readonly pid: number;
  /** Settles once the child is spawned: its pid, or the spawn's error (the terminal then
   * ends as if the child had exited 125, with no output). */
  readonly spawned: Promise<number>;
  /** The child's start time (clock ticks since boot) once spawned by startPty; null before,
   * after spawnPty, or when it could not be read. */
  readonly startTime: number | null;
  onData(listener: (data: Buffer | string) => void): unknown;
  onExit(listener: (event: PtyExit) => void): unknown;
  /** Queues input behind what the terminal has not taken yet; see queuedInputBytes. */
  write(data: string | Buffer): void;
  /**
   * Input written but not yet taken by the terminal: the kernel's pty buffer is full
   * because the program is not reading. The caller bounds it (it stops reading its own
   * source while this is high); the pty only holds it.
   */
  readonly queuedInputBytes: number;
  /** Queued input shrank (the program read some, or the pty closed): check the level. */
  onInputWritten(listener: () => void): unknown;
  resize(cols: number, rows: number): void;
  /** Stops reading the master: the kernel's buffer fills and the writer blocks. */
  pause(): void;
  resume(): void;
  kill(signal?: string): void;
}

export interface SpawnPtyOptions {
  cols: number;
  rows: number;
  cwd: string;
  env: Record<string, string>;
  /** run this fd's content (a sealed copy of `file`) rather than reopening `file` */
  execFd?: number;
}

/**
 * After the child is reaped, the master is read until it has been quiet this long; then
 * our copy of the slave is closed and the master reads EIO after the last byte.
 */
const DRAIN_QUIET_MS = 5;
/**
 * A descendant that kept the slave open (and writing) would hold the end off forever;
 * past this long after the exit the master is closed anyway (node-pty waits 200 ms).
 */
const DRAIN_AFTER_EXIT_MS = 500;
/**
 * A program that trickles output (a `yes` held to a small CPU share writes 60 bytes at a
 * time) costs the server one read, one screen parse and one send per trickle, thousands a
 * second across a class. So a small read that follows another within TRICKLE_GAP_MS makes
 * the next read wait TRICKLE_READ_INTERVAL_MS, and the kernel's buffer gathers the
 * trickle meanwhile. A read after a quiet spell (an echo, a prompt) is never held, and
 * neither is a fast stream: once a read after a hold comes back large, reads go on
 * unheld until the next quiet spell (holding them would cap it at a buffer per hold).
 * Nor is a read within TRICKLE_GAP_MS of input written to the terminal: someone is typing
 * and the read is likely the echo; input written during a hold ends the hold.
 */
const TRICKLE_GAP_MS = 50;
const TRICKLE_READ_INTERVAL_MS = 10;
const TRICKLE_MAX_BYTES = 2048;
/** A full pty input buffer (the program is not reading): retry the write this much later. */
const WRITE_RETRY_MS = 10;
/**
 * Queued input is copied into chunks of this size. Holding the writers' Buffers instead
 * would cost ~100 bytes of object per Buffer, and a WebSocket message is a slice that
 * keeps its whole socket read alive: a flood of 1-byte frames would make 1 MiB of queued
 * input cost a hundred times that.
 */
const INPUT_CHUNK_BYTES = 16 * 1024;

/** Starts file on a new pty; the spawn happens before this returns (and throws its error). */
export function spawnPty(file: string, args: string[], options: SpawnPtyOptions): PtyProcess {
  return new NativePty(file, args, options, false);
}

/**
 * spawnPty, but the posix_spawn(3) runs on the addon's spawner thread: it is a vfork, and
 * the calling thread waits until the child has exec'd, which on a busy host includes the
 * new child's wait for a CPU (bench/PROFILE.md). The terminal is returned at once; a
 * signal sent before the pid is known is delivered once it is.
 */
export function startPty(file: string, args: string[], options: SpawnPtyOptions): PtyProcess {
  return new NativePty(file, args, options, true);
}

/** What a child that could not be spawned reports as its exit: the runtime failed. */
const SPAWN_FAILED_EXIT = 125;

class NativePty implements PtyProcess {
  readonly #child = new SpawningChild();
  #startTime: number | null = null;
  readonly spawned = this.#child.spawned;
  readonly #fd: number;
  #slave: number | null;
  readonly #stream: ReadStream;
  readonly #dataListeners: ((data: Buffer) => void)[] = [];
  readonly #exitListeners: ((event: PtyExit) => void)[] = [];
  readonly #input = new InputQueue();
  readonly #inputWrittenListeners: (() => void)[] = [];
  #writeTimer: NodeJS.Timeout | null = null;
  #quietTimer: NodeJS.Timeout | null = null;
  #drainTimer: NodeJS.Timeout | null = null;
  #reaped: PtyExit | null = null;
  #closed = false;
  #paused = false;
  #lastReadAt = 0;
  #lastInputAt = -Infinity;
  #readHold: NodeJS.Timeout | null = null;
  #afterHold = false;
  #fastStream = false;
  #exitEmitted = false;

  constructor(file: string, args: string[], options: SpawnPtyOptions, onThread: boolean) {
    const env = Object.entries({ ...options.env, PWD: options.cwd }).map(([k, v]) => `${k}=${v}`);
    const argv = [file, ...args];
    const onExit = (exitCode: number, signal: number) => this.#onReaped(signal ? { exitCode, signal } : { exitCode });
    const execFd = options.execFd === undefined ? [] : [options.execFd];
    const terminal = [file, argv, env, options.cwd, options.cols, options.rows, onExit] as const;
    let fd: number;
    let slave: number;
    if (onThread) {
      ({ fd, slave } = ptyCalls().spawnPtyAsync(
        ...terminal,
        (error, pid, startTime) => {
          this.#startTime = startTime;
          // A failure ends the terminal as an exit.
          if (!this.#child.settle(error, pid)) this.#onReaped({ exitCode: SPAWN_FAILED_EXIT });
        },
        ...execFd,
      ));
    } else {
      let pid: number;
      ({ pid, fd, slave } = ptyCalls().spawnPty(...terminal, ...execFd));
      this.#child.settle(null, pid);
    }
    this.#fd = fd;
    this.#slave = slave;
    this.#stream = new ReadStream(fd);
    this.#stream.on('data', (chunk: Buffer) => {
      for (const listener of this.#dataListeners) listener(chunk);
      if (this.#reaped !== null) this.#drain();
      else this.#holdTrickle(chunk.length);
    });
    // EIO once every slave is closed and the buffer is read: the end of the output.
    this.#stream.on('error', () => undefined);
    this.#stream.on('close', () => this.#onClosed());
    // Not read before someone listens: the first bytes (a prompt) are nobody's otherwise.
    this.#stream.pause();
  }

  onData(listener: (data: Buffer) => void): void {
    this.#dataListeners.push(listener);
    if (this.#dataListeners.length === 1 && !this.#paused && this.#readHold === null) this.#stream.resume();
  }

  onExit(listener: (event: PtyExit) => void): void {
    this.#exitListeners.push(listener);
  }

  write(data: string | Buffer): void {
    if (this.#closed) return;
    this.#lastInputAt = performance.now();
    if (this.#readHold !== null) {
      clearTimeout(this.#readHold);
      this.#readHold = null;
      if (!this.#paused && this.#dataListeners.length > 0) this.#stream.resume();
    }
    let bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (this.#input.bytes === 0) {
      // The usual case, a keystroke or a paste the program keeps up with: no copy.
      const written = this.#writeNow(bytes);
      if (written === null) return;
      bytes = bytes.subarray(written);
      if (bytes.length === 0) return;
    }
    this.#input.push(bytes);
    this.#writeTimer ??= setTimeout(() => this.#flushWrites(), WRITE_RETRY_MS);
  }

  get queuedInputBytes(): number {
    return this.#input.bytes;
  }

  onInputWritten(listener: () => void): void {
    this.#inputWrittenListeners.push(listener);
  }

  resize(cols: number, rows: number): void {
    if (!this.#closed) ptyCalls().resizePty(this.#fd, cols, rows);
  }

  pause(): void {
    this.#paused = true;
    this.#stream.pause();
    if (this.#readHold) clearTimeout(this.#readHold);
    this.#readHold = null;
    this.#clearDrainTimers();
  }

  resume(): void {
    this.#paused = false;
    this.#stream.resume();
    this.#drain();
  }

  get pid(): number {
    return this.#child.pid;
  }

  get startTime(): number | null {
    return this.#startTime;
  }

  /** Signals the child; a no-op once it is reaped (its pid may belong to another by then).
   * Before its pid is known (startPty), the signal waits for it. */
  kill(signal: string = 'SIGHUP'): void {
    this.#child.kill(signal);
  }

  #holdTrickle(bytes: number): void {
    const now = performance.now();
    const quietBefore = now - this.#lastReadAt >= TRICKLE_GAP_MS;
    this.#lastReadAt = now;
    if (quietBefore) this.#fastStream = false;
    else if (this.#afterHold && bytes > TRICKLE_MAX_BYTES) this.#fastStream = true;
    this.#afterHold = false;
    if (quietBefore || this.#fastStream || bytes > TRICKLE_MAX_BYTES || this.#paused || this.#readHold) return;
    if (now - this.#lastInputAt < TRICKLE_GAP_MS) return;
    this.#afterHold = true;
    this.#stream.pause();
    this.#readHold = setTimeout(() => {
      this.#readHold = null;
      if (!this.#paused && !this.#closed) this.#stream.resume();
    }, TRICKLE_READ_INTERVAL_MS);
  }

  /**
   * Writes what the terminal takes now: the bytes written (0 when it is full), or null
   * when the terminal's other side is gone (EIO) and input has nowhere to go.
   */
  #writeNow(bytes: Buffer): number | null {
    try {
      return writeSync(this.#fd, bytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return 0;
      return null;
    }
  }

  /** Writes queued input the terminal has room for; the rest when it has room again. */
  #flushWrites(): void {
    this.#writeTimer = null;
    const before = this.#input.bytes;
    while (this.#input.bytes > 0 && !this.#closed) {
      const written = this.#writeNow(this.#input.head());
      if (written === null) this.#input.clear();
      else if (written === 0) break;
      else this.#input.consume(written);
    }
    if (this.#input.bytes > 0 && !this.#closed) {
      this.#writeTimer = setTimeout(() => this.#flushWrites(), WRITE_RETRY_MS);
    }
    if (this.#input.bytes < before) this.#emitInputWritten();
  }

  #emitInputWritten(): void {
    for (const listener of this.#inputWrittenListeners) listener();
  }

  #onReaped(event: PtyExit): void {
    this.#child.reaped();
    this.#reaped = event;
    this.#drain();
    this.#maybeEmitExit();
  }

  /**
   * The child is gone: read on until the master is quiet, then let go of the slave so
   * the master ends (EIO) after the last byte. Not while paused: the reader decides.
   */
  #drain(): void {
    if (this.#reaped === null || this.#closed || this.#paused) return;
    // No trickle holds after the exit. A held stream is paused but its handle goes on
    // reading into the stream's buffer, and the EIO that ends the master destroys the
    // stream with what it buffered: the slave is let go only once that buffer is empty.
    if (this.#readHold) {
      clearTimeout(this.#readHold);
      this.#readHold = null;
      this.#stream.resume();
    }
    if (this.#quietTimer) clearTimeout(this.#quietTimer);
    this.#quietTimer = setTimeout(() => {
      this.#quietTimer = null;
      if (this.#stream.readableLength > 0) this.#drain();
      else this.#closeSlave();
    }, DRAIN_QUIET_MS);
    this.#drainTimer ??= setTimeout(() => this.#stream.destroy(), DRAIN_AFTER_EXIT_MS);
  }

  #clearDrainTimers(): void {
    if (this.#quietTimer) clearTimeout(this.#quietTimer);
    if (this.#drainTimer) clearTimeout(this.#drainTimer);
    this.#quietTimer = null;
    this.#drainTimer = null;
  }

  #closeSlave(): void {
    if (this.#slave === null) return;
    closeSync(this.#slave);
    this.#slave = null;
  }

  #onClosed(): void {
    this.#closed = true;
    const hadInput = this.#input.bytes > 0;
    this.#input.clear();
    if (this.#writeTimer) clearTimeout(this.#writeTimer);
    this.#writeTimer = null;
    this.#clearDrainTimers();
    if (this.#readHold) clearTimeout(this.#readHold);
    this.#readHold = null;
    this.#closeSlave();
    if (hadInput) this.#emitInputWritten();
    this.#maybeEmitExit();
  }

  /** The exit is told after the last byte of output, as node-pty does. */
  #maybeEmitExit(): void {
    if (this.#exitEmitted || this.#reaped === null || !this.#closed) return;
    this.#exitEmitted = true;
    for (const listener of this.#exitListeners) listener(this.#reaped);
  }
}

/** Input bytes waiting for room in the pty, in chunks of our own (INPUT_CHUNK_BYTES). */
class InputQueue {
  readonly #chunks: { buffer: Buffer; start: number; end: number }[] = [];
  bytes = 0;

  push(data: Buffer): void {
    this.bytes += data.length;
    let offset = 0;
    const last = this.#chunks.at(-1);
    if (last !== undefined) {
      offset = data.copy(last.buffer, last.end);
      last.end += offset;
    }
    while (offset < data.length) {
      const buffer = Buffer.allocUnsafe(INPUT_CHUNK_BYTES);
      const copied = data.copy(buffer, 0, offset);
      this.#chunks.push({ buffer, start: 0, end: copied });
      offset += copied;
    }
  }

  /** The oldest queued bytes; empty when nothing is queued. */
  head(): Buffer {
    const first = this.#chunks[0];
    return first === undefined ? Buffer.alloc(0) : first.buffer.subarray(first.start, first.end);
  }

  /** Drops `bytes` from the front: at most head().length. */
  consume(bytes: number): void {
    const first = this.#chunks[0];
    if (first === undefined) return;
    first.start += bytes;
    this.bytes -= bytes;
    if (first.start === first.end) this.#chunks.shift();
  }

  clear(): void {
    this.#chunks.length = 0;
    this.bytes = 0;
  }
}
