/**
 * The selected container's terminals as tabs: its init's terminal (0) and any extra
 * shells opened in it, one TerminalView each, created when first shown and kept
 * attached while the container stays selected.
 */
import type { ITheme } from '@xterm/xterm';
import type { ContainerJson, TerminalJson } from '../../server/src/protocol/index';
import { ApiError, api } from './api';
import { describeError } from './containers';
import { h, keepingFocus, replaceChildren } from './dom';
import { describeExit } from './format';
import { TERMINAL_KEYS_HINT_ID, TerminalView } from './terminal';

export interface TerminalTabsOptions {
  fontSize: number;
  theme: ITheme;
  onNotice: (message: string) => void;
  /** The user moved to another terminal (the page keeps it in the URL). */
  onTerminalSelected: (containerId: string, terminalId: number) => void;
  /** The init's terminal ended: the container's state changed, the list needs a look. */
  onInitExited: (containerId: string) => void;
  screenReaderMode: boolean;
  /** Every view's input filter (the touch key bar's sticky modifiers). */
  inputFilter?: (data: string) => string;
}

function terminalLabel(t: TerminalJson): string {
  const program = (t.cmd[0] ?? 'sh').split('/').pop() ?? 'sh';
  return t.id === 0 ? `${program} (init)` : `Terminal ${t.id} · ${program}`;
}

export class TerminalTabs {
  readonly element: HTMLElement;
  private readonly title: HTMLElement;
  private readonly status: HTMLElement;
  private readonly tablist: HTMLElement;
  private readonly panels: HTMLElement;
  private readonly newButton: HTMLButtonElement;
  private readonly closeButton: HTMLButtonElement;
  private readonly empty: HTMLElement;
  private readonly header: HTMLElement;
  private readonly tabbar: HTMLElement;
  private readonly hint: HTMLElement;
  private readonly views = new Map<number, { view: TerminalView; panel: HTMLElement }>();
  /** "containerId:terminalId" of the terminals whose keyboard the teacher holds. */
  private readonly teacherControlled = new Set<string>();
  private container: ContainerJson | null = null;
  private terminals: TerminalJson[] = [];
  private activeId = 0;
  private fontSize: number;
  private theme: ITheme;
  private screenReaderMode: boolean;

  constructor(private readonly options: TerminalTabsOptions) {
    this.fontSize = options.fontSize;
    this.theme = options.theme;
    this.screenReaderMode = options.screenReaderMode;
    this.title = h('h2', { class: 'pane-title' });
    this.status = h('span', { class: 'pane-status', role: 'status' });
    this.tablist = h('div', { class: 'tablist', role: 'tablist', 'aria-label': 'Terminals' });
    this.tablist.addEventListener('keydown', (event) => this.onTabKey(event));
    this.newButton = h(
      'button',
      { type: 'button', class: 'button small', onClick: () => void this.openTerminal() },
      'New terminal',
    );
    this.closeButton = h(
      'button',
      { type: 'button', class: 'button small', onClick: () => void this.closeTerminal() },
      'Close terminal',
    );
    this.panels = h('div', { class: 'terminal-panels' });
    this.empty = h(
      'div',
      { class: 'empty-state' },
      h('p', { class: 'empty-title' }, 'No container selected'),
      h(
        'p',
        { class: 'muted' },
        'Press “New container” to get a root shell in a fresh container, or pick one from the list.',
      ),
    );
    this.header = h('div', { class: 'pane-header' }, this.title, this.status);
    this.tabbar = h('div', { class: 'tabbar' }, this.tablist, this.newButton, this.closeButton);
    this.hint = h(
      'p',
      { class: 'terminal-hint', id: TERMINAL_KEYS_HINT_ID },
      h('kbd', {}, 'Ctrl+Shift+C'),
      ' copy · ',
      h('kbd', {}, 'Ctrl+Shift+V'),
      ' paste · ',
      h('kbd', {}, 'Ctrl+Shift+F'),
      ' search · ',
      h('kbd', {}, 'Esc'),
      ' ',
      h('kbd', {}, 'Tab'),
      ' leave',
    );
    this.element = h('div', { class: 'terminal-tabs' }, this.header, this.tabbar, this.panels, this.hint, this.empty);
    this.renderEmpty();
  }

  get containerId(): string | null {
    return this.container?.id ?? null;
  }

