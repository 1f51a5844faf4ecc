/**
 * One container terminal in the page: an xterm.js view attached over a reconnecting
 * WebSocket, with the server's flow control honoured (output is acknowledged only once
 * xterm has parsed it, so a `yes` in the container cannot bury the browser).
 */
import { Terminal, type ITheme } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { WebLinksAddon } from '@xterm/addon-web-links';
import type {
  AttachMode,
  ExitReason,
  TerminalClientMessage,
  TerminalJson,
  TerminalServerMessage,
} from '../../server/src/protocol/index';
import { FLOW_ACK_EVERY_BYTES, WS_CLOSE } from '../../server/src/protocol/index';
import { renewSession, terminalSocketUrl } from './api';
import { h } from './dom';
import { describeExit } from './format';
import { TERMINAL_FONT_FAMILY, loadScreenReaderMode } from './prefs';
import { ReconnectingSocket, isFinalClose, type SocketState } from './socket';

export interface TerminalViewOptions {
  containerId: string;
  terminalId: number;
  label: string;
  fontSize: number;
  theme: ITheme;
  onAttached?: (terminal: TerminalJson) => void;
  onExit?: (exitCode: number | null, reason: ExitReason | null) => void;
  onNotice?: (message: string) => void;
  /** A teacher's attach to a student's terminal. The student's pty keeps the student's
   * size: the view never sends a resize and takes the size the server announces. In
   * `watch` mode the keyboard is off too (the server drops input anyway). */
  mode?: AttachMode;
  /** With `mode`: scale the font so the student's whole screen fits the box (up to
   * `fontSize`), instead of the page's fixed size. */
  fitFontToBox?: boolean;
  /** xterm.js's screenReaderMode; the viewer's saved preference when not given. */
  screenReaderMode?: boolean;
  /** Rewrites what the keyboard types before it is sent (the touch key bar's sticky
   * Ctrl and Alt); keys sent with sendKeys() bypass it. */
  inputFilter?: (data: string) => string;
}

const encoder = new TextEncoder();

/** The page's one line listing the terminal's own keys (copy, paste, search, leaving). */
export const TERMINAL_KEYS_HINT_ID = 'terminal-keys-hint';

export class TerminalView {
  readonly element: HTMLElement;
  readonly containerId: string;
  readonly terminalId: number;

  private readonly term: Terminal;
  private readonly fit = new FitAddon();
  private readonly search = new SearchAddon();
  private readonly host: HTMLElement;
  private readonly banner: HTMLElement;
  private readonly bannerText: HTMLElement;
  private readonly bannerButton: HTMLButtonElement;
  private readonly searchBar: HTMLElement;
  private readonly searchInput: HTMLInputElement;
  private readonly controlBadge: HTMLElement;
  private readonly resizeObserver: ResizeObserver;
  private socket: ReconnectingSocket | null = null;
  private snapshotPending = false;
  private unackedBytes = 0;
  private ended = false;
  /** An `error` frame just before `exit` says why (e.g. the launcher's failure). */
  private lastError: string | null = null;
  private fitFrame: number | null = null;
  /** When Escape was last pressed: Escape then Tab leaves the terminal (see onKey). */
  private escapeAt = 0;
  private disposed = false;

