/**
 * The lesson beside the terminal: the lesson's steps ticking as the server sees them done
 * (its state arrives on the stats stream: nothing here polls), the text of the step the
 * student is on (the first not done, or the one they clicked) rendered from Markdown
 * safely with a Copy button on each code block (copied, never typed into the terminal),
 * "Check now" for script checks, and a spoken and shown note when a step is done.
 */
import type { ContainerJson, ContainerLessonJson } from '../../server/src/protocol/index';
import { ApiError, api } from './api';
import { copyButton } from './classroom';
import { describeError } from './containers';
import { h, keepingFocus, replaceChildren, uniqueId } from './dom';
import { renderMarkdown } from './markdown';

const ANNOUNCE_MS = 8000;

export class LessonPanel {
  readonly element: HTMLElement;
  /** aria-live: lives outside the tab panels, so a step done is announced whichever tab is open. */
  readonly announcer: HTMLElement;
  private readonly titleEl: HTMLElement;
  private readonly description: HTMLElement;
  private readonly progress: HTMLElement;
  private readonly complete: HTMLElement;
  private readonly steps: HTMLOListElement;
  private readonly stepTitle: HTMLElement;
  private readonly stepBadge: HTMLElement;
  private readonly stepText: HTMLElement;
  private readonly next: HTMLButtonElement;
  private readonly checkButton: HTMLButtonElement;
  private readonly checkStatus: HTMLElement;
  private readonly body: HTMLElement;
  private readonly status: HTMLElement;
  /** Every container's latest lesson state, so switching back shows it at once. */
  private readonly states = new Map<string, ContainerLessonJson>();
  private containerId: string | null = null;
  /** The step the student chose to read; null: the first step not done. */
  private chosen: number | null = null;
  private renderedKey = '';
  private announceTimer: number | null = null;
  private generation = 0;

  constructor() {
    const titleId = uniqueId('lesson-title');
    const stepTitleId = uniqueId('lesson-step-title');
    this.titleEl = h('h3', { class: 'lesson-title', id: titleId });
    this.description = h('p', { class: 'muted lesson-description' });
    this.progress = h('p', { class: 'lesson-progress' });
    this.complete = h('p', { class: 'lesson-complete', hidden: true });
    this.steps = h('ol', { class: 'lesson-steps', 'aria-label': 'Steps' });
    this.stepTitle = h('h4', { class: 'lesson-step-title', id: stepTitleId });
    this.stepBadge = h('span', { class: 'lesson-step-badge', hidden: true }, '✓ Done');
    this.stepText = h('div', { class: 'lesson-text' });
    this.next = h('button', { type: 'button', class: 'button small primary lesson-next', hidden: true });
    this.next.addEventListener('click', () => {
      this.chosen = null;
      this.render(true);
      this.stepTitle.focus();
    });
    this.stepTitle.tabIndex = -1;
    this.checkButton = h(
      'button',
      { type: 'button', class: 'button small', onClick: () => void this.checkNow() },
      'Check now',
    );
    this.checkStatus = h('p', { class: 'lesson-check-status muted', role: 'status' });
    this.status = h('p', { class: 'muted lesson-status', role: 'status' });
    this.body = h(
      'div',
      { class: 'lesson-body', hidden: true },
      h('div', { class: 'lesson-head' }, this.titleEl, this.progress),
      this.description,
      this.complete,
      this.steps,
      h(
        'article',
        { class: 'lesson-step', 'aria-labelledby': stepTitleId },
        h('div', { class: 'lesson-step-head' }, this.stepTitle, this.stepBadge),
        this.stepText,
        this.next,
      ),
      h('div', { class: 'lesson-actions' }, this.checkButton, this.checkStatus),
    );
    this.element = h('section', { class: 'lesson', 'aria-labelledby': titleId }, this.status, this.body);
    // Always in the tree (empty is zero-sized): a live region that appears with its text
    // is not announced by every screen reader.
    this.announcer = h('div', { class: 'lesson-announcer', role: 'status', 'aria-live': 'polite' });
  }

  /** The selected container; its lesson is fetched unless the stream already told it. */
  show(container: ContainerJson | null): void {
    const id = container?.lesson ? container.id : null;
    if (id === this.containerId) return;
    this.containerId = id;
    this.chosen = null;
    this.renderedKey = '';
    this.checkStatus.textContent = '';
    this.hideAnnouncement();
    if (id === null) {
      this.body.hidden = true;
      this.status.textContent = 'This container has no lesson.';
      return;
    }
    if (this.states.has(id)) this.render(false);
    else {
      this.body.hidden = true;
      this.status.textContent = 'Loading the lesson…';
    }
    void this.load(id);
  }

  /** After the stats stream reconnects: progress may have come meanwhile. */
  reload(): void {
    if (this.containerId) void this.load(this.containerId);
  }

  /** A lesson state from the stats stream (or an answer): ticks, and says what was done. */
  update(lesson: ContainerLessonJson): void {
    const before = this.states.get(lesson.containerId);
    this.states.set(lesson.containerId, lesson);
    if (lesson.containerId !== this.containerId) return;
    if (before) {
      // The step being read stays on screen when it is done (its text explains what the
      // student just saw); "Next" moves on.
      if (this.chosen === null && lesson.steps[before.current]?.done) this.chosen = before.current;
      const newlyDone = lesson.steps.filter((step, i) => step.done && before.steps[i]?.done === false);
      if (newlyDone.length > 0)
        this.announce(
          lesson,
          newlyDone.map((s) => s.title),
        );
    }
    this.render(false);
  }

