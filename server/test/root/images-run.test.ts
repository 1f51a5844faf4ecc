/**
 * Containers of stored images: the root is an overlay of the image's layers (whiteouts and
 * opaque directories honoured), the image's config is honoured as Docker does and
 * overridden by run's flags, the busybox built-in is untouched, and rmi refuses an image a
 * container uses. Images come from OCI layouts the test writes and `mdocker load`s.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { baseLayer, changeLayer, configuredImage, twoLayerImage } from './image-fixtures.js';
import { mdocker, rootOnly, waitFor } from './helpers.js';
import { allBlobs, image, writeLayout, type ImageParts } from './oci-builder.js';

const skip = rootOnly();

describe('running stored images', { skip }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let twoLayer: ImageParts;
  let configured: ImageParts;

  const cli = (args: string[]) => mdocker(args, { env, timeoutMs: 60_000 });

  async function load(parts: ImageParts, name: string): Promise<void> {
    const layout = join(dir, `layout-${name.replace(/[^a-z0-9]/g, '-')}`);
    await writeLayout(layout, parts.manifest, allBlobs(parts).slice(1), name);
    const r = await cli(['load', '-i', layout]);
    assert.equal(r.code, 0, r.stderr);
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mdocker-run-images-'));
    env = { MDOCKER_DATA_DIR: join(dir, 'data') };
    twoLayer = await twoLayerImage();
    configured = await configuredImage();
    await load(twoLayer, 'test.local/two-layer:v1');
    await load(configured, 'test.local/configured:v1');
  });

  after(async () => {
    await mdocker(['rm', '-f', 'mdocker-images-user'], { env });
    await rm(dir, { recursive: true, force: true });
  });

  it('stacks the layers: a file the top layer deletes is gone, one it adds is there', async () => {
    const r = await cli([
      'run',
      '--rm',
      'test.local/two-layer:v1',
      '/bin/sh',
      '-c',
      'test -e /etc/doomed && echo doomed-present; cat /etc/added; ls /data; echo x > /etc/added && cat /etc/added',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'added by the second layer\nnew\nx\n');
    // What the container wrote went to its own layer.
    const again = await cli(['run', '--rm', 'test.local/two-layer:v1', '/bin/cat', '/etc/added']);
    assert.equal(again.stdout, 'added by the second layer\n');
  });

  it('runs an image that repeats a layer (overlayfs takes each lower once)', async () => {
    const repeated = image([await baseLayer(), await changeLayer(), await baseLayer()], {
      Cmd: ['/bin/cat', '/etc/doomed'],
    });
    await load(repeated, 'test.local/repeated:v1');
    const r = await cli(['run', '--rm', 'test.local/repeated:v1']);
    assert.equal(r.stdout, 'deleted by the second layer\n', r.stderr);
    assert.equal((await cli(['rmi', 'test.local/repeated:v1'])).code, 0);
  });

  it('stores the base layer both images have once', async () => {
    assert.deepEqual((await readdir(join(dir, 'data/images/layers'))).length, 2);
  });

  it("honours the image's Entrypoint, Cmd, Env, WorkingDir and User", async () => {
    const r = await cli(['run', '--rm', 'test.local/configured:v1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'cmd\n/work/dir\n1000\n1000\nhi /home/app\n');
  });

  it('lets the command, --entrypoint, -e, -w and -u override it', async () => {
    const command = await cli(['run', '--rm', 'test.local/configured:v1', 'echo override; id -u']);
    assert.equal(command.stdout, 'override\n1000\n');
    const entrypoint = await cli(['run', '--rm', '--entrypoint', '/bin/echo', 'test.local/configured:v1', 'a', 'b']);
    assert.equal(entrypoint.stdout, 'a b\n');
    const noCmd = await cli(['run', '--rm', '--entrypoint', '/bin/pwd', 'test.local/configured:v1']);
    assert.equal(noCmd.stdout, '/work/dir\n', '--entrypoint resets the image Cmd');
    const flags = await cli([
      'run',
      '--rm',
      '-e',
      'GREETING=yo',
      '-w',
      '/tmp',
      '-u',
      '0:50',
      'test.local/configured:v1',
      'pwd; id -u; id -g; echo $GREETING',
    ]);
    assert.equal(flags.stdout, '/tmp\n0\n50\nyo\n');
    const named = await cli(['run', '--rm', '-u', 'app:staff', 'test.local/configured:v1', 'id -u; id -g']);
    assert.equal(named.stdout, '1000\n50\n');
    const unknown = await cli(['run', '--rm', '-u', 'nobody-here', 'test.local/configured:v1']);
    assert.equal(unknown.code, 125);
    assert.match(unknown.stderr, /unable to find user nobody-here/);
  });

  it('keeps busybox, the built-in default, as it was', async () => {
    const r = await cli(['run', '--rm', 'busybox', '/bin/sh', '-c', 'id -u; pwd']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '0\n/\n');
  });

  it('refuses to remove an image a container uses, and removes it once the container is gone', async () => {
    const started = await cli(['run', '-d', '--name', 'mdocker-images-user', 'test.local/two-layer:v1', 'sleep', '60']);
    assert.equal(started.code, 0, started.stderr);
    const refused = await cli(['rmi', '-f', 'test.local/two-layer:v1']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /in use by container mdocker-images-user/);
    await cli(['kill', 'mdocker-images-user']);
    await waitFor('the container to exit', async () =>
      /"status":\s*"exited"/.test((await cli(['inspect', 'mdocker-images-user'])).stdout),
    );
    const stillRefused = await cli(['rmi', 'test.local/two-layer:v1']);
    assert.match(
      stillRefused.stderr,
      /in use by container mdocker-images-user/,
      'an exited container holds it without -f',
    );
    const forced = await cli(['rmi', '-f', 'test.local/two-layer:v1']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /^Untagged: test\.local\/two-layer:v1\nDeleted: sha256:/);
    assert.equal((await readdir(join(dir, 'data/images/layers'))).length, 1, 'the shared base stays');
    await cli(['rm', 'mdocker-images-user']);
  });
});
