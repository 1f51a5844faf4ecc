/**
 * The keys a touch keyboard lacks (Esc, Tab, Ctrl, Alt, arrows, | ~ / -), in a bar kept
 * just above the on-screen keyboard. Shown only where the primary pointer is coarse.
 *
 * The bar must never take the focus from the terminal: a focus change closes the
 * on-screen keyboard, and the next letter would go nowhere. So its buttons are out of
 * the tab order and their pointerdown/mousedown are cancelled (click still fires).
 * Ctrl and Alt are sticky: they apply to the next key, from the bar or the keyboard,
 * through the terminal's input filter.
 */
import { h } from './dom';

export interface KeyBarTarget {
  sendKeys(data: string): void;
  readonly applicationCursorKeys: boolean;
}

type Modifier = 'ctrl' | 'alt';

interface KeySpec {
  label: string;
  name: string;
  /** what the key sends, given the modifiers held and the cursor key mode */
  send?: (mods: Set<Modifier>, appCursor: boolean) => string;
  modifier?: Modifier;
}

const COARSE_POINTER = '(pointer: coarse)';

/** ESC [ 1 ; m X for a modified arrow (xterm's encoding: 1 + 2 for Alt + 4 for Ctrl). */
function arrow(final: string): KeySpec['send'] {
  return (mods, appCursor) => {
    const m = 1 + (mods.has('alt') ? 2 : 0) + (mods.has('ctrl') ? 4 : 0);
    if (m > 1) return `\x1b[1;${m}${final}`;
    return appCursor ? `\x1bO${final}` : `\x1b[${final}`;
  };
}

/** A printable key from the bar, with the modifiers applied as the keyboard's would be. */
function printable(ch: string): KeySpec['send'] {
  return (mods) => applyModifiers(ch, mods);
}

const KEYS: KeySpec[] = [
  { label: 'Esc', name: 'Escape', send: (mods) => (mods.has('alt') ? '\x1b\x1b' : '\x1b') },
  { label: 'Tab', name: 'Tab', send: (mods) => (mods.has('alt') ? '\x1b\t' : '\t') },
  { label: 'Ctrl', name: 'Control', modifier: 'ctrl' },
  { label: 'Alt', name: 'Alt', modifier: 'alt' },
  { label: '←', name: 'Left arrow', send: arrow('D') },
  { label: '↓', name: 'Down arrow', send: arrow('B') },
  { label: '↑', name: 'Up arrow', send: arrow('A') },
  { label: '→', name: 'Right arrow', send: arrow('C') },
  { label: '|', name: 'Pipe', send: printable('|') },
  { label: '~', name: 'Tilde', send: printable('~') },
  { label: '/', name: 'Slash', send: printable('/') },
  { label: '-', name: 'Dash', send: printable('-') },
];

/** The control character for Ctrl plus `ch`, as a VT220 keyboard sends it; null if none. */
export function controlCharacter(ch: string): string | null {
  if (ch.length !== 1) return null;
  const lower = ch.toLowerCase();
  if (lower >= 'a' && lower <= 'z') return String.fromCharCode(lower.charCodeAt(0) - 96);
  if ('@[\\]^_'.includes(ch)) return String.fromCharCode(ch.charCodeAt(0) & 0x1f);
  if (ch === ' ' || ch === '2') return '\x00';
  if (ch === '?' || ch === '8') return '\x7f';
  if (ch >= '3' && ch <= '7') return String.fromCharCode(ch.charCodeAt(0) - '3'.charCodeAt(0) + 0x1b);
  return null;
}

/** Ctrl and Alt applied to the first character of typed input; the rest passes as is. */
export function applyModifiers(data: string, mods: ReadonlySet<Modifier>): string {
  if (data === '' || mods.size === 0) return data;
  const first = String.fromCodePoint(data.codePointAt(0)!);
  const rest = data.slice(first.length);
  const ctrl = mods.has('ctrl') ? (controlCharacter(first) ?? first) : first;
  return (mods.has('alt') ? '\x1b' : '') + ctrl + rest;
}

export class KeyBar {
  readonly element: HTMLElement;
  private readonly held = new Set<Modifier>();
  private readonly modifierButtons = new Map<Modifier, HTMLButtonElement>();
  private readonly coarse = window.matchMedia(COARSE_POINTER);
  private hasTarget = false;

  constructor(private readonly target: () => KeyBarTarget | null) {
    this.element = h(
      'div',
      { class: 'key-bar', role: 'toolbar', 'aria-label': 'Terminal keys', hidden: true },
      ...KEYS.map((key) => this.button(key)),
    );
    // Cancelling these keeps the focus (and the on-screen keyboard) on the terminal.
    for (const type of ['pointerdown', 'mousedown']) {
      this.element.addEventListener(type, (event) => event.preventDefault());
    }
    this.coarse.addEventListener('change', () => this.update());
    const viewport = window.visualViewport;
    if (viewport) {
      const place = (): void => this.place(viewport);
      viewport.addEventListener('resize', place);
      viewport.addEventListener('scroll', place);
    }
  }

  /** Whether a terminal that takes input is shown; the bar is shown only then. */
  setTargetAvailable(available: boolean): void {
    this.hasTarget = available;
    this.update();
  }

  /** The terminal's input filter: sticky modifiers apply to the next typed key. */
  readonly filter = (data: string): string => {
    if (this.held.size === 0) return data;
    const out = applyModifiers(data, this.held);
    this.release();
    return out;
  };

  private button(key: KeySpec): HTMLButtonElement {
    const button = h(
      'button',
      {
        type: 'button',
        class: ['key-bar-key', key.label.length > 1 ? 'key-bar-word' : '', key.modifier ? 'key-bar-modifier' : '']
          .filter(Boolean)
          .join(' '),
        tabindex: -1,
        'aria-label': key.name,
        'data-key': key.name,
        ...(key.modifier ? { 'aria-pressed': 'false' } : {}),
      },
      key.label,
    );
    button.addEventListener('click', () => this.press(key));
    if (key.modifier) this.modifierButtons.set(key.modifier, button);
    return button;
  }

  private press(key: KeySpec): void {
    if (key.modifier) {
      if (this.held.has(key.modifier)) this.held.delete(key.modifier);
      else this.held.add(key.modifier);
      this.renderModifiers();
      return;
    }
    const target = this.target();
    if (!target || !key.send) return;
    target.sendKeys(key.send(this.held, target.applicationCursorKeys));
    this.release();
  }

  private release(): void {
    if (this.held.size === 0) return;
    this.held.clear();
    this.renderModifiers();
  }

  private renderModifiers(): void {
    for (const [modifier, button] of this.modifierButtons) {
      button.setAttribute('aria-pressed', String(this.held.has(modifier)));
    }
  }

  private update(): void {
    const shown = this.coarse.matches && this.hasTarget;
    this.element.hidden = !shown;
    document.body.classList.toggle('has-key-bar', shown);
    if (!shown) this.release();
    else if (window.visualViewport) this.place(window.visualViewport);
  }

  /** Keeps the bar at the bottom of what is visible: above the on-screen keyboard, which
   * shrinks the visual viewport but not the layout viewport fixed elements sit in. */
  private place(viewport: VisualViewport): void {
    const inset = Math.max(0, window.innerHeight - viewport.height - viewport.offsetTop);
    this.element.style.setProperty('--keyboard-inset', `${Math.round(inset)}px`);
  }
}
