/**
 * The viewer's display preferences (theme, terminal font size, screen reader mode), remembered in
 * localStorage, and the palettes the terminal and the graphs draw with in each theme.
 */
import type { ITheme } from '@xterm/xterm';

export type ThemeChoice = 'system' | 'dark' | 'light';
export type ThemeMode = 'dark' | 'light';

export const FONT_SIZE_MIN = 10;
export const FONT_SIZE_MAX = 36;
const FONT_SIZE_DEFAULT = 15;

const THEME_KEY = 'mdocker.theme';
const FONT_SIZE_KEY = 'mdocker.fontSize';
const SCREEN_READER_KEY = 'mdocker.screenReader';

function readStorage(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null; // storage disabled: preferences last for the page's life only
  }
}

function writeStorage(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    /* see readStorage */
  }
}

export function loadThemeChoice(): ThemeChoice {
  const stored = readStorage(THEME_KEY);
  return stored === 'dark' || stored === 'light' || stored === 'system' ? stored : 'system';
}

export function saveThemeChoice(choice: ThemeChoice): void {
  writeStorage(THEME_KEY, choice);
}

export function clampFontSize(size: number): number {
  if (!Number.isFinite(size)) return FONT_SIZE_DEFAULT;
  return Math.min(FONT_SIZE_MAX, Math.max(FONT_SIZE_MIN, Math.round(size)));
}

export function loadFontSize(): number {
  const stored = readStorage(FONT_SIZE_KEY);
  return stored === null ? FONT_SIZE_DEFAULT : clampFontSize(Number(stored));
}

export function saveFontSize(size: number): void {
  writeStorage(FONT_SIZE_KEY, String(clampFontSize(size)));
}

/** xterm.js's screenReaderMode: an accessibility tree of the rows, output announced. */
export function loadScreenReaderMode(): boolean {
  return readStorage(SCREEN_READER_KEY) === 'on';
}

export function saveScreenReaderMode(on: boolean): void {
  writeStorage(SCREEN_READER_KEY, on ? 'on' : 'off');
}

const systemDark = window.matchMedia('(prefers-color-scheme: dark)');

export function resolveTheme(choice: ThemeChoice): ThemeMode {
  if (choice === 'system') return systemDark.matches ? 'dark' : 'light';
  return choice;
}

export function onSystemThemeChange(listener: () => void): void {
  systemDark.addEventListener('change', listener);
}

export const TERMINAL_FONT_FAMILY =
  '"DejaVu Sans Mono", "Cascadia Mono", "SF Mono", Menlo, Consolas, "Liberation Mono", monospace';

export function terminalTheme(mode: ThemeMode): ITheme {
  if (mode === 'dark') {
    return {
      background: '#0d1117',
      foreground: '#e6edf3',
      cursor: '#e6edf3',
      cursorAccent: '#0d1117',
      selectionBackground: '#388bfd66',
      black: '#484f58',
      red: '#ff7b72',
      green: '#3fb950',
      yellow: '#d29922',
      blue: '#58a6ff',
      magenta: '#bc8cff',
      cyan: '#39c5cf',
      white: '#b1bac4',
      brightBlack: '#6e7681',
      brightRed: '#ffa198',
      brightGreen: '#56d364',
      brightYellow: '#e3b341',
      brightBlue: '#79c0ff',
      brightMagenta: '#d2a8ff',
      brightCyan: '#56d4dd',
      brightWhite: '#ffffff',
    };
  }
  return {
    background: '#ffffff',
    foreground: '#1f2328',
    cursor: '#1f2328',
    cursorAccent: '#ffffff',
    selectionBackground: '#0969da40',
    black: '#24292f',
    red: '#cf222e',
    green: '#116329',
    yellow: '#4d2d00',
    blue: '#0969da',
    magenta: '#8250df',
    cyan: '#1b7c83',
    white: '#6e7781',
    brightBlack: '#57606a',
    brightRed: '#a40e26',
    brightGreen: '#1a7f37',
    brightYellow: '#633c01',
    brightBlue: '#218bff',
    brightMagenta: '#a475f9',
    brightCyan: '#3192aa',
    brightWhite: '#8c959f',
  };
}

export interface ChartPalette {
  text: string;
  grid: string;
  cpu: string;
  memory: string;
  pids: string;
  limit: string;
  oom: string;
  pidsHit: string;
  throttled: string;
}

export function chartPalette(mode: ThemeMode): ChartPalette {
  if (mode === 'dark') {
    return {
      text: '#c9d1d9',
      grid: '#30363d',
      cpu: '#58a6ff',
      memory: '#3fb950',
      pids: '#d2a8ff',
      limit: '#ff7b72',
      oom: '#ff7b72',
      pidsHit: '#e3b341',
      throttled: '#f0883e',
    };
  }
  return {
    text: '#1f2328',
    grid: '#d0d7de',
    cpu: '#0969da',
    memory: '#1a7f37',
    pids: '#8250df',
    limit: '#cf222e',
    oom: '#cf222e',
    pidsHit: '#9a6700',
    throttled: '#bc4c00',
  };
}
