/**
 * One student in the class grid: name, container state, the live miniature of their
 * terminal (the server's plain-text screen rows in a <pre>, not an xterm), CPU, memory
 * and pids sparklines, their lesson step ("step 2/3: title") and how long they have been on
 * it, and how long since they last typed. Built once
 * and updated in place: a grid of 60 redraws only what changed.
 */
import type { ScreenJson, StatsSample, StudentJson } from '../../../server/src/protocol/index';
import { h } from '../dom';
import type { ChartPalette } from '../prefs';
import { Sparkline } from './sparkline';
import { currentContainer, since } from './widgets';

const MIB = 1024 * 1024;
export const SPARK_SLOTS = 60;

/** When the student last moved on: the lesson step's start, else their last input, else joining. */
export function stuckSince(student: StudentJson): number {
  const p = student.progress;
  const at = p && !p.done ? p.stepSince : (student.lastInputAt ?? student.joinedAt);
  const t = Date.parse(at);
  return Number.isFinite(t) ? t : Date.now();
}

/** The titles of a lesson's steps, once GET /api/lessons answered. */
export type StepTitles = (lessonId: string) => readonly string[] | undefined;

/** "step 2/3: Raise the limit" (progress.step counts from 0), "done (3/3)", or "—". */
export function stepLabel(student: StudentJson, titles?: StepTitles): string {
  const p = student.progress;
  if (!p) return '—';
  if (p.done) return `done (${p.steps}/${p.steps})`;
  const title = titles?.(p.lesson)?.[p.step];
  return `step ${p.step + 1}/${p.steps}${title ? `: ${title}` : ''}`;
}

export class StudentCard {
  readonly element: HTMLElement;
  student: StudentJson;
  private readonly nameButton: HTMLButtonElement;
  private readonly state: HTMLElement;
  private readonly screen: HTMLPreElement;
  private readonly step: HTMLElement;
  private readonly stepLine: HTMLElement;
  private readonly stepFor: HTMLElement;
  private readonly idle: HTMLElement;
  private readonly cpu: Sparkline;
  private readonly memory: Sparkline;
  private readonly pids: Sparkline;
  private readonly cpuText: HTMLElement;
  private readonly memoryText: HTMLElement;
  private readonly pidsText: HTMLElement;
  private screenKey = '';

  constructor(
    student: StudentJson,
    palette: ChartPalette,
    onOpen: (studentId: string) => void,
    private readonly titles: StepTitles = () => undefined,
  ) {
    this.student = student;
    this.nameButton = h('button', { type: 'button', class: 'student-name-button' });
    this.nameButton.addEventListener('click', (event) => {
      event.stopPropagation();
      onOpen(this.student.id);
    });
    this.state = h('span', { class: 'state' });
    this.screen = h('pre', { class: 'mini-screen', 'aria-hidden': 'true' });
    this.step = h('span', { class: 'student-step' });
    this.stepFor = h('span', { class: 'student-step-for' });
    this.stepLine = h('div', { class: 'student-lesson' }, this.step, this.stepFor);
    this.idle = h('span', { class: 'student-idle' });
    this.cpu = new Sparkline('CPU over the last minute', {
      color: palette.cpu,
      max: (v) => Math.max(100, ...v),
    });
    this.memory = new Sparkline('Memory over the last minute', {
      color: palette.memory,
      max: (v) => this.limit('memory') ?? Math.max(8, ...v),
    });
    this.pids = new Sparkline('Pids over the last minute', {
      color: palette.pids,
      max: (v) => this.limit('pids') ?? Math.max(5, ...v),
    });
    this.cpuText = h('span', { class: 'spark-value' }, '–');
    this.memoryText = h('span', { class: 'spark-value' }, '–');
    this.pidsText = h('span', { class: 'spark-value' }, '–');
    const spark = (title: string, line: Sparkline, value: HTMLElement): HTMLElement =>
      h('div', { class: 'spark' }, h('span', { class: 'spark-title' }, title), value, line.canvas);
    this.element = h(
      'li',
      { class: 'student-card', 'data-student-id': student.id },
      h('div', { class: 'student-card-head' }, this.nameButton, this.state),
      this.screen,
      h(
        'div',
        { class: 'sparks' },
        spark('CPU', this.cpu, this.cpuText),
        spark('Mem', this.memory, this.memoryText),
        spark('Pids', this.pids, this.pidsText),
      ),
      this.stepLine,
      h('div', { class: 'student-card-foot' }, h('span', {}, 'Last input ', this.idle)),
    );
    // The whole card opens the student; the name button is the keyboard's way in.
    this.element.addEventListener('click', () => onOpen(this.student.id));
    this.update(student);
  }

