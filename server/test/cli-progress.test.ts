import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LayerProgress } from '../src/cli/progress.js';

describe('pull progress on a terminal', () => {
  it('keeps one line per layer, redrawn in place, with bytes and rate', () => {
    let out = '';
    const progress = new LayerProgress({ write: (text: string) => (out += text) } as unknown as NodeJS.WriteStream);
    const a = `sha256:${'a'.repeat(64)}`;
    const b = `sha256:${'b'.repeat(64)}`;
    progress.update({ digest: a, totalBytes: 2048, doneBytes: 2048, status: 'exists' });
    progress.update({ digest: b, totalBytes: 4096, doneBytes: 1024, status: 'downloading' });
    progress.update({ digest: b, totalBytes: 4096, doneBytes: 4096, status: 'done' });
    progress.finish();
    assert.match(out, /aaaaaaaaaaaa: already here\n/);
    assert.match(out, /bbbbbbbbbbbb: downloading 1KiB \/ 4KiB \([\d.]+[KMG]?i?B\/s\)\n/);
    assert.match(out, /\x1b\[2A\x1b\[2Kaaaaaaaaaaaa: already here\n\x1b\[2Kbbbbbbbbbbbb: done\n$/);
  });
});
