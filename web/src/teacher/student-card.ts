/**
 * One student in the class grid: name, container state, the live miniature of their
 * terminal (the server's plain-text screen rows in a <pre>, not an xterm), CPU, memory
 * and pids sparklines, their lesson step and how long since they last typed. Built once
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

export function stepLabel(student: StudentJson): string {
  const p = student.progress;
  if (!p) return '—';
  if (p.done) return `done (${p.steps}/${p.steps})`;
  return `${p.step}/${p.steps}`;
}

export class StudentCard {
  readonly element: HTMLElement;
  student: StudentJson;
  private readonly nameButton: HTMLButtonElement;
  private readonly state: HTMLElement;
  private readonly screen: HTMLPreElement;
  private readonly step: HTMLElement;
  private readonly idle: HTMLElement;
  private readonly cpu: Sparkline;
  private readonly memory: Sparkline;
  private readonly pids: Sparkline;
  private readonly cpuText: HTMLElement;
  private readonly memoryText: HTMLElement;
  private readonly pidsText: HTMLElement;
  private screenKey = '';

  constructor(student: StudentJson, palette: ChartPalette, onOpen: (studentId: string) => void) {
    this.student = student;
    this.nameButton = h('button', { type: 'button', class: 'student-name-button' });
    this.nameButton.addEventListener('click', (event) => {
      event.stopPropagation();
      onOpen(this.student.id);
    });
    this.state = h('span', { class: 'state' });
    this.screen = h('pre', { class: 'mini-screen', 'aria-hidden': 'true' });
    this.step = h('span', { class: 'student-step' });
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
      h(
        'div',
        { class: 'student-card-foot' },
        h('span', {}, 'Step ', this.step),
        h('span', {}, 'Last input ', this.idle),
      ),
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
    this.step.textContent = stepLabel(student);
    if (!c && this.screenKey === '') this.screen.textContent = 'No container yet.';
    this.tick();
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
    this.idle.textContent = this.student.lastInputAt === null ? 'never' : `${since(this.student.lastInputAt, now)} ago`;
  }

  private limit(kind: 'memory' | 'pids'): number | null {
    const c = currentContainer(this.student);
    if (!c) return null;
    if (kind === 'memory') return c.limits.memoryBytes === null ? null : c.limits.memoryBytes / MIB;
    return c.limits.pidsLimit;
  }
}
