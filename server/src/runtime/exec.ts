/**
 * An exec without a tty, collected: its exit code, stdout and stderr, under a time limit
 * and an output cap (the REST API's exec, lessons' script checks).
 */
import type { ExecResultJson } from '../protocol/index.js';
import type { ContainerProcess } from './containers.js';
import { launcherError } from './errors.js';

/** After SIGTERM (forwarded into the container by the launcher), this long until SIGKILL. */
const KILL_GRACE_MS = 1000;
/**
 * A command's background child (`sleep 100 &`) keeps the pipes open after the command
 * exits; its output past the exit is not waited for longer than this.
 */
const DRAIN_AFTER_EXIT_MS = 200;

export interface CaptureLimits {
  timeoutMs: number;
  maxOutputBytes: number;
}

class CappedOutput {
  readonly #chunks: Buffer[] = [];
  #bytes = 0;
  truncated = false;

  constructor(readonly maxBytes: number) {}

  add(chunk: Buffer): void {
    const room = this.maxBytes - this.#bytes;
    if (room <= 0) {
      this.truncated = true;
      return;
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (kept.length < chunk.length) this.truncated = true;
    this.#chunks.push(kept);
    this.#bytes += kept.length;
  }

  text(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
  }
}

function ended(stream: NodeJS.ReadableStream | null): Promise<void> {
  if (stream === null) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
}

/** Collects an exec launched on pipes with output 'pipe' (Runtime.exec). */
export async function captureExec(exec: ContainerProcess, limits: CaptureLimits): Promise<ExecResultJson> {
  const { process } = exec;
  const stdout = new CappedOutput(limits.maxOutputBytes);
  const stderr = new CappedOutput(limits.maxOutputBytes);
  // Past the cap the pipes keep draining (the command must not block on a full pipe),
  // the bytes are dropped.
  process.stdout?.on('data', (chunk: Buffer) => stdout.add(chunk));
  process.stderr?.on('data', (chunk: Buffer) => stderr.add(chunk));
  const outputEnded = Promise.all([ended(process.stdout), ended(process.stderr)]);
  let timedOut = false;
  let killTimer: NodeJS.Timeout | null = null;
  const timer = setTimeout(() => {
    timedOut = true;
    process.signal('SIGTERM');
    killTimer = setTimeout(() => process.signal('SIGKILL'), KILL_GRACE_MS);
  }, limits.timeoutMs);
  try {
    const { code, error } = await exec.done;
    // The launcher's own failure (the command missing or not runnable, the container gone)
    // is the request's error, not the command's result.
    if (error !== null) throw launcherError(error, 'exec failed');
    let drainTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      outputEnded,
      new Promise((resolve) => (drainTimer = setTimeout(resolve, DRAIN_AFTER_EXIT_MS))),
    ]);
    clearTimeout(drainTimer);
    return {
      exitCode: code,
      stdout: stdout.text(),
      stderr: stderr.text(),
      timedOut,
      truncated: stdout.truncated || stderr.truncated,
    };
  } finally {
    clearTimeout(timer);
    if (killTimer) clearTimeout(killTimer);
    process.stdout?.destroy();
    process.stderr?.destroy();
  }
}
