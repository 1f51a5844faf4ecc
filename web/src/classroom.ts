/**
 * What a student's page adds when its session joined a class: the class and the
 * student's name in the header, the teacher's broadcasts as dismissible banners (a
 * command comes with a Copy button and is never typed into a terminal), and the notice
 * that the class ended.
 */
import type { BroadcastJson, StudentSelfJson } from '../../server/src/protocol/index';
import { h, replaceChildren } from './dom';

const DISMISSED_KEY = 'mdocker.dismissedBroadcasts';
/** Banners shown at once; older undismissed ones stay reachable by dismissing newer ones. */
const MAX_SHOWN = 3;

/** Copies text to the clipboard; on plain http (no Clipboard API) selects `source` and
 * uses the copy command. Resolves false when neither worked. */
export async function copyText(text: string, source?: HTMLElement | null): Promise<boolean> {
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      /* refused (no permission, not focused): try the selection route */
    }
  }
  if (!source) return false;
  const range = document.createRange();
  range.selectNodeContents(source);
  const selection = window.getSelection();
  selection?.removeAllRanges();
  selection?.addRange(range);
  const ok = document.execCommand('copy');
  selection?.removeAllRanges();
  return ok;
}

/** A "Copy" button that copies `text` and says so for a moment. */
export function copyButton(text: () => string, label: string, source?: () => HTMLElement | null): HTMLButtonElement {
  const button = h('button', { type: 'button', class: 'button small', 'aria-label': label }, 'Copy');
  button.addEventListener('click', () => {
    void copyText(text(), source?.()).then((ok) => {
      button.textContent = ok ? 'Copied' : 'Copy failed';
      window.setTimeout(() => (button.textContent = 'Copy'), 2000);
    });
  });
  return button;
}

function loadDismissed(): Set<string> {
  try {
    const parsed: unknown = JSON.parse(sessionStorage.getItem(DISMISSED_KEY) ?? '[]');
    return new Set(Array.isArray(parsed) ? parsed.filter((v): v is string => typeof v === 'string') : []);
  } catch {
    return new Set();
  }
}

function saveDismissed(keys: Set<string>): void {
  try {
    sessionStorage.setItem(DISMISSED_KEY, JSON.stringify([...keys].slice(-200)));
  } catch {
    /* storage off: dismissals last for the page's life */
  }
}

export class Classroom {
  /** Goes into the header, after the title. */
  readonly identity: HTMLElement;
  /** Goes below the header. */
  readonly banners: HTMLElement;
  private readonly endedNotice: HTMLElement;
  private readonly list: HTMLElement;
  private classId = '';
  private readonly broadcasts = new Map<number, BroadcastJson>();
  private readonly dismissed = loadDismissed();

  constructor() {
    this.identity = h('div', { class: 'class-identity', hidden: true });
    this.endedNotice = h('div', { class: 'class-ended', role: 'alert', hidden: true });
    this.list = h('div', { class: 'broadcast-list' });
    this.banners = h(
      'section',
      { class: 'broadcasts', 'aria-label': 'Messages from your teacher', 'aria-live': 'polite' },
      this.endedNotice,
      this.list,
    );
  }

  showStudent(student: StudentSelfJson): void {
    this.classId = student.classId;
    replaceChildren(
      this.identity,
      h('span', { class: 'class-name', title: 'Class' }, student.className),
      h('span', { class: 'muted' }, ' · '),
      h('span', { class: 'student-name', title: 'You' }, student.name),
    );
    this.identity.hidden = false;
    for (const b of student.broadcasts) this.broadcasts.set(b.id, b);
    this.render();
    if (!student.classOpen) this.classEnded();
  }

  addBroadcast(broadcast: BroadcastJson): void {
    this.broadcasts.set(broadcast.id, broadcast);
    this.render();
  }

  classEnded(): void {
    replaceChildren(
      this.endedNotice,
      h('strong', {}, 'The class has ended.'),
      ' Your teacher closed it; its containers are being removed. Thank you for taking part!',
    );
    this.endedNotice.hidden = false;
  }

  private key(id: number): string {
    return `${this.classId}:${id}`;
  }

  private dismiss(id: number): void {
    this.dismissed.add(this.key(id));
    saveDismissed(this.dismissed);
    this.render();
  }

  private render(): void {
    const shown = [...this.broadcasts.values()]
      .filter((b) => !this.dismissed.has(this.key(b.id)))
      .sort((a, b) => b.id - a.id)
      .slice(0, MAX_SHOWN);
    replaceChildren(this.list, ...shown.map((b) => this.banner(b)));
  }

  private banner(b: BroadcastJson): HTMLElement {
    let code: HTMLElement | null = null;
    const command = b.command;
    if (command !== null && command !== '') {
      code = h('code', { class: 'broadcast-command' }, command);
    }
    const time = new Date(b.at);
    return h(
      'div',
      { class: 'broadcast', role: 'note', 'aria-label': 'Message from your teacher', 'data-broadcast-id': b.id },
      h('span', { class: 'broadcast-from' }, 'Teacher'),
      h(
        'div',
        { class: 'broadcast-body' },
        h('p', { class: 'broadcast-message' }, b.message),
        code &&
          h(
            'div',
            { class: 'broadcast-command-row' },
            code,
            copyButton(
              () => command ?? '',
              'Copy the command',
              () => code,
            ),
          ),
      ),
      h(
        'time',
        { class: 'broadcast-time muted', datetime: b.at },
        Number.isNaN(time.getTime()) ? '' : time.toLocaleTimeString(),
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'button small',
          'aria-label': 'Dismiss this message',
          onClick: () => this.dismiss(b.id),
        },
        'Dismiss',
      ),
    );
  }
}
