/**
 * /teacher/classes/:id: the class at a glance. One card per student (live terminal
 * miniature, sparklines, step, time since last input), sorted by who has been stuck
 * longest or by name and filtered by lesson step; a click opens the student up close.
 * Also the join code for the projector, the broadcast box, the class's recordings and
 * the end of the class.
 */
import type {
  BroadcastBody,
  BroadcastJson,
  ClassJson,
  ContainerJson,
  RecordingJson,
  StudentJson,
} from '../../../server/src/protocol/index';
import { api } from '../api';
import { copyButton } from '../classroom';
import { describeError } from '../containers';
import { h, replaceChildren } from '../dom';
import { formatBytesHuman } from '../format';
import { chartPalette } from '../prefs';
import { pageShell, type Shell } from '../shell';
import { StatsStore } from '../stats-store';
import { ClassEvents } from './class-events';
import { type StepTitles, StudentCard, stepLabel, stuckSince } from './student-card';
import { StudentDetail } from './student-detail';
import { confirmButton, currentContainer, joinLink, replayUrl, requireTeacher } from './widgets';

const RESORT_EVERY_MS = 5000;

export function startClassPage(classId: string): void {
  const shell = pageShell({
    subtitle: 'class',
    pageClass: 'page-teacher page-class',
    title: 'Class · mdocker',
    controls: [h('a', { class: 'button small', href: '/teacher' }, 'All classes')],
  });
  void requireTeacher(shell.main).then((ok) => {
    if (ok) new ClassPage(shell, classId);
  });
}

type SortKey = 'stuck' | 'name' | 'cpu' | 'memory';

class ClassPage {
  private readonly store = new StatsStore();
  private readonly cards = new Map<string, StudentCard>();
  private readonly events: ClassEvents;
  private readonly detail: StudentDetail;
  private readonly title: HTMLElement;
  private readonly summary: HTMLElement;
  private readonly live: HTMLElement;
  private readonly codeBox: HTMLElement;
  private readonly grid: HTMLElement;
  private readonly gridEmpty: HTMLElement;
  private readonly sortSelect: HTMLSelectElement;
  private readonly stepSelect: HTMLSelectElement;
  private readonly shownCount: HTMLElement;
  private readonly sentList: HTMLElement;
  private readonly recordingsBody: HTMLElement;
  private readonly endedBanner: HTMLElement;
  private readonly endButton: HTMLButtonElement;
  private readonly broadcastForm: HTMLFormElement;
  private readonly sent = new Map<number, BroadcastJson>();
  private klass: ClassJson | null = null;
  /** Each lesson's step titles (GET /api/lessons), for "step 2/3: Raise the limit". */
  private readonly stepTitles = new Map<string, string[]>();
  private readonly lessonTitles = new Map<string, string>();
  private recordingsTimer: number | null = null;

