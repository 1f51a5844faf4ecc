/**
 * Runs a launcher command without a tty and collects its exit code, stdout and stderr,
 * under a time limit and an output cap.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { ExecResultJson } from '../protocol/index.js';

/** After SIGTERM (forwarded into the container by the launcher), this long until SIGKILL. */
const KILL_GRACE_MS = 1000;
/**
 * A command's background child (`sleep 100 &`) keeps the pipes open after the command
 * exits; its output past the exit is not waited for longer than this.
 */
const DRAIN_AFTER_EXIT_MS = 200;

export interface ExecRun {
  file: string;
  args: string[];
  timeoutMs: number;
  maxOutputBytes: number;
  env?: NodeJS.ProcessEnv;
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

export function runWithoutTty(run: ExecRun): Promise<ExecResultJson> {
  return new Promise((resolve, reject) => {
    const child = spawn(run.file, run.args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: run.env ?? { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      cwd: '/',
    });
    const stdout = new CappedOutput(run.maxOutputBytes);
    const stderr = new CappedOutput(run.maxOutputBytes);
    // Past the cap the pipes keep draining (the command must not block on a full pipe),
    // the bytes are dropped.
    child.stdout.on('data', (chunk: Buffer) => stdout.add(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.add(chunk));
    let timedOut = false;
    let killTimer: NodeJS.Timeout | null = null;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    }, run.timeoutMs);
    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({
        exitCode: code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0),
        stdout: stdout.text(),
        stderr: stderr.text(),
        timedOut,
        truncated: stdout.truncated || stderr.truncated,
      });
    };
    child.on('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      setTimeout(() => finish(code, signal), DRAIN_AFTER_EXIT_MS).unref();
    });
    child.on('close', (code, signal) => finish(code, signal));
  });
}
