/**
 * Small pieces the teacher's pages share: a two-step confirm button (no window.confirm,
 * which a projector audience would see and a test would have to answer), relative times,
 * and the guard that the page talks as the teacher.
 */
import type { ClassJson, StudentJson } from '../../../server/src/protocol/index';
import { api } from '../api';
import { h } from '../dom';

const CONFIRM_WINDOW_MS = 5000;

/** A danger button that asks "again to confirm" on the first click, acts on the second. */
export function confirmButton(
  label: string,
  confirmLabel: string,
  action: () => Promise<unknown> | void,
  attrs: { 'aria-label'?: string; class?: string } = {},
): HTMLButtonElement {
  const button = h('button', { type: 'button', class: `button danger ${attrs.class ?? ''}`.trim() }, label);
  if (attrs['aria-label']) button.setAttribute('aria-label', attrs['aria-label']);
  let timer: number | null = null;
  const reset = (): void => {
    if (timer !== null) window.clearTimeout(timer);
    timer = null;
    button.classList.remove('confirming');
    button.textContent = label;
  };
  button.addEventListener('click', () => {
    if (timer === null) {
      button.classList.add('confirming');
      button.textContent = confirmLabel;
      timer = window.setTimeout(reset, CONFIRM_WINDOW_MS);
      return;
    }
    reset();
    button.disabled = true;
    void Promise.resolve(action()).finally(() => {
      button.disabled = false;
    });
  });
  button.addEventListener('blur', () => {
    // Leaving the button by keyboard cancels; a click elsewhere too.
    if (timer !== null) window.setTimeout(reset, 150);
  });
  return button;
}

/** "12 s", "4 min", "2 h" since an ISO time (or epoch ms), or "—". */
export function since(at: string | number | null, now = Date.now()): string {
  if (at === null) return '—';
  const t = typeof at === 'number' ? at : Date.parse(at);
  if (!Number.isFinite(t)) return '—';
  const seconds = Math.max(0, Math.round((now - t) / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** m:ss (or h:mm:ss) of a duration in seconds. */
export function clockDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const pad = (n: number): string => String(n).padStart(2, '0');
  const hours = Math.floor(s / 3600);
  const rest = `${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
  return hours > 0 ? `${hours}:${rest}` : rest.replace(/^0/, '');
}

/** The student's container the teacher looks at: the newest running one, else the newest. */
export function currentContainer(student: StudentJson): StudentJson['containers'][number] | null {
  const live = student.containers.filter((c) => c.state !== 'removed');
  const byNewest = [...live].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  return byNewest.find((c) => c.state === 'running') ?? byNewest[0] ?? null;
}

/** The full join link, as students type it or scan it off the projector. */
export function joinLink(c: ClassJson): string {
  return `${location.origin}${c.joinUrl}`;
}

export function classPageUrl(classId: string): string {
  return `/teacher/classes/${encodeURIComponent(classId)}`;
}

export function spotlightUrl(classId: string, studentId: string): string {
  return `${classPageUrl(classId)}/spotlight/${encodeURIComponent(studentId)}`;
}

export function replayUrl(classId: string, containerId: string, terminalId: number): string {
  return `${classPageUrl(classId)}/replay/${encodeURIComponent(containerId)}/${terminalId}`;
}

/** Resolves true when the page talks as the teacher; otherwise fills `main` with why not. */
export async function requireTeacher(main: HTMLElement): Promise<boolean> {
  try {
    const me = await api.me();
    if (me.role === 'teacher') return true;
    main.replaceChildren(
      h(
        'div',
        { class: 'empty-state' },
        h('p', { class: 'empty-title' }, 'This page is for the teacher'),
        h(
          'p',
          { class: 'muted' },
          me.role === 'student'
            ? 'This browser joined a class as a student. Open the teacher console in another browser or profile, with the server’s token link.'
            : 'Open it with the link the server printed (it carries the access token).',
        ),
        h('p', {}, h('a', { href: '/' }, 'Go to the playground')),
      ),
    );
  } catch (err) {
    main.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, `Cannot reach the server: ${String(err)}`));
  }
  return false;
}
