// Images in the playground over HTTP and WebSockets, without root (the host-shell runtime
// and an in-memory image backend): what GET /api/images lists to whom, that a create
// starts only what is listed, the teacher's pulls and their progress, Save and its cap,
// and saved images' removal.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ClassJson, ImageJson, ImagePullJson, ImagePullMessage } from '../src/protocol/index.js';
import { WS_CLOSE } from '../src/protocol/index.js';
import { FakeImageBackend } from './fake-images.js';
import { HostShellRuntime, serve, type Client } from './host-shell-server.js';
import { Frames } from './root/playground-client.js';
import { waitFor } from './root/helpers.js';

const TOKEN = 'sesame-0123456789';
const ALPINE = 'docker.io/library/alpine:3';
const WEB = '127.0.0.1:5000/web:1';

function backendWithStore(): FakeImageBackend {
  const backend = new FakeImageBackend();
  backend.store.set(ALPINE, { sizeBytes: 7_000_000, description: 'Alpine Linux', exposedPorts: [] });
  backend.store.set('docker.io/library/secret:1', { sizeBytes: 1, description: null, exposedPorts: [] });
  backend.registry.set(WEB, { sizeBytes: 1234, description: 'a web server', exposedPorts: [8080, 9090] });
  return backend;
}

/** A runtime that starts whatever image it is given: only the catalog stands in the way. */
function anyImage(): HostShellRuntime {
  const runtime = new HostShellRuntime();
  runtime.imageKnown = () => true;
  return runtime;
}

async function teacherOf(client: () => Client): Promise<Client> {
  const teacher = client();
  assert.equal((await teacher.request('GET', `/?token=${TOKEN}`)).status, 302);
  return teacher;
}

async function names(client: Client): Promise<string[]> {
  const reply = await client.request('GET', '/api/images');
  assert.equal(reply.status, 200, reply.text);
  return (reply.body as ImageJson[]).map((image) => image.name);
}

async function pullDone(teacher: Client, id: string): Promise<ImagePullJson> {
  let pull: ImagePullJson | null = null;
  await waitFor('the pull ends', async () => {
    pull = (await teacher.request('GET', `/api/images/pulls/${id}`)).body as ImagePullJson;
    return pull.state !== 'pulling';
  });
  return pull!;
}

describe('GET /api/images', () => {
  it('lists the built-in images and the allowed stored ones, with size, description and exposed ports', async () => {
    const { client } = await serve({ allowImages: 'alpine:3,ghost:1' }, anyImage(), backendWithStore());
    const reply = await client().request('GET', '/api/images');
    assert.deepEqual(reply.body, [
      { name: 'busybox', sizeBytes: 1, description: 'BusyBox (test)', exposedPorts: [], kind: 'builtin' },
      // ghost:1 is allowed but not in the store: not listed; secret:1 is stored but not allowed.
      { name: 'alpine:3', sizeBytes: 7_000_000, description: 'Alpine Linux', exposedPorts: [], kind: 'stored' },
    ]);
  });

  it("refuses a bad --allow-images at the start, and a saved image's registry there", async () => {
    await assert.rejects(serve({ allowImages: 'Not A Ref' }), /--allow-images/);
    await assert.rejects(serve({ allowImages: 'saved.invalid/local/x:1' }), /reserved for saved images/);
    await assert.rejects(serve({ allowImages: `alpine@sha256:${'a'.repeat(64)}` }), /not a digest/);
  });
});

