/**
 * Keeps terminal recordings on disk as asciicast v2 files (cgroup events as "m" markers), each
 * container's stats samples beside them, bounded in size, until they expire.
 *
 *   <dir>/<containerId>/<terminalId>.cast   asciicast v2: a header line, then one event a line
 *   <dir>/<containerId>/stats.jsonl         one StatsSample a line, oldest first
 *   <dir>/<containerId>/index.json          owners, times, sizes: what a sweep after a restart reads
 */
import { constants as fsConstants, mkdirSync, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { RecordingJson, StatsSample } from '../protocol/index.js';
import { MdockerError } from '../runtime/errors.js';

export interface RecordingsOptions {
  /** <dataDir>/recordings; created 0700 if missing */
  dir: string;
  /** per terminal recording file (the .cast), header included; also the cap of stats.jsonl */
  maxBytes: number;
  /** how long a leftover of an earlier run outlives its last write */
  retentionMs: number;
  logger?: RecordingsLogger;
  /** epoch ms; for tests */
  now?: () => number;
}

export interface RecordingsLogger {
  warn(obj: object, msg: string): void;
}

/** Opaque to this module: kept in the index and handed back by list and find. */
export interface RecordingOwner {
  sessionId: string;
  classId: string | null;
  studentId: string | null;
}

export type RecordingEntry = Omit<RecordingJson, 'studentId'> & { owner: RecordingOwner };

export interface TerminalRecording {
  /** terminal output bytes as read from the pty */
  output(chunk: Buffer): void;
  resize(cols: number, rows: number): void;
  marker(label: string): void;
  /** the terminal exited or closed */
  end(): void;
  readonly bytes: number;
  readonly truncated: boolean;
}

const CONTAINER_ID = /^[0-9a-f]{12,64}$/;
const MAX_TERMINAL_ID = 999_999;
/** Output chunks this close to the first of an event join it: one "o" event, not one a pty read. */
const COALESCE_MS = 5;
/** An "o" event this long (UTF-16 units) is closed, so a flood still has a timeline. */
const EVENT_MAX_CHARS = 16 * 1024;
/** What a recording holds in memory before one write: this long, or this much. Whatever
 * reads a recording (a replay, a download) flushes it first, so this only bounds what a
 * crash of the server loses; a class typing makes one write a second per terminal. */
const BATCH_MS = 1000;
/** A container's stats line comes once a second: its file is written every ten. */
const STATS_BATCH_MS = 10_000;
/** A container's index is rewritten this long after its first change: the terminal's
 * open, its end and the container's expiry, which a short-lived container makes within
 * a second, cost one write. A sweep after a crash without an index goes by the files'
 * times instead. */
const INDEX_BATCH_MS = 1000;
const BATCH_BYTES = 64 * 1024;
const TITLE_MAX_CHARS = 256;
export const TRUNCATED_MARKER = 'recording-truncated';
/** Room kept below the cap for the truncation marker at any time up to ~31 years in. */
const TRUNCATION_RESERVE_BYTES = Buffer.byteLength(eventLine(999_999_999.999999, 'm', TRUNCATED_MARKER));
const HEADER_ENV = { TERM: 'xterm-256color', SHELL: '/bin/sh' };

// O_NOFOLLOW: a symlink planted where a recording goes must not redirect a root-owned write
// (or a read served to a browser) to another file.
const OPEN_NEW = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_APPEND;
const NOFOLLOW = fsConstants.O_NOFOLLOW;
const OPEN_READ = fsConstants.O_RDONLY | NOFOLLOW;

function invalid(message: string, details: Record<string, unknown>): MdockerError {
  return new MdockerError('INVALID_ARGUMENT', message, details);
}

function checkContainerId(containerId: unknown): string {
  if (typeof containerId !== 'string' || !CONTAINER_ID.test(containerId)) {
    throw invalid('invalid container id', { containerId: String(containerId).slice(0, 80) });
  }
  return containerId;
}

function checkTerminalId(terminalId: unknown): number {
  if (
    typeof terminalId !== 'number' ||
    !Number.isInteger(terminalId) ||
    terminalId < 0 ||
    terminalId > MAX_TERMINAL_ID
  ) {
    throw invalid('invalid terminal id', { terminalId: String(terminalId).slice(0, 80) });
  }
  return terminalId;
}

function eventLine(t: number, code: 'o' | 'r' | 'm', data: string): string {
  return JSON.stringify([t, code, data]) + '\n';
}

function dimension(value: number, fallback: number): number {
  return Number.isFinite(value) && value >= 1 ? Math.min(Math.floor(value), 100_000) : fallback;
}

function errorFacts(err: unknown): { code: string | undefined; err: string } {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return { code: typeof code === 'string' ? code : undefined, err: err instanceof Error ? err.message : String(err) };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * One file written in batches: appends are held in memory and written with one write per
 * batchMs (BATCH_MS unless told) or BATCH_BYTES, in order. The first failure (the open
 * included) disables the file for good and is reported once; nothing here throws.
 */
class BatchedFile {
  #handle: FileHandle | null = null;
  #chain: Promise<void>;
  #chunks: string[] = [];
  #pendingBytes = 0;
  #timer: NodeJS.Timeout | null = null;
  #opened = false;
  #failed = false;
  #closed = false;
  readonly #onError: (err: unknown) => void;
  readonly #beforeTimedFlush: (() => void) | undefined;
  readonly #batchMs: number;

  constructor(
    path: string,
    ready: Promise<void>,
    onError: (err: unknown) => void,
    beforeTimedFlush?: () => void,
    batchMs = BATCH_MS,
  ) {
    this.#onError = onError;
    this.#beforeTimedFlush = beforeTimedFlush;
    this.#batchMs = batchMs;
    this.#chain = ready
      .then(() => fsp.open(path, OPEN_NEW | NOFOLLOW, 0o600))
      .then(
        (handle) => {
          if (this.#failed) return void handle.close().catch(() => undefined);
          this.#handle = handle;
          this.#opened = true;
        },
        (err: unknown) => this.#fail(err),
      );
  }

  /** The file was created (what was written may still have been cut short by a later failure). */
  get opened(): boolean {
    return this.#opened;
  }

  get failed(): boolean {
    return this.#failed;
  }

  append(text: string, bytes: number): void {
    if (this.#failed || this.#closed) return;
    this.#chunks.push(text);
    this.#pendingBytes += bytes;
    if (this.#pendingBytes >= BATCH_BYTES) void this.flush();
    else this.schedule();
  }

  /** Arms the batch timer without data: the owner holds some that the timer must collect. */
  schedule(): void {
    if (this.#timer || this.#failed || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#beforeTimedFlush?.();
      void this.flush();
    }, this.#batchMs);
    this.#timer.unref();
  }

  /** Writes what is held; resolves once everything appended so far is written (or failed). */
  flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#chunks.length > 0 && !this.#failed) {
      const data = Buffer.from(this.#chunks.join(''));
      this.#chunks = [];
      this.#pendingBytes = 0;
      this.#chain = this.#chain.then(() => this.#write(data));
    }
    return this.#chain;
  }

  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    const handle = this.#handle;
    this.#handle = null;
    if (handle) await handle.close().catch(() => undefined);
  }

  async #write(data: Buffer): Promise<void> {
    const handle = this.#handle;
    if (!handle || this.#failed) return;
    try {
      for (let offset = 0; offset < data.length;) {
        const { bytesWritten } = await handle.write(data, offset, data.length - offset);
        offset += bytesWritten;
      }
    } catch (err) {
      this.#fail(err);
    }
  }

  #fail(err: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#chunks = [];
    this.#pendingBytes = 0;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const handle = this.#handle;
    this.#handle = null;
    if (handle) void handle.close().catch(() => undefined);
    this.#onError(err);
  }
}

interface RecordingHooks {
  now: () => number;
  maxBytes: number;
  onDisabled(err: unknown): void;
  onTruncated(): void;
  onEnded(): void;
}

/** One terminal's asciicast file. Every public method swallows its failures: the terminal must not notice. */
class CastRecording implements TerminalRecording {
  readonly #file: BatchedFile;
  readonly #hooks: RecordingHooks;
  readonly #decoder = new StringDecoder('utf8');
  readonly #timestampMs: number;
  readonly #maxBytes: number;
  #lastT = 0;
  #pendingText = '';
  #pendingT = 0;
  #pendingAtMs = 0;
  #bytes = 0;
  #truncated = false;
  #ended = false;
  #disabled = false;
  #closing: Promise<void> | null = null;

  constructor(
    path: string,
    ready: Promise<void>,
    init: { cols: number; rows: number; title?: string },
    startMs: number,
    hooks: RecordingHooks,
  ) {
    this.#hooks = hooks;
    this.#timestampMs = Math.floor(startMs / 1000) * 1000;
    this.#lastT = Math.max(0, Math.round(startMs - this.#timestampMs) / 1000);
    this.#file = new BatchedFile(
      path,
      ready,
      (err) => this.#disable(err),
      () => this.#closeEvent(),
    );
    const title = typeof init.title === 'string' && init.title !== '' ? init.title.slice(0, TITLE_MAX_CHARS) : null;
    const header =
      JSON.stringify({
        version: 2,
        width: dimension(init.cols, 80),
        height: dimension(init.rows, 24),
        timestamp: this.#timestampMs / 1000,
        env: HEADER_ENV,
        ...(title === null ? {} : { title }),
      }) + '\n';
    const headerBytes = Buffer.byteLength(header);
    // A cap below a header and the truncation marker cannot hold a valid file; it grows to that.
    this.#maxBytes = Math.max(hooks.maxBytes, headerBytes + TRUNCATION_RESERVE_BYTES);
    this.#append(header, headerBytes);
  }

  get bytes(): number {
    return this.#bytes;
  }

  get truncated(): boolean {
    return this.#truncated;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** The .cast file exists (it may end early if a write failed). */
  get kept(): boolean {
    return this.#file.opened;
  }

  output(chunk: Buffer): void {
    if (this.#ended || this.#disabled || this.#truncated) return;
    try {
      const text = this.#decoder.write(chunk);
      if (text !== '') this.#output(text);
    } catch (err) {
      this.#disable(err);
    }
  }

  resize(cols: number, rows: number): void {
    if (this.#ended || this.#disabled || this.#truncated) return;
    try {
      this.#closeEvent();
      this.#event(this.#time(), 'r', `${dimension(cols, 80)}x${dimension(rows, 24)}`);
    } catch (err) {
      this.#disable(err);
    }
  }

  marker(label: string): void {
    if (this.#ended || this.#disabled || this.#truncated) return;
    try {
      this.#closeEvent();
      this.#event(this.#time(), 'm', String(label));
    } catch (err) {
      this.#disable(err);
    }
  }

  end(): void {
    if (this.#ended) return;
    try {
      if (!this.#disabled && !this.#truncated) {
        // Bytes of a character the program never finished become U+FFFD, as a decoder does.
        const rest = this.#decoder.end();
        if (rest !== '') this.#output(rest);
        this.#closeEvent();
      }
    } catch (err) {
      this.#disable(err);
    }
    this.#ended = true;
    this.#closing = this.#file.close();
    this.#hooks.onEnded();
  }

  /** Everything recorded so far is on disk (or its failure reported). */
  flush(): Promise<void> {
    if (this.#closing) return this.#closing;
    try {
      this.#closeEvent();
    } catch (err) {
      this.#disable(err);
    }
    return this.#file.flush();
  }

  /** Resolves when the file is closed after end(). */
  settled(): Promise<void> {
    return this.#closing ?? this.flush();
  }

  #output(text: string): void {
    const nowMs = this.#hooks.now();
    if (this.#pendingText !== '' && nowMs - this.#pendingAtMs > COALESCE_MS) this.#closeEvent();
    if (this.#pendingText === '') {
      this.#pendingAtMs = nowMs;
      this.#pendingT = this.#time(nowMs);
      this.#file.schedule();
    }
    this.#pendingText += text;
    if (this.#pendingText.length >= EVENT_MAX_CHARS) this.#closeEvent();
  }

  #closeEvent(): void {
    if (this.#pendingText === '') return;
    const text = this.#pendingText;
    this.#pendingText = '';
    if (!this.#truncated && !this.#disabled) this.#event(this.#pendingT, 'o', text);
  }

  /** Seconds since the header's timestamp, never going back, at most 6 decimals. */
  #time(nowMs = this.#hooks.now()): number {
    const t = Math.round((nowMs - this.#timestampMs) * 1000) / 1e6;
    this.#lastT = Math.max(this.#lastT, t);
    return this.#lastT;
  }

  #event(t: number, code: 'o' | 'r' | 'm', data: string): void {
    const line = eventLine(t, code, data);
    const lineBytes = Buffer.byteLength(line);
    const room = this.#maxBytes - TRUNCATION_RESERVE_BYTES - this.#bytes;
    if (lineBytes <= room) {
      this.#append(line, lineBytes);
      return;
    }
    if (code === 'o') this.#appendPrefix(t, data, room);
    this.#truncate();
  }

  /** The longest head of `text` whose event fits in `room` bytes (a surrogate pair is never split). */
  #appendPrefix(t: number, text: string, room: number): void {
    let low = 0;
    let high = text.length;
    while (low < high) {
      const mid = Math.ceil((low + high) / 2);
      if (Buffer.byteLength(eventLine(t, 'o', text.slice(0, mid))) <= room) low = mid;
      else high = mid - 1;
    }
    let end = low;
    const last = text.charCodeAt(end - 1);
    if (end > 0 && last >= 0xd800 && last <= 0xdbff) end -= 1;
    if (end === 0) return;
    const line = eventLine(t, 'o', text.slice(0, end));
    this.#append(line, Buffer.byteLength(line));
  }

  #truncate(): void {
    const line = eventLine(this.#time(), 'm', TRUNCATED_MARKER);
    this.#append(line, Buffer.byteLength(line));
    this.#truncated = true;
    this.#pendingText = '';
    this.#hooks.onTruncated();
  }

  #append(line: string, lineBytes: number): void {
    this.#bytes += lineBytes;
    this.#file.append(line, lineBytes);
  }

  #disable(err: unknown): void {
    if (this.#disabled) return;
    this.#disabled = true;
    this.#pendingText = '';
    this.#hooks.onDisabled(err);
  }
}

interface TerminalEntry {
  terminalId: number;
  owner: RecordingOwner;
  startedAtMs: number;
  endedAtMs: number | null;
  recording: CastRecording;
}

interface ContainerEntry {
  id: string;
  dir: string;
  /** the container's directory exists (or making it failed, which each file then reports) */
  ready: Promise<void>;
  terminals: Map<number, TerminalEntry>;
  expiresAtMs: number | null;
  stats: BatchedFile | null;
  statsBytes: number;
  statsWarned: boolean;
  index: Promise<void>;
  /** a change the index does not have yet: its write waits for this timer */
  indexTimer: NodeJS.Timeout | null;
  indexQueued: boolean;
  indexWarned: boolean;
}

/** A recording that records nothing: what open() hands out once the store is closed. */
const DETACHED: TerminalRecording = {
  output: () => undefined,
  resize: () => undefined,
  marker: () => undefined,
  end: () => undefined,
  bytes: 0,
  truncated: false,
};

export class Recordings {
  readonly #dir: string;
  readonly #maxBytes: number;
  readonly #retentionMs: number;
  readonly #logger: RecordingsLogger | undefined;
  readonly #now: () => number;
  readonly #containers = new Map<string, ContainerEntry>();
  /** directories being deleted: a container recorded again waits for its old directory to go */
  readonly #removals = new Map<string, Promise<void>>();
  #closed = false;

  constructor(options: RecordingsOptions) {
    this.#dir = options.dir;
    this.#maxBytes = Math.max(1, Math.floor(options.maxBytes));
    this.#retentionMs = Math.max(0, options.retentionMs);
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    try {
      mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      this.#logger?.warn({ dir: this.#dir, ...errorFacts(err) }, 'recordings: cannot create the directory');
    }
  }

  /** Starts recording one terminal of a container; `owner` is opaque data kept in the index. */
  open(
    containerId: string,
    terminalId: number,
    init: { cols: number; rows: number; title?: string; owner: RecordingOwner },
  ): TerminalRecording {
    checkContainerId(containerId);
    checkTerminalId(terminalId);
    if (this.#closed) return DETACHED;
    const container = this.#container(containerId);
    const previous = container.terminals.get(terminalId);
    // The same terminal recorded again starts a new file, once the old one is closed.
    if (previous && !previous.recording.ended) previous.recording.end();
    const ready = previous
      ? Promise.all([container.ready, previous.recording.settled()]).then(() => undefined)
      : container.ready;
    const startedAtMs = this.#now();
    const owner = { sessionId: init.owner.sessionId, classId: init.owner.classId, studentId: init.owner.studentId };
    let warned = false;
    const entry: TerminalEntry = {
      terminalId,
      owner,
      startedAtMs,
      endedAtMs: null,
      recording: new CastRecording(join(container.dir, `${terminalId}.cast`), ready, init, startedAtMs, {
        now: this.#now,
        maxBytes: this.#maxBytes,
        onDisabled: (err) => {
          if (warned) return;
          warned = true;
          this.#logger?.warn({ containerId, terminalId, ...errorFacts(err) }, 'recording disabled: cannot write it');
        },
        onTruncated: () => this.#saveIndex(container),
        onEnded: () => {
          entry.endedAtMs = this.#now();
          this.#saveIndex(container);
        },
      }),
    };
    container.terminals.set(terminalId, entry);
    this.#saveIndex(container);
    return entry.recording;
  }

  /** A marker on every open recording of the container ("oom-kill", "pids-limit", ...). */
  marker(containerId: string, label: string): void {
    const container = this.#containers.get(containerId);
    if (!container) return;
    for (const entry of container.terminals.values()) entry.recording.marker(label);
  }

  /**
   * Appends one stats sample to the container's stats file while one of its terminals is
   * recorded; past the cap further samples are dropped (the file keeps the oldest, as a
   * truncated recording keeps its beginning).
   */
  sample(containerId: string, sample: StatsSample): void {
    const container = this.#containers.get(containerId);
    if (!container || this.#closed) return;
    if (![...container.terminals.values()].some((entry) => !entry.recording.ended)) return;
    try {
      const line = JSON.stringify(sample) + '\n';
      const lineBytes = Buffer.byteLength(line);
      if (container.statsBytes + lineBytes > this.#maxBytes) return;
      container.stats ??= new BatchedFile(
        join(container.dir, 'stats.jsonl'),
        container.ready,
        (err) => this.#warnOnce(container, 'statsWarned', err, 'recording stats disabled: cannot write them'),
        undefined,
        STATS_BATCH_MS,
      );
      container.statsBytes += lineBytes;
      container.stats.append(line, lineBytes);
    } catch (err) {
      this.#warnOnce(container, 'statsWarned', err, 'recording stats disabled: cannot write them');
    }
  }

  /** The recordings kept for a container (open or ended), by terminal id. */
  list(containerId: string): RecordingEntry[] {
    const container = this.#containers.get(containerId);
    return container ? this.#entries(container) : [];
  }

  /** Every kept recording whose owner matches the predicate (the teacher's class list). */
  find(predicate: (owner: RecordingOwner) => boolean): RecordingEntry[] {
    const found: RecordingEntry[] = [];
    for (const container of this.#containers.values()) {
      for (const entry of this.#entries(container)) if (predicate(entry.owner)) found.push(entry);
    }
    return found;
  }

  /** The .cast file's path if kept, flushed up to now; else null. */
  async castPath(containerId: string, terminalId: number): Promise<string | null> {
    checkContainerId(containerId);
    checkTerminalId(terminalId);
    const container = this.#containers.get(containerId);
    const entry = container?.terminals.get(terminalId);
    if (!container || !entry) return null;
    await entry.recording.flush();
    if (this.#containers.get(containerId) !== container || !entry.recording.kept) return null;
    return join(container.dir, `${terminalId}.cast`);
  }

  /** The samples kept with the container's recordings, oldest first. */
  async readStats(containerId: string): Promise<StatsSample[]> {
    const container = this.#containers.get(containerId);
    if (!container?.stats) return [];
    await container.stats.flush();
    if (!container.stats.opened) return [];
    let text: string;
    try {
      const handle = await fsp.open(join(container.dir, 'stats.jsonl'), OPEN_READ);
      try {
        text = await handle.readFile('utf8');
      } finally {
        await handle.close();
      }
    } catch {
      return [];
    }
    const samples: StatsSample[] = [];
    for (const line of text.split('\n')) {
      if (line === '') continue;
      try {
        samples.push(JSON.parse(line) as StatsSample);
      } catch {
        // a line cut short by a failed write
      }
    }
    return samples;
  }

  /** From now the container's recordings expire at `atMs`. */
  expireAt(containerId: string, atMs: number): void {
    const container = this.#containers.get(containerId);
    if (!container || !Number.isFinite(atMs)) return;
    container.expiresAtMs = atMs;
    this.#saveIndex(container);
  }

  /**
   * Deletes the expired recordings, and the directories an earlier run left in `dir`: those
   * expire when their index says, or `retentionMs` after their newest file was written.
   */
  async sweep(): Promise<void> {
    const nowMs = this.#now();
    for (const container of [...this.#containers.values()]) {
      if (container.expiresAtMs !== null && container.expiresAtMs <= nowMs) await this.#remove(container);
    }
    let names: string[];
    try {
      names = await fsp.readdir(this.#dir);
    } catch (err) {
      this.#logger?.warn({ dir: this.#dir, ...errorFacts(err) }, 'recordings: cannot list the directory');
      return;
    }
    for (const name of names) {
      // Only what this module names: anything else in the directory is someone else's.
      if (!CONTAINER_ID.test(name) || this.#containers.has(name) || this.#removals.has(name)) continue;
      const path = join(this.#dir, name);
      const dueMs = await this.#leftoverDueMs(path);
      if (dueMs === null || dueMs > nowMs || this.#containers.has(name)) continue;
      await this.#removeDir(name, path);
    }
  }

  /** Flushes and closes everything open (the recordings end now). */
  async close(): Promise<void> {
    this.#closed = true;
    const pending: Promise<void>[] = [];
    for (const container of this.#containers.values()) {
      for (const entry of container.terminals.values()) {
        entry.recording.end();
        pending.push(entry.recording.settled());
      }
      if (container.stats) pending.push(container.stats.close());
    }
    await Promise.all(pending);
    for (const container of this.#containers.values()) this.#flushIndex(container);
    await Promise.all([...this.#containers.values()].map((container) => container.index));
    await Promise.all(this.#removals.values());
  }

  #container(containerId: string): ContainerEntry {
    const existing = this.#containers.get(containerId);
    if (existing) return existing;
    const dir = join(this.#dir, containerId);
    const removal = this.#removals.get(containerId) ?? Promise.resolve();
    const container: ContainerEntry = {
      id: containerId,
      dir,
      ready: removal.then(() => makeOwnDir(dir)),
      terminals: new Map(),
      expiresAtMs: null,
      stats: null,
      statsBytes: 0,
      statsWarned: false,
      index: Promise.resolve(),
      indexTimer: null,
      indexQueued: false,
      indexWarned: false,
    };
    // Each file reports its own failure; this one only must not go unhandled.
    container.ready.catch(() => undefined);
    this.#containers.set(containerId, container);
    return container;
  }

  #entries(container: ContainerEntry): RecordingEntry[] {
    return [...container.terminals.values()]
      .sort((a, b) => a.terminalId - b.terminalId)
      .map((entry) => ({
        containerId: container.id,
        terminalId: entry.terminalId,
        startedAt: new Date(entry.startedAtMs).toISOString(),
        endedAt: iso(entry.endedAtMs),
        bytes: entry.recording.bytes,
        truncated: entry.recording.truncated,
        owner: { ...entry.owner },
      }));
  }

  /** Rewrites index.json, INDEX_BATCH_MS after the first change it does not have. */
  #saveIndex(container: ContainerEntry): void {
    if (container.indexTimer || this.#containers.get(container.id) !== container) return;
    if (this.#closed) return this.#writeIndex(container);
    container.indexTimer = setTimeout(() => this.#flushIndex(container), INDEX_BATCH_MS);
    container.indexTimer.unref();
  }

  /** Writes a pending index change now; container.index settles once it is on disk. */
  #flushIndex(container: ContainerEntry): void {
    if (!container.indexTimer) return;
    clearTimeout(container.indexTimer);
    container.indexTimer = null;
    this.#writeIndex(container);
  }

  /** Rewrites index.json (atomically, by rename), from the entry as it is when the write starts. */
  #writeIndex(container: ContainerEntry): void {
    if (container.indexQueued) return;
    container.indexQueued = true;
    container.index = container.index
      .then(() => container.ready)
      .then(async () => {
        container.indexQueued = false;
        if (this.#containers.get(container.id) !== container) return;
        const first = container.terminals.values().next().value;
        const index = {
          version: 1,
          containerId: container.id,
          owner: first?.owner ?? null,
          expiresAt: iso(container.expiresAtMs),
          terminals: this.#entries(container).map(({ containerId: _, ...rest }) => rest),
        };
        const path = join(container.dir, 'index.json');
        const tmp = `${path}.tmp`;
        const handle = await fsp.open(tmp, OPEN_NEW | NOFOLLOW, 0o600);
        try {
          await handle.writeFile(JSON.stringify(index, null, 2) + '\n');
        } finally {
          await handle.close();
        }
        await fsp.rename(tmp, path);
      })
      .catch((err: unknown) => {
        container.indexQueued = false;
        this.#warnOnce(container, 'indexWarned', err, 'recordings: cannot write the index');
      });
  }

  #warnOnce(container: ContainerEntry, flag: 'statsWarned' | 'indexWarned', err: unknown, msg: string): void {
    if (container[flag]) return;
    container[flag] = true;
    this.#logger?.warn({ containerId: container.id, ...errorFacts(err) }, msg);
  }

  async #remove(container: ContainerEntry): Promise<void> {
    this.#containers.delete(container.id);
    if (container.indexTimer) clearTimeout(container.indexTimer);
    container.indexTimer = null;
    const pending: Promise<void>[] = [];
    for (const entry of container.terminals.values()) {
      entry.recording.end();
      pending.push(entry.recording.settled());
    }
    if (container.stats) pending.push(container.stats.close());
    await Promise.all(pending);
    await container.index;
    await this.#removeDir(container.id, container.dir);
  }

  async #removeDir(containerId: string, path: string): Promise<void> {
    const removal = fsp.rm(path, { recursive: true, force: true }).catch((err: unknown) => {
      this.#logger?.warn({ containerId, ...errorFacts(err) }, 'recordings: cannot delete an expired recording');
    });
    this.#removals.set(containerId, removal);
    try {
      await removal;
    } finally {
      if (this.#removals.get(containerId) === removal) this.#removals.delete(containerId);
    }
  }

  /** When a directory of an earlier run is due, or null if it cannot be read (left alone). */
  async #leftoverDueMs(path: string): Promise<number | null> {
    try {
      const stat = await fsp.lstat(path);
      if (!stat.isDirectory()) return stat.mtimeMs + this.#retentionMs;
      let newestMs = stat.mtimeMs;
      for (const name of await fsp.readdir(path)) {
        const child = await fsp.lstat(join(path, name)).catch(() => null);
        if (child) newestMs = Math.max(newestMs, child.mtimeMs);
      }
      const expiresAtMs = await readIndexExpiry(join(path, 'index.json'));
      return expiresAtMs ?? newestMs + this.#retentionMs;
    } catch {
      return null;
    }
  }
}

/** mkdir -p 0700, refusing a symlink or a non-directory in its place. */
async function makeOwnDir(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const stat = await fsp.lstat(dir);
  if (!stat.isDirectory()) {
    throw Object.assign(new Error(`${dir} is not a directory`), { code: 'ENOTDIR' });
  }
}

async function readIndexExpiry(path: string): Promise<number | null> {
  try {
    const handle = await fsp.open(path, OPEN_READ);
    let text: string;
    try {
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
    const expiresAt = (JSON.parse(text) as { expiresAt?: unknown }).expiresAt;
    if (typeof expiresAt !== 'string') return null;
    const ms = Date.parse(expiresAt);
    return Number.isFinite(ms) ? ms : null;
  } catch {
    return null;
  }
}
