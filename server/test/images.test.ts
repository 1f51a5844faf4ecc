import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isMdockerError, type ErrorCode } from '../src/runtime/errors.js';
import { IMAGE_MARKER_FILE, imagesDir, listImages, resolveImage } from '../src/runtime/images.js';

async function assertRejectsWith(promise: Promise<unknown>, code: ErrorCode, message: string | RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isMdockerError(err), `expected an MdockerError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

describe('images', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mdocker-images-'));
    // busybox: finished by the builder (marker), 1000 + 24 bytes of files.
    await mkdir(join(dir, 'busybox/bin'), { recursive: true });
    await writeFile(join(dir, 'busybox/bin/busybox'), Buffer.alloc(1000));
    await writeFile(join(dir, 'busybox', IMAGE_MARKER_FILE), 'name=busybox\nsource=x\n'.padEnd(24, '#'));
    await symlink('busybox', join(dir, 'busybox/bin/sh'));
    // hand-made: no marker, but a bin/ directory.
    await mkdir(join(dir, 'hand-made/bin'), { recursive: true });
    // Not images: a half-built tree, a plain dir, a file, a symlink out, an invalid name.
    await mkdir(join(dir, '.busybox.build.abc123/bin'), { recursive: true });
    await mkdir(join(dir, 'empty'));
    await writeFile(join(dir, 'notes.txt'), 'hello');
    await symlink('/', join(dir, 'host'));
    await mkdir(join(dir, 'Upper/bin'), { recursive: true });
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
    delete process.env['MDOCKER_IMAGES'];
  });

  it('lists only finished images with their size, sorted by name', async () => {
    const images = await listImages({ imagesDir: dir });
    const symlinkSize = 'busybox'.length;
    assert.deepEqual(images, [
      { name: 'busybox', path: join(dir, 'busybox'), sizeBytes: 1000 + 24 + symlinkSize },
      { name: 'hand-made', path: join(dir, 'hand-made'), sizeBytes: 0 },
    ]);
  });

  it('resolves a name to its directory', async () => {
    assert.deepEqual(await resolveImage('busybox', { imagesDir: dir }), {
      name: 'busybox',
      path: join(dir, 'busybox'),
    });
  });

  it('names the images that exist when one is unknown', async () => {
    await assertRejectsWith(
      resolveImage('alpine', { imagesDir: dir }),
      'NOT_FOUND',
      'unknown image "alpine" (available: busybox, hand-made)',
    );
    await assertRejectsWith(resolveImage('empty', { imagesDir: dir }), 'NOT_FOUND', /^unknown image "empty"/);
    await assertRejectsWith(resolveImage('host', { imagesDir: dir }), 'NOT_FOUND', /^unknown image "host"/);
  });

  it('takes names, never paths', async () => {
    for (const name of ['../busybox', 'busybox/bin', '/etc', '.busybox.build.abc123', 'Upper', '', 'a'.repeat(129)]) {
      await assertRejectsWith(resolveImage(name, { imagesDir: dir }), 'INVALID_ARGUMENT', /^invalid image name/);
    }
  });

  it('says how to build images when there are none', async () => {
    await assertRejectsWith(
      resolveImage('busybox', { imagesDir: join(dir, 'missing') }),
      'NOT_FOUND',
      'unknown image "busybox" (available: none; run npm run build:rootfs)',
    );
    assert.deepEqual(await listImages({ imagesDir: join(dir, 'missing') }), []);
  });

  it('reads the images dir from MDOCKER_IMAGES, defaulting to rootfs/images of the repo', async () => {
    assert.match(imagesDir(), /\/rootfs\/images$/);
    assert.doesNotMatch(imagesDir(), /\/server\//);
    process.env['MDOCKER_IMAGES'] = dir;
    assert.equal(imagesDir(), dir);
    assert.deepEqual((await resolveImage('busybox')).path, join(dir, 'busybox'));
  });
});