  update(student: StudentJson): void {
    this.student = student;
    this.nameButton.textContent = student.name;
    this.nameButton.setAttribute('aria-label', `Watch ${student.name}’s terminal`);
    this.element.classList.toggle('offline', !student.connected);
    const c = currentContainer(student);
    const state = c ? c.state : 'no container';
    this.state.textContent = student.connected ? state : `${state} · offline`;
    this.state.className = `state state-${c ? c.state : 'none'}`;
    this.refreshStep();
    if (!c && this.screenKey === '') this.screen.textContent = 'No container yet.';
    this.tick();
  }

  /** The lesson's step titles arrived (or changed): say the step by its name. */
  refreshStep(): void {
    const p = this.student.progress;
    this.stepLine.hidden = p === null;
    const label = stepLabel(this.student, this.titles);
    this.step.textContent = label.charAt(0).toUpperCase() + label.slice(1);
    this.step.title = this.step.textContent;
    this.stepLine.classList.toggle('done', p?.done === true);
  }

  setScreen(screen: ScreenJson): void {
    // Rows as plain text: textContent, never markup (a student prints what they like).
    const text = screen.lines.map((l) => l.trimEnd()).join('\n');
    if (text === this.screenKey) return;
    this.screenKey = text;
    this.screen.textContent = text;
  }

  setLastInput(at: string): void {
    this.student = { ...this.student, lastInputAt: at };
    this.tick();
  }

  drawSamples(samples: readonly StatsSample[]): void {
    const recent = samples.slice(-SPARK_SLOTS);
    const latest = recent[recent.length - 1];
    this.cpu.draw(
      recent.map((s) => s.cpuPercent),
      SPARK_SLOTS,
    );
    this.memory.draw(
      recent.map((s) => s.memoryBytes / MIB),
      SPARK_SLOTS,
    );
    this.pids.draw(
      recent.map((s) => s.pids),
      SPARK_SLOTS,
    );
    this.cpuText.textContent = latest ? `${latest.cpuPercent.toFixed(0)}%` : '–';
    const mib = latest ? latest.memoryBytes / MIB : 0;
    this.memoryText.textContent = latest ? `${mib.toFixed(mib < 10 ? 1 : 0)} MiB` : '–';
    this.pidsText.textContent = latest ? String(latest.pids) : '–';
    this.element.classList.toggle(
      'at-pids-limit',
      latest !== undefined && latest.pidsLimit !== null && latest.pids >= latest.pidsLimit,
    );
  }

  setPalette(palette: ChartPalette): void {
    this.cpu.setColor(palette.cpu);
    this.memory.setColor(palette.memory);
    this.pids.setColor(palette.pids);
  }

  /** Once a second: the "since" texts. */
  tick(now = Date.now()): void {
    const p = this.student.progress;
    this.stepFor.textContent = p && !p.done ? `for ${since(p.stepSince, now)}` : '';
    this.idle.textContent = this.student.lastInputAt === null ? 'never' : `${since(this.student.lastInputAt, now)} ago`;
  }

  private limit(kind: 'memory' | 'pids'): number | null {
    const c = currentContainer(this.student);
    if (!c) return null;
    if (kind === 'memory') return c.limits.memoryBytes === null ? null : c.limits.memoryBytes / MIB;
    return c.limits.pidsLimit;
  }
}