  /** Shows a container (or none); keeps the views when it is the one already shown. */
  show(container: ContainerJson | null, terminalId?: number): void {
    if (container?.id !== this.container?.id) {
      this.disposeViews();
      this.container = container;
      this.terminals = [];
      this.activeId = terminalId ?? 0;
    }
    this.container = container;
    if (!container) {
      this.renderEmpty();
      return;
    }
    this.mergeTerminals(container.terminals);
    if (terminalId !== undefined && this.terminals.some((t) => t.id === terminalId)) this.activeId = terminalId;
    if (!this.terminals.some((t) => t.id === this.activeId)) this.activeId = this.terminals[0]?.id ?? 0;
    this.render();
  }

  /** A class's teacher took (or gave back) the keyboard of one of this page's terminals. */
  setTeacherControl(containerId: string, terminalId: number, teacher: boolean): void {
    const key = `${containerId}:${terminalId}`;
    if (teacher) this.teacherControlled.add(key);
    else this.teacherControlled.delete(key);
    if (this.container?.id === containerId) this.views.get(terminalId)?.view.setTeacherControl(teacher);
  }

  focusActive(): void {
    this.views.get(this.activeId)?.view.focus();
  }

  /** The terminal shown, if any. */
  get activeView(): TerminalView | null {
    return this.container ? (this.views.get(this.activeId)?.view ?? null) : null;
  }

  get activeTerminalId(): number {
    return this.activeId;
  }

  setScreenReaderMode(on: boolean): void {
    this.screenReaderMode = on;
    for (const { view } of this.views.values()) view.setScreenReaderMode(on);
  }

  setFontSize(size: number): void {
    this.fontSize = size;
    for (const { view } of this.views.values()) view.setFontSize(size);
  }

  setTheme(theme: ITheme): void {
    this.theme = theme;
    for (const { view } of this.views.values()) view.setTheme(theme);
  }

  private mergeTerminals(fromServer: TerminalJson[]): void {
    const byId = new Map(this.terminals.map((t) => [t.id, t]));
    for (const t of fromServer) byId.set(t.id, t);
    // Terminal 0 always exists: it is the container's init, even before the list says so.
    if (!byId.has(0) && this.container) {
      byId.set(0, {
        id: 0,
        containerId: this.container.id,
        cmd: this.container.cmd,
        cols: 80,
        rows: 24,
        state: this.container.state === 'exited' ? 'exited' : 'running',
        exitCode: this.container.exitCode,
        clients: 0,
      });
    }
    this.terminals = [...byId.values()].sort((a, b) => a.id - b.id);
  }

  private render(): void {
    const c = this.container;
    if (!c) return;
    this.empty.hidden = true;
    this.header.hidden = false;
    this.tabbar.hidden = false;
    this.panels.hidden = false;
    this.hint.hidden = false;
    this.title.textContent = c.hostname && c.hostname !== c.name ? `${c.name} · ${c.hostname}` : c.name;
    this.status.textContent =
      c.state === 'exited'
        ? `Container exited: ${describeExit(c.exitCode, c.exitReason)}`
        : `${c.state} · ${c.image}${c.initPid ? ` · init is host PID ${c.initPid}` : ''}`;
    this.status.dataset.state = c.state;
    this.status.title = this.status.textContent;
    this.newButton.disabled = c.state !== 'running';
    this.closeButton.disabled = this.activeId === 0;
    this.closeButton.setAttribute(
      'aria-label',
      this.activeId === 0 ? 'Close terminal' : `Close terminal ${this.activeId}`,
    );

    keepingFocus(this.tablist, () =>
      replaceChildren(
        this.tablist,
        ...this.terminals.map((t) => {
          const selected = t.id === this.activeId;
          return h(
            'button',
            {
              type: 'button',
              role: 'tab',
              class: t.state === 'exited' ? 'tab exited' : 'tab',
              id: this.tabId(t.id),
              'aria-selected': selected ? 'true' : 'false',
              'aria-controls': this.panelId(t.id),
              tabindex: selected ? 0 : -1,
              'data-terminal-id': t.id,
              'data-focus-key': `tab:${t.id}`,
              onClick: () => this.select(t.id, true),
            },
            terminalLabel(t),
          );
        }),
      ),
    );

    const active = this.terminals.find((t) => t.id === this.activeId);
    if (active && !this.views.has(active.id)) this.createView(c, active);
    for (const [id, { panel, view }] of this.views) {
      const visible = id === this.activeId;
      if (panel.hidden === visible) {
        panel.hidden = !visible;
        if (visible) view.refit();
      }
    }
  }

