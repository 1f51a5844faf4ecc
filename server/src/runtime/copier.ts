/**
 * Writes a container file's bytes through mdocker-copier (native/src/copier), a short-lived
 * process that joins the container's cgroups first: the kernel charges a tmpfs page (or
 * a page of the page cache) to the memory cgroup of the task that allocates it, so the
 * upload counts against the container's memory limit, as a write by its own processes
 * would, and never against the server's (or the CLI's).
 */
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { Writable } from 'node:stream';
import { MdockerError, launcherError, type LauncherErrorJson } from './errors.js';
import { copierPath } from './native.js';

/** What a copier's answer line may hold: one JSON line (the rest is cut). */
const MAX_ANSWER_BYTES = 4096;

/** The copier's own cap when the caller has none: the largest count its parser takes safely. */
const NO_CAP = Number.MAX_SAFE_INTEGER;

/** errno numbers by name, for the copier's failed write (files.ts names them for the user). */
const ERRNO_NAMES = new Map(Object.entries(osConstants.errno).map(([name, value]) => [value, name]));

/** The copier's failed write, as Node reports one of its own (code, errno, syscall). */
export class CopierWriteError extends Error implements NodeJS.ErrnoException {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;

  constructor(answer: LauncherErrorJson & { errno: number }) {
    super(answer.message);
    this.code = ERRNO_NAMES.get(answer.errno) ?? 'EIO';
    this.errno = answer.errno;
    this.syscall = answer.syscall ?? 'write';
  }
}

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnError?: NodeJS.ErrnoException;
}

/** Resolves once stream can take more, or once it closed (the copier ended: its answer says why). */
function writable(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done).off('close', done);
      resolve();
    };
    stream.on('drain', done).on('close', done);
  });
}

function answerOf(stdout: string): LauncherErrorJson | null {
  try {
    const parsed = JSON.parse(stdout) as LauncherErrorJson;
    return typeof parsed.code === 'string' && typeof parsed.message === 'string' ? parsed : null;
  } catch {
    return null;
  }
}

/** The copier's end in the house's terms: null for success. */
function failureOf(ended: Ended, stdout: string, stderr: string): Error | null {
  if (ended.spawnError !== undefined) {
    return ended.spawnError.code === 'ENOENT'
      ? new MdockerError('UNSUPPORTED', `mdocker-copier missing at ${copierPath}: run npm install (it builds native/)`)
      : new MdockerError('LAUNCH_FAILED', `cannot start mdocker-copier: ${ended.spawnError.message}`);
  }
  if (ended.code === 0) return null;
  // Only the OOM killer sends SIGKILL to it (the container's processes cannot signal a
  // process of the host's root): its writes did not fit the container's memory limit.
  if (ended.signal === 'SIGKILL') {
    return new MdockerError('LIMIT_EXCEEDED', "the file does not fit in the container's memory limit", {
      cap: 'memoryBytes',
    });
  }
  const answer = answerOf(stdout);
  if (answer === null) {
    const why = ended.signal ?? `exit ${String(ended.code)}`;
    return new MdockerError(
      'RUNTIME',
      `mdocker-copier failed (${why}): ${stderr.trim() || stdout.trim() || 'no answer'}`,
    );
  }
  // Joining the container's cgroups failed: the container stopped meanwhile, or its
  // cgroup takes no process now. Either way the container's state, not the request, is
  // what refuses the write.
  if (answer.code === 'NOT_FOUND' || answer.code === 'UNAVAILABLE') {
    return new MdockerError('CONFLICT', answer.message, { copierCode: answer.code });
  }
  if (answer.code === 'SYSCALL' && answer.syscall === 'write' && typeof answer.errno === 'number' && answer.errno > 0) {
    return new CopierWriteError({ ...answer, errno: answer.errno });
  }
  return launcherError(answer);
}

/**
 * Writes content into fd (a file open for writing, made by the caller) from inside the
 * cgroups at cgroupPaths (the container's, one per v1 hierarchy or its one v2 cgroup; none
 * writes from the caller's own), with backpressure: a chunk waits until the copier took
 * the one before. Rejects with content's own error (the copier is then killed), or the
 * copier's: CONFLICT when it could not join the cgroups, LIMIT_EXCEEDED when the
 * container's memory ran out, a CopierWriteError for a failed write (ENOSPC: its layer is
 * full). What was written stays in fd for the caller to remove.
 */
export async function writeInCgroups(
  fd: number,
  cgroupPaths: readonly string[],
  content: AsyncIterable<Buffer>,
  maxBytes = NO_CAP,
): Promise<void> {
  const cap = Number.isFinite(maxBytes) ? Math.min(Math.max(0, Math.floor(maxBytes)), NO_CAP) : NO_CAP;
  const child = spawn(copierPath, ['--max-bytes', String(cap), ...cgroupPaths], {
    stdio: ['pipe', 'pipe', 'pipe', fd],
    env: {},
    cwd: '/',
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    if (stdout.length < MAX_ANSWER_BYTES) stdout += text;
  });
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    if (stderr.length < MAX_ANSWER_BYTES) stderr += text;
  });
  const ended = new Promise<Ended>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
    child.once('error', (err) => resolve({ code: null, signal: null, spawnError: err }));
  });
  const stdin = child.stdin;
  if (stdin === null) throw new MdockerError('INTERNAL', 'mdocker-copier has no stdin');
  // A copier that ends before reading everything (its cgroup is gone) closes the pipe:
  // EPIPE here, and its answer says why.
  stdin.on('error', () => undefined);
  try {
    for await (const chunk of content) {
      if (stdin.destroyed || child.exitCode !== null || child.signalCode !== null) break;
      if (!stdin.write(chunk)) await writable(stdin);
    }
    stdin.end();
  } catch (err) {
    child.kill('SIGKILL');
    await ended;
    throw err;
  }
  const failure = failureOf(await ended, stdout, stderr);
  if (failure !== null) throw failure;
}