describe('a create starts only listed images', () => {
  it('answers 4xx naming the image for an id, a digest, a stored reference not listed, a path, and creates nothing', async () => {
    const { client, runtime } = await serve({ allowImages: 'alpine:3' }, anyImage(), backendWithStore());
    const student = client();
    for (const image of [
      `sha256:${'c'.repeat(64)}`,
      'c'.repeat(12),
      `alpine@sha256:${'d'.repeat(64)}`,
      `alpine:3@sha256:${'d'.repeat(64)}`,
      'secret:1',
      'docker.io/library/secret:1',
      'ghost',
      '../../../../etc',
      '/etc',
      'busybox/../x',
      'saved.invalid/local/00000000:1',
    ]) {
      const reply = await student.request('POST', '/api/containers', { json: { image } });
      assert.ok(reply.status === 400 || reply.status === 404, `${image}: ${reply.status} ${reply.text}`);
      assert.match(reply.body.error.message, /image/, image);
      if (reply.status === 404)
        assert.ok(reply.body.error.message.startsWith(`unknown image ${JSON.stringify(image)}`));
    }
    assert.equal(runtime.records.size, 0, 'nothing was created');
    // What is listed starts, under its listed name or its full one.
    const alpine = await student.createContainer({ image: 'alpine:3' });
    assert.equal(alpine.image, 'alpine:3');
    assert.deepEqual(alpine.exposedPorts, []);
    assert.equal((await student.createContainer({ image: 'docker.io/library/alpine:3' })).image, 'alpine:3');
    assert.equal((await student.createContainer({})).image, 'busybox');
  });

  it("refuses a class whose image is not listed, and a student's create of anything but the class's image", async () => {
    const { client } = await serve({ token: TOKEN, allowImages: 'alpine:3' }, anyImage(), backendWithStore());
    const teacher = await teacherOf(client);
    const refused = await teacher.request('POST', '/api/classes', { json: { name: 'c', image: 'secret:1' } });
    assert.equal(refused.status, 400);
    assert.match(refused.body.error.message, /secret:1/);
    const created = await teacher.request('POST', '/api/classes', { json: { name: 'c', image: 'alpine:3' } });
    assert.equal(created.status, 201, created.text);
    const student = client();
    const cls = created.body as ClassJson;
    assert.equal(
      (await student.request('POST', '/api/join', { json: { code: cls.joinCode, name: 'Ada' } })).status,
      201,
    );
    assert.equal((await student.createContainer({})).image, 'alpine:3');
  });
});

describe("a lesson's image", () => {
  it('starts for the lesson though not listed (the operator chose it); named alone it is refused', async () => {
    const lessons = mkdtempSync(join(tmpdir(), 'mdocker-lessons-'));
    after(() => rmSync(lessons, { recursive: true, force: true }));
    mkdirSync(join(lessons, 'stored-image'));
    writeFileSync(
      join(lessons, 'stored-image', 'lesson.yaml'),
      'id: stored-image\norder: 99\ntitle: On a stored image\ndescription: x\ncontainer:\n  image: secret:1\n',
    );
    writeFileSync(
      join(lessons, 'stored-image', '01-a.md'),
      '---\nid: a\ntitle: A\nchecks:\n  - kind: hostname-changed\n---\nText.\n',
    );
    const { client } = await serve({ lessonsDir: lessons }, anyImage(), backendWithStore());
    const student = client();
    assert.equal((await student.createContainer({ lesson: 'stored-image' })).image, 'secret:1');
    assert.equal((await student.request('POST', '/api/containers', { json: { image: 'secret:1' } })).status, 404);
  });
});