  constructor(private readonly options: TerminalViewOptions) {
    this.containerId = options.containerId;
    this.terminalId = options.terminalId;

    this.host = h('div', { class: 'terminal-host' });
    this.bannerText = h('span', { class: 'terminal-banner-text' });
    this.bannerButton = h('button', { type: 'button', class: 'button small', hidden: true });
    this.banner = h(
      'div',
      { class: 'terminal-banner', role: 'status', hidden: true },
      this.bannerText,
      this.bannerButton,
    );
    this.searchInput = h('input', {
      type: 'search',
      class: 'terminal-search-input',
      'aria-label': 'Search terminal',
      placeholder: 'Search…',
      onKeydown: (event) => this.onSearchKey(event as KeyboardEvent),
    });
    this.searchBar = h(
      'div',
      { class: 'terminal-search', role: 'search', hidden: true },
      this.searchInput,
      h('button', { type: 'button', class: 'button small', onClick: () => this.findPrevious() }, 'Previous match'),
      h('button', { type: 'button', class: 'button small', onClick: () => this.findNext() }, 'Next match'),
      h('button', { type: 'button', class: 'button small', onClick: () => this.closeSearch() }, 'Close search'),
    );
    this.controlBadge = h(
      'div',
      { class: 'terminal-control-badge', role: 'status', hidden: true },
      h('strong', {}, 'The teacher has the keyboard.'),
      ' What they type appears here; wait until they give it back before you type.',
    );
    this.element = h(
      'div',
      {
        class: options.mode ? `terminal-view teacher-${options.mode}` : 'terminal-view',
        role: 'group',
        'aria-label': options.label,
        'data-container-id': options.containerId,
        'data-terminal-id': options.terminalId,
        'data-state': 'connecting',
      },
      this.banner,
      this.controlBadge,
      this.searchBar,
      this.host,
    );

    this.term = new Terminal({
      allowProposedApi: true, // the unicode11 addon registers through a proposed API
      fontFamily: TERMINAL_FONT_FAMILY,
      fontSize: options.fontSize,
      theme: options.theme,
      scrollback: 5000,
      cursorBlink: true,
      macOptionIsMeta: true,
      rightClickSelectsWord: true,
      screenReaderMode: options.screenReaderMode ?? loadScreenReaderMode(),
    });
    this.term.loadAddon(this.fit);
    this.term.loadAddon(this.search);
    this.term.loadAddon(new WebLinksAddon());
    this.term.loadAddon(new Unicode11Addon());
    this.term.unicode.activeVersion = '11';
    this.term.attachCustomKeyEventHandler((event) => this.onKey(event));
    this.term.onData((data) => {
      const filtered = this.options.inputFilter ? this.options.inputFilter(data) : data;
      this.sendInput(encoder.encode(filtered));
    });
    // onBinary carries mouse reports that are not valid UTF-8: one char per byte.
    this.term.onBinary((data) => this.sendInput(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)));
    this.term.onResize(({ cols, rows }) => {
      if (!this.options.mode) this.sendControl({ type: 'resize', cols, rows });
    });

