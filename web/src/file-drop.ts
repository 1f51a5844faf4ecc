/**
 * Files dropped on an element (the terminal pane): an overlay says where they will go
 * while they are dragged over it, and the drop hands them on. A browser's default for a
 * file dropped on a page is to open it in place of the page, which this cancels.
 */
import { h } from './dom';

export interface FileDropOptions {
  /** Whether a drop is taken now (a running container is shown). */
  accepts: () => boolean;
  /** The overlay's words while files are dragged over the target. */
  hint: () => string;
  onFiles: (files: File[]) => void;
  /** Something was dropped that is not only files (a directory, text). */
  onRefused: (why: string) => void;
}

function carriesFiles(event: DragEvent): boolean {
  return event.dataTransfer?.types.includes('Files') ?? false;
}

export function attachFileDrop(target: HTMLElement, options: FileDropOptions): void {
  const overlayText = h('p', { class: 'drop-overlay-text' });
  const overlay = h('div', { class: 'drop-overlay', hidden: true, 'aria-hidden': 'true' }, overlayText);
  target.append(overlay);
  // dragenter and dragleave fire for every child crossed: count to know when it has left.
  let depth = 0;
  const hide = (): void => {
    depth = 0;
    overlay.hidden = true;
  };

  target.addEventListener('dragenter', (event) => {
    if (!carriesFiles(event) || !options.accepts()) return;
    event.preventDefault();
    depth++;
    overlayText.textContent = options.hint();
    overlay.hidden = false;
  });
  target.addEventListener('dragover', (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = options.accepts() ? 'copy' : 'none';
  });
  target.addEventListener('dragleave', (event) => {
    if (!carriesFiles(event)) return;
    depth = Math.max(0, depth - 1);
    if (depth === 0) overlay.hidden = true;
  });
  target.addEventListener('drop', (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    hide();
    if (!options.accepts()) return;
    const transfer = event.dataTransfer!;
    const items = [...transfer.items].filter((item) => item.kind === 'file');
    // A dropped directory arrives as a File too (size 0, unreadable): say so instead.
    const directories = items.filter((item) => item.webkitGetAsEntry?.()?.isDirectory === true);
    if (directories.length > 0) {
      options.onRefused('Folders cannot be dropped; drop the files in them, or upload a tar and unpack it.');
    }
    const files = items
      .filter((item) => item.webkitGetAsEntry?.()?.isDirectory !== true)
      .map((item) => item.getAsFile())
      .filter((file): file is File => file !== null);
    if (files.length > 0) options.onFiles(files);
  });
}
