/** Per-layer pull progress on a terminal: one line per layer, redrawn in place, with its rate. */
import type { ImportProgress } from '../runtime/images.js';
import { formatBytes } from '../runtime/units.js';

const REDRAW_MS = 100;

interface LayerLine {
  progress: ImportProgress;
  startedMs: number;
}

export class LayerProgress {
  private readonly layers = new Map<string, LayerLine>();
  private drawnLines = 0;
  private lastDrawMs = 0;

  constructor(private readonly out: NodeJS.WriteStream) {}

  update(progress: ImportProgress): void {
    const line = this.layers.get(progress.digest);
    if (line) line.progress = progress;
    else this.layers.set(progress.digest, { progress, startedMs: Date.now() });
    const now = Date.now();
    // A new layer shows at once; its byte counts at most every REDRAW_MS.
    if (line && progress.status === 'downloading' && now - this.lastDrawMs < REDRAW_MS) return;
    this.lastDrawMs = now;
    this.draw();
  }

  finish(): void {
    this.draw();
  }

  private describe({ progress, startedMs }: LayerLine): string {
    const id = progress.digest.slice('sha256:'.length, 'sha256:'.length + 12);
    switch (progress.status) {
      case 'exists':
        return `${id}: already here`;
      case 'downloading': {
        const seconds = Math.max((Date.now() - startedMs) / 1000, 0.001);
        return `${id}: downloading ${formatBytes(progress.doneBytes)} / ${formatBytes(progress.totalBytes)} (${formatBytes(progress.doneBytes / seconds)}/s)`;
      }
      case 'verifying':
        return `${id}: verifying`;
      case 'unpacking':
        return `${id}: unpacking`;
      case 'done':
        return `${id}: done`;
    }
  }

  private draw(): void {
    let text = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A` : '';
    for (const line of this.layers.values()) text += `\x1b[2K${this.describe(line)}\n`;
    this.drawnLines = this.layers.size;
    this.out.write(text);
  }
}