  forget(containerId: string): void {
    this.states.delete(containerId);
  }

  private async load(id: string): Promise<void> {
    const generation = ++this.generation;
    try {
      const lesson = await api.lesson(id);
      if (generation !== this.generation) return;
      // Whichever is newer wins: a stream message may have come while this was on its way.
      const known = this.states.get(id);
      if (!known || doneCount(lesson) >= doneCount(known)) this.update(lesson);
    } catch (err) {
      if (generation !== this.generation || id !== this.containerId || this.states.has(id)) return;
      this.status.textContent = `Cannot load the lesson: ${describeError(err)}`;
    }
  }

  private async checkNow(): Promise<void> {
    const id = this.containerId;
    if (!id) return;
    this.checkButton.disabled = true;
    this.checkStatus.textContent = 'Checking…';
    try {
      const lesson = await api.checkLesson(id);
      if (id !== this.containerId) return;
      this.update(lesson);
      const step = lesson.steps[lesson.current];
      this.checkStatus.textContent = step
        ? `Checked: “${step.title}” is not done yet.`
        : 'Checked: every step is done.';
    } catch (err) {
      if (id !== this.containerId) return;
      // 429: the per-minute budget of script checks is used; nothing is wrong.
      this.checkStatus.textContent =
        err instanceof ApiError && err.status === 429
          ? 'Checks ran often in the last minute, so this one waits. Your steps still tick by themselves; try again in a little while.'
          : `Cannot check: ${describeError(err)}`;
    } finally {
      this.checkButton.disabled = false;
    }
  }

  private announce(lesson: ContainerLessonJson, titles: string[]): void {
    const allDone = lesson.current >= lesson.steps.length;
    const what = titles.length === 1 ? `Step done: ${titles[0]}.` : `Steps done: ${titles.join(', ')}.`;
    this.announcer.textContent = `✓ ${what}${allDone ? ' Every step of the lesson is done!' : ''}`;
    if (this.announceTimer !== null) window.clearTimeout(this.announceTimer);
    this.announceTimer = window.setTimeout(() => this.hideAnnouncement(), ANNOUNCE_MS);
  }

  private hideAnnouncement(): void {
    if (this.announceTimer !== null) window.clearTimeout(this.announceTimer);
    this.announceTimer = null;
    this.announcer.textContent = '';
  }

  private render(fromUser: boolean): void {
    const lesson = this.containerId ? this.states.get(this.containerId) : undefined;
    if (!lesson) return;
    this.status.textContent = '';
    this.body.hidden = false;
    const total = lesson.steps.length;
    const done = doneCount(lesson);
    const allDone = lesson.current >= total;
    this.titleEl.textContent = lesson.title;
    this.description.textContent = lesson.description;
    this.progress.textContent = `${done} of ${total} done`;
    this.complete.hidden = !allDone;
    this.complete.textContent = allDone ? `✓ All ${total} steps done. Well done!` : '';

    const shown = Math.min(this.chosen ?? lesson.current, total - 1);
    keepingFocus(this.steps, () =>
      replaceChildren(
        this.steps,
        ...lesson.steps.map((step, i) =>
          h(
            'li',
            { 'data-step-id': step.id, 'data-done': String(step.done), class: step.done ? 'done' : '' },
            h(
              'button',
              {
                type: 'button',
                class: 'lesson-step-button',
                'aria-current': i === shown ? 'step' : false,
                'data-focus-key': `step:${step.id}`,
                onClick: () => {
                  this.chosen = i;
                  this.render(true);
                },
              },
              h('span', { class: 'lesson-step-mark', 'aria-hidden': 'true' }, step.done ? '✓' : String(i + 1)),
              h('span', { class: 'lesson-step-name' }, step.title),
              h('span', { class: 'visually-hidden' }, step.done ? ' (done)' : ' (not done yet)'),
            ),
          ),
        ),
      ),
    );

    const step = lesson.steps[shown];
    if (!step) return;
    this.stepTitle.textContent = `Step ${shown + 1} of ${total}: ${step.title}`;
    this.stepBadge.hidden = !step.done;
    // The text is rebuilt only when the step shown changes: a tick elsewhere must not
    // reset a selection the student is making in it.
    const key = `${lesson.lesson}:${step.id}`;
    if (key !== this.renderedKey || fromUser) {
      this.renderedKey = key;
      replaceChildren(this.stepText, withCopyButtons(renderMarkdown(step.text)));
    }
    const nextIndex = lesson.current < total && lesson.current !== shown ? lesson.current : -1;
    this.next.hidden = !(step.done && nextIndex >= 0);
    if (nextIndex >= 0) this.next.textContent = `Next: ${lesson.steps[nextIndex]!.title}`;
  }
}

function doneCount(lesson: ContainerLessonJson): number {
  return lesson.steps.filter((s) => s.done).length;
}

/** Each code block gets a Copy button: the student pastes it (the page never types). */
function withCopyButtons(fragment: DocumentFragment): DocumentFragment {
  for (const pre of [...fragment.querySelectorAll('pre')]) {
    const text = (): string => (pre.textContent ?? '').replace(/\n+$/, '');
    const firstLine = text().split('\n')[0] ?? '';
    const box = h('div', { class: 'lesson-code' });
    pre.replaceWith(box);
    box.append(
      pre,
      copyButton(text, `Copy the code: ${firstLine.length > 40 ? `${firstLine.slice(0, 40)}…` : firstLine}`, () => pre),
    );
  }
  return fragment;
}
