/**
 * The server's copy of a terminal's screen: an @xterm/headless terminal fed with every
 * output byte, serializable at any byte boundary so a (re)attaching client can be given
 * exactly the screen it would have had, followed by the live stream.
 */
import { isAscii } from 'node:buffer';
import xtermHeadless from '@xterm/headless';
import xtermSerialize from '@xterm/addon-serialize';

const { Terminal: HeadlessTerminal } = xtermHeadless;
const { SerializeAddon } = xtermSerialize;
type HeadlessAddon = Parameters<InstanceType<typeof HeadlessTerminal>['loadAddon']>[0];

/** An escape sequence longer than this is not replayed to a reattaching client. */
const MAX_TAIL_BYTES = 64 * 1024;

/**
 * Plain text held back from the parser (Screen#holdPlain): at most this much; for a
 * moment, or while the terminal floods (this much in one moment) for up to a second.
 */
const HOLD_MAX_BYTES = 512 * 1024;
const HOLD_MS = 15;
const HOLD_FLOODING_MS = 1000;
const FLOOD_BYTES = 16 * 1024;

/**
 * Text that changes nothing in the terminal's state but the cells it prints and where the
 * cursor is: ASCII without ESC (so no sequence, no UTF-8, no C1) and without SO and SI
 * (the character set shifts). CR, LF, BS, HT and BEL act within what the cut below keeps.
 */
function isPlainText(chunk: Buffer): boolean {
  return chunk.indexOf(0x1b) === -1 && chunk.indexOf(0x0e) === -1 && chunk.indexOf(0x0f) === -1 && isAscii(chunk);
}

/**
 * Where in `parts` (plain text, in order) the last `lines` lines begin: just after a CR LF,
 * where the cursor is at column 0 with no wrap pending, with at least `lines` LFs after it.
 * null when there are not that many.
 */
function lastLinesStart(parts: readonly Buffer[], lines: number): { part: number; offset: number } | null {
  let seen = 0;
  for (let part = parts.length - 1; part >= 0; part--) {
    const chunk = parts[part]!;
    let end = chunk.length;
    for (;;) {
      const lf = end > 0 ? chunk.lastIndexOf(0x0a, end - 1) : -1;
      if (lf < 0) break;
      end = lf;
      if (seen >= lines) {
        const before = lf > 0 ? chunk[lf - 1] : part > 0 ? parts[part - 1]!.at(-1) : undefined;
        if (before === 0x0d) return { part, offset: lf + 1 };
      }
      seen++;
    }
  }
  return null;
}

const enum VtState {
  Ground,
  Utf8,
  Escape,
  EscapeIntermediate,
  Csi,
  /** OSC: ends with BEL or ST */
  Osc,
  /** DCS, SOS, PM, APC: end with ST */
  String,
}

/**
 * Follows the output stream just far enough to know whether it stands between two
 * sequences. xterm's parser keeps a half-received escape sequence or UTF-8 character in
 * its state, which serialize() cannot express; the bytes since the last point where the
 * stream was "in ground" are replayed after the serialized screen, so the client's parser
 * ends in the same state and the live stream continues it ungarbled.
 */
export class SequenceTail {
  #state = VtState.Ground;
  #utf8Remaining = 0;
  #utf8Lead = 0;
  #tail: Buffer[] = [];
  #tailBytes = 0;
  #overflowed = false;

  /**
   * Feeds a chunk; returns the offset of the chunk's first ground point, -1 if none.
   * `plain`: the caller has found the chunk ASCII without ESC already.
   */
  feed(chunk: Buffer, plain = false): number {
    // From ground, ASCII without ESC stays in ground at every byte (CAN and SUB included):
    // most output is such text, and two native scans are far cheaper than a walk in JS.
    if (this.#state === VtState.Ground && (plain || (chunk.indexOf(0x1b) === -1 && isAscii(chunk)))) {
      this.#tail = [];
      this.#tailBytes = 0;
      this.#overflowed = false;
      return 0;
    }
    let firstGround = this.#state === VtState.Ground ? 0 : -1;
    let lastGround = firstGround;
    for (let i = 0; i < chunk.length; i++) {
      this.#step(chunk[i]!);
      if (this.#state === VtState.Ground) {
        if (firstGround < 0) firstGround = i + 1;
        lastGround = i + 1;
      }
    }
    if (this.#state === VtState.Ground) {
      this.#tail = [];
      this.#tailBytes = 0;
      this.#overflowed = false;
    } else {
      const rest = lastGround >= 0 ? chunk.subarray(lastGround) : chunk;
      if (lastGround >= 0) {
        this.#tail = [];
        this.#tailBytes = 0;
        this.#overflowed = false;
      }
      if (!this.#overflowed) {
        this.#tailBytes += rest.length;
        if (this.#tailBytes > MAX_TAIL_BYTES) {
          this.#tail = [];
          this.#tailBytes = 0;
          this.#overflowed = true;
        } else {
          // Copied: the reader may reuse its buffer.
          this.#tail.push(Buffer.from(rest));
        }
      }
    }
    return firstGround;
  }