    this.resizeObserver = new ResizeObserver(() => this.scheduleFit());
  }

  /** Puts xterm into the page and connects; call once the element is in the document. */
  open(): void {
    this.term.open(this.host);
    this.term.textarea?.setAttribute('aria-label', `${this.options.label}: terminal input`);
    this.term.textarea?.setAttribute('aria-describedby', TERMINAL_KEYS_HINT_ID);
    this.resizeObserver.observe(this.host);
    this.fitNow();
    this.connect();
  }

  focus(): void {
    this.term.focus();
  }

  /** The size xterm has fitted to its box (the pty follows it). */
  get size(): { cols: number; rows: number } {
    return { cols: this.term.cols, rows: this.term.rows };
  }

  setFontSize(size: number): void {
    this.term.options.fontSize = size;
    this.scheduleFit();
  }

  /** The student's side: says so while the teacher types into this terminal. */
  setTeacherControl(teacher: boolean): void {
    this.controlBadge.hidden = !teacher;
    this.element.classList.toggle('teacher-has-keyboard', teacher);
  }

  setTheme(theme: ITheme): void {
    this.term.options.theme = theme;
  }

  setScreenReaderMode(on: boolean): void {
    this.term.options.screenReaderMode = on;
  }

  /** Whether the program asked for application cursor keys (DECCKM): arrows are ESC O x. */
  get applicationCursorKeys(): boolean {
    return this.term.modes.applicationCursorKeysMode;
  }

  /** Sends keys as if typed (the touch key bar's), past the input filter. */
  sendKeys(data: string): void {
    if (this.ended || this.options.mode === 'watch' || this.term.options.disableStdin) return;
    this.term.scrollToBottom();
    this.sendInput(encoder.encode(data));
  }

  /** Call after the view becomes visible again: a hidden element has no size to fit. */
  refit(): void {
    this.scheduleFit();
  }

  openSearch(): void {
    this.searchBar.hidden = false;
    const selection = this.term.getSelection();
    if (selection && !selection.includes('\n')) this.searchInput.value = selection;
    this.searchInput.focus();
    this.searchInput.select();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.socket?.close();
    this.socket = null;
    this.resizeObserver.disconnect();
    if (this.fitFrame !== null) cancelAnimationFrame(this.fitFrame);
    this.term.dispose();
    this.element.remove();
  }

  private connect(): void {
    this.socket = new ReconnectingSocket({
      url: () => terminalSocketUrl(this.containerId, this.terminalId, this.size, this.options.mode),
      onOpen: () => {
        this.unackedBytes = 0;
      },
      onMessage: (event) => this.onMessage(event),
      beforeReconnect: renewSession,
      // After `exit` the server closes normally; 4008 (we were too slow) means reattach.
      shouldReconnect: (event) => !this.ended && (event.code === WS_CLOSE.TOO_SLOW || !isFinalClose(event)),
      onStateChange: (state, detail) => this.onSocketState(state, detail),
    });
  }

  private onSocketState(state: SocketState, detail: { retryInMs?: number; closeEvent?: CloseEvent }): void {
    this.element.dataset.state = this.ended ? 'exited' : state;
    if (this.ended) return;
    if (state === 'waiting') {
      const seconds = Math.max(1, Math.round((detail.retryInMs ?? 0) / 1000));
      this.showBanner(`Connection lost. Reconnecting in ${seconds} s…`, 'warning', 'Reconnect now', () =>
        this.socket?.retryNow(),
      );
    } else if (state === 'closed' && detail.closeEvent) {
      const reason = detail.closeEvent.reason ? `: ${detail.closeEvent.reason}` : '';
      this.showBanner(`Disconnected (code ${detail.closeEvent.code}${reason}).`, 'error', 'Reconnect', () => {
        this.socket?.close();
        this.hideBanner();
        this.connect();
      });
    } else if (state === 'open') {
      this.hideBanner();
    }
  }

  private onMessage(event: MessageEvent): void {
    if (typeof event.data === 'string') {
      this.onControl(event.data);
      return;
    }
    const bytes = new Uint8Array(event.data as ArrayBuffer);
    if (this.snapshotPending) {
      this.snapshotPending = false;
      // The screen arrives rendered at the pty's size; once it is drawn, tell the server
      // ours (fit sends a resize only when the size differs).
      this.term.write(bytes, () => {
        this.acknowledge(bytes.length);
        this.fitNow(true);
        this.term.scrollToBottom();
      });
      return;
    }
    this.term.write(bytes, () => this.acknowledge(bytes.length));
  }

  private onControl(text: string): void {
    let message: TerminalServerMessage;
    try {
      message = JSON.parse(text) as TerminalServerMessage;
    } catch {
      console.warn('terminal: ignoring a control frame that is not JSON');
      return;
    }
    switch (message.type) {
      case 'attached':
        // A reconnect replays the whole screen: start from a blank terminal at the pty's
        // size so the serialized cursor movements land where they were recorded.
        this.term.reset();
        if (
          message.cols > 0 &&
          message.rows > 0 &&
          (message.cols !== this.term.cols || message.rows !== this.term.rows)
        ) {
          this.term.resize(message.cols, message.rows);
        }
        this.snapshotPending = true;
        this.unackedBytes = 0;
        this.lastError = null;
        this.element.dataset.state = 'open';
        if (message.terminal.state === 'exited') this.markEnded(message.terminal.exitCode, null);
        else this.term.options.disableStdin = this.options.mode === 'watch';
        this.options.onAttached?.(message.terminal);
        break;
      case 'exit':
        this.markEnded(message.exitCode, message.reason);
        this.options.onExit?.(message.exitCode, message.reason);
        break;
      case 'error':
        this.lastError = `${message.message} (${message.code})`;
        this.showBanner(this.lastError, 'error');
        this.options.onNotice?.(`${this.options.label}: ${message.message}`);
        if (message.code === 'NOT_FOUND') this.ended = true;
        break;
      case 'resize':
        // A teacher's view follows the student's pty; an owner's own size drives it.
        if (this.options.mode && message.cols > 0 && message.rows > 0) {
          this.term.resize(message.cols, message.rows);
          this.scheduleFit();
        }
        break;
      default:
        console.warn('terminal: ignoring an unknown control frame', message);
    }
  }

  private markEnded(exitCode: number | null, reason: ExitReason | null): void {
    this.ended = true;
    this.term.options.disableStdin = true;
    this.element.dataset.state = 'exited';
    const why = this.lastError ? ` ${this.lastError}` : '';
    this.showBanner(`Exited: ${describeExit(exitCode, reason)}.${why}`, 'exited');
  }

  private acknowledge(bytes: number): void {
    this.unackedBytes += bytes;
    if (this.unackedBytes < FLOW_ACK_EVERY_BYTES) return;
    if (this.sendControl({ type: 'ack', bytes: this.unackedBytes })) this.unackedBytes = 0;
  }

  private sendControl(message: TerminalClientMessage): boolean {
    return this.socket?.send(JSON.stringify(message)) ?? false;
  }

  private sendInput(bytes: Uint8Array): void {
    if (this.ended || this.options.mode === 'watch') return;
    this.socket?.send(bytes);
  }

  private onKey(event: KeyboardEvent): boolean {
    if (event.type !== 'keydown') return true;
    // A terminal takes Tab for itself (completion), which would trap keyboard users: Escape
    // followed by Tab or Shift+Tab within a second moves the focus on instead. Escape still
    // reaches the program.
    if (event.key === 'Escape') {
      this.escapeAt = performance.now();
      return true;
    }
    if (event.key === 'Tab' && !event.ctrlKey && !event.altKey && !event.metaKey) {
      const leaving = performance.now() - this.escapeAt < 1000;
      this.escapeAt = 0;
      if (leaving) return false; // no preventDefault: the browser moves the focus
      return true;
    }
    const ctrlShift = event.ctrlKey && event.shiftKey && !event.altKey && !event.metaKey;
    const key = event.key.toLowerCase();
    if ((ctrlShift && key === 'c') || (event.ctrlKey && !event.shiftKey && key === 'insert')) {
      event.preventDefault();
      this.copySelection();
      return false;
    }
    if ((ctrlShift && key === 'v') || (event.shiftKey && !event.ctrlKey && key === 'insert')) {
      // Leave the key to the browser: its native paste event reaches xterm's textarea,
      // which pastes (bracketed when the shell asks) without a clipboard permission.
      return false;
    }
    if (ctrlShift && key === 'f') {
      event.preventDefault();
      this.openSearch();
      return false;
    }
    return true;
  }

  private copySelection(): void {
    const text = this.term.getSelection();
    if (!text) return;
    if (navigator.clipboard?.writeText) {
      navigator.clipboard.writeText(text).catch(() => {
        this.options.onNotice?.('The browser refused to copy to the clipboard.');
      });
    } else {
      // Not a secure context (plain http on a LAN address): fall back to a copy event,
      // which xterm answers with its selection.
      document.execCommand('copy');
    }
  }

  private onSearchKey(event: KeyboardEvent): void {
    if (event.key === 'Enter') {
      event.preventDefault();
      if (event.shiftKey) this.findPrevious();
      else this.findNext();
    } else if (event.key === 'Escape') {
      event.preventDefault();
      this.closeSearch();
    }
  }

  private findNext(): void {
    if (this.searchInput.value) this.search.findNext(this.searchInput.value);
  }

  private findPrevious(): void {
    if (this.searchInput.value) this.search.findPrevious(this.searchInput.value);
  }

  private closeSearch(): void {
    this.search.clearDecorations();
    this.term.clearSelection();
    this.searchBar.hidden = true;
    this.term.focus();
  }

  private showBanner(text: string, kind: 'warning' | 'error' | 'exited', action?: string, onAction?: () => void): void {
    this.banner.hidden = false;
    this.banner.dataset.kind = kind;
    this.bannerText.textContent = text;
    if (action && onAction) {
      this.bannerButton.hidden = false;
      this.bannerButton.textContent = action;
      this.bannerButton.onclick = onAction;
    } else {
      this.bannerButton.hidden = true;
      this.bannerButton.onclick = null;
    }
  }

  private hideBanner(): void {
    this.banner.hidden = true;
  }

  private scheduleFit(): void {
    if (this.fitFrame !== null || this.disposed) return;
    this.fitFrame = requestAnimationFrame(() => {
      this.fitFrame = null;
      this.fitNow();
    });
  }

  /** Fits the terminal to its box; `announce` sends the size even when unchanged, because
   * after an attach the pty may be at another client's size. */
  private fitNow(announce = false): void {
    if (this.disposed || this.host.clientWidth === 0 || this.host.clientHeight === 0) return;
    if (this.options.mode) {
      if (this.options.fitFontToBox) this.fitFontToBox();
      return;
    }
    const before = `${this.term.cols}x${this.term.rows}`;
    const dims = this.fit.proposeDimensions();
    if (!dims || !Number.isFinite(dims.cols) || !Number.isFinite(dims.rows)) return;
    this.fit.fit();
    if (announce && `${this.term.cols}x${this.term.rows}` === before) {
      this.sendControl({ type: 'resize', cols: this.term.cols, rows: this.term.rows });
    }
  }

  /** A teacher's view has the student's cols x rows: the font is what gives. */
  private fitFontToBox(): void {
    // Cell sizes are not exactly linear in the font size: check again once drawn.
    if (scaleFontToFit(this.term, this.host, this.options.fontSize)) this.scheduleFit();
  }
}

