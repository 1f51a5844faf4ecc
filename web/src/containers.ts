/**
 * The session's containers: the list (state, limits, save, delete), the form that creates
 * one (every field optional, so the "New container" button alone gives a shell with the
 * server's defaults; the image picker says what each image is), and the limits editor
 * that changes a running container's cgroup.
 */
import type {
  ContainerJson,
  CreateContainerBody,
  ImageJson,
  LessonJson,
  UpdateContainerBody,
} from '../../server/src/protocol/index';
import { ApiError, api, errorText } from './api';
import { h, keepingFocus, replaceChildren, uniqueId } from './dom';
import {
  formatBytesHuman,
  formatCpus,
  formatMemory,
  limitsSummary,
  parseCpusInput,
  parseMemoryInput,
  parsePidsInput,
  stateSummary,
} from './format';

export function describeError(err: unknown): string {
  if (err instanceof ApiError) return `${err.message} (${err.code})`;
  return errorText(err);
}

function field(label: string, input: HTMLInputElement | HTMLSelectElement, hint?: string): HTMLElement {
  const id = uniqueId('field');
  input.id = id;
  const hintEl = hint ? h('span', { class: 'field-hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hintEl);
}

/** The image picker, with a line that says what the picked image is. */
function imageField(select: HTMLSelectElement, hint: HTMLElement): HTMLElement {
  const id = uniqueId('field');
  select.id = id;
  hint.id = `${id}-hint`;
  select.setAttribute('aria-describedby', hint.id);
  return h('div', { class: 'field' }, h('label', { for: id }, 'Image'), select, hint);
}

function textInput(attrs: Record<string, string | boolean>): HTMLInputElement {
  return h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', ...attrs });
}

// ---------------------------------------------------------------------------------------

export interface ContainerListOptions {
  onSelect: (id: string) => void;
  onCreated: (container: ContainerJson) => void;
  onDeleted: (id: string) => void;
  /** a container was saved as an image (the picker's list changed) */
  onSaved: (image: ImageJson) => void;
}

export class ContainerList {
  readonly element: HTMLElement;
  private readonly form: HTMLFormElement;
  private readonly image: HTMLSelectElement;
  private readonly imageHint: HTMLElement;
  private images: ImageJson[] = [];
  private readonly pendingSaves = new Set<string>();
  private readonly saveStatus: HTMLElement;
  private readonly lesson: HTMLSelectElement;
  private readonly lessonField: HTMLElement;
  private lessons: LessonJson[] = [];
  /** The class's lesson: the server gives it to every container of a student. */
  private classLesson: string | null = null;
  private inClass = false;
  private readonly hostname: HTMLInputElement;
  private readonly memory: HTMLInputElement;
  private readonly cpus: HTMLInputElement;
  private readonly pids: HTMLInputElement;
  private readonly submit: HTMLButtonElement;
  private readonly formError: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly emptyNote: HTMLElement;
  private readonly pendingDeletes = new Set<string>();
  private confirmTimer: number | null = null;
  private confirming: string | null = null;
  private containers: ContainerJson[] = [];
  private selectedId: string | null = null;

  constructor(private readonly options: ContainerListOptions) {
    this.image = h(
      'select',
      { name: 'image', onChange: () => this.renderImageHint() },
      h('option', { value: '' }, 'default'),
    );
    this.imageHint = h('span', { class: 'field-hint image-hint' });
    this.saveStatus = h('p', { class: 'form-message save-status', role: 'status' });
    this.lesson = h('select', { name: 'lesson' }, h('option', { value: '' }, 'none (a plain shell)'));
    this.lessonField = field('Lesson', this.lesson, 'its steps tick as you do them');
    this.lessonField.hidden = true;
    this.hostname = textInput({
      name: 'hostname',
      placeholder: 'default',
      pattern: '[A-Za-z0-9]([A-Za-z0-9.\\-]{0,62})',
    });
    this.memory = textInput({ name: 'memory', placeholder: 'default, e.g. 64m' });
    this.cpus = textInput({ name: 'cpus', placeholder: 'default, e.g. 0.5', inputmode: 'decimal' });
    this.pids = textInput({ name: 'pidsLimit', placeholder: 'default, e.g. 64', inputmode: 'numeric' });
    this.submit = h('button', { type: 'submit', class: 'button primary' }, 'New container');
    this.formError = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const advanced = h(
      'details',
      { class: 'create-options', open: true },
      h('summary', {}, 'Options'),
      imageField(this.image, this.imageHint),
      field('Hostname', this.hostname),
      field('Memory', this.memory, 'bytes or 64m, 1g'),
      field('CPUs', this.cpus, 'cores, e.g. 0.5'),
      field('Pids limit', this.pids, 'most processes at once'),
    );
    this.form = h(
      'form',
      { class: 'create-form', 'aria-label': 'Create a container', novalidate: true, onSubmit: (e) => this.onSubmit(e) },
      this.lessonField,
      this.submit,
      advanced,
      this.formError,
    );
    this.list = h('ul', { class: 'container-list', 'aria-label': 'Your containers' });
    this.emptyNote = h(
      'p',
      { class: 'muted empty-note' },
      'No containers yet. “New container” starts one with a shell.',
    );
    this.element = h(
      'div',
      { class: 'containers' },
      h('h2', { class: 'panel-title' }, 'Containers'),
      this.form,
      this.emptyNote,
      this.list,
      this.saveStatus,
    );
  }

  setImages(images: ImageJson[]): void {
    const chosen = this.image.value;
    this.images = images;
    const options = images.map((img) =>
      h(
        'option',
        { value: img.name, title: img.description ?? '' },
        `${img.kind === 'saved' ? 'Saved: ' : ''}${img.name} (${formatBytesHuman(img.sizeBytes)})` +
          (img.description ? ` — ${img.description}` : ''),
      ),
    );
    replaceChildren(
      this.image,
      h('option', { value: '' }, this.inClass ? 'your class’s image' : 'default'),
      ...options,
    );
    this.image.value = images.some((img) => img.name === chosen) ? chosen : '';
    this.renderImageHint();
  }

  /** Picks an image in the form (a container just saved, to start from it). */
  pickImage(name: string): void {
    if (this.images.some((img) => img.name === name)) this.image.value = name;
    this.renderImageHint();
  }

  private renderImageHint(): void {
    const img = this.images.find((known) => known.name === this.image.value);
    const parts: string[] = [];
    if (img === undefined) parts.push(this.inClass ? 'the image your teacher chose' : 'the server’s default image');
    else {
      parts.push(img.description ?? (img.kind === 'saved' ? 'a container you saved' : 'no description'));
      if (img.exposedPorts.length > 0) parts.push(`serves on ${img.exposedPorts.join(', ')}`);
    }
    this.imageHint.textContent = parts.join(' · ');
  }

  /** The lessons one may pick (GET /api/lessons); none: the field stays hidden. */
  setLessons(lessons: LessonJson[]): void {
    this.lessons = lessons;
    this.renderLessons();
    this.rerender();
  }

  /** A student whose class has a lesson gets it on every container: shown, not chosen. */
  setClassLesson(lessonId: string | null): void {
    this.classLesson = lessonId;
    this.renderLessons();
  }

  /** A student's default image is the class's, not the server's. */
  setInClass(inClass: boolean): void {
    this.inClass = inClass;
    const first = this.image.options[0];
    if (first !== undefined && first.value === '') first.textContent = inClass ? 'your class’s image' : 'default';
    this.renderImageHint();
  }

  private renderLessons(): void {
    const chosen = this.lesson.value;
    if (this.classLesson !== null) {
      const title = this.lessons.find((l) => l.id === this.classLesson)?.title ?? this.classLesson;
      replaceChildren(this.lesson, h('option', { value: '' }, `${title} (your class’s lesson)`));
      this.lesson.disabled = true;
    } else {
      replaceChildren(
        this.lesson,
        h('option', { value: '' }, 'none (a plain shell)'),
        ...this.lessons.map((l) => h('option', { value: l.id, title: l.description }, l.title)),
      );
      this.lesson.disabled = false;
      this.lesson.value = this.lessons.some((l) => l.id === chosen) ? chosen : '';
    }
    this.lessonField.hidden = this.lessons.length === 0 && this.classLesson === null;
  }

  render(containers: readonly ContainerJson[], selectedId: string | null): void {
    this.containers = [...containers].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    this.selectedId = selectedId;
    this.emptyNote.hidden = this.containers.length > 0;
    keepingFocus(this.list, () => replaceChildren(this.list, ...this.containers.map((c) => this.renderItem(c))));
  }

  /** True while this page's own Delete of the container is in flight. */
  isDeleting(id: string): boolean {
    return this.pendingDeletes.has(id);
  }

  focusNewContainer(): void {
    this.submit.focus();
  }

  private renderItem(c: ContainerJson): HTMLLIElement {
    const selected = c.id === this.selectedId;
    const deleting = this.pendingDeletes.has(c.id);
    const confirming = this.confirming === c.id;
    const title = c.hostname && c.hostname !== c.name ? `${c.name} · ${c.hostname}` : c.name;
    const open = h(
      'button',
      {
        type: 'button',
        class: 'container-open',
        'aria-current': selected ? 'true' : false,
        'aria-label': `Open ${c.name}`,
        'data-focus-key': `open:${c.id}`,
        onClick: () => this.options.onSelect(c.id),
      },
      h('span', { class: 'container-name' }, title),
      h('span', { class: `state state-${c.state}` }, stateSummary(c)),
      h('span', { class: 'container-limits' }, `${c.image} · ${limitsSummary(c)}`),
      c.lesson ? h('span', { class: 'container-lesson' }, `Lesson: ${this.lessonTitle(c.lesson)}`) : null,
    );
    const saving = this.pendingSaves.has(c.id);
    const save = h(
      'button',
      {
        type: 'button',
        class: 'button small',
        'aria-label': `Save ${c.name} as an image`,
        title: 'Keep what you changed in this container as an image of your own, to start new containers from',
        disabled: saving || c.state !== 'running',
        'data-focus-key': `save:${c.id}`,
        onClick: () => void this.onSaveClick(c),
      },
      saving ? 'Saving…' : 'Save',
    );
    const remove = h(
      'button',
      {
        type: 'button',
        class: confirming ? 'button small danger confirming' : 'button small danger',
        'aria-label': confirming ? `Confirm delete ${c.name}` : `Delete ${c.name}`,
        disabled: deleting,
        'data-focus-key': `delete:${c.id}`,
        onClick: () => void this.onDeleteClick(c),
      },
      deleting ? 'Deleting…' : confirming ? 'Confirm delete' : 'Delete',
    );
    return h(
      'li',
      {
        class: selected ? 'container-item selected' : 'container-item',
        'data-container-id': c.id,
        'data-state': c.state,
      },
      open,
      save,
      remove,
    );
  }

  private async onSaveClick(c: ContainerJson): Promise<void> {
    this.pendingSaves.add(c.id);
    this.saveStatus.className = 'form-message save-status';
    this.saveStatus.textContent = `Saving ${c.name}…`;
    this.rerender();
    try {
      const image = await api.saveContainer(c.id);
      this.saveStatus.className = 'form-message save-status ok';
      this.saveStatus.textContent = `Saved ${c.name} as ${image.name}: pick it under Image to start a new container from it. It is kept for this session.`;
      // Offered at once (the list the server sends next has it too), and picked.
      if (!this.images.some((known) => known.name === image.name)) this.setImages([...this.images, image]);
      this.pickImage(image.name);
      this.options.onSaved(image);
    } catch (err) {
      this.saveStatus.className = 'form-message save-status error';
      this.saveStatus.textContent = `Cannot save ${c.name}: ${describeError(err)}`;
    } finally {
      this.pendingSaves.delete(c.id);
      this.rerender();
    }
  }

  private lessonTitle(id: string): string {
    return this.lessons.find((l) => l.id === id)?.title ?? id;
  }

  private async onDeleteClick(c: ContainerJson): Promise<void> {
    if (this.confirming !== c.id) {
      // Two steps: a student's work lives in the container, a stray click must not end it.
      this.confirming = c.id;
      if (this.confirmTimer !== null) window.clearTimeout(this.confirmTimer);
      this.confirmTimer = window.setTimeout(() => {
        this.confirming = null;
        this.rerender();
      }, 5000);
      this.rerender(); // keepingFocus moves the focus to "Confirm delete"
      return;
    }
    this.confirming = null;
    this.pendingDeletes.add(c.id);
    this.rerender();
    try {
      await api.deleteContainer(c.id);
      this.options.onDeleted(c.id);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) this.options.onDeleted(c.id);
      else this.showError(`Cannot delete ${c.name}: ${describeError(err)}`);
    } finally {
      this.pendingDeletes.delete(c.id);
      this.rerender();
      this.focusNewContainer();
    }
  }

  private rerender(): void {
    this.render(this.containers, this.selectedId);
  }

  private async onSubmit(event: Event): Promise<void> {
    event.preventDefault();
    this.formError.hidden = true;
    const body: CreateContainerBody = {};
    if (this.image.value) body.image = this.image.value;
    if (this.lesson.value && this.classLesson === null) body.lesson = this.lesson.value;
    if (this.hostname.value.trim()) body.hostname = this.hostname.value.trim();
    const memory = parseMemoryInput(this.memory.value);
    if (memory !== undefined) body.memory = memory;
    const cpus = parseCpusInput(this.cpus.value);
    if (cpus !== undefined) body.cpus = cpus;
    const pids = parsePidsInput(this.pids.value);
    if (pids !== undefined) {
      if (Number.isNaN(pids)) {
        this.showError('Pids limit must be a whole number.');
        this.pids.focus();
        return;
      }
      body.pidsLimit = pids;
    }
    this.submit.disabled = true;
    this.submit.textContent = 'Starting…';
    try {
      const container = await api.createContainer(body);
      // A hostname names one container; the limits are likely wanted again.
      this.hostname.value = '';
      this.options.onCreated(container);
    } catch (err) {
      this.showError(`Cannot create the container: ${describeError(err)}`);
    } finally {
      this.submit.disabled = false;
      this.submit.textContent = 'New container';
    }
  }

  private showError(text: string): void {
    this.formError.textContent = text;
    this.formError.hidden = false;
  }
}

// ---------------------------------------------------------------------------------------

export interface LimitsEditorOptions {
  onUpdated: (container: ContainerJson) => void;
}

/** The selected container's limits, editable while it runs; a PATCH writes the new
 * values into its cgroup at once. Fields the user is editing are not overwritten by
 * updates arriving meanwhile. */
export class LimitsEditor {
  readonly element: HTMLFormElement;
  private readonly memory: HTMLInputElement;
  private readonly cpus: HTMLInputElement;
  private readonly pids: HTMLInputElement;
  private readonly apply: HTMLButtonElement;
  private readonly message: HTMLElement;
  private container: ContainerJson | null = null;
  private readonly dirty = new Set<HTMLInputElement>();

  constructor(private readonly options: LimitsEditorOptions) {
    this.memory = textInput({ name: 'memory', placeholder: 'no limit' });
    this.cpus = textInput({ name: 'cpus', placeholder: 'no limit', inputmode: 'decimal' });
    this.pids = textInput({ name: 'pidsLimit', placeholder: 'no limit', inputmode: 'numeric' });
    for (const input of [this.memory, this.cpus, this.pids]) {
      input.addEventListener('input', () => this.dirty.add(input));
    }
    this.apply = h('button', { type: 'submit', class: 'button small primary' }, 'Apply limits');
    this.message = h('p', { class: 'form-message', role: 'status' });
    this.element = h(
      'form',
      { class: 'limits-form', 'aria-label': 'Limits', novalidate: true, onSubmit: (e) => void this.onSubmit(e) },
      h(
        'div',
        { class: 'limits-fields' },
        field('Memory', this.memory),
        field('CPUs', this.cpus),
        field('Pids limit', this.pids),
        this.apply,
      ),
      this.message,
    );
  }

  show(container: ContainerJson | null): void {
    const changed = container?.id !== this.container?.id;
    this.container = container;
    if (changed) {
      this.dirty.clear();
      this.message.textContent = '';
      this.message.className = 'form-message';
    }
    const running = container?.state === 'running' || container?.state === 'created';
    for (const input of [this.memory, this.cpus, this.pids]) input.disabled = !running;
    this.apply.disabled = !running;
    if (!container) return;
    this.setIfClean(this.memory, formatMemory(container.limits.memoryBytes));
    this.setIfClean(this.cpus, formatCpus(container.limits.cpus));
    this.setIfClean(this.pids, container.limits.pidsLimit === null ? '' : String(container.limits.pidsLimit));
  }

  private setIfClean(input: HTMLInputElement, value: string): void {
    if (!this.dirty.has(input)) input.value = value;
  }

  private async onSubmit(event: Event): Promise<void> {
    event.preventDefault();
    const container = this.container;
    if (!container) return;
    const body: UpdateContainerBody = {};
    // Only what changed: an untouched field keeps its limit.
    if (this.dirty.has(this.memory)) {
      const memory = parseMemoryInput(this.memory.value);
      if (memory !== undefined) body.memory = memory;
    }
    if (this.dirty.has(this.cpus)) {
      const cpus = parseCpusInput(this.cpus.value);
      if (cpus !== undefined) body.cpus = cpus;
    }
    if (this.dirty.has(this.pids)) {
      const pids = parsePidsInput(this.pids.value);
      if (pids !== undefined && Number.isNaN(pids)) {
        this.say('Pids limit must be a whole number.', true);
        return;
      }
      if (pids !== undefined) body.pidsLimit = pids;
    }
    if (Object.keys(body).length === 0) {
      this.say('Nothing changed.', false);
      return;
    }
    this.apply.disabled = true;
    try {
      const updated = await api.updateContainer(container.id, body);
      this.dirty.clear();
      this.say(`Limits applied: ${limitsSummary(updated)}.`, false);
      this.options.onUpdated(updated);
    } catch (err) {
      this.say(`Cannot change the limits: ${describeError(err)}`, true);
    } finally {
      this.apply.disabled = false;
    }
  }

  private say(text: string, isError: boolean): void {
    this.message.textContent = text;
    this.message.className = isError ? 'form-message error' : 'form-message ok';
  }
}
