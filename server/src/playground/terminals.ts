/**
 * One pty shared by any number of WebSocket clients: every client gets the screen on
 * attach and then the live stream, the pty takes the smallest client's size, and both
 * directions are flow-controlled: the slowest reader paces the program's output, and the
 * program's reading paces the clients' input, instead of the server's memory.
 */
import { dockerExitCode } from '../runtime/process.js';
import type { PtyProcess } from '../runtime/pty.js';
import { MdockerError } from '../runtime/errors.js';
import {
  FLOW_HIGH_WATER_BYTES,
  FLOW_LOW_WATER_BYTES,
  WS_CLOSE,
  type ExitReason,
  type TerminalClientMessage,
  type TerminalJson,
  type TerminalServerMessage,
} from '../protocol/index.js';
import { Screen } from './screen.js';

export const MIN_COLS = 2;
export const MAX_COLS = 500;
export const MIN_ROWS = 1;
export const MAX_ROWS = 200;
/**
 * While a terminal streams, its output is held this long and sent as one message per
 * client: one writev per few ms instead of one per small pty read (bench/PROFILE.md §2). A terminal that sent nothing for this long sends at once, so a
 * keystroke's echo is never held.
 */
export const OUTPUT_HOLD_MS = 4;
/** A held batch this large is sent without waiting for the timer. */
export const OUTPUT_BATCH_MAX_BYTES = 64 * 1024;
/**
 * Input flow control: a client whose input leaves more than INPUT_HIGH_WATER_BYTES queued
 * at the pty (the program is not reading) is no longer read from until the queue is under
 * INPUT_LOW_WATER_BYTES. A paused socket may still deliver what it had already read, a
 * message or a socket read's worth per client; past INPUT_MAX_BYTES queued, whatever the
 * number of clients, a client's input is refused and the client closed (TOO_SLOW).
 */
export const INPUT_HIGH_WATER_BYTES = 1024 * 1024;
export const INPUT_LOW_WATER_BYTES = 256 * 1024;
export const INPUT_MAX_BYTES = 2 * INPUT_HIGH_WATER_BYTES;
/**
 * Each resize reflows the screen (its scrollback included) on the event loop: a client
 * sending them in a loop would hold every terminal up. Up to RESIZES_PER_SECOND apply at
 * once; past that the latest size applies RESIZE_COALESCE_MS later, once.
 */
export const RESIZES_PER_SECOND = 20;
export const RESIZE_COALESCE_MS = 100;

export function clampCols(cols: number): number {
  return Math.min(MAX_COLS, Math.max(MIN_COLS, Math.floor(cols)));
}

export function clampRows(rows: number): number {
  return Math.min(MAX_ROWS, Math.max(MIN_ROWS, Math.floor(rows)));
}

/** What a terminal needs of a WebSocket (http/websocket.ts adapts `ws`'s). */
export interface TerminalSink {
  send(data: Buffer | string): void;
  close(code: number, reason: string): void;
  /** Stop reading the client's messages (its TCP window closes, its sends block)... */
  pauseInput(): void;
  /** ...and read them again. */
  resumeInput(): void;
}

export interface TerminalExit {
  exitCode: number | null;
  reason: ExitReason | null;
  /** told to clients before the exit, e.g. the launcher's failure */
  error?: { code: string; message: string } | null;
}

export interface TerminalOptions {
  id: number;
  containerId: string;
  cmd: string[];
  pty: PtyProcess;
  cols: number;
  rows: number;
  scrollbackLines: number;
  flowStallTimeoutMs: number;
  highWaterBytes?: number;
  lowWaterBytes?: number;
  /** output and input byte counts, for metrics */
  onBytes?: (direction: 'out' | 'in', bytes: number) => void;
  /** any client attached or detached */
  onClientsChanged?: () => void;
  /** a client typed (input reached the pty) */
  onInput?: () => void;
  /** keeps the output, the sizes and the end (playground/recording.ts) */
  recorder?: TerminalRecorder | null;
}

/** What a terminal tells its recording. */
export interface TerminalRecorder {
  output(chunk: Buffer): void;
  resize(cols: number, rows: number): void;
  end(): void;
}

/**
 * How a client holds the terminal. `owner`: types and resizes. `control` (the teacher
 * took the keyboard): types, but its window does not resize the student's terminal.
 * `watch`: neither; whatever it sends but acks is dropped.
 */
