/**
 * The selected container's files as a tree: directories expand on demand (GET …/files
 * ?path=P&list=1), files and whole directories (as a tar) download with a link, and
 * files upload into a chosen directory (the shell's working directory by default).
 * Names are whatever the container's user made them: every one is a text node.
 */
import type { ContainerJson, FileEntryJson } from '../../server/src/protocol/index';
import { api, errorText, filePath } from './api';
import { h, replaceChildren, uniqueId } from './dom';
import { formatBytesHuman } from './format';
import { type Uploads, joinPath } from './uploads';
import './files.css';

export interface FilesPanelOptions {
  uploads: Uploads;
  /** The directory uploads go to unless the user picks another: the shell's. */
  workingDirectory: (containerId: string) => Promise<string>;
}

interface DirNode {
  path: string;
  expanded: boolean;
  /** the list under the directory's row, filled when expanded */
  children: HTMLElement;
  toggle: HTMLButtonElement | null;
}

const TYPE_LABEL: Record<FileEntryJson['type'], string> = {
  file: 'file',
  dir: 'directory',
  symlink: 'symbolic link',
  other: 'special file',
};

/** "rwxr-xr-x" for the permission bits. */
export function permissions(mode: number): string {
  const bits = 'rwxrwxrwx';
  let out = '';
  for (let i = 0; i < 9; i++) out += mode & (1 << (8 - i)) ? bits[i] : '-';
  return out;
}

export class FilesPanel {
  readonly element: HTMLElement;
  private readonly tree: HTMLElement;
  private readonly status: HTMLElement;
  private readonly folderInput: HTMLInputElement;
  private readonly fileInput: HTMLInputElement;
  private readonly dirs = new Map<string, DirNode>();
  private container: ContainerJson | null = null;
  private active = false;
  private loadedFor: string | null = null;
  private generation = 0;