  /** The unfinished sequence at the current position; null if too long to keep. */
  current(): Buffer | null {
    if (this.#overflowed) return null;
    return this.#tail.length === 0 ? Buffer.alloc(0) : Buffer.concat(this.#tail);
  }

  get inGround(): boolean {
    return this.#state === VtState.Ground;
  }

  #step(byte: number): void {
    // CAN and SUB abort any sequence (ECMA-48); ESC starts a new one from anywhere.
    if (this.#state !== VtState.Utf8) {
      if (byte === 0x18 || byte === 0x1a) {
        this.#state = VtState.Ground;
        return;
      }
      if (byte === 0x1b) {
        this.#state = VtState.Escape;
        return;
      }
    }
    switch (this.#state) {
      case VtState.Ground:
        if (byte >= 0xc2 && byte <= 0xdf) this.#startUtf8(byte, 1);
        else if (byte >= 0xe0 && byte <= 0xef) this.#startUtf8(byte, 2);
        else if (byte >= 0xf0 && byte <= 0xf4) this.#startUtf8(byte, 3);
        return;
      case VtState.Utf8:
        if ((byte & 0xc0) !== 0x80) {
          // Invalid continuation: the decoder drops the partial character and reads
          // this byte afresh.
          this.#state = VtState.Ground;
          this.#step(byte);
          return;
        }
        if (this.#utf8Lead === 0xc2 && this.#utf8Remaining === 1) {
          // U+0080..U+009F are the C1 controls, which xterm honours as 8-bit sequences.
          this.#state = this.#c1State(byte);
          return;
        }
        if (--this.#utf8Remaining === 0) this.#state = VtState.Ground;
        return;
      case VtState.Escape:
        if (byte === 0x5b) this.#state = VtState.Csi;
        else if (byte === 0x5d) this.#state = VtState.Osc;
        else if (byte === 0x50 || byte === 0x58 || byte === 0x5e || byte === 0x5f) this.#state = VtState.String;
        else if (byte >= 0x20 && byte <= 0x2f) this.#state = VtState.EscapeIntermediate;
        else if (byte >= 0x30 && byte <= 0x7e) this.#state = VtState.Ground;
        return;
      case VtState.EscapeIntermediate:
        if (byte >= 0x30 && byte <= 0x7e) this.#state = VtState.Ground;
        return;
      case VtState.Csi:
        if (byte >= 0x40 && byte <= 0x7e) this.#state = VtState.Ground;
        return;
      case VtState.Osc:
        if (byte === 0x07) this.#state = VtState.Ground;
        return;
      case VtState.String:
        return;
    }
  }

  #startUtf8(lead: number, remaining: number): void {
    this.#state = VtState.Utf8;
    this.#utf8Lead = lead;
    this.#utf8Remaining = remaining;
  }

  #c1State(second: number): VtState {
    switch (second) {
      case 0x9b:
        return VtState.Csi;
      case 0x9d:
        return VtState.Osc;
      case 0x90:
      case 0x98:
      case 0x9e:
      case 0x9f:
        return VtState.String;
      default:
        return VtState.Ground;
    }
  }
}

export interface ScreenSnapshot {
  /** serialized screen, then any unfinished sequence */
  data: Buffer;
  cols: number;
  rows: number;
  /** the unfinished sequence was too long to replay: skip live bytes up to the next ground point */
  discardUntilGround: boolean;
}

export interface ScreenOptions {
  cols: number;
  rows: number;
  scrollbackLines: number;
  /** called whenever a write has been processed (for flow control) */
  onProcessed?: () => void;
}

export class Screen {
  readonly #terminal: InstanceType<typeof HeadlessTerminal>;
  readonly #serializer: InstanceType<typeof SerializeAddon>;
  readonly #tail = new SequenceTail();
  readonly #scrollbackLines: number;
  readonly #onProcessed: (() => void) | undefined;
  #pendingBytes = 0;
  #disposed = false;
  /** plain text not yet given to the parser (#holdPlain) */
  #held: Buffer[] = [];
  /** while flooding, the held text is copied here instead (the reads' buffers then die young) */
  #floodBuffer: Buffer | null = null;
  #heldBytes = 0;
  #holdTimer: NodeJS.Timeout | null = null;
  #flooding = false;
  #skippedBytes = 0;
  /** callbacks queued behind writes; a disposed terminal never calls them, so we do */
  readonly #waiting = new Set<() => void>();

