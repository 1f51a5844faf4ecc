/**
 * /teacher: the teacher's classes, the form that opens one (per-student limits, image,
 * lesson, the class's whole budget), and for each its join link and code in large type for the
 * projector, a new code, and the end of the class; and the form that pulls an image for
 * the students to pick.
 */
import type { ClassJson, CreateClassBody } from '../../../server/src/protocol/index';
import { api } from '../api';
import { copyButton } from '../classroom';
import { describeError } from '../containers';
import { h, replaceChildren, uniqueId } from '../dom';
import { formatBytesHuman, formatCpus, parseCpusInput, parseMemoryInput, parsePidsInput } from '../format';
import { pageShell, type Shell } from '../shell';
import { classPageUrl, confirmButton, joinLink, requireTeacher } from './widgets';
import { ImagePullPanel } from './image-pull';

function field(label: string, input: HTMLInputElement | HTMLSelectElement, hint?: string): HTMLElement {
  const id = uniqueId('class-field');
  input.id = id;
  const hintEl = hint ? h('span', { class: 'field-hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hintEl);
}

function text(name: string, placeholder: string, extra: Record<string, string> = {}): HTMLInputElement {
  return h('input', { type: 'text', name, placeholder, autocomplete: 'off', spellcheck: 'false', ...extra });
}

export function startConsolePage(): void {
  const shell = pageShell({
    subtitle: 'teacher console',
    pageClass: 'page-teacher',
    title: 'Teacher console · mdocker',
  });
  void requireTeacher(shell.main).then((ok) => {
    if (ok) new TeacherConsole(shell);
  });
}

class TeacherConsole {
  private readonly list: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly image: HTMLSelectElement;
  private readonly lesson: HTMLSelectElement;
  private classes: ClassJson[] = [];
  private lessonTitles = new Map<string, string>();

  constructor(private readonly shell: Shell) {
    const name = text('name', 'e.g. Containers 101, Tuesday', { required: 'true', maxlength: '80' });
    this.image = h('select', { name: 'image' }, h('option', { value: '' }, 'server default'));
    this.lesson = h('select', { name: 'lesson' }, h('option', { value: '' }, 'none'));
    const memory = text('memory', 'default, e.g. 128m');
    const cpus = text('cpus', 'default, e.g. 0.5', { inputmode: 'decimal' });
    const pids = text('pidsLimit', 'default, e.g. 64', { inputmode: 'numeric' });
    const perStudent = text('maxContainersPerStudent', '1', { inputmode: 'numeric' });
    const budgetMemory = text('budgetMemory', 'none, e.g. 4g');
    const budgetCpus = text('budgetCpus', 'none, e.g. 4', { inputmode: 'decimal' });
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const submit = h('button', { type: 'submit', class: 'button primary' }, 'Create class');
    const form = h(
      'form',
      { class: 'class-form card-panel', 'aria-label': 'Create a class', novalidate: true },
      h('h2', { class: 'panel-title' }, 'New class'),
      field('Class name', name),
      field('Image', this.image),
      field('Lesson', this.lesson, 'every student’s container gets it; its steps show on the board'),
      h(
        'fieldset',
        { class: 'field-group' },
        h('legend', {}, 'Each student’s container'),
        field('Memory', memory, 'bytes or 64m, 1g'),
        field('CPUs', cpus, 'cores, e.g. 0.5'),
        field('Pids limit', pids, 'most processes at once'),
        field('Containers per student', perStudent, 'at once'),
      ),
      h(
        'fieldset',
        { class: 'field-group' },
        h('legend', {}, 'The whole class together'),
        field('Class memory', budgetMemory, 'all students’ containers'),
        field('Class CPUs', budgetCpus, 'all students’ containers'),
      ),
      submit,
      error,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const body: CreateClassBody = { name: name.value.trim() };
      if (body.name === '') {
        error.textContent = 'Give the class a name.';
        error.hidden = false;
        name.focus();
        return;
      }
      const limits: NonNullable<CreateClassBody['limits']> = {};
      const mem = parseMemoryInput(memory.value);
      if (mem !== undefined) limits.memory = mem;
      const cpu = parseCpusInput(cpus.value);
      if (cpu !== undefined) limits.cpus = cpu;
      const pid = parsePidsInput(pids.value);
      if (pid !== undefined) limits.pidsLimit = pid;
      if (Object.keys(limits).length > 0) body.limits = limits;
      const max = parsePidsInput(perStudent.value);
      if (max !== undefined) body.maxContainersPerStudent = max;
      if (this.image.value) body.image = this.image.value;
      if (this.lesson.value) body.lesson = this.lesson.value;
      const budget: NonNullable<CreateClassBody['budget']> = {};
      const bMem = parseMemoryInput(budgetMemory.value);
      if (bMem !== undefined) budget.memory = bMem;
      const bCpu = parseCpusInput(budgetCpus.value);
      if (bCpu !== undefined) budget.cpus = bCpu;
      if (Object.keys(budget).length > 0) body.budget = budget;
      submit.disabled = true;
      error.hidden = true;
      api
        .createClass(body)
        .then((created) => {
          form.reset();
          this.classes = [created, ...this.classes.filter((c) => c.id !== created.id)];
          this.render();
          this.list.querySelector<HTMLElement>(`[data-class-id="${CSS.escape(created.id)}"] .class-open`)?.focus();
        })
        .catch((err: unknown) => {
          error.textContent = `Cannot create the class: ${describeError(err)}`;
          error.hidden = false;
        })
        .finally(() => {
          submit.disabled = false;
        });
    });

    this.list = h('ul', { class: 'class-list', 'aria-label': 'Your classes' });
    this.empty = h('p', { class: 'muted' }, 'No classes yet. Create one: its join link appears here.');
    const pullPanel = new ImagePullPanel(() => void this.loadImages());
    shell.main.append(
      h(
        'div',
        { class: 'console-layout' },
        h('div', { class: 'console-forms' }, form, pullPanel.element),
        h(
          'section',
          { class: 'classes', 'aria-label': 'Classes' },
          h('h2', { class: 'panel-title' }, 'Classes'),
          this.empty,
          this.list,
        ),
      ),
    );
    name.focus();
    void this.load();
    void this.loadImages();
    api
      .lessons()
      .then((lessons) => {
        this.lessonTitles = new Map(lessons.map((l) => [l.id, l.title]));
        this.lesson.append(...lessons.map((l) => h('option', { value: l.id, title: l.description }, l.title)));
        this.render();
      })
      .catch(() => {
        /* a server without lessons: classes without one */
      });
  }

  private async loadImages(): Promise<void> {
    try {
      const images = await api.images();
      const chosen = this.image.value;
      replaceChildren(
        this.image,
        h('option', { value: '' }, 'server default'),
        ...images.map((img) =>
          h(
            'option',
            { value: img.name, title: img.description ?? '' },
            `${img.name} (${formatBytesHuman(img.sizeBytes)})${img.description ? ` — ${img.description}` : ''}`,
          ),
        ),
      );
      this.image.value = images.some((img) => img.name === chosen) ? chosen : '';
    } catch {
      /* the server default still works */
    }
  }

  private async load(): Promise<void> {
    try {
      this.classes = await api.listClasses();
      this.render();
    } catch (err) {
      this.shell.showNotice(`Cannot list classes: ${describeError(err)}`);
    }
  }

  private render(): void {
    const sorted = [...this.classes].sort((a, b) => {
      if ((a.endedAt === null) !== (b.endedAt === null)) return a.endedAt === null ? -1 : 1;
      return b.createdAt.localeCompare(a.createdAt);
    });
    this.empty.hidden = sorted.length > 0;
    replaceChildren(this.list, ...sorted.map((c) => this.item(c)));
  }

  private replace(updated: ClassJson): void {
    this.classes = this.classes.map((c) => (c.id === updated.id ? updated : c));
    this.render();
  }

  private item(c: ClassJson): HTMLElement {
    const open = c.endedAt === null;
    const link = joinLink(c);
    const linkEl = h('code', { class: 'join-link' }, link);
    const limits = [
      c.limits.memoryBytes === null ? null : `${formatBytesHuman(c.limits.memoryBytes)} memory`,
      c.limits.cpus === null ? null : `${formatCpus(c.limits.cpus)} CPUs`,
      c.limits.pidsLimit === null ? null : `${c.limits.pidsLimit} pids`,
    ]
      .filter((x) => x !== null)
      .join(' · ');
    const connected = c.students.filter((s) => s.connected).length;
    return h(
      'li',
      { class: open ? 'class-item card-panel' : 'class-item card-panel ended', 'data-class-id': c.id },
      h(
        'div',
        { class: 'class-item-head' },
        h('h3', { class: 'class-item-name' }, h('a', { class: 'class-open', href: classPageUrl(c.id) }, c.name)),
        h(
          'span',
          { class: 'muted' },
          open
            ? `${c.students.length} student${c.students.length === 1 ? '' : 's'} (${connected} online) · ${c.image}${limits ? ` · ${limits}` : ''}${c.lesson ? ` · lesson: ${this.lessonTitles.get(c.lesson) ?? c.lesson}` : ''}`
            : `ended ${new Date(c.endedAt ?? c.createdAt).toLocaleString()}`,
        ),
      ),
      open &&
        h(
          'div',
          { class: 'class-join' },
          h('div', { class: 'join-code-big', 'aria-label': `Join code ${c.joinCode.split('').join(' ')}` }, c.joinCode),
          h(
            'div',
            { class: 'join-link-row' },
            h('span', { class: 'muted' }, 'Join link'),
            linkEl,
            copyButton(
              () => link,
              `Copy the join link of ${c.name}`,
              () => linkEl,
            ),
          ),
        ),
      h(
        'div',
        { class: 'class-actions' },
        h('a', { class: 'button small primary', href: classPageUrl(c.id) }, open ? 'Open the class' : 'Recordings'),
        open &&
          h(
            'button',
            {
              type: 'button',
              class: 'button small',
              onClick: () => {
                api
                  .rotateCode(c.id)
                  .then((updated) => this.replace(updated))
                  .catch((err: unknown) => this.shell.showNotice(`Cannot change the code: ${describeError(err)}`));
              },
            },
            'New join code',
          ),
        open &&
          confirmButton(
            'End class',
            'Click again to end the class',
            () =>
              api
                .endClass(c.id)
                .then(() => this.load())
                .catch((err: unknown) => this.shell.showNotice(`Cannot end the class: ${describeError(err)}`)),
            { class: 'small' },
          ),
      ),
    );
  }
}
