// StateFs: the state files' writes on the event loop on a memory filesystem, in the thread
// pool elsewhere, with the same results either way.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { StateFs, onMemoryFilesystem } from '../src/runtime/state-fs.js';

describe('onMemoryFilesystem', () => {
  it('says tmpfs for /dev/shm and for a path not made yet below it, not for procfs', () => {
    assert.equal(onMemoryFilesystem('/dev/shm'), true);
    assert.equal(onMemoryFilesystem('/dev/shm/no/such/dir/yet'), true);
    assert.equal(onMemoryFilesystem('/proc/self'), false);
  });
});

describe('StateFs', () => {
  for (const root of ['/dev/shm', tmpdir()]) {
    it(`writes, renames, links and removes the same way under ${root}`, async () => {
      const dir = mkdtempSync(join(root, 'state-fs-'));
      try {
        const fs = new StateFs(dir);
        assert.equal(fs.sync, onMemoryFilesystem(dir));
        await fs.mkdir(join(dir, 'a', 'b'), { recursive: true, mode: 0o700 });
        assert.equal(statSync(join(dir, 'a', 'b')).mode & 0o777, 0o700);
        await fs.writeFile(join(dir, 'a', 'f.tmp'), 'one', { mode: 0o600 });
        await fs.rename(join(dir, 'a', 'f.tmp'), join(dir, 'a', 'f'));
        assert.equal(readFileSync(join(dir, 'a', 'f'), 'utf8'), 'one');
        await assert.rejects(fs.writeFile(join(dir, 'a', 'f'), 'two', { flag: 'wx' }), { code: 'EEXIST' });
        await fs.symlink('f', join(dir, 'a', 'link'));
        assert.equal(readlinkSync(join(dir, 'a', 'link')), 'f');
        await fs.unlink(join(dir, 'a', 'link'));
        await assert.rejects(fs.unlink(join(dir, 'a', 'link')), { code: 'ENOENT' });
        await fs.rm(join(dir, 'a'), { recursive: true, force: true });
        assert.deepEqual(readdirSync(dir), []);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