  constructor(private readonly options: FilesPanelOptions) {
    const folderId = uniqueId('files-folder');
    this.status = h('p', { class: 'muted files-status', role: 'status' });
    this.tree = h('ul', { class: 'files-tree', 'aria-label': 'Files' });
    this.folderInput = h('input', {
      id: folderId,
      type: 'text',
      class: 'mono files-folder',
      spellcheck: 'false',
      autocomplete: 'off',
    });
    this.fileInput = h('input', {
      type: 'file',
      multiple: true,
      class: 'files-picker',
      'aria-label': 'Files to upload',
    });
    this.fileInput.addEventListener('change', () => void this.uploadChosen());
    const form = h(
      'form',
      { class: 'files-upload', 'aria-label': 'Upload files' },
      h('label', { for: folderId }, 'Upload into'),
      this.folderInput,
      h('button', { type: 'submit', class: 'button small' }, 'Choose files…'),
      this.fileInput,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.fileInput.click();
    });
    this.element = h(
      'section',
      { class: 'files', 'aria-label': 'Files' },
      h(
        'div',
        { class: 'panel-toolbar' },
        h('button', { type: 'button', class: 'button small', onClick: () => void this.reload() }, 'Refresh'),
        this.status,
      ),
      form,
      this.tree,
    );
  }

  /** The selected container (or none); its tree loads when the panel is shown. */
  show(container: ContainerJson | null): void {
    const changed = container?.id !== this.container?.id;
    this.container = container;
    if (!changed) return;
    this.loadedFor = null;
    this.dirs.clear();
    this.tree.replaceChildren();
    this.status.textContent = '';
    if (this.active) void this.reload();
  }

  /** Loads only while visible: a tree nobody looks at costs the server a walk. */
  setActive(active: boolean): void {
    this.active = active;
    if (active && this.container && this.loadedFor !== this.container.id) void this.reload();
  }

  /** A file was uploaded into `dir`: an expanded directory shows it. */
  uploaded(containerId: string, dir: string): void {
    if (containerId !== this.container?.id) return;
    const node = this.dirs.get(normalize(dir));
    if (node?.expanded) void this.loadDir(node);
  }

  /** The whole tree again from /, keeping what was expanded. */
  async reload(): Promise<void> {
    const container = this.container;
    if (!container) return;
    const generation = ++this.generation;
    if (container.state !== 'running') {
      this.status.textContent = 'The container is not running.';
      this.tree.replaceChildren();
      return;
    }
    if (this.loadedFor !== container.id) {
      this.loadedFor = container.id;
      void this.fillFolder(container.id);
    }
    const expanded = [...this.dirs.values()].filter((d) => d.expanded).map((d) => d.path);
    this.dirs.clear();
    const root = this.dirNode('/', this.tree, null);
    root.expanded = true;
    await this.loadDir(root);
    for (const path of expanded.sort()) {
      if (generation !== this.generation) return;
      const node = this.dirs.get(path);
      if (node && !node.expanded) await this.expand(node);
    }
  }

  private async fillFolder(containerId: string): Promise<void> {
    if (this.folderInput.value !== '') return;
    let dir = '/root';
    try {
      dir = await this.options.workingDirectory(containerId);
    } catch {
      /* the default */
    }
    if (containerId === this.container?.id && this.folderInput.value === '') this.folderInput.value = dir;
  }

  private dirNode(path: string, children: HTMLElement, toggle: HTMLButtonElement | null): DirNode {
    const node: DirNode = { path, expanded: false, children, toggle };
    this.dirs.set(path, node);
    return node;
  }

  private async expand(node: DirNode): Promise<void> {
    node.expanded = true;
    node.toggle?.setAttribute('aria-expanded', 'true');
    node.children.hidden = false;
    await this.loadDir(node);
  }

  private collapse(node: DirNode): void {
    node.expanded = false;
    node.toggle?.setAttribute('aria-expanded', 'false');
    node.children.hidden = true;
  }

  private async loadDir(node: DirNode): Promise<void> {
    const container = this.container;
    if (!container) return;
    const generation = this.generation;
    this.status.textContent = `Listing ${node.path}…`;
    let entries: FileEntryJson[];
    try {
      entries = await api.listFiles(container.id, node.path);
    } catch (err) {
      if (container.id !== this.container?.id) return;
      this.status.textContent = `Cannot list ${node.path}: ${errorText(err)}`;
      return;
    }
    if (container.id !== this.container?.id || generation !== this.generation) return;
    this.status.textContent = '';
    entries.sort((a, b) => Number(b.type === 'dir') - Number(a.type === 'dir') || a.name.localeCompare(b.name));
    replaceChildren(
      node.children,
      ...(entries.length === 0 ? [h('li', { class: 'muted files-empty' }, 'empty')] : []),
      ...entries.map((entry) => this.entryItem(container.id, node.path, entry)),
    );
  }

  private entryItem(containerId: string, dir: string, entry: FileEntryJson): HTMLElement {
    const path = joinPath(dir, entry.name);
    const isDir = entry.type === 'dir';
    const name = h('span', { class: 'file-name mono', title: path }, entry.name);
    const meta = h(
      'span',
      { class: 'file-meta muted mono' },
      isDir ? permissions(entry.mode) : `${permissions(entry.mode)} ${formatBytesHuman(entry.size)}`,
    );
    const children = h('ul', { class: 'files-children', hidden: true });
    let toggle: HTMLButtonElement | null = null;
    const actions: HTMLElement[] = [];
    if (isDir) {
      toggle = h(
        'button',
        { type: 'button', class: 'file-toggle', 'aria-expanded': 'false', 'aria-label': `Folder ${entry.name}` },
        h('span', { class: 'file-toggle-icon', 'aria-hidden': 'true' }),
        name,
      );
      const node = this.dirNode(path, children, toggle);
      toggle.addEventListener('click', () => {
        if (node.expanded) this.collapse(node);
        else void this.expand(node);
      });
      actions.push(
        h(
          'button',
          {
            type: 'button',
            class: 'button small file-action',
            'aria-label': `Upload into ${entry.name}`,
            onClick: () => {
              this.folderInput.value = path;
              this.fileInput.click();
            },
          },
          'Upload',
        ),
      );
    }
    if (isDir || entry.type === 'file') {
      actions.push(
        h(
          'a',
          {
            class: 'button small file-action',
            href: filePath(containerId, path),
            download: isDir ? `${entry.name}.tar` : entry.name,
            'aria-label': isDir ? `Download ${entry.name} as .tar` : `Download ${entry.name}`,
          },
          isDir ? '.tar' : 'Download',
        ),
      );
    }
    const label =
      toggle ??
      h(
        'span',
        { class: `file-label file-${entry.type}` },
        name,
        entry.type === 'file' ? null : h('span', { class: 'muted' }, ` (${TYPE_LABEL[entry.type]})`),
      );
    return h(
      'li',
      { class: 'file-item', 'data-type': entry.type, 'data-path': path },
      h('div', { class: 'file-row' }, label, meta, h('span', { class: 'file-actions' }, ...actions)),
      isDir ? children : null,
    );
  }

  private async uploadChosen(): Promise<void> {
    const container = this.container;
    const files = [...(this.fileInput.files ?? [])];
    this.fileInput.value = '';
    if (!container || files.length === 0) return;
    const dir = normalize(this.folderInput.value.trim() || '/');
    this.folderInput.value = dir;
    await this.options.uploads.upload(container.id, dir, files);
  }
}

/** "/a//b/" → "/a/b"; a relative path is taken from /. */
function normalize(path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  return `/${parts.join('/')}`;
}