  private createView(c: ContainerJson, t: TerminalJson): void {
    const view = new TerminalView({
      containerId: c.id,
      terminalId: t.id,
      label: `${c.name} ${terminalLabel(t)}`,
      fontSize: this.fontSize,
      theme: this.theme,
      screenReaderMode: this.screenReaderMode,
      ...(this.options.inputFilter ? { inputFilter: this.options.inputFilter } : {}),
      onNotice: this.options.onNotice,
      onAttached: (info) => this.onTerminalInfo(c.id, info),
      onExit: (exitCode) => {
        const known = this.terminals.find((x) => x.id === t.id);
        if (known && this.container?.id === c.id) {
          known.state = 'exited';
          known.exitCode = exitCode;
          this.render();
        }
        // The container's own state (and why it stopped) comes with its next update.
        if (t.id === 0) this.options.onInitExited(c.id);
      },
    });
    const panel = h(
      'div',
      { class: 'terminal-panel', role: 'tabpanel', id: this.panelId(t.id), 'aria-labelledby': this.tabId(t.id) },
      view.element,
    );
    this.panels.appendChild(panel);
    this.views.set(t.id, { view, panel });
    view.open();
    if (this.teacherControlled.has(`${c.id}:${t.id}`)) view.setTeacherControl(true);
  }

  private onTerminalInfo(containerId: string, info: TerminalJson): void {
    if (this.container?.id !== containerId) return;
    this.mergeTerminals([info]);
    this.render();
  }

  private select(terminalId: number, focus: boolean): void {
    if (!this.container) return;
    this.activeId = terminalId;
    this.render();
    this.options.onTerminalSelected(this.container.id, terminalId);
    if (focus) {
      this.tablist.querySelector<HTMLElement>(`#${CSS.escape(this.tabId(terminalId))}`)?.focus();
    }
  }

  private onTabKey(event: KeyboardEvent): void {
    const ids = this.terminals.map((t) => t.id);
    const index = ids.indexOf(this.activeId);
    let next: number | undefined;
    if (event.key === 'ArrowRight') next = ids[(index + 1) % ids.length];
    else if (event.key === 'ArrowLeft') next = ids[(index - 1 + ids.length) % ids.length];
    else if (event.key === 'Home') next = ids[0];
    else if (event.key === 'End') next = ids[ids.length - 1];
    else if (event.key === 'Enter' || event.key === ' ' || event.key === 'ArrowDown') {
      // From the tab into the terminal itself.
      event.preventDefault();
      this.focusActive();
      return;
    }
    if (next === undefined) return;
    event.preventDefault();
    this.select(next, true);
  }

  private async openTerminal(): Promise<void> {
    const c = this.container;
    if (!c) return;
    this.newButton.disabled = true;
    try {
      const size = this.views.get(this.activeId)?.view.size;
      const terminal = await api.createTerminal(c.id, size ?? {});
      if (this.container?.id !== c.id) return;
      this.mergeTerminals([terminal]);
      this.activeId = terminal.id;
      this.render();
      this.options.onTerminalSelected(c.id, terminal.id);
      this.focusActive();
    } catch (err) {
      this.options.onNotice(`Cannot open a terminal: ${describeError(err)}`);
    } finally {
      this.newButton.disabled = this.container?.state !== 'running';
    }
  }

  private async closeTerminal(): Promise<void> {
    const c = this.container;
    const id = this.activeId;
    if (!c || id === 0) return;
    try {
      await api.deleteTerminal(c.id, id);
    } catch (err) {
      // Already closed elsewhere (another tab, the shell's own exit): closing is done.
      if (!(err instanceof ApiError && err.status === 404)) {
        this.options.onNotice(`Cannot close terminal ${id}: ${describeError(err)}`);
        return;
      }
    }
    const entry = this.views.get(id);
    entry?.view.dispose();
    entry?.panel.remove();
    this.views.delete(id);
    this.terminals = this.terminals.filter((t) => t.id !== id);
    this.activeId = 0;
    this.render();
    this.options.onTerminalSelected(c.id, 0);
    this.focusActive();
  }

  private renderEmpty(): void {
    this.title.textContent = '';
    this.status.textContent = '';
    replaceChildren(this.tablist);
    this.newButton.disabled = true;
    this.closeButton.disabled = true;
    this.header.hidden = true;
    this.tabbar.hidden = true;
    this.panels.hidden = true;
    this.hint.hidden = true;
    this.empty.hidden = false;
  }

  private disposeViews(): void {
    for (const { view, panel } of this.views.values()) {
      view.dispose();
      panel.remove();
    }
    this.views.clear();
  }

  private tabId(terminalId: number): string {
    return `tab-${this.container?.id ?? 'none'}-${terminalId}`;
  }

  private panelId(terminalId: number): string {
    return `panel-${this.container?.id ?? 'none'}-${terminalId}`;
  }
}