  constructor(
    private readonly shell: Shell,
    private readonly classId: string,
  ) {
    this.title = h('h2', { class: 'class-title' }, 'Class');
    this.summary = h('span', { class: 'muted' });
    this.live = h('span', { class: 'connection', role: 'status', 'aria-live': 'polite' });
    this.codeBox = h('div', { class: 'class-join compact' });
    this.endButton = confirmButton('End class', 'Click again to end the class', () => this.endClass());
    this.endedBanner = h('div', { class: 'class-ended', role: 'status', hidden: true });

    this.sortSelect = h(
      'select',
      { id: 'grid-sort' },
      h('option', { value: 'stuck' }, 'Stuck longest first'),
      h('option', { value: 'name' }, 'Name'),
      h('option', { value: 'cpu' }, 'Most CPU first'),
      h('option', { value: 'memory' }, 'Most memory first'),
    );
    this.sortSelect.addEventListener('change', () => this.arrange());
    this.stepSelect = h('select', { id: 'grid-step' }, h('option', { value: '' }, 'All steps'));
    this.stepSelect.addEventListener('change', () => this.arrange());
    this.shownCount = h('span', { class: 'muted', role: 'status' });
    this.grid = h('ul', { class: 'student-grid', 'aria-label': 'Students' });
    this.gridEmpty = h(
      'p',
      { class: 'muted empty-note' },
      'No students yet. They join with the link or code above; each appears here with a live view of their terminal.',
    );

    const message = h('input', {
      id: 'broadcast-message',
      type: 'text',
      name: 'message',
      autocomplete: 'off',
      maxlength: '500',
      placeholder: 'e.g. Now try the fork loop',
    });
    const command = h('input', {
      id: 'broadcast-command',
      type: 'text',
      name: 'command',
      autocomplete: 'off',
      spellcheck: 'false',
      class: 'mono',
      maxlength: '500',
      placeholder: 'optional, e.g. ps -ef',
    });
    const send = h('button', { type: 'submit', class: 'button primary' }, 'Send to everyone');
    this.sentList = h('ol', { class: 'sent-list', 'aria-label': 'Sent messages' });
    this.broadcastForm = h(
      'form',
      { class: 'broadcast-form', 'aria-label': 'Broadcast to the class', novalidate: true },
      h('div', { class: 'field' }, h('label', { for: 'broadcast-message' }, 'Message'), message),
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'broadcast-command' }, 'Command (shown with a Copy button)'),
        command,
      ),
      send,
    );
    this.broadcastForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const body: BroadcastBody = { message: message.value.trim() };
      if (body.message === '') {
        message.focus();
        return;
      }
      if (command.value.trim() !== '') body.command = command.value.trim();
      send.disabled = true;
      api
        .broadcast(this.classId, body)
        .then((b) => {
          this.addSent(b);
          message.value = '';
          command.value = '';
          message.focus();
        })
        .catch((err: unknown) => this.shell.showNotice(`Cannot send: ${describeError(err)}`))
        .finally(() => {
          send.disabled = false;
        });
    });

    this.recordingsBody = h('div', { class: 'recordings-body' });
    const refresh = h(
      'button',
      { type: 'button', class: 'button small', onClick: () => void this.loadRecordings() },
      'Refresh',
    );

    shell.main.append(
      h(
        'div',
        { class: 'class-page' },
        h(
          'section',
          { class: 'class-head', 'aria-label': 'Class' },
          h('div', { class: 'class-head-text' }, this.title, this.summary, this.live),
          this.codeBox,
          this.endButton,
        ),
        this.endedBanner,
        h(
          'section',
          { class: 'grid-section', 'aria-label': 'Students' },
          h(
            'div',
            { class: 'grid-toolbar' },
            h('label', { class: 'inline-field', for: 'grid-sort' }, 'Sort'),
            this.sortSelect,
            h('label', { class: 'inline-field', for: 'grid-step' }, 'Step'),
            this.stepSelect,
            this.shownCount,
          ),
          this.gridEmpty,
          this.grid,
        ),
        h(
          'div',
          { class: 'class-lower' },
          h(
            'section',
            { class: 'card-panel', 'aria-labelledby': 'broadcast-title' },
            h('h2', { class: 'panel-title', id: 'broadcast-title' }, 'Broadcast'),
            this.broadcastForm,
            this.sentList,
          ),
          h(
            'section',
            { class: 'card-panel', 'aria-labelledby': 'recordings-title' },
            h(
              'div',
              { class: 'panel-toolbar' },
              h('h2', { class: 'panel-title', id: 'recordings-title' }, 'Recordings'),
              refresh,
            ),
            this.recordingsBody,
          ),
        ),
      ),
    );

    this.detail = new StudentDetail({
      classId,
      store: this.store,
      theme: shell.theme(),
      onNotice: (text, kind) => shell.showNotice(text, kind),
      onContainer: (studentId, container) => this.onContainer(studentId, container),
    });
    shell.main.append(this.detail.dialog);
    shell.onThemeChange((mode) => {
      this.detail.setTheme(mode);
      for (const card of this.cards.values()) card.setPalette(chartPalette(mode));
      this.redrawAll();
    });

    this.events = new ClassEvents(classId, {
      onClass: (c) => this.onClass(c),
      onStudent: (s) => this.onStudent(s),
      onLeft: (id) => this.onLeft(id),
      onSample: (studentId, containerId, sample) => {
        this.store.add(containerId, sample);
        const card = this.cards.get(studentId);
        const current = card ? currentContainer(card.student) : null;
        if (card && current?.id === containerId) card.drawSamples(this.store.samples(containerId));
      },
      onScreen: (studentId, screen) => {
        const card = this.cards.get(studentId);
        if (!card) return;
        const current = currentContainer(card.student);
        // The miniature follows the student's current container (any of its terminals).
        if (!current || current.id === screen.containerId) card.setScreen(screen);
      },
      onInput: (studentId, at) => this.cards.get(studentId)?.setLastInput(at),
      onBroadcast: (b) => this.addSent(b),
      onEnded: (c) => this.onEnded(c),
      // A drain of this node: told until the page goes; serving again clears it.
      onNode: (notice) =>
        notice.state === 'serving' ? this.shell.hideNotice() : this.shell.showNotice(notice.message, 'info', true),
      onState: (state, close) => {
        this.live.dataset.state = state;
        if (state === 'open') this.live.textContent = 'Live';
        else if (state === 'waiting') this.live.textContent = 'Reconnecting…';
        else if (state === 'connecting') this.live.textContent = 'Connecting…';
        else if (close && close.code === 4404) this.live.textContent = 'No such class';
        else this.live.textContent = 'Disconnected';
        if (state === 'closed' && close?.code === 4404) {
          this.shell.showNotice('This class does not exist (or is not yours).', 'error', true);
        }
      },
    });

    window.setInterval(() => {
      const now = Date.now();
      for (const card of this.cards.values()) card.tick(now);
    }, 1000);
    window.setInterval(() => {
      if (this.sortSelect.value !== ('name' satisfies SortKey)) this.arrange();
    }, RESORT_EVERY_MS);
    void this.loadRecordings();
    api
      .lessons()
      .then((lessons) => {
        for (const l of lessons) {
          this.stepTitles.set(
            l.id,
            l.steps.map((step) => step.title),
          );
          this.lessonTitles.set(l.id, l.title);
        }
        for (const card of this.cards.values()) card.refreshStep();
        this.renderHead();
        this.arrange();
      })
      .catch(() => {
        /* steps are shown by number */
      });
  }

  private readonly titlesOf = (lessonId: string): readonly string[] | undefined => this.stepTitles.get(lessonId);

  // ---- the class ----------------------------------------------------------------------

  private onClass(c: ClassJson): void {
    this.klass = c;
    this.renderHead();
    // A reloaded console shows what it sent before.
    for (const b of c.broadcasts) this.addSent(b);
    const ids = new Set(c.students.map((s) => s.id));
    for (const [id, card] of this.cards) {
      if (!ids.has(id)) {
        card.element.remove();
        this.cards.delete(id);
      }
    }
    for (const s of c.students) {
      this.onStudent(s, false);
      for (const [containerId, sample] of Object.entries(s.latest)) this.store.add(containerId, sample);
      const card = this.cards.get(s.id);
      const current = currentContainer(s);
      if (card && current) card.drawSamples(this.store.samples(current.id));
    }
    this.arrange();
    if (c.endedAt !== null) this.onEnded(c);
  }

  private renderHead(): void {
    const c = this.klass;
    if (!c) return;
    this.title.textContent = c.name;
    document.title = `${c.name} · mdocker`;
    const online = [...this.cards.values()].filter((card) => card.student.connected).length;
    this.summary.textContent = `${this.cards.size} student${this.cards.size === 1 ? '' : 's'}, ${online} online · ${c.image}${c.lesson ? ` · lesson: ${this.lessonTitle(c.lesson)}` : ''}`;
    if (c.endedAt !== null) {
      replaceChildren(this.codeBox);
      return;
    }
    const link = joinLink(c);
    const linkEl = h('code', { class: 'join-link' }, link);
    replaceChildren(
      this.codeBox,
      h('div', { class: 'join-code-big', 'aria-label': `Join code ${c.joinCode.split('').join(' ')}` }, c.joinCode),
      h(
        'div',
        { class: 'join-link-row' },
        linkEl,
        copyButton(
          () => link,
          'Copy the join link',
          () => linkEl,
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'button small',
            onClick: () => {
              api
                .rotateCode(this.classId)
                .then((updated) => {
                  this.klass = { ...updated };
                  this.renderHead();
                })
                .catch((err: unknown) => this.shell.showNotice(`Cannot change the code: ${describeError(err)}`));
            },
          },
          'New join code',
        ),
      ),
    );
  }

  private lessonTitle(lessonId: string): string {
    return this.lessonTitles.get(lessonId) ?? lessonId;
  }

  private async endClass(): Promise<void> {
    try {
      await api.endClass(this.classId);
    } catch (err) {
      this.shell.showNotice(`Cannot end the class: ${describeError(err)}`);
    }
  }

  private onEnded(c: ClassJson): void {
    this.klass = c;
    this.renderHead();
    this.endButton.hidden = true;
    for (const el of this.broadcastForm.elements) (el as HTMLInputElement).disabled = true;
    replaceChildren(
      this.endedBanner,
      h('strong', {}, 'This class has ended.'),
      ` ${new Date(c.endedAt ?? Date.now()).toLocaleString()}: its containers were removed; the recordings below stay for a while.`,
    );
    this.endedBanner.hidden = false;
    this.detail.close();
    void this.loadRecordings();
  }

  // ---- students -----------------------------------------------------------------------

  private onStudent(s: StudentJson, arrange = true): void {
    let card = this.cards.get(s.id);
    if (!card) {
      card = new StudentCard(s, chartPalette(this.shell.theme()), (id) => this.openStudent(id), this.titlesOf);
      this.cards.set(s.id, card);
    } else {
      card.update(s);
    }
    const current = currentContainer(s);
    if (current) card.drawSamples(this.store.samples(current.id));
    this.detail.update(s);
    this.refreshRecordingsSoon();
    if (arrange) {
      this.renderHead();
      this.arrange();
    }
  }

  private onLeft(studentId: string): void {
    this.cards.get(studentId)?.element.remove();
    this.cards.delete(studentId);
    if (this.detail.openStudentId === studentId) this.detail.close();
    this.renderHead();
    this.arrange();
  }

  private onContainer(studentId: string, container: ContainerJson): void {
    const card = this.cards.get(studentId);
    if (!card) return;
    const containers = [...card.student.containers.filter((c) => c.id !== container.id), container];
    this.onStudent({ ...card.student, containers });
  }

  private openStudent(studentId: string): void {
    const card = this.cards.get(studentId);
    if (card) this.detail.open(card.student);
  }

  private redrawAll(): void {
    for (const card of this.cards.values()) {
      const current = currentContainer(card.student);
      if (current) card.drawSamples(this.store.samples(current.id));
    }
  }

  /** Orders and filters the cards (moving nodes, not rebuilding them). */
  private arrange(): void {
    this.renderStepFilter();
    const step = this.stepSelect.value;
    const cards = [...this.cards.values()];
    const byName = (a: StudentCard, b: StudentCard): number =>
      a.student.name.localeCompare(b.student.name, undefined, { sensitivity: 'base' });
    const sort = this.sortSelect.value as SortKey;
    if (sort === 'name') cards.sort(byName);
    else if (sort === 'cpu' || sort === 'memory') {
      // Who uses the most of the class's budget, by the latest sample.
      const usage = (card: StudentCard): number => {
        const current = currentContainer(card.student);
        const latest = current ? this.store.samples(current.id).at(-1) : undefined;
        if (!latest) return -1;
        return sort === 'cpu' ? latest.cpuPercent : latest.memoryBytes;
      };
      cards.sort((a, b) => usage(b) - usage(a) || byName(a, b));
    } else {
      cards.sort((a, b) => {
        const doneA = a.student.progress?.done === true;
        const doneB = b.student.progress?.done === true;
        if (doneA !== doneB) return doneA ? 1 : -1;
        return stuckSince(a.student) - stuckSince(b.student) || byName(a, b);
      });
    }
    let shown = 0;
    cards.forEach((card, index) => {
      const visible = step === '' || stepKey(card.student) === step;
      card.element.hidden = !visible;
      if (visible) shown += 1;
      if (this.grid.children[index] !== card.element)
        this.grid.insertBefore(card.element, this.grid.children[index] ?? null);
    });
    this.gridEmpty.hidden = cards.length > 0;
    this.shownCount.textContent = cards.length === 0 ? '' : `${shown} of ${cards.length} shown`;
  }

  private renderStepFilter(): void {
    const keys = new Map<string, string>();
    const lessons = new Set([...this.cards.values()].map((card) => card.student.progress?.lesson ?? null));
    lessons.delete(null);
    const prefix = lessons.size > 1 ? (id: string) => this.lessonTitle(id) : undefined;
    for (const card of this.cards.values())
      keys.set(stepKey(card.student), stepFilterLabel(card.student, this.titlesOf, prefix));
    const wanted = ['', ...[...keys.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))];
    const existing = [...this.stepSelect.options].map((o) => `${o.value}=${o.textContent}`);
    const labels = wanted.map((k) => `${k}=${k === '' ? 'All steps' : (keys.get(k) ?? k)}`);
    if (labels.join('|') === existing.join('|')) return;
    const selected = this.stepSelect.value;
    replaceChildren(
      this.stepSelect,
      h('option', { value: '' }, 'All steps'),
      ...wanted.slice(1).map((k) => h('option', { value: k }, keys.get(k) ?? k)),
    );
    this.stepSelect.value = wanted.includes(selected) ? selected : '';
    this.stepSelect.disabled = keys.size <= 1 && this.stepSelect.value === '';
  }

  // ---- broadcasts and recordings ------------------------------------------------------

  private addSent(b: BroadcastJson): void {
    if (this.sent.has(b.id)) return;
    this.sent.set(b.id, b);
    const items = [...this.sent.values()]
      .sort((x, y) => y.id - x.id)
      .slice(0, 10)
      .map((x) =>
        h(
          'li',
          {},
          h('time', { datetime: x.at, class: 'muted' }, new Date(x.at).toLocaleTimeString()),
          ' ',
          x.message,
          x.command ? ' ' : null,
          x.command ? h('code', {}, x.command) : null,
        ),
      );
    replaceChildren(this.sentList, ...items);
  }

  /** New containers mean new recordings: list them again, once for a burst of joins. */
  private refreshRecordingsSoon(): void {
    if (this.recordingsTimer !== null) return;
    this.recordingsTimer = window.setTimeout(() => {
      this.recordingsTimer = null;
      void this.loadRecordings();
    }, 3000);
  }

  private async loadRecordings(): Promise<void> {
    let recordings: RecordingJson[];
    try {
      recordings = await api.recordings(this.classId);
    } catch (err) {
      replaceChildren(this.recordingsBody, h('p', { class: 'muted' }, `Cannot list recordings: ${describeError(err)}`));
      return;
    }
    if (recordings.length === 0) {
      replaceChildren(this.recordingsBody, h('p', { class: 'muted' }, 'None yet: every student terminal is recorded.'));
      return;
    }
    const nameOf = (id: string | null): string =>
      (id && (this.cards.get(id)?.student.name ?? this.events.students.get(id)?.name)) || 'unknown';
    const rows = [...recordings]
      .sort((a, b) => b.startedAt.localeCompare(a.startedAt))
      .map((r) =>
        h(
          'tr',
          {},
          h('td', {}, nameOf(r.studentId)),
          h('td', { class: 'mono' }, `${r.containerId.slice(0, 12)} #${r.terminalId}`),
          h('td', {}, new Date(r.startedAt).toLocaleTimeString()),
          h('td', {}, r.endedAt === null ? 'running' : new Date(r.endedAt).toLocaleTimeString()),
          h('td', {}, `${formatBytesHuman(r.bytes)}${r.truncated ? ' (cut)' : ''}`),
          h(
            'td',
            {},
            h(
              'a',
              {
                href: replayUrl(this.classId, r.containerId, r.terminalId),
                'aria-label': `Replay ${nameOf(r.studentId)}’s terminal ${r.terminalId} from ${new Date(r.startedAt).toLocaleTimeString()}`,
              },
              'Replay',
            ),
          ),
        ),
      );
    replaceChildren(
      this.recordingsBody,
      h(
        'table',
        { class: 'data-table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['Student', 'Terminal', 'Started', 'Ended', 'Size', ''].map((t) => h('th', { scope: 'col' }, t)),
          ),
        ),
        h('tbody', {}, ...rows),
      ),
    );
  }
}

/** The filter's value for a student: the lesson and its step (students of a class without
 * a lesson may each have picked their own), "done" or "none". */
function stepKey(s: StudentJson): string {
  const p = s.progress;
  if (!p) return 'none';
  return p.done ? `${p.lesson}:done` : `${p.lesson}:${String(p.step + 1).padStart(3, '0')}`;
}

/** "Step 2/3: Raise the limit"; with `lessonTitle` (students on different lessons) prefixed by it. */
function stepFilterLabel(s: StudentJson, titles: StepTitles, lessonTitle?: (id: string) => string): string {
  const p = s.progress;
  if (!p) return 'No lesson';
  const label = p.done ? 'Done' : stepLabel(s, titles).replace(/^step/, 'Step');
  return lessonTitle ? `${lessonTitle(p.lesson)}: ${label}` : label;
}
