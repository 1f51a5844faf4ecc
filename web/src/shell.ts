/**
 * The frame of the pages beyond the student's (join, teacher console, class, spotlight,
 * replay): index.html's body is replaced by a header with the theme control, a notice
 * line and one scrolling main element.
 */
import { h, noticeBar } from './dom';
import {
  type ThemeChoice,
  type ThemeMode,
  loadThemeChoice,
  onSystemThemeChange,
  resolveTheme,
  saveThemeChoice,
} from './prefs';

type Child = Node | string | null | undefined | false;

export interface ShellOptions {
  subtitle: string;
  /** links or buttons for the header's right side, before the theme control */
  controls?: Child[];
  /** a class on <body>, for the page's own layout */
  pageClass: string;
  /** the document title */
  title: string;
}

export interface Shell {
  header: HTMLElement;
  main: HTMLElement;
  showNotice(text: string, kind?: 'error' | 'info', sticky?: boolean): void;
  hideNotice(): void;
  theme(): ThemeMode;
  onThemeChange(listener: (mode: ThemeMode) => void): void;
}

export function pageShell(options: ShellOptions): Shell {
  let choice: ThemeChoice = loadThemeChoice();
  const listeners: ((mode: ThemeMode) => void)[] = [];
  const apply = (): void => {
    const mode = resolveTheme(choice);
    document.documentElement.dataset.theme = mode;
    for (const l of listeners) l(mode);
  };
  apply();
  onSystemThemeChange(() => {
    if (choice === 'system') apply();
  });

  const themeSelect = h(
    'select',
    { 'aria-label': 'Theme' },
    h('option', { value: 'system' }, 'System'),
    h('option', { value: 'dark' }, 'Dark'),
    h('option', { value: 'light' }, 'Light'),
  );
  themeSelect.value = choice;
  themeSelect.addEventListener('change', () => {
    choice = themeSelect.value as ThemeChoice;
    saveThemeChoice(choice);
    apply();
  });

  const header = h(
    'header',
    { class: 'app-header' },
    h(
      'h1',
      { class: 'app-title' },
      h('a', { href: '/', class: 'app-home' }, 'mdocker'),
      ' ',
      h('span', { class: 'app-subtitle' }, options.subtitle),
    ),
    h(
      'div',
      { class: 'header-controls' },
      ...(options.controls ?? []),
      h('label', { class: 'inline-field' }, h('span', {}, 'Theme'), themeSelect),
    ),
  );
  const notice = h('div', { class: 'notice', role: 'alert', hidden: true });
  const main = h('main', { class: 'page', id: 'main', tabindex: '-1' });
  document.body.replaceChildren(h('a', { class: 'skip-link', href: '#main' }, 'Skip to content'), header, notice, main);
  document.body.className = options.pageClass;
  document.title = options.title;

  const { show: showNotice, hide: hideNotice } = noticeBar(notice);

  return {
    header,
    main,
    showNotice,
    hideNotice,
    theme: () => resolveTheme(choice),
    onThemeChange: (listener) => listeners.push(listener),
  };
}
