/**
 * One student up close, in a modal dialog over the grid: their current terminal at full
 * size, read-only (attached with ?mode=watch, at the student's own cols x rows, following
 * the `resize` the server sends when the student's window changes it), their
 * graphs, and what the teacher can do: take the keyboard (reattach with ?mode=control)
 * and give it back, put them on the projector (spotlight), reset their container, replay
 * their terminal.
 */
import type { ContainerJson, StudentJson } from '../../../server/src/protocol/index';
import { api } from '../api';
import { describeError } from '../containers';
import { h, replaceChildren } from '../dom';
import { stateSummary } from '../format';
import { Graphs } from '../graphs';
import { type ThemeMode, chartPalette, terminalTheme } from '../prefs';
import type { StatsStore } from '../stats-store';
import { TerminalView } from '../terminal';
import { confirmButton, currentContainer, replayUrl, spotlightUrl } from './widgets';

export interface StudentDetailOptions {
  classId: string;
  store: StatsStore;
  theme: ThemeMode;
  onNotice: (text: string, kind?: 'error' | 'info') => void;
  /** After a reset: the fresh container, before the event stream tells. */
  onContainer: (studentId: string, container: ContainerJson) => void;
}

export class StudentDetail {
  readonly dialog: HTMLDialogElement;
  private readonly title: HTMLElement;
  private readonly status: HTMLElement;
  private readonly terminalBox: HTMLElement;
  private readonly keyboardButton: HTMLButtonElement;
  private readonly spotlightLink: HTMLAnchorElement;
  private readonly replayLink: HTMLAnchorElement;
  private readonly resetButton: HTMLButtonElement;
  private readonly graphs: Graphs;
  private view: TerminalView | null = null;
  private student: StudentJson | null = null;
  private attachedTo: string | null = null;
  private controlling = false;
  /** Containers whose stats history was fetched: once each, the live samples follow. */
  private readonly historyLoaded = new Set<string>();
  private theme: ThemeMode;

  constructor(private readonly options: StudentDetailOptions) {
    this.theme = options.theme;
    this.title = h('h2', { class: 'detail-title', id: 'student-detail-title' });
    this.status = h('span', { class: 'pane-status', role: 'status' });
    this.keyboardButton = h('button', { type: 'button', class: 'button', onClick: () => this.toggleKeyboard() });
    this.spotlightLink = h('a', { class: 'button', target: '_blank', rel: 'noopener' }, 'Spotlight');
    this.replayLink = h('a', { class: 'button', target: '_blank', rel: 'noopener' }, 'Replay');
    this.resetButton = confirmButton('Reset container', 'Click again to reset', () => this.reset());
    this.terminalBox = h('div', { class: 'detail-terminal' });
    this.graphs = new Graphs(options.store, chartPalette(this.theme));
    const close = h(
      'button',
      { type: 'button', class: 'button', 'aria-label': 'Close', onClick: () => this.close() },
      'Close',
    );
    this.dialog = h(
      'dialog',
      { class: 'student-dialog', 'aria-labelledby': 'student-detail-title' },
      h(
        'div',
        { class: 'detail-head' },
        this.title,
        this.status,
        h(
          'div',
          { class: 'detail-actions' },
          this.keyboardButton,
          this.spotlightLink,
          this.replayLink,
          this.resetButton,
          close,
        ),
      ),
      h('div', { class: 'detail-body' }, this.terminalBox, h('div', { class: 'detail-graphs' }, this.graphs.element)),
    );
    this.dialog.addEventListener('close', () => this.detach());
  }

  get openStudentId(): string | null {
    return this.dialog.open ? (this.student?.id ?? null) : null;
  }

  open(student: StudentJson): void {
    this.student = student;
    this.controlling = false;
    if (!this.dialog.open) this.dialog.showModal();
    this.update(student);
  }

  close(): void {
    if (this.dialog.open) this.dialog.close();
  }

  setTheme(theme: ThemeMode): void {
    this.theme = theme;
    this.graphs.setPalette(chartPalette(theme));
    this.view?.setTheme(terminalTheme(theme));
  }

  /** The student changed (a container came or went): follow their current one. */
  update(student: StudentJson): void {
    if (!this.dialog.open || this.student?.id !== student.id) return;
    this.student = student;
    this.title.textContent = student.name;
    const c = currentContainer(student);
    this.status.textContent = c ? `${stateSummary(c)} · ${c.image} · ${c.id.slice(0, 12)}` : 'No container yet';
    this.spotlightLink.href = spotlightUrl(this.options.classId, student.id);
    this.spotlightLink.setAttribute('aria-label', `Spotlight ${student.name} on the projector (new tab)`);
    this.replayLink.hidden = !c;
    if (c) this.replayLink.href = replayUrl(this.options.classId, c.id, 0);
    this.resetButton.disabled = false;
    this.graphs.show(c?.id ?? null, c?.limits.cpus ?? null);
    if (c && !this.historyLoaded.has(c.id)) {
      // The grid holds only the samples since the console opened: the student's history
      // (up to 10 minutes, GET …/stats, which the teacher may read) goes before them.
      this.historyLoaded.add(c.id);
      const store = this.options.store;
      api
        .stats(c.id)
        .then((history) => {
          const last = history.samples[history.samples.length - 1]?.t ?? 0;
          store.setHistory(c.id, [...history.samples, ...store.samples(c.id).filter((x) => x.t > last)]);
        })
        .catch(() => {
          this.historyLoaded.delete(c.id);
          /* the live samples fill the graphs */
        });
    }
    const target = c && c.state === 'running' ? c.id : null;
    if (target !== this.attachedTo) {
      this.controlling = false;
      this.attach(target);
    }
    this.renderKeyboardButton();
  }

  private attach(containerId: string | null): void {
    this.detach();
    this.attachedTo = containerId;
    const student = this.student;
    if (!containerId || !student) {
      replaceChildren(this.terminalBox, h('p', { class: 'muted empty-note' }, 'No running container to watch.'));
      return;
    }
    const view = new TerminalView({
      containerId,
      terminalId: 0,
      label: `${student.name}’s terminal${this.controlling ? ' (you have the keyboard)' : ' (watching)'}`,
      fontSize: 16,
      theme: terminalTheme(this.theme),
      mode: this.controlling ? 'control' : 'watch',
      fitFontToBox: true,
      onNotice: (text) => this.options.onNotice(text),
    });
    replaceChildren(this.terminalBox, view.element);
    this.view = view;
    view.open();
    if (this.controlling) view.focus();
  }

  private detach(): void {
    this.view?.dispose();
    this.view = null;
    if (!this.dialog.open) {
      this.attachedTo = null;
      this.controlling = false;
    }
  }

  private toggleKeyboard(): void {
    this.controlling = !this.controlling;
    // A fresh attach in the other mode; the server tells the student's page either way.
    this.attach(this.attachedTo);
    this.renderKeyboardButton();
  }

  private renderKeyboardButton(): void {
    this.keyboardButton.disabled = this.attachedTo === null;
    this.keyboardButton.textContent = this.controlling ? 'Give the keyboard back' : 'Take the keyboard';
    this.keyboardButton.classList.toggle('primary', this.controlling);
    this.dialog.classList.toggle('controlling', this.controlling);
  }

  private async reset(): Promise<void> {
    const student = this.student;
    if (!student) return;
    try {
      const container = await api.resetStudent(this.options.classId, student.id);
      this.options.onNotice(`${student.name} has a fresh container.`, 'info');
      this.options.onContainer(student.id, container);
    } catch (err) {
      this.options.onNotice(`Cannot reset ${student.name}’s container: ${describeError(err)}`);
    }
  }
}