  constructor(options: ScreenOptions) {
    this.#terminal = new HeadlessTerminal({
      cols: options.cols,
      rows: options.rows,
      scrollback: options.scrollbackLines,
      allowProposedApi: true,
    });
    this.#serializer = new SerializeAddon();
    // The addon is typed against @xterm/xterm's Terminal; headless has the same API surface.
    this.#terminal.loadAddon(this.#serializer as unknown as HeadlessAddon);
    this.#scrollbackLines = options.scrollbackLines;
    this.#onProcessed = options.onProcessed;
  }

  /** Bytes written but not yet processed by the headless terminal's parser. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Plain text that scrolled past the scrollback before the parser saw it, so it never did. */
  get skippedBytes(): number {
    return this.#skippedBytes;
  }

  get cols(): number {
    return this.#terminal.cols;
  }

  get rows(): number {
    return this.#terminal.rows;
  }

  /** Feeds output; returns the offset of the chunk's first point between sequences, or -1. */
  write(chunk: Buffer): number {
    if (this.#disposed) return -1;
    const plain = this.#tail.inGround && isPlainText(chunk);
    const firstGround = this.#tail.feed(chunk, plain);
    if (plain) {
      this.#holdPlain(chunk);
    } else {
      this.#flushHeld();
      this.#parse(chunk);
    }
    return firstGround;
  }

  #parse(chunk: Buffer): void {
    this.#pendingBytes += chunk.length;
    this.#terminal.write(chunk, () => {
      this.#pendingBytes -= chunk.length;
      this.#onProcessed?.();
    });
  }

  /**
   * Plain text is held back before the parser for HOLD_MS, and while the terminal floods
   * for up to HOLD_FLOODING_MS or HOLD_MAX_BYTES; everything that reads the screen first
   * lets it through (#flushHeld). A program that floods the terminal (`yes`, a build
   * log, `cat` of a big file) prints far more lines between two flushes than the screen
   * and its scrollback hold: those that would only have scrolled through are never
   * parsed. That parse, and the scrollback lines it allocates, is most of the server's
   * CPU per streamed byte. Clients and recordings get every byte as before; only this
   * copy of the screen skips what it cannot show.
   */
  #holdPlain(chunk: Buffer): void {
    if (this.#flooding && this.#heldBytes + chunk.length > HOLD_MAX_BYTES) {
      if (!this.#compactHeld() || this.#heldBytes + chunk.length > HOLD_MAX_BYTES) this.#flushHeld(true);
    }
    if (!this.#flooding) {
      this.#held.push(chunk);
    } else {
      if (chunk.length >= HOLD_MAX_BYTES) {
        this.#parse(chunk);
        return;
      }
      // Off the JavaScript heap, and a new one for each hold: the parser keeps what it
      // was given until it has read it.
      this.#floodBuffer ??= Buffer.allocUnsafeSlow(HOLD_MAX_BYTES);
      chunk.copy(this.#floodBuffer, this.#heldBytes);
    }
    this.#heldBytes += chunk.length;
    if (this.#heldBytes >= HOLD_MAX_BYTES) {
      this.#flushHeld(true);
    } else {
      this.#holdTimer ??= setTimeout(() => this.#flushHeld(true), this.#flooding ? HOLD_FLOODING_MS : HOLD_MS).unref();
    }
  }

  /**
   * Gives the held text to the parser, minus the lines that would scroll past the
   * scrollback. Those are skipped only when the result is the same screen and scrollback
   * as parsing everything: the parser has caught up (its modes and cursor are those
   * after the last byte before the held text), the scroll region is the whole screen
   * (else a line feed on the bottom row would overwrite rather than scroll), and what
   * is kept starts after a CR LF and holds the screen's rows twice plus the scrollback
   * (the first rows it writes may land on rows that were not blank; they scroll out too).
   */
  #flushHeld(ended = false): void {
    if (this.#holdTimer !== null) {
      clearTimeout(this.#holdTimer);
      this.#holdTimer = null;
    }
    // A hold that ran its course tells whether the terminal floods.
    const wasFlooding = this.#flooding;
    if (ended) this.#flooding = this.#heldBytes >= FLOOD_BYTES;
    if (this.#heldBytes === 0) return;
    let parts =
      wasFlooding && this.#floodBuffer !== null ? [this.#floodBuffer.subarray(0, this.#heldBytes)] : this.#held;
    this.#held = [];
    this.#floodBuffer = null;
    this.#heldBytes = 0;
    const start = this.#keptStart(parts);
    if (start !== null) {
      for (let i = 0; i < start.part; i++) this.#skippedBytes += parts[i]!.length;
      this.#skippedBytes += start.offset;
      const first = parts[start.part]!.subarray(start.offset);
      parts = [first, ...parts.slice(start.part + 1)];
    }
    for (const part of parts) if (part.length > 0) this.#parse(part);
  }

  /** Where in held text `parts` what the parser must see begins (#flushHeld); null: all of it. */
  #keptStart(parts: readonly Buffer[]): { part: number; offset: number } | null {
    if (this.#pendingBytes !== 0 || this.#waiting.size !== 0 || !this.#scrollsWholeScreen()) return null;
    return lastLinesStart(parts, 2 * this.#terminal.rows + this.#scrollbackLines);
  }

  /**
   * A full flood buffer keeps only what a flush would give the parser (#flushHeld), and
   * the hold goes on: a terminal that floods is parsed once per HOLD_FLOODING_MS, not once
   * per HOLD_MAX_BYTES. The parser's state cannot change while text is held (anything else
   * written flushes first), so what a flush now would skip, a flush later skips too.
   * False when nothing can be dropped yet, or too little (lines so long that the kept
   * tail fills half the buffer): the caller then flushes.
   */
  #compactHeld(): boolean {
    if (this.#floodBuffer === null) return false;
    const held = this.#floodBuffer.subarray(0, this.#heldBytes);
    const start = this.#keptStart([held]);
    if (start === null || held.length - start.offset > HOLD_MAX_BYTES / 2) return false;
    held.copyWithin(0, start.offset);
    this.#skippedBytes += start.offset;
    this.#heldBytes -= start.offset;
    return true;
  }

  /** Whether a line feed on the bottom row scrolls the whole screen (no DECSTBM region). */
  #scrollsWholeScreen(): boolean {
    // xterm's public API does not expose the scroll region; its buffer does. Anything
    // unexpected there means "don't know", and nothing is skipped.
    const buffer = (
      this.#terminal as unknown as { _core?: { buffer?: { scrollTop?: unknown; scrollBottom?: unknown } } }
    )._core?.buffer;
    return buffer?.scrollTop === 0 && buffer.scrollBottom === this.#terminal.rows - 1;
  }

  /** Resizes in stream order: bytes written before apply to the old size. */
  resize(cols: number, rows: number): void {
    this.#flushHeld();
    this.#afterPendingWrites(() => {
      if (!this.#disposed) this.#terminal.resize(cols, rows);
    });
  }

  /**
   * The screen as of every byte written so far and none after: the headless terminal's
   * write queue calls back in order, before it parses later chunks.
   */
  snapshot(): Promise<ScreenSnapshot> {
    this.#flushHeld();
    const tail = this.#tail.current();
    return new Promise((resolve) => {
      this.#afterPendingWrites(() => {
        if (this.#disposed) {
          resolve({ data: Buffer.alloc(0), cols: this.cols, rows: this.rows, discardUntilGround: false });
          return;
        }
        const screen = Buffer.from(this.#serializer.serialize({ scrollback: this.#scrollbackLines }), 'utf8');
        resolve({
          data: tail && tail.length > 0 ? Buffer.concat([screen, tail]) : screen,
          cols: this.#terminal.cols,
          rows: this.#terminal.rows,
          discardUntilGround: tail === null,
        });
      });
    });
  }

  /** The visible rows as parsed so far, as plain text (trailing blanks trimmed). */
  text(): { cols: number; rows: number; lines: string[]; cursor: { x: number; y: number } } {
    this.#flushHeld();
    const buffer = this.#terminal.buffer.active;
    const lines: string[] = [];
    for (let y = 0; y < this.#terminal.rows; y++) {
      lines.push(buffer.getLine(buffer.viewportY + y)?.translateToString(true) ?? '');
    }
    return {
      cols: this.#terminal.cols,
      rows: this.#terminal.rows,
      lines,
      cursor: { x: buffer.cursorX, y: buffer.cursorY },
    };
  }

  /** Resolves once everything written so far has been processed. */
  settled(): Promise<void> {
    this.#flushHeld();
    return new Promise((resolve) => this.#afterPendingWrites(resolve));
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#holdTimer !== null) clearTimeout(this.#holdTimer);
    this.#held = [];
    this.#floodBuffer = null;
    this.#serializer.dispose();
    this.#terminal.dispose();
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const callback of waiting) callback();
  }

  #afterPendingWrites(callback: () => void): void {
    if (this.#disposed) {
      callback();
      return;
    }
    const once = (): void => {
      if (this.#waiting.delete(once)) callback();
    };
    this.#waiting.add(once);
    // An empty write queues a callback behind every earlier chunk.
    this.#terminal.write('', once);
  }
}
