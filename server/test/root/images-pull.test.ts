/**
 * mdocker pull from a real registry: Debian's docker-registry on a free loopback port with
 * a temporary storage directory, images made by the test and pushed with skopeo. Pulled
 * images run with their config; a layer two images share is stored once; an index
 * resolves to linux/amd64; skopeo's docker-archive of a pushed image loads and runs.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { baseLayer, changeLayer, configuredImage, twoLayerImage } from './image-fixtures.js';
import { mdocker, rootOnly, waitFor } from './helpers.js';
import { allBlobs, image, layer, makeTar, platformIndex, writeLayout, type Blob } from './oci-builder.js';

const tools = ['docker-registry', 'skopeo'].filter((tool) => spawnSync('which', [tool]).status !== 0);
const skip = rootOnly() || (tools.length > 0 ? `needs ${tools.join(' and ')}` : false);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

describe('mdocker pull', { skip }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let registry: ChildProcess | null = null;
  let host: string;

  const cli = (args: string[]) => mdocker(args, { env, timeoutMs: 120_000 });

  async function push(name: string, top: Blob, blobs: Blob[], all = false): Promise<void> {
    const layout = join(dir, `layout-${name.replace(/[^a-z0-9]/g, '-')}`);
    await writeLayout(layout, top, blobs, 'push');
    const r = spawnSync(
      'skopeo',
      [
        'copy',
        '--quiet',
        '--dest-tls-verify=false',
        ...(all ? ['--all'] : []),
        `oci:${layout}:push`,
        `docker://${host}/${name}`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mdocker-pull-'));
    env = { MDOCKER_DATA_DIR: join(dir, 'data') };
    const port = await freePort();
    host = `127.0.0.1:${port}`;
    await writeFile(
      join(dir, 'registry.yml'),
      [
        'version: 0.1',
        'log: { level: error, accesslog: { disabled: true } }',
        `storage: { filesystem: { rootdirectory: ${join(dir, 'registry')} } }`,
        `http: { addr: "${host}" }`,
        '',
      ].join('\n'),
    );
    registry = spawn('docker-registry', ['serve', join(dir, 'registry.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    registry.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    await waitFor(
      `the registry on ${host} (${log})`,
      async () => {
        try {
          return (await fetch(`http://${host}/v2/`)).status === 200;
        } catch {
          return false;
        }
      },
      20_000,
    );

    const twoLayer = await twoLayerImage();
    await push('test/two-layer:v1', twoLayer.manifest, allBlobs(twoLayer).slice(1));
    const configured = await configuredImage();
    await push('test/configured:v1', configured.manifest, allBlobs(configured).slice(1));
    // Another image on the same base.
    const sibling = image([await baseLayer(), layer(await makeTar([{ name: 'sibling', content: 'yes\n' }]))], {
      Cmd: ['/bin/cat', '/sibling'],
    });
    await push('test/sibling:v1', sibling.manifest, allBlobs(sibling).slice(1));
    // An index of two platforms: each says which it is.
    const amd64 = image(
      [await baseLayer(), layer(await makeTar([{ name: 'arch', content: 'amd64\n' }]))],
      { Cmd: ['/bin/cat', '/arch'] },
      { architecture: 'amd64', os: 'linux' },
    );
    const arm64 = image(
      [layer(await makeTar([{ name: 'arch', content: 'arm64\n' }]))],
      { Cmd: ['/arch'] },
      { architecture: 'arm64', os: 'linux' },
    );
    const index = platformIndex([
      { parts: arm64, architecture: 'arm64' },
      { parts: amd64, architecture: 'amd64' },
    ]);
    await push('test/multi:v1', index, [...allBlobs(arm64), ...allBlobs(amd64)], true);
  });

  after(async () => {
    if (registry?.pid !== undefined) {
      registry.kill('SIGTERM');
      await new Promise((resolve) => registry?.once('exit', resolve));
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('pulls a two-layer image over plain HTTP from a loopback registry and runs it', async () => {
    const pulled = await cli(['pull', `${host}/test/two-layer:v1`]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stdout, /^Digest: sha256:[0-9a-f]{64}\nImage ID: sha256:[0-9a-f]{64}\n/);
    assert.ok(pulled.stdout.endsWith(`${host}/test/two-layer:v1\n`));
    const r = await cli([
      'run',
      '--rm',
      `${host}/test/two-layer:v1`,
      '/bin/sh',
      '-c',
      'test -e /etc/doomed && echo doomed-present; cat /etc/added; ls /data',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'added by the second layer\nnew\n');
  });

  it('honours the pulled config, and --entrypoint and a command override it', async () => {
    assert.equal((await cli(['pull', '-q', `${host}/test/configured:v1`])).code, 0);
    const r = await cli(['run', '--rm', `${host}/test/configured:v1`]);
    assert.equal(r.stdout, 'cmd\n/work/dir\n1000\n1000\nhi /home/app\n', r.stderr);
    const command = await cli(['run', '--rm', `${host}/test/configured:v1`, 'echo $GREETING again']);
    assert.equal(command.stdout, 'hi again\n');
    const entrypoint = await cli(['run', '--rm', '--entrypoint', '/bin/id', `${host}/test/configured:v1`, '-u']);
    assert.equal(entrypoint.stdout, '1000\n');
  });

  it('stores the base layer a second image shares once, and fetches only its own', async () => {
    const layersBefore = (await readdir(join(dir, 'data/images/layers'))).length;
    assert.equal((await cli(['pull', `${host}/test/sibling:v1`])).code, 0);
    assert.equal((await readdir(join(dir, 'data/images/layers'))).length, layersBefore + 1);
    const r = await cli(['run', '--rm', `${host}/test/sibling:v1`]);
    assert.equal(r.stdout, 'yes\n', r.stderr);
  });

  it('resolves a multi-platform index to linux/amd64', async () => {
    const pulled = await cli(['pull', `${host}/test/multi:v1`]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const r = await cli(['run', '--rm', `${host}/test/multi:v1`]);
    assert.equal(r.stdout, 'amd64\n', r.stderr);
  });

  it('pulls by digest', async () => {
    const inspect = spawnSync('skopeo', ['inspect', '--tls-verify=false', `docker://${host}/test/sibling:v1`], {
      encoding: 'utf8',
    });
    const digest = (JSON.parse(inspect.stdout) as { Digest: string }).Digest;
    const pulled = await cli(['pull', '-q', `${host}/test/sibling@${digest}`]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const r = await cli(['run', '--rm', `${host}/test/sibling@${digest}`]);
    assert.equal(r.stdout, 'yes\n', r.stderr);
  });

  it('loads and runs what skopeo copied from the registry into a docker-archive', async () => {
    const archive = join(dir, 'from-registry.tar');
    const copy = spawnSync(
      'skopeo',
      [
        'copy',
        '--quiet',
        '--src-tls-verify=false',
        `docker://${host}/test/sibling:v1`,
        `docker-archive:${archive}:archived/sibling:v2`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(copy.status, 0, copy.stderr);
    const loaded = await cli(['load', '-i', archive]);
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.equal(loaded.stdout, 'Loaded image: docker.io/archived/sibling:v2\n');
    // docker-archive layers are plain tars (zstd has no place there): gzip-layered sibling.
    const r = await cli(['run', '--rm', 'archived/sibling:v2']);
    assert.equal(r.stdout, 'yes\n', r.stderr);
  });

  it('refuses references that are paths or malformed, and says what a missing image is', async () => {
    for (const bad of ['../../etc/passwd', '/etc/passwd', `${host}/Test/UPPER`, `${host}/x:bad tag`]) {
      const r = await cli(['pull', bad]);
      assert.equal(r.code, 1, bad);
      assert.match(r.stderr, /invalid reference/, bad);
    }
    const missing = await cli(['pull', `${host}/test/none:v1`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not found/);
  });

  it('keeps nothing half-pulled: an interrupted pull leaves no image', async () => {
    const changed = image([await baseLayer(), await changeLayer('gzip')], { Cmd: ['/bin/sh'] });
    await push('test/interrupted:v1', changed.manifest, allBlobs(changed).slice(1));
    // The registry loses the top layer's blob: the pull fails after the base.
    const hex = changed.layers[1]!.blob.digest.slice(7);
    await rm(join(dir, 'registry/docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex), { recursive: true });
    const r = await cli(['pull', `${host}/test/interrupted:v1`]);
    assert.equal(r.code, 1);
    const images = await cli(['images']);
    assert.doesNotMatch(images.stdout, /interrupted/);
    assert.deepEqual(await readdir(join(dir, 'data/images/tmp')), []);
  });
});