/** Per terminal: a font size found too big for the box, and the box it was found in. */
const fontCeilings = new WeakMap<Terminal, { box: string; ceiling: number }>();

/**
 * Scales a terminal's font so its cols x rows fill `host` (at most `maxFontSize`), for
 * views whose size is someone else's (a watched student, a replay). The rendered screen's
 * size is roughly proportional to the font size, so one measurement gives the scale; cell
 * sizes snap to whole pixels, so a size that overflowed is remembered as a ceiling for
 * this box (else the font would flip between two sizes forever). Returns whether the font
 * changed (measure again after the next frame).
 */
export function scaleFontToFit(term: Terminal, host: HTMLElement, maxFontSize: number): boolean {
  const screen = host.querySelector<HTMLElement>('.xterm-screen');
  if (!screen || host.clientWidth === 0 || host.clientHeight === 0) return false;
  const { width, height } = screen.getBoundingClientRect();
  if (width <= 0 || height <= 0) return false;
  const box = `${host.clientWidth}x${host.clientHeight}:${term.cols}x${term.rows}`;
  let known = fontCeilings.get(term);
  if (known?.box !== box) {
    known = { box, ceiling: Infinity };
    fontCeilings.set(term, known);
  }
  const current = term.options.fontSize ?? maxFontSize;
  const scale = Math.min((host.clientWidth - 12) / width, (host.clientHeight - 8) / height);
  if (scale < 1) known.ceiling = Math.min(known.ceiling, current);
  const wanted = Math.max(6, Math.min(maxFontSize, known.ceiling - 0.5, Math.floor(current * scale * 2) / 2));
  if (Math.abs(wanted - current) < 0.5) return false;
  term.options.fontSize = wanted;
  return true;
}