export type AttachRole = 'owner' | 'control' | 'watch';

interface Client {
  sink: TerminalSink;
  role: AttachRole;
  /** waiting for its snapshot: live output queues instead of being sent */
  pending: boolean;
  queue: { chunk: Buffer; firstGround: number }[];
  /** sent or queued, not yet acknowledged */
  unackedBytes: number;
  lastAckAt: number;
  cols: number | null;
  rows: number | null;
  /** its snapshot could not replay an over-long sequence: skip to the next ground point */
  discardUntilGround: boolean;
  /** when its input was paused (Date.now()); null: read */
  inputPausedAt: number | null;
  /** it sent input after it was paused: it kept pushing */
  pushedWhilePaused: boolean;
}

/** A client's hold on a terminal, given to the WebSocket handler. */
export interface TerminalAttachment {
  receive(data: Buffer, isBinary: boolean): void;
  detach(): void;
}

/**
 * One timer for every streaming terminal: each pty read arrives in an event-loop turn of
 * its own, so output can only be joined across time, and one timer for all keeps the
 * cost of holding independent of how many terminals stream at once.
 */
class OutputBatcher {
  readonly #held = new Set<{ flushOutput(): void }>();
  #timer: NodeJS.Timeout | null = null;

  hold(terminal: { flushOutput(): void }): void {
    this.#held.add(terminal);
    if (this.#timer === null) this.#timer = setTimeout(() => this.#flush(), OUTPUT_HOLD_MS);
  }

  release(terminal: { flushOutput(): void }): void {
    this.#held.delete(terminal);
    if (this.#held.size === 0 && this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }

  #flush(): void {
    this.#timer = null;
    const held = [...this.#held];
    this.#held.clear();
    for (const terminal of held) terminal.flushOutput();
  }
}

const outputBatcher = new OutputBatcher();

export class Terminal {
  readonly id: number;
  readonly containerId: string;
  readonly cmd: string[];
  readonly #pty: PtyProcess;
  readonly #screen: Screen;
  readonly #clients = new Set<Client>();
  readonly #highWater: number;
  readonly #lowWater: number;
  readonly #stallTimeoutMs: number;
  readonly #onBytes: TerminalOptions['onBytes'];
  readonly #onClientsChanged: TerminalOptions['onClientsChanged'];
  readonly #onInput: TerminalOptions['onInput'];
  readonly #recorder: TerminalRecorder | null;
  /** counts output handed on: a watcher of the screen knows whether it changed */
  #outputSeq = 0;
  readonly #exitListeners: ((exitCode: number, signal: number | undefined) => void)[] = [];
  #cols: number;
  #rows: number;
  #paused = false;
  #stallTimer: NodeJS.Timeout | null = null;
  #inputStallTimer: NodeJS.Timeout | null = null;
  #ptyExited = false;
  /** output read from the pty, not yet given to the screen or any client */
  #held: Buffer[] = [];
  #heldBytes = 0;
  /** when output was last handed on (performance.now()); -Infinity: never */
  #lastFlushAt = -Infinity;
  readonly #batchTarget = { flushOutput: (): void => this.#flushOutput() };
  #exit: TerminalExit | null = null;
  #disposed = false;
  #resizeTimes: number[] = [];
  #resizeTimer: NodeJS.Timeout | null = null;

  constructor(options: TerminalOptions) {
    this.id = options.id;
    this.containerId = options.containerId;
    this.cmd = options.cmd;
    this.#pty = options.pty;
    this.#cols = clampCols(options.cols);
    this.#rows = clampRows(options.rows);
    this.#highWater = options.highWaterBytes ?? FLOW_HIGH_WATER_BYTES;
    this.#lowWater = options.lowWaterBytes ?? FLOW_LOW_WATER_BYTES;
    this.#stallTimeoutMs = options.flowStallTimeoutMs;
    this.#onBytes = options.onBytes;
    this.#onClientsChanged = options.onClientsChanged;
    this.#onInput = options.onInput;
    this.#recorder = options.recorder ?? null;
    this.#screen = new Screen({
      cols: this.#cols,
      rows: this.#rows,
      scrollbackLines: options.scrollbackLines,
      onProcessed: () => this.#updateFlow(),
    });
    // The addon's pty delivers Buffers; a node-pty process (as tests hand in) may give strings.
    this.#pty.onData((data: string | Buffer) => this.#onPtyData(typeof data === 'string' ? Buffer.from(data) : data));
    this.#pty.onInputWritten(() => this.#updateInputFlow());
    this.#pty.onExit(({ exitCode, signal }) => {
      this.#flushOutput();
      this.#ptyExited = true;
      const code = dockerExitCode(exitCode, signal ?? null);
      // Listeners learn of the exit once the screen holds every byte, so a client told
      // "exited" can reattach and see the last words.
      void this.#screen.settled().then(() => {
        for (const listener of this.#exitListeners) listener(code, signal);
      });
    });
  }

  get state(): 'running' | 'exited' {
    return this.#exit === null ? 'running' : 'exited';
  }

  get exitCode(): number | null {
    return this.#exit?.exitCode ?? null;
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get cols(): number {
    return this.#cols;
  }

  get rows(): number {
    return this.#rows;
  }

  /** Grows whenever output reached the screen. */
  get outputSeq(): number {
    return this.#outputSeq;
  }

  /** The visible rows as text, for a miniature (no colours, no scrollback). */
  screenText(): { cols: number; rows: number; lines: string[]; cursor: { x: number; y: number } } {
    return this.#screen.text();
  }

  /** Clients attached with a role (the teacher's `control` ones). */
  clientsWithRole(role: AttachRole): number {
    let count = 0;
    for (const client of this.#clients) if (client.role === role) count++;
    return count;
  }

  get pid(): number {
    return this.#pty.pid;
  }

  /** Bytes the headless screen has not parsed yet plus the largest client backlog. */
  get backlogBytes(): number {
    let largest = 0;
    for (const client of this.#clients) largest = Math.max(largest, client.unackedBytes);
    return this.#screen.pendingBytes + largest;
  }

  /** Client input the program has not read yet, held by the pty. */
  get queuedInputBytes(): number {
    return this.#pty.queuedInputBytes;
  }

  /** The pty's process exited (launcher exit code); the owner then calls finish(). */
  onPtyExit(listener: (exitCode: number, signal: number | undefined) => void): void {
    this.#exitListeners.push(listener);
  }

  toJson(): TerminalJson {
    return {
      id: this.id,
      containerId: this.containerId,
      cmd: this.cmd,
      cols: this.#cols,
      rows: this.#rows,
      state: this.state,
      exitCode: this.exitCode,
      clients: this.#clients.size,
    };
  }

  /**
   * Attaches a client: `attached`, the screen as one binary frame, then live output; for
   * an exited terminal, the screen then `exit`, and the socket is closed.
   */
  attach(
    sink: TerminalSink,
    size: { cols?: number; rows?: number } = {},
    role: AttachRole = 'owner',
  ): TerminalAttachment {
    if (this.#disposed) throw new MdockerError('NOT_FOUND', `terminal ${this.id} is closed`);
    // Only the owner's windows size the terminal: a teacher watching on a projector
    // must not shrink the student's screen.
    if (role !== 'owner') size = {};
    const client: Client = {
      sink,
      role,
      pending: true,
      queue: [],
      unackedBytes: 0,
      lastAckAt: Date.now(),
      cols: size.cols === undefined ? null : clampCols(size.cols),
      rows: size.rows === undefined ? null : clampRows(size.rows),
      discardUntilGround: false,
      inputPausedAt: null,
      pushedWhilePaused: false,
    };
    this.#clients.add(client);
    this.#onClientsChanged?.();
    if (this.#exit === null) this.#applySize();
    void this.#screen.snapshot().then((snapshot) => {
      if (!this.#clients.has(client)) return;
      this.#send(client, { type: 'attached', terminal: this.toJson(), cols: snapshot.cols, rows: snapshot.rows });
      client.sink.send(snapshot.data);
      client.unackedBytes += snapshot.data.length;
      client.discardUntilGround = snapshot.discardUntilGround;
      client.pending = false;
      const queued = client.queue;
      client.queue = [];
      for (const { chunk, firstGround } of queued) {
        // Queued bytes were counted when queued; uncount what the client skips.
        client.unackedBytes -= chunk.length - this.#sendOutput(client, chunk, firstGround);
      }
      if (this.#exit !== null) this.#sendExit(client, this.#exit);
      this.#updateFlow();
    });
    return {
      receive: (data, isBinary) => this.#receive(client, data, isBinary),
      detach: () => this.#detach(client),
    };
  }

  /** Records how the terminal ended and tells every client, then closes them. */
  finish(exit: TerminalExit): void {
    if (this.#exit !== null) return;
    // Clients get every byte before the exit.
    this.#flushOutput();
    this.#exit = exit;
    this.#recorder?.end();
    this.#setPaused(false);
    for (const client of [...this.#clients]) {
      // A pending client gets the exit after its snapshot.
      if (!client.pending) this.#sendExit(client, exit);
    }
  }

  /** Sends a signal to the pty's process (the launcher forwards it into the container). */
  kill(signal: NodeJS.Signals = 'SIGHUP'): void {
    if (this.#ptyExited) return;
    try {
      this.#pty.kill(signal);
    } catch {
      // already gone
    }
  }

  /** Closes every client with `code` and frees the screen; kills the process if alive. */
  dispose(code: number = WS_CLOSE.NORMAL, reason = 'terminal closed'): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#dropHeldOutput();
    this.#recorder?.end();
    this.#stopStallTimer();
    this.#stopInputStallTimer();
    if (this.#resizeTimer) clearTimeout(this.#resizeTimer);
    this.#resizeTimer = null;
    for (const client of [...this.#clients]) this.#drop(client, code, reason);
    this.kill('SIGKILL');
    this.#screen.dispose();
  }

  /** Closes every client (e.g. server shutdown) without touching the process. */
  closeClients(code: number, reason: string): void {
    for (const client of [...this.#clients]) this.#drop(client, code, reason);
  }

  /**
   * Sends a chunk at once when nothing went out in the last OUTPUT_HOLD_MS (an echo, a
   * prompt), otherwise holds it for the shared timer: a streaming terminal sends one
   * message per client every few ms, however small its reads.
   */
  #onPtyData(chunk: Buffer): void {
    if (this.#disposed) return;
    if (this.#heldBytes === 0 && performance.now() - this.#lastFlushAt >= OUTPUT_HOLD_MS) {
      this.#lastFlushAt = performance.now();
      this.#onOutput(chunk);
      return;
    }
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    if (this.#heldBytes >= OUTPUT_BATCH_MAX_BYTES) this.#flushOutput();
    else outputBatcher.hold(this.#batchTarget);
  }

  /** Hands held output to the screen and the clients, in one piece. */
  #flushOutput(): void {
    if (this.#heldBytes === 0) return;
    const parts = this.#held;
    const batch = parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.#heldBytes);
    this.#dropHeldOutput();
    this.#lastFlushAt = performance.now();
    this.#onOutput(batch);
  }

  #dropHeldOutput(): void {
    this.#held = [];
    this.#heldBytes = 0;
    outputBatcher.release(this.#batchTarget);
  }

  #onOutput(chunk: Buffer): void {
    if (this.#disposed) return;
    this.#onBytes?.('out', chunk.length);
    this.#outputSeq++;
    this.#recorder?.output(chunk);
    const firstGround = this.#screen.write(chunk);
    for (const client of this.#clients) this.#deliver(client, chunk, firstGround);
    this.#updateFlow();
  }

  #deliver(client: Client, chunk: Buffer, firstGround: number): void {
    if (client.pending) {
      client.queue.push({ chunk, firstGround });
      client.unackedBytes += chunk.length;
      return;
    }
    client.unackedBytes += this.#sendOutput(client, chunk, firstGround);
  }

  /** Sends output, minus what a client must skip; returns the bytes sent. */
  #sendOutput(client: Client, chunk: Buffer, firstGround: number): number {
    let bytes = chunk;
    if (client.discardUntilGround) {
      if (firstGround < 0) return 0;
      client.discardUntilGround = false;
      bytes = chunk.subarray(firstGround);
    }
    if (bytes.length > 0) client.sink.send(bytes);
    return bytes.length;
  }

  #receive(client: Client, data: Buffer, isBinary: boolean): void {
    // A dropped client's socket may deliver what it had read before its close.
    if (!this.#clients.has(client)) return;
    if (isBinary) {
      if (client.role === 'watch' || this.#exit !== null || this.#ptyExited || data.length === 0) return;
      this.#writeInput(client, data);
      return;
    }
    const message = parseClientMessage(data);
    if (message === null) {
      this.#send(client, { type: 'error', code: 'INVALID_ARGUMENT', message: 'unknown or malformed control message' });
      return;
    }
    if (message.type === 'ack') {
      client.unackedBytes = Math.max(0, client.unackedBytes - message.bytes);
      client.lastAckAt = Date.now();
      this.#updateFlow();
      return;
    }
    if (client.role !== 'owner') return;
    client.cols = clampCols(message.cols);
    client.rows = clampRows(message.rows);
    if (this.#exit === null) this.#applySizeSoon();
  }

  /** #applySize now, or once a little later when resizes come faster than RESIZES_PER_SECOND. */
  #applySizeSoon(): void {
    const now = Date.now();
    this.#resizeTimes = this.#resizeTimes.filter((at) => now - at < 1000);
    if (this.#resizeTimes.length < RESIZES_PER_SECOND && this.#resizeTimer === null) {
      this.#resizeTimes.push(now);
      this.#applySize();
      return;
    }
    this.#resizeTimer ??= setTimeout(() => {
      this.#resizeTimer = null;
      this.#resizeTimes.push(Date.now());
      if (this.#exit === null && !this.#disposed) this.#applySize();
    }, RESIZE_COALESCE_MS);
  }

  /**
   * Input goes to the pty, which queues what the program has not read yet. The client
   * that takes the queue over the high-water mark stops being read, and one that pushes
   * it past the cap is closed: the queue stays bounded whatever the clients send.
   */
  #writeInput(client: Client, data: Buffer): void {
    if (this.#pty.queuedInputBytes + data.length > INPUT_MAX_BYTES) {
      this.#drop(client, WS_CLOSE.TOO_SLOW, 'input not read: the program is not reading its terminal');
      return;
    }
    if (client.inputPausedAt !== null) client.pushedWhilePaused = true;
    this.#onBytes?.('in', data.length);
    this.#onInput?.();
    this.#pty.write(data);
    if (this.#pty.queuedInputBytes > INPUT_HIGH_WATER_BYTES && client.inputPausedAt === null) {
      client.inputPausedAt = Date.now();
      client.sink.pauseInput();
      this.#startInputStallTimer();
    }
  }

  /** The pty took queued input: below the low-water mark every paused client is read again. */
  #updateInputFlow(): void {
    if (this.#disposed || this.#pty.queuedInputBytes >= INPUT_LOW_WATER_BYTES) return;
    for (const client of this.#clients) this.#resumeInput(client);
    this.#stopInputStallTimer();
  }

  #resumeInput(client: Client): void {
    if (client.inputPausedAt === null) return;
    client.inputPausedAt = null;
    client.pushedWhilePaused = false;
    client.sink.resumeInput();
  }

  #startInputStallTimer(): void {
    if (this.#inputStallTimer !== null) return;
    const period = Math.max(50, Math.min(1000, Math.floor(this.#stallTimeoutMs / 4)));
    this.#inputStallTimer = setInterval(() => this.#dropPushingClients(), period);
    this.#inputStallTimer.unref();
  }

  #stopInputStallTimer(): void {
    if (this.#inputStallTimer === null) return;
    clearInterval(this.#inputStallTimer);
    this.#inputStallTimer = null;
  }

  /**
   * A client paused longer than the stall timeout that kept sending is closed; one that
   * stopped at the mark is read again (its acks, resizes and pongs wait behind its input),
   * and its next input pauses it anew.
   */
  #dropPushingClients(): void {
    const now = Date.now();
    let paused = false;
    for (const client of [...this.#clients]) {
      if (client.inputPausedAt === null) continue;
      if (now - client.inputPausedAt <= this.#stallTimeoutMs) paused = true;
      else if (client.pushedWhilePaused) {
        this.#drop(client, WS_CLOSE.TOO_SLOW, 'input not read: the program is not reading its terminal');
      } else this.#resumeInput(client);
    }
    if (!paused) this.#stopInputStallTimer();
  }

  #detach(client: Client): void {
    if (!this.#clients.delete(client)) return;
    this.#onClientsChanged?.();
    if (this.#exit === null && !this.#disposed) this.#applySize();
    this.#updateFlow();
  }

  #drop(client: Client, code: number, reason: string): void {
    this.#detach(client);
    try {
      client.sink.close(code, reason);
    } catch {
      // already closed
    }
  }

  #sendExit(client: Client, exit: TerminalExit): void {
    if (exit.error) this.#send(client, { type: 'error', code: exit.error.code, message: exit.error.message });
    this.#send(client, { type: 'exit', exitCode: exit.exitCode, reason: exit.reason });
    this.#drop(client, WS_CLOSE.NORMAL, exit.reason === null ? 'exited' : `exited: ${exit.reason}`);
  }

  #send(client: Client, message: TerminalServerMessage): void {
    client.sink.send(JSON.stringify(message));
  }

  /** The smallest size any client asked for: nobody sees a screen cut off. */
  #applySize(): void {
    let cols = Infinity;
    let rows = Infinity;
    for (const client of this.#clients) {
      if (client.cols !== null) cols = Math.min(cols, client.cols);
      if (client.rows !== null) rows = Math.min(rows, client.rows);
    }
    if (cols === Infinity && rows === Infinity) return;
    const nextCols = cols === Infinity ? this.#cols : cols;
    const nextRows = rows === Infinity ? this.#rows : rows;
    if (nextCols === this.#cols && nextRows === this.#rows) return;
    // Output read before the resize was laid out at the old size: the screen parses it first.
    this.#flushOutput();
    this.#cols = nextCols;
    this.#rows = nextRows;
    if (!this.#ptyExited) {
      try {
        this.#pty.resize(nextCols, nextRows);
      } catch {
        // the pty closed under us; its exit is on the way
      }
    }
    this.#screen.resize(nextCols, nextRows);
    this.#recorder?.resize(nextCols, nextRows);
    // A teacher's client never sizes the pty: it follows it. One still waiting for its
    // snapshot learns the size from its `attached`.
    for (const client of this.#clients) {
      if (client.role !== 'owner' && !client.pending)
        this.#send(client, { type: 'resize', cols: nextCols, rows: nextRows });
    }
  }

  /**
   * Pauses the pty while the headless screen or any client is more than the high-water
   * mark behind, resumes once everyone is under the low-water mark. While paused the
   * program blocks in write(2): the kernel's pty buffer is the only queue that grows.
   */
  #updateFlow(): void {
    if (this.#disposed) return;
    if (this.#exit !== null) {
      this.#setPaused(false);
      return;
    }
    let above = this.#screen.pendingBytes > this.#highWater;
    let below = this.#screen.pendingBytes < this.#lowWater;
    for (const client of this.#clients) {
      if (client.unackedBytes > this.#highWater) above = true;
      if (client.unackedBytes >= this.#lowWater) below = false;
    }
    if (!this.#paused && above) this.#setPaused(true);
    else if (this.#paused && below) this.#setPaused(false);
  }

  #setPaused(paused: boolean): void {
    if (paused === this.#paused) return;
    this.#paused = paused;
    if (paused) {
      this.#pty.pause();
      this.#startStallTimer();
    } else {
      this.#stopStallTimer();
      if (!this.#ptyExited && !this.#disposed) this.#pty.resume();
    }
  }

  #startStallTimer(): void {
    if (this.#stallTimer !== null) return;
    const period = Math.max(50, Math.min(1000, Math.floor(this.#stallTimeoutMs / 4)));
    this.#stallTimer = setInterval(() => this.#dropStalledClients(), period);
    this.#stallTimer.unref();
  }

  #stopStallTimer(): void {
    if (this.#stallTimer === null) return;
    clearInterval(this.#stallTimer);
    this.#stallTimer = null;
  }

  /** A client that holds everyone paused and stopped acking is dropped, not waited for. */
  #dropStalledClients(): void {
    const now = Date.now();
    for (const client of [...this.#clients]) {
      if (client.unackedBytes >= this.#lowWater && now - client.lastAckAt > this.#stallTimeoutMs) {
        this.#drop(client, WS_CLOSE.TOO_SLOW, 'too far behind: reattach to catch up');
      }
    }
    this.#updateFlow();
  }
}

function parseClientMessage(data: Buffer): TerminalClientMessage | null {
  if (data.length > 1024) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const message = parsed as Record<string, unknown>;
  const keys = Object.keys(message);
  if (message.type === 'ack') {
    if (keys.length !== 2 || !isCount(message.bytes, Number.MAX_SAFE_INTEGER)) return null;
    return { type: 'ack', bytes: message.bytes };
  }
  if (message.type === 'resize') {
    if (keys.length !== 3 || !isCount(message.cols, 100_000) || !isCount(message.rows, 100_000)) return null;
    return { type: 'resize', cols: message.cols, rows: message.rows };
  }
  return null;
}

function isCount(value: unknown, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max;
}
