/**
 * Files going into a container: each a PUT of its raw bytes (…/files?path=DIR/NAME)
 * through XMLHttpRequest, whose upload events give the progress fetch cannot, listed
 * with a progress bar until done. File names are the user's and are shown as text.
 */
import type { FileEntryJson } from '../../server/src/protocol/index';
import { filePath } from './api';
import { h } from './dom';
import { formatBytesHuman } from './format';

export interface UploadsOptions {
  /** A file landed: the Files panel shows the directory again. */
  onUploaded: (containerId: string, dir: string, entry: FileEntryJson | null) => void;
}

/** How long a finished upload stays listed; a failed one stays until dismissed. */
const DONE_SHOWN_MS = 4000;

export function joinPath(dir: string, name: string): string {
  return `${dir.replace(/\/+$/, '')}/${name}`;
}

/** The server's error message from an error body, or the status. */
function failureText(xhr: XMLHttpRequest): string {
  try {
    const body = JSON.parse(xhr.responseText) as { error?: { message?: unknown } };
    if (typeof body.error?.message === 'string') return body.error.message;
  } catch {
    /* not JSON: the status says it */
  }
  return xhr.status === 0 ? 'the server cannot be reached' : `${xhr.status} ${xhr.statusText}`.trim();
}

export class Uploads {
  readonly element: HTMLElement;
  private readonly list: HTMLElement;

  constructor(private readonly options: UploadsOptions) {
    this.list = h('ul', { class: 'uploads-list' });
    this.element = h('section', { class: 'uploads', 'aria-label': 'Uploads', role: 'status', hidden: true }, this.list);
  }

  /** Uploads the files one after another into `dir` of the container. */
  async upload(containerId: string, dir: string, files: readonly File[]): Promise<void> {
    const items = files.map((file) => this.item(file, dir));
    for (const [i, file] of files.entries()) {
      await this.send(containerId, dir, file, items[i]!);
    }
  }

  private item(file: File, dir: string): { li: HTMLElement; progress: HTMLProgressElement; text: HTMLElement } {
    const target = joinPath(dir, file.name);
    const progress = h('progress', {
      class: 'upload-progress',
      max: Math.max(file.size, 1),
      value: 0,
      'aria-label': `Uploading ${file.name}`,
    });
    const text = h('span', { class: 'upload-text' }, `Waiting: ${file.name}`);
    const li = h('li', { class: 'upload-item', 'data-state': 'waiting', title: target }, text, progress);
    this.list.append(li);
    this.element.hidden = false;
    return { li, progress, text };
  }

  private send(
    containerId: string,
    dir: string,
    file: File,
    view: { li: HTMLElement; progress: HTMLProgressElement; text: HTMLElement },
  ): Promise<void> {
    const target = joinPath(dir, file.name);
    const size = formatBytesHuman(file.size);
    view.li.dataset.state = 'sending';
    view.text.textContent = `${file.name} → ${dir} (${size})`;
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open('PUT', filePath(containerId, target));
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      xhr.setRequestHeader('Accept', 'application/json');
      xhr.upload.addEventListener('progress', (event) => {
        if (event.lengthComputable) view.progress.value = event.loaded;
      });
      xhr.addEventListener('load', () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          view.progress.value = view.progress.max;
          view.li.dataset.state = 'done';
          view.text.textContent = `Uploaded ${file.name} to ${dir} (${size})`;
          let entry: FileEntryJson | null = null;
          try {
            entry = JSON.parse(xhr.responseText) as FileEntryJson;
          } catch {
            entry = null;
          }
          this.options.onUploaded(containerId, dir, entry);
          window.setTimeout(() => this.removeItem(view.li), DONE_SHOWN_MS);
        } else {
          this.failed(view, file, failureText(xhr));
        }
        resolve();
      });
      xhr.addEventListener('error', () => {
        this.failed(view, file, failureText(xhr));
        resolve();
      });
      xhr.send(file);
    });
  }

  private failed(view: { li: HTMLElement; progress: HTMLProgressElement; text: HTMLElement }, file: File, why: string) {
    view.li.dataset.state = 'error';
    view.progress.remove();
    view.text.textContent = `Cannot upload ${file.name}: ${why}`;
    view.li.append(
      h(
        'button',
        {
          type: 'button',
          class: 'button small',
          'aria-label': `Dismiss: ${file.name}`,
          onClick: () => this.removeItem(view.li),
        },
        'Dismiss',
      ),
    );
  }

  private removeItem(li: HTMLElement): void {
    li.remove();
    this.element.hidden = this.list.childElementCount === 0;
  }
}