describe('POST /api/images (pull)', () => {
  it('pulls in the background with per-layer progress on a WebSocket, then lists the image and starts it with its exposed ports', async () => {
    const backend = backendWithStore();
    const { client } = await serve({ token: TOKEN }, anyImage(), backend);
    const teacher = await teacherOf(client);
    assert.ok(!(await names(teacher)).includes(WEB));
    const started = await teacher.request('POST', '/api/images', { json: { reference: WEB } });
    assert.equal(started.status, 202, started.text);
    const pull = started.body as ImagePullJson;
    assert.equal(pull.reference, WEB);
    assert.equal(pull.state, 'pulling');
    // Concurrent pulls of one reference share one.
    const again = await teacher.request('POST', '/api/images', { json: { reference: '127.0.0.1:5000/web:1' } });
    assert.equal(again.body.id, pull.id);

    const frames = new Frames(teacher.socket(`/api/images/pulls/${pull.id}`));
    await frames.until('the pull ends', () => frames.closed !== null);
    const messages = frames.control as unknown as ImagePullMessage[];
    assert.equal(messages[0]?.type, 'pull');
    assert.ok(messages.some((message) => message.type === 'layer' && message.layer.status === 'done'));
    const last = messages.at(-1)!;
    assert.equal(last.type, 'pull');
    assert.equal(last.type === 'pull' && last.pull.state, 'done');
    assert.equal(frames.closed?.code, WS_CLOSE.NORMAL);
    assert.deepEqual(backend.pulls, [WEB], 'one pull for both requests');

    const listed = ((await teacher.request('GET', '/api/images')).body as ImageJson[]).find((i) => i.name === WEB);
    assert.deepEqual(listed, {
      name: WEB,
      sizeBytes: 1234,
      description: 'a web server',
      exposedPorts: [8080, 9090],
      kind: 'stored',
    });
    const container = await teacher.createContainer({ image: WEB });
    assert.deepEqual(container.exposedPorts, [8080, 9090]);
    // A finished pull's socket says how it ended and closes.
    const late = new Frames(teacher.socket(`/api/images/pulls/${pull.id}`));
    await late.until('closed', () => late.closed !== null);
    assert.equal((late.control[0] as unknown as ImagePullMessage).type, 'pull');
  });

  it('refuses a student (403) and a bad, digest or saved reference (400); a registry off loopback without TLS is a one-line error', async () => {
    const backend = backendWithStore();
    const { client } = await serve({ token: TOKEN }, anyImage(), backend);
    const teacher = await teacherOf(client);
    const created = await teacher.request('POST', '/api/classes', { json: { name: 'c' } });
    const student = client();
    await student.request('POST', '/api/join', { json: { code: (created.body as ClassJson).joinCode, name: 'Ada' } });
    const denied = await student.request('POST', '/api/images', { json: { reference: WEB } });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error.code, 'FORBIDDEN');
    assert.equal((await student.request('GET', '/api/images/pulls/p1-x')).status, 403);
    // Without the token at all: 401, as every route.
    assert.equal((await client().request('POST', '/api/images', { json: { reference: WEB } })).status, 401);

    for (const reference of [
      'Upper Case',
      'a//b',
      '',
      '../../etc/passwd',
      `alpine@sha256:${'a'.repeat(64)}`,
      'saved.invalid/local/x:1',
    ]) {
      const reply = await teacher.request('POST', '/api/images', { json: { reference } });
      assert.equal(reply.status, 400, `${reference}: ${reply.text}`);
    }
    assert.equal((await teacher.request('POST', '/api/images', { json: { reference: WEB, extra: 1 } })).status, 400);
    // A page on another site cannot make the teacher's browser pull, nor a form post.
    const crossSite: Record<string, string>[] = [{ origin: 'http://evil.example' }, { 'sec-fetch-site': 'cross-site' }];
    for (const headers of crossSite) {
      assert.equal((await teacher.request('POST', '/api/images', { json: { reference: WEB }, headers })).status, 403);
    }
    const form = await teacher.request('POST', '/api/images', {
      raw: `reference=${WEB}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(form.status, 400);
    const offLoopback = await teacher.request('POST', '/api/images', { json: { reference: '10.1.2.3:5000/app:1' } });
    assert.equal(offLoopback.status, 503, offLoopback.text);
    assert.match(offLoopback.body.error.message, /^cannot reach 10\.1\.2\.3:5000: .*insecure-registry/);
    assert.doesNotMatch(offLoopback.body.error.message, /\n/);
    const missing = await teacher.request('POST', '/api/images', { json: { reference: '127.0.0.1:5000/nope:1' } });
    assert.equal(missing.status, 404);
    assert.deepEqual(backend.pulls, ['10.1.2.3:5000/app:1', '127.0.0.1:5000/nope:1'], 'no pull for refused input');
  });

  it("refuses a pull's WebSocket to a student (404) and from another origin (403)", async () => {
    const { client } = await serve({ token: TOKEN }, anyImage(), backendWithStore());
    const teacher = await teacherOf(client);
    const pull = (await teacher.request('POST', '/api/images', { json: { reference: WEB } })).body as ImagePullJson;
    const created = await teacher.request('POST', '/api/classes', { json: { name: 'c' } });
    const student = client();
    await student.request('POST', '/api/join', { json: { code: (created.body as ClassJson).joinCode, name: 'Ada' } });
    const asStudent = new Frames(student.socket(`/api/images/pulls/${pull.id}`));
    await asStudent.until('rejected', () => asStudent.rejected !== null || asStudent.opened);
    assert.equal(asStudent.rejected, 404);
    const hijack = new Frames(teacher.socket(`/api/images/pulls/${pull.id}`, { origin: 'http://evil.example' }));
    await hijack.until('rejected', () => hijack.rejected !== null || hijack.opened);
    assert.equal(hijack.rejected, 403);
    const unknown = new Frames(teacher.socket('/api/images/pulls/nope'));
    await unknown.until('closed', () => unknown.closed !== null);
    assert.equal(unknown.closed?.code, WS_CLOSE.NOT_FOUND);
    await pullDone(teacher, pull.id);
  });
});

describe('Save', () => {
  it("saves the owner's container as an image only its session sees and starts, capped, deletable", async () => {
    const backend = backendWithStore();
    const { client, runtime } = await serve({}, anyImage(), backend);
    const alice = client();
    const bob = client();
    const container = await alice.createContainer();
    // Not the owner: 404, nothing committed.
    assert.equal((await bob.request('POST', `/api/containers/${container.id}/save`)).status, 404);
    assert.equal(backend.commits.length, 0);
    const saved = await alice.request('POST', `/api/containers/${container.id}/save`);
    assert.equal(saved.status, 201, saved.text);
    const image = saved.body as ImageJson;
    assert.equal(image.kind, 'saved');
    assert.match(image.name, /^saved\.invalid\/local\/[0-9a-f]{8}:1$/);
    assert.deepEqual(backend.commits, [{ containerId: container.id, reference: image.name }]);
    assert.ok((await names(alice)).includes(image.name));
    assert.ok(!(await names(bob)).includes(image.name), 'another session does not see it');
    // Another session cannot start it, even knowing its name.
    const stolen = await bob.request('POST', '/api/containers', { json: { image: image.name } });
    assert.equal(stolen.status, 404);
    const from = await alice.createContainer({ image: image.name });
    assert.equal(from.image, image.name);
    assert.equal(runtime.records.get(from.id)?.image, image.name);
    // Nobody can delete what is not theirs, or what is not a saved image.
    assert.equal((await bob.request('DELETE', `/api/images/${encodeURIComponent(image.name)}`)).status, 404);
    assert.equal((await alice.request('DELETE', '/api/images/busybox')).status, 404);
    // The cap: 3 per session.
    for (let i = 0; i < 2; i++) {
      assert.equal((await alice.request('POST', `/api/containers/${container.id}/save`)).status, 201);
    }
    const over = await alice.request('POST', `/api/containers/${container.id}/save`);
    assert.equal(over.status, 409);
    assert.match(over.body.error.message, /3 saved images/);
    assert.equal((await alice.request('DELETE', `/api/images/${encodeURIComponent(image.name)}`)).status, 204);
    assert.ok(backend.removals.some((removal) => removal.reference === `${image.name.replace(/:1$/, '')}:1`));
    assert.ok(!(await names(alice)).includes(image.name));
    assert.equal((await alice.request('POST', `/api/containers/${container.id}/save`)).status, 201);
  });

  it("removes a class's students' saved images when the class ends (after their containers), and the teacher sees them meanwhile", async () => {
    const backend = backendWithStore();
    const { client } = await serve({ token: TOKEN }, anyImage(), backend);
    const teacher = await teacherOf(client);
    const created = await teacher.request('POST', '/api/classes', { json: { name: 'c' } });
    const cls = created.body as ClassJson;
    const student = client();
    await student.request('POST', '/api/join', { json: { code: cls.joinCode, name: 'Ada' } });
    const container = await student.createContainer();
    const image = (await student.request('POST', `/api/containers/${container.id}/save`)).body as ImageJson;
    assert.ok((await names(teacher)).includes(image.name), "the class's teacher sees it");
    const classmate = client();
    await classmate.request('POST', '/api/join', { json: { code: cls.joinCode, name: 'Bob' } });
    assert.deepEqual(await names(classmate), ['busybox'], "a classmate sees the class's image only");
    assert.equal(
      (await classmate.request('POST', '/api/containers', { json: { image: image.name } })).status,
      400,
      "nor starts another's saved image",
    );
    // The student's list: the class's image and its own saved one, which it may start.
    assert.deepEqual(await names(student), ['busybox', image.name]);
    assert.equal((await student.request('DELETE', `/api/containers/${container.id}`)).status, 204);
    assert.equal((await student.createContainer({ image: image.name })).image, image.name);
    backend.inUse.add(image.name);
    assert.equal((await teacher.request('DELETE', `/api/classes/${cls.id}`)).status, 204);
    await waitFor('a removal is tried', () => backend.removals.some((r) => r.reference === image.name));
    assert.ok(backend.store.has(image.name), 'kept while a container uses it');
    backend.inUse.delete(image.name);
    await waitFor('removed once unused', () => !backend.store.has(image.name), 10_000);
  });

  it("removes a session's saved images once it has had no container for the idle timeout", async () => {
    const backend = backendWithStore();
    const { client } = await serve({ idleTimeout: '1s' }, anyImage(), backend);
    const alice = client();
    const container = await alice.createContainer();
    const image = (await alice.request('POST', `/api/containers/${container.id}/save`)).body as ImageJson;
    assert.equal((await alice.request('DELETE', `/api/containers/${container.id}`)).status, 204);
    assert.ok(backend.store.has(image.name), 'kept at first');
    await waitFor('removed after the idle timeout', () => !backend.store.has(image.name), 10_000);
    assert.ok(!(await names(alice)).includes(image.name));
  });

  it("keeps a student's saved images while the class lasts, containers or not", async () => {
    const backend = backendWithStore();
    const { client } = await serve({ token: TOKEN, idleTimeout: '1s' }, anyImage(), backend);
    const teacher = await teacherOf(client);
    const cls = (await teacher.request('POST', '/api/classes', { json: { name: 'c' } })).body as ClassJson;
    const student = client();
    await student.request('POST', '/api/join', { json: { code: cls.joinCode, name: 'Ada' } });
    const container = await student.createContainer();
    const image = (await student.request('POST', `/api/containers/${container.id}/save`)).body as ImageJson;
    assert.equal((await student.request('DELETE', `/api/containers/${container.id}`)).status, 204);
    // Past the idle timeout and two sweeps.
    await new Promise((resolve) => setTimeout(resolve, 4500));
    assert.ok(backend.store.has(image.name));
    assert.equal((await teacher.request('DELETE', `/api/classes/${cls.id}`)).status, 204);
    await waitFor('removed with the class', () => !backend.store.has(image.name), 10_000);
  });

  it("removes every saved image when the server stops, and an earlier run's at the start", async () => {
    const backend = backendWithStore();
    backend.store.set('saved.invalid/local/deadbeef:7', { sizeBytes: 1, description: null, exposedPorts: [] });
    backend.store.set('saved.invalid/other-node/deadbeef:7', { sizeBytes: 1, description: null, exposedPorts: [] });
    const { client, server } = await serve({}, anyImage(), backend);
    assert.ok(!backend.store.has('saved.invalid/local/deadbeef:7'), "this node's leftover is gone");
    assert.ok(backend.store.has('saved.invalid/other-node/deadbeef:7'), "another node's is not touched");
    const alice = client();
    const container = await alice.createContainer();
    const image = (await alice.request('POST', `/api/containers/${container.id}/save`)).body as ImageJson;
    assert.ok(backend.store.has(image.name));
    await server.close();
    assert.ok(!backend.store.has(image.name));
  });
});
