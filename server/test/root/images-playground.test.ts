/**
 * Images in the playground on real containers: the teacher pulls an image through the API
 * from a registry on loopback (a small one served by the test, in the distribution
 * protocol), its progress comes on the pull's WebSocket, then it is listed with its
 * description and exposed ports and a container starts from it; Save keeps a container's
 * change as the session's own image, a new container from it sees the change, another
 * session cannot start it, and the server's stop removes it from the store.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ContainerJson, ImageJson, ImagePullJson, ImagePullMessage } from '../../src/protocol/index.js';
import { Client } from '../host-shell-server.js';
import { mdockerMounts, rootOnly, waitFor } from './helpers.js';
import { allBlobs, image, layer, makeTar, type Blob, type TarEntry } from './oci-builder.js';
import { Frames } from './playground-client.js';
import { startRealServer, type RealServer } from './real-server.js';

const skip = rootOnly();

/** The host's first non-loopback IPv4 address: a registry there is not loopback. */
function externalAddress(): string | null {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return null;
}

async function webImage() {
  const entries: TarEntry[] = [
    { name: 'bin/', type: 'directory' },
    { name: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
    ...['sh', 'cat', 'echo', 'sleep'].map((applet) => ({
      name: `bin/${applet}`,
      type: 'symlink' as const,
      linkname: 'busybox',
    })),
    { name: 'etc/', type: 'directory' },
    { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
    { name: 'etc/motd', content: 'from the registry\n' },
  ];
  return image([layer(await makeTar(entries))], {
    Cmd: ['/bin/sh'],
    Env: ['PATH=/bin'],
    ExposedPorts: { '8080/tcp': {}, '53/udp': {} },
    Labels: { 'org.opencontainers.image.description': 'a tiny web image' },
  });
}

/** GET /v2/, a manifest by tag, blobs by digest: what a pull asks of a registry. */
async function serveRegistry(manifest: Blob, blobs: Blob[], host = '127.0.0.1'): Promise<Server> {
  const byDigest = new Map([manifest, ...blobs].map((b) => [b.digest, b]));
  const server = createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/') return void res.writeHead(200).end('{}');
    if (url === '/v2/web/manifests/1') {
      return void res
        .writeHead(200, { 'content-type': manifest.mediaType, 'docker-content-digest': manifest.digest })
        .end(manifest.bytes);
    }
    const blob = /^\/v2\/web\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url);
    const found = blob ? byDigest.get(blob[1]!) : undefined;
    if (found) return void res.writeHead(200, { 'content-length': found.size }).end(found.bytes);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return server;
}

describe('images in the playground', { skip }, () => {
  let dir: string;
  let registry: Server;
  let real: RealServer | null = null;
  let reference: string;
  const previousDataDir = process.env['MDOCKER_DATA_DIR'];
  let mountsBefore: string[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mdocker-images-api-'));
    // The runtime's store (the server's pulls and saves) is the test's own.
    process.env['MDOCKER_DATA_DIR'] = join(dir, 'data');
    mountsBefore = mdockerMounts();
    const parts = await webImage();
    registry = await serveRegistry(parts.manifest, allBlobs(parts).slice(1));
    reference = `127.0.0.1:${(registry.address() as AddressInfo).port}/web:1`;
    real = await startRealServer('images-api');
  });

  after(async () => {
    await real?.close();
    registry?.close();
    if (previousDataDir === undefined) delete process.env['MDOCKER_DATA_DIR'];
    else process.env['MDOCKER_DATA_DIR'] = previousDataDir;
    await rm(dir, { recursive: true, force: true });
  });

  async function storedReferences(): Promise<string[]> {
    const refsDir = join(dir, 'data/images/refs');
    const names = await readdir(refsDir).catch(() => [] as string[]);
    return Promise.all(
      names.map(
        async (name) => (JSON.parse(await readFile(join(refsDir, name), 'utf8')) as { reference: string }).reference,
      ),
    );
  }

  async function exec(client: Client, id: string, script: string): Promise<string> {
    const reply = await client.request('POST', `/api/containers/${id}/exec`, {
      json: { cmd: ['/bin/sh', '-c', script] },
    });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.body.exitCode, 0, JSON.stringify(reply.body));
    return String(reply.body.stdout);
  }

  it("answers a pull from a plain-HTTP registry off loopback with the runtime's one-line error, and lists nothing", async (t) => {
    const external = externalAddress();
    if (external === null) return t.skip('needs a non-loopback IPv4 address');
    const parts = await webImage();
    const plain = await serveRegistry(parts.manifest, allBlobs(parts).slice(1), external);
    try {
      const offLoopback = `${external}:${(plain.address() as AddressInfo).port}/web:1`;
      const teacher = new Client(real!.base);
      const reply = await teacher.request('POST', '/api/images', { json: { reference: offLoopback } });
      assert.equal(reply.status, 503, reply.text);
      assert.equal(reply.body.error.code, 'UNAVAILABLE');
      assert.match(reply.body.error.message, /^cannot reach .*needs --insecure-registry/);
      assert.doesNotMatch(reply.body.error.message, /\n/);
      const listed = (await teacher.request('GET', '/api/images')).body as ImageJson[];
      assert.ok(!listed.some((image) => image.name === offLoopback));
    } finally {
      plain.close();
    }
  });

  it('pulls through the API with progress, lists it with its description and ports, saves a container and starts from it', async () => {
    const teacher = new Client(real!.base);
    const other = new Client(real!.base);
    const started = await teacher.request('POST', '/api/images', { json: { reference } });
    assert.ok(started.status === 202 || started.status === 200, started.text);
    const pull = started.body as ImagePullJson;
    const frames = new Frames(teacher.socket(`/api/images/pulls/${pull.id}`));
    await frames.until('the pull ends', () => frames.closed !== null, 60_000);
    const messages = frames.control as unknown as ImagePullMessage[];
    const last = messages.at(-1)!;
    assert.equal(last.type === 'pull' && last.pull.state, 'done', JSON.stringify(last));
    assert.ok(last.type === 'pull' && last.pull.layers.length === 1 && last.pull.layers[0]!.status === 'done');

    const listed = ((await teacher.request('GET', '/api/images')).body as ImageJson[]).find(
      (known) => known.name === reference,
    );
    assert.ok(listed, 'listed once pulled');
    assert.equal(listed.description, 'a tiny web image');
    assert.deepEqual(listed.exposedPorts, [8080], 'TCP ports only');
    assert.equal(listed.kind, 'stored');
    const busybox = ((await teacher.request('GET', '/api/images')).body as ImageJson[]).find(
      (i) => i.name === 'busybox',
    );
    assert.match(busybox?.description ?? '', /BusyBox/);

    const container = await teacher.createContainer({ image: reference, cmd: ['/bin/sleep', '1000'] });
    assert.deepEqual(container.exposedPorts, [8080]);
    assert.equal((await exec(teacher, container.id, 'cat /etc/motd')).trim(), 'from the registry');
    await exec(teacher, container.id, 'echo student work > /work.txt');

    const saved = await teacher.request('POST', `/api/containers/${container.id}/save`);
    assert.equal(saved.status, 201, saved.text);
    const image = saved.body as ImageJson;
    assert.match(image.name, /^saved\.invalid\/local\/[0-9a-f]{8}:\d+$/);
    assert.ok((await storedReferences()).includes(image.name));
    // Another session can neither see nor start it.
    assert.ok(!((await other.request('GET', '/api/images')).body as ImageJson[]).some((i) => i.name === image.name));
    assert.equal((await other.request('POST', '/api/containers', { json: { image: image.name } })).status, 404);

    const fromSaved: ContainerJson = await teacher.createContainer({ image: image.name, cmd: ['/bin/sleep', '1000'] });
    assert.equal((await exec(teacher, fromSaved.id, 'cat /work.txt')).trim(), 'student work');
    assert.deepEqual(fromSaved.exposedPorts, [8080], "the saved image keeps its base's config");

    await real!.close();
    real = null;
    assert.ok(
      !(await storedReferences()).some((ref) => ref.startsWith('saved.invalid/')),
      'the stop removed the saved image',
    );
    assert.ok((await storedReferences()).includes(reference), 'the pulled image stays in the store');
    await waitFor('no mount left', () => mdockerMounts().length === mountsBefore.length || null);
  });
});
