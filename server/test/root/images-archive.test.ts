/**
 * mdocker load, save, images and rmi through the CLI, on a store of the test's own:
 * OCI layouts (directory and tar) written by the test, a docker-archive made by skopeo,
 * a save → load round trip.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mdocker, rootOnly } from './helpers.js';
import { allBlobs, image, layer, makeTar, writeLayout, type ImageParts } from './oci-builder.js';

const skip = rootOnly() || (spawnSync('skopeo', ['--version']).status === 0 ? false : 'needs skopeo');

describe('mdocker load, save, images, rmi', { skip }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let parts: ImageParts;

  const cli = (args: string[]) => mdocker(args, { env, timeoutMs: 60_000 });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mdocker-archive-'));
    env = { MDOCKER_DATA_DIR: join(dir, 'data') };
    const base = layer(
      await makeTar([
        { name: 'etc/', type: 'directory' },
        { name: 'etc/os-release', content: 'ID=test\n' },
      ]),
    );
    const top = layer(await makeTar([{ name: 'hello', content: 'hello\n' }]));
    parts = image([base, top], { Cmd: ['/hello'] });
    await writeLayout(join(dir, 'layout'), parts.manifest, allBlobs(parts).slice(1), 'v1');
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads an OCI layout directory; a bare tag annotation leaves the image untagged', async () => {
    const r = await cli(['load', '-i', join(dir, 'layout')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `Loaded image ID: ${parts.config.digest}\n`);
    const images = await cli(['images']);
    assert.match(images.stdout, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/m);
    assert.match(images.stdout, new RegExp(`^<none>\\s+<none>\\s+${parts.config.digest.slice(7, 19)}\\s`, 'm'));
    assert.match(images.stdout, /^busybox\s+latest\s+built-in\s/m, 'the built-in image stays listed');
  });

  it('loads a docker-archive made by skopeo, with its tag', async () => {
    const archive = join(dir, 'docker.tar');
    const copy = spawnSync('skopeo', [
      'copy',
      '--quiet',
      `oci:${join(dir, 'layout')}:v1`,
      `docker-archive:${archive}:example.test/team/app:v1`,
    ]);
    assert.equal(copy.status, 0, copy.stderr.toString());
    const r = await cli(['load', '-i', archive]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Loaded image: example.test/team/app:v1\n');
    const images = await cli(['images']);
    assert.match(images.stdout, /^example\.test\/team\/app\s+v1\s+[0-9a-f]{12}\s/m);
  });

  it('saves an OCI archive that loads back as the same image, and that skopeo reads', async () => {
    const archive = join(dir, 'saved.tar');
    const saved = await cli(['save', '-o', archive, 'example.test/team/app:v1']);
    assert.equal(saved.code, 0, saved.stderr);
    const inspect = spawnSync('skopeo', ['inspect', '--raw', `oci-archive:${archive}`], { encoding: 'utf8' });
    assert.equal(inspect.status, 0, inspect.stderr);
    const manifest = JSON.parse(inspect.stdout) as { layers: unknown[] };
    assert.equal(manifest.layers.length, 2);
    const ids = (await cli(['images', '-q', '--no-trunc'])).stdout;
    const removed = await cli(['rmi', 'example.test/team/app:v1']);
    assert.equal(removed.code, 0, removed.stderr);
    const loaded = await cli(['load', '-i', archive]);
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.equal(loaded.stdout, 'Loaded image: example.test/team/app:v1\n');
    assert.equal((await cli(['images', '-q', '--no-trunc'])).stdout, ids);
  });

  it('saves a built-in image as a one-layer archive that loads and runs elsewhere, and stores nothing of it here', async () => {
    const archive = join(dir, 'busybox.tar');
    const before = (await cli(['images', '-q', '--no-trunc'])).stdout;
    const saved = await cli(['save', '-o', archive, 'busybox']);
    assert.equal(saved.code, 0, saved.stderr);
    assert.equal((await cli(['images', '-q', '--no-trunc'])).stdout, before);
    assert.deepEqual(
      (await readdir(tmpdir())).filter((name) => name.startsWith('mdocker-save-')),
      [],
    );
    const inspect = spawnSync('skopeo', ['inspect', '--raw', `oci-archive:${archive}`], { encoding: 'utf8' });
    assert.equal(inspect.status, 0, inspect.stderr);
    assert.equal((JSON.parse(inspect.stdout) as { layers: unknown[] }).layers.length, 1);
    const elsewhere = { MDOCKER_DATA_DIR: join(dir, 'elsewhere') };
    const loaded = await mdocker(['load', '-i', archive], { env: elsewhere, timeoutMs: 60_000 });
    assert.equal(loaded.code, 0, loaded.stderr);
    const id = (await mdocker(['images', '-q', '--no-trunc'], { env: elsewhere })).stdout.trim().split('\n').at(-1)!;
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    const ran = await mdocker(['run', '--rm', id, 'sh', '-c', 'echo ran; test -e /.mdocker-image || echo no-marker'], {
      env: elsewhere,
      timeoutMs: 60_000,
    });
    assert.equal(ran.stdout, 'ran\nno-marker\n', ran.stderr);
  });

  it('rmi of one of two tags untags it; of the last tag, removes the image and its files', async () => {
    const archive = join(dir, 'saved.tar');
    await cli(['save', '-o', archive, 'example.test/team/app:v1']);
    // The untagged image from the layout is the same image: its id has the tag now.
    const untag = await cli(['rmi', 'example.test/team/app:v1']);
    assert.equal(untag.code, 0, untag.stderr);
    assert.match(untag.stdout, /^Untagged: example\.test\/team\/app:v1\nDeleted: sha256:/);
    const again = await cli(['rmi', 'example.test/team/app:v1']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no such image/);
    assert.deepEqual(await readdir(join(dir, 'data/images/layers')), []);
    assert.deepEqual(await readdir(join(dir, 'data/images/blobs/sha256')), []);
    assert.deepEqual(await readdir(join(dir, 'data/images/tmp')), []);
  });

  it('refuses to remove by id an image with several tags, unless forced', async () => {
    const layout = join(dir, 'layout');
    const loaded = await cli(['load', '-i', layout]);
    assert.equal(loaded.code, 0, loaded.stderr);
    const archive = join(dir, 'tagged.tar');
    const copy = spawnSync('skopeo', ['copy', '--quiet', `oci:${layout}:v1`, `docker-archive:${archive}:a/one:v1`]);
    assert.equal(copy.status, 0, copy.stderr.toString());
    assert.equal((await cli(['load', '-i', archive])).code, 0);
    const second = spawnSync('skopeo', ['copy', '--quiet', `oci:${layout}:v1`, `docker-archive:${archive}.2:a/two:v1`]);
    assert.equal(second.status, 0, second.stderr.toString());
    assert.equal((await cli(['load', '-i', `${archive}.2`])).code, 0);
    const id = parts.config.digest;
    const refused = await cli(['rmi', id]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /tagged 2 times .*use -f/);
    const forced = await cli(['rmi', '-f', id]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /Untagged: docker\.io\/a\/one:v1\nUntagged: docker\.io\/a\/two:v1\nDeleted: /);
  });

  it('refuses what is neither an archive nor a layout, and references that are paths', async () => {
    const r = await cli(['load', '-i', '/etc/hostname']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not a readable tar archive|neither an OCI layout/);
    const bad = await cli(['rmi', '../../etc']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid reference/);
  });
});
