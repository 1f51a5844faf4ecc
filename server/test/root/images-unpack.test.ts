/**
 * The image store's layer unpacking against hostile layers, and its overlay marks:
 * whiteouts and opaque directories checked through a real overlay mount.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { isMdockerError } from '../../src/runtime/errors.js';
import type { Descriptor } from '../../src/runtime/images/oci.js';
import { ImageStore, type BlobSource } from '../../src/runtime/images/store.js';
import { unpackLayer } from '../../src/runtime/images/unpack.js';
import { allBlobs, image, layer, makeTar, sha256, zstd, type Blob, type TarEntry } from './oci-builder.js';
import { rootOnly } from './helpers.js';

const skip = rootOnly();

function sourceOf(blobs: Blob[]): BlobSource {
  return {
    open: async (d: Descriptor) => {
      const b = blobs.find((x) => x.digest === d.digest);
      if (!b) throw new Error(`no blob ${d.digest}`);
      return Readable.from([b.bytes]);
    },
  };
}

describe('image layers', { skip }, () => {
  let dir: string;
  let outside: string;
  let store: ImageStore;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mdocker-unpack-'));
    outside = join(dir, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'secret'), 'host secret\n');
    store = await ImageStore.open({
      dataDir: join(dir, 'data'),
      limits: { unpack: { maxTarBytes: 8 * 1024 * 1024, maxEntries: 1000 } },
    });
  });

  after(async () => {
    spawnSync('umount', ['-l', join(dir, 'merged')]);
    await rm(dir, { recursive: true, force: true });
  });

  async function unpack(entries: TarEntry[], compression: 'gzip' | 'zstd' | 'none' = 'none') {
    const root = await mkdtemp(join(dir, 'layer-'));
    const tar = await makeTar(entries);
    const bytes = compression === 'gzip' ? gzipSync(tar) : compression === 'zstd' ? zstd(tar) : tar;
    const result = await unpackLayer(Readable.from([bytes]), compression, root, store.limits.unpack);
    return { root, result, tar };
  }

  async function assertRefused(entries: TarEntry[], message: RegExp) {
    await assert.rejects(unpack(entries), (err: unknown) => {
      assert.ok(isMdockerError(err), String(err));
      assert.equal(err.code, 'INVALID_ARGUMENT');
      assert.match(err.message, message);
      return true;
    });
    assert.deepEqual((await readdir(outside)).sort(), ['secret'], 'nothing written outside the layer');
    assert.equal(await readFile(join(outside, 'secret'), 'utf8'), 'host secret\n');
  }

  it('keeps ownership, modes (set-id bits included) and symlinks as they are', async () => {
    const { root, result, tar } = await unpack([
      { name: 'bin/', type: 'directory', mode: 0o750, uid: 7, gid: 8 },
      { name: 'bin/tool', content: 'x', mode: 0o4755, uid: 1234, gid: 5678 },
      { name: 'bin/alias', type: 'symlink', linkname: '/bin/tool', uid: 9, gid: 9 },
      { name: 'bin/hard', type: 'link', linkname: 'bin/tool' },
    ]);
    const tool = await lstat(join(root, 'bin/tool'));
    assert.equal(tool.mode & 0o7777, 0o4755);
    assert.equal(tool.uid, 1234);
    assert.equal(tool.gid, 5678);
    assert.equal(tool.nlink, 2);
    const bin = await lstat(join(root, 'bin'));
    assert.equal(bin.mode & 0o7777, 0o750);
    assert.equal(bin.uid, 7);
    const alias = await lstat(join(root, 'bin/alias'));
    assert.ok(alias.isSymbolicLink());
    assert.equal(alias.uid, 9);
    assert.equal(result.diffId, sha256(tar));
  });

  it('unpacks zstd layers to the same tree and diff id as gzip ones', async () => {
    const entries: TarEntry[] = [{ name: 'a/b', content: 'hello zstd\n'.repeat(1000) }];
    const gz = await unpack(entries, 'gzip');
    const zs = await unpack(entries, 'zstd');
    assert.equal(zs.result.diffId, gz.result.diffId);
    assert.equal(await readFile(join(zs.root, 'a/b'), 'utf8'), 'hello zstd\n'.repeat(1000));
  });

  it('makes overlay whiteouts and opaque directories that hide what lies below', async () => {
    const lower = await unpack([
      { name: 'etc/keep', content: 'keep\n' },
      { name: 'etc/gone', content: 'gone\n' },
      { name: 'opaque/old', content: 'old\n' },
    ]);
    const upper = await unpack([
      { name: 'etc/.wh.gone' },
      { name: 'etc/added', content: 'added\n' },
      { name: 'opaque/.wh..wh..opq' },
      { name: 'opaque/new', content: 'new\n' },
    ]);
    const whiteout = await lstat(join(upper.root, 'etc/gone'));
    assert.ok(whiteout.isCharacterDevice() && whiteout.rdev === 0, 'a 0/0 character device');
    const merged = join(dir, 'merged');
    await mkdir(merged);
    const mount = spawnSync('mount', [
      '-t',
      'overlay',
      'overlay',
      '-o',
      `lowerdir=${upper.root}:${lower.root}`,
      merged,
    ]);
    assert.equal(mount.status, 0, mount.stderr.toString());
    try {
      assert.deepEqual((await readdir(join(merged, 'etc'))).sort(), ['added', 'keep']);
      assert.deepEqual(await readdir(join(merged, 'opaque')), ['new']);
    } finally {
      spawnSync('umount', [merged]);
    }
  });

  it('refuses .. anywhere in a name', async () => {
    await assertRefused([{ name: '../outside/pwned', content: 'x' }], /climbs out/);
    await assertRefused([{ name: 'a/../../pwned', content: 'x' }], /climbs out/);
  });

  it('confines absolute names to the layer', async () => {
    const { root } = await unpack([{ name: `/${outside}/abs`, content: 'x' }]);
    assert.ok(existsSync(join(root, outside, 'abs')));
  });

  it('refuses a write through a symlink, to an absolute or a relative target', async () => {
    await assertRefused(
      [
        { name: 'link', type: 'symlink', linkname: outside },
        { name: 'link/pwned', content: 'x' },
      ],
      /symlink: nothing may be written through it/,
    );
    await assertRefused(
      [
        { name: 'up', type: 'symlink', linkname: '../../../../../../..' },
        { name: `up/${outside}/pwned`, content: 'x' },
      ],
      /symlink/,
    );
    await assertRefused(
      [
        { name: 'd/', type: 'directory' },
        { name: 'd/link', type: 'symlink', linkname: outside },
        { name: 'd/link/.wh.secret' },
      ],
      /symlink/,
    );
  });

  it('replaces a symlink by a file of the same name instead of writing through it', async () => {
    const { root } = await unpack([
      { name: 'target', type: 'symlink', linkname: join(outside, 'secret') },
      { name: 'target', content: 'overwritten?' },
    ]);
    assert.equal(await readFile(join(root, 'target'), 'utf8'), 'overwritten?');
    assert.ok((await lstat(join(root, 'target'))).isFile());
  });

  it('refuses hardlinks to anything outside the layer', async () => {
    await assertRefused([{ name: 'hl', type: 'link', linkname: '../outside/secret' }], /climbs out/);
    await assertRefused([{ name: 'hl', type: 'link', linkname: join(outside, 'secret') }], /hardlink/);
    await assertRefused(
      [
        { name: 'link', type: 'symlink', linkname: outside },
        { name: 'hl', type: 'link', linkname: 'link/secret' },
      ],
      /hardlink/,
    );
  });

  it('makes no device nodes or FIFOs', async () => {
    const { root, result } = await unpack([
      { name: 'dev/sda', type: 'block-device' },
      { name: 'dev/mem', type: 'character-device' },
      { name: 'fifo', type: 'fifo' },
      { name: 'ok', content: 'ok' },
    ]);
    assert.equal(result.skipped, 3);
    assert.ok(
      !existsSync(join(root, 'dev/sda')) && !existsSync(join(root, 'dev/mem')) && !existsSync(join(root, 'fifo')),
    );
  });

  it('refuses names over the limits', async () => {
    await assertRefused([{ name: 'x'.repeat(256), content: 'x' }], /over 255 bytes/);
    await assertRefused([{ name: 'a/'.repeat(2100) + 'f', content: 'x' }], /over 4096 bytes/);
  });

  it('stops a decompression bomb at the cap, gzip and zstd', async () => {
    const tar = await makeTar([{ name: 'zeros', content: Buffer.alloc(64 * 1024 * 1024) }]);
    for (const compression of ['gzip', 'zstd'] as const) {
      const bytes = compression === 'gzip' ? gzipSync(tar) : zstd(tar);
      assert.ok(bytes.length < 1024 * 1024, 'a bomb: small compressed');
      const root = await mkdtemp(join(dir, 'bomb-'));
      await assert.rejects(
        unpackLayer(Readable.from([bytes]), compression, root, store.limits.unpack),
        /more than 8388608 bytes once decompressed/,
      );
    }
  });

  it('refuses a zstd frame asking for a window over 128 MiB before decoding it', async () => {
    const root = await mkdtemp(join(dir, 'window-'));
    // Magic, a descriptor with no single segment, a window descriptor of 2^41 bytes.
    const frame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xf8, 0x01, 0x00, 0x00]);
    await assert.rejects(unpackLayer(Readable.from([frame]), 'zstd', root), /zstd window of \d+ bytes is over/);
  });

  it('refuses too many entries', async () => {
    const entries = Array.from({ length: 1001 }, (_, i) => ({ name: `f${i}`, content: '' }));
    await assertRefused(entries, /more than 1000 entries/);
  });

  it('refuses a blob whose digest does not match, and discards it', async () => {
    const good = layer(await makeTar([{ name: 'a', content: 'a' }]));
    const forged = { ...good.blob, bytes: gzipSync(await makeTar([{ name: 'a', content: 'b' }])) };
    const parts = image([good]);
    await assert.rejects(
      store.importImage(parts.manifest, sourceOf([parts.manifest, parts.config, forged]), []),
      /does not match its digest/,
    );
    assert.equal(await store.hasBlob(good.blob.digest), false);
    assert.deepEqual(await readdir(join(store.root, 'tmp')), []);
    assert.deepEqual(await store.list(), [], 'no half image');
  });

  it('refuses a layer whose content does not match its diff id', async () => {
    const real = layer(await makeTar([{ name: 'a', content: 'a' }]));
    const other = layer(await makeTar([{ name: 'a', content: 'other' }]));
    const parts = image([{ blob: real.blob, diffId: other.diffId }]);
    await assert.rejects(store.importImage(parts.manifest, sourceOf(allBlobs(parts)), []), /unpacks to sha256:/);
    assert.equal(await store.hasLayer(other.diffId), false);
    assert.deepEqual(await readdir(join(store.root, 'tmp')), []);
  });

  it('stores a layer two images share once, and resumes from what a failed import verified', async () => {
    const store = await ImageStore.open({ dataDir: join(dir, 'data-shared') });
    const base = layer(await makeTar([{ name: 'base', content: 'base' }]));
    const top = layer(await makeTar([{ name: 'top', content: 'top' }]));
    const first = image([base]);
    const second = image([base, top]);
    const { parseReference } = await import('../../src/runtime/images/reference.js');
    // The second's top layer fails first: its base stays, verified, and no image appears.
    const failing: BlobSource = {
      open: async (d) => {
        if (d.digest === top.blob.digest) throw new Error('network down');
        return sourceOf(allBlobs(second)).open(d);
      },
    };
    await assert.rejects(store.importImage(second.manifest, failing, [parseReference('second')]), /network down/);
    assert.equal(await store.find('second'), null);
    assert.ok(await store.hasLayer(base.diffId));
    let fetchedBase = 0;
    const counting: BlobSource = {
      open: async (d) => {
        if (d.digest === base.blob.digest) fetchedBase++;
        return sourceOf([...allBlobs(first), ...allBlobs(second)]).open(d);
      },
    };
    await store.importImage(second.manifest, counting, [parseReference('second')]);
    await store.importImage(first.manifest, counting, [parseReference('first')]);
    assert.equal(fetchedBase, 0, 'the base blob was reused');
    const firstImage = await store.find('first');
    const secondImage = await store.find('docker.io/library/second:latest');
    assert.ok(firstImage && secondImage);
    assert.equal(store.layerRoots(firstImage)[0], store.layerRoots(secondImage)[0]);
    assert.equal((await readdir(join(store.root, 'layers'))).length, 2);
    // Removing one keeps the shared layer; removing the other removes everything.
    await store.remove('second', () => null);
    assert.ok(await store.hasLayer(base.diffId));
    assert.equal(await store.hasLayer(top.diffId), false);
    await assert.rejects(
      store.remove('first', () => 'c1'),
      /in use by container c1/,
    );
    await store.remove('first', () => null);
    assert.deepEqual(await readdir(join(store.root, 'layers')), []);
    assert.deepEqual(await readdir(join(store.root, 'blobs/sha256')), []);
  });
});
