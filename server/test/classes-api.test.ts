// Classes over HTTP and WebSockets, without root (the host-shell runtime): roles, joining,
// the class's policy, the teacher's view, watch and control, broadcasts, recordings, the
// end of a class, and what a student or a guesser would try.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  ClassEventMessage,
  ClassJson,
  ContainerJson,
  StatsServerMessage,
  TerminalServerMessage,
} from '../src/protocol/index.js';
import { WS_CLOSE } from '../src/protocol/index.js';
import { serve, type Client } from './host-shell-server.js';
import { Frames } from './root/playground-client.js';

const TOKEN = 'sesame-0123456789';

/** A teacher (the token's holder, by cookie) and a class. */
async function classroom(options: Parameters<typeof serve>[0] = {}, body: Record<string, unknown> = {}) {
  const served = await serve({ token: TOKEN, ...options });
  const teacher = served.client();
  assert.equal((await teacher.request('GET', `/?token=${TOKEN}`)).status, 302);
  const created = await teacher.request('POST', '/api/classes', {
    json: { name: 'Namespaces 101', limits: { memory: '64m', cpus: 0.25, pidsLimit: 50 }, ...body },
  });
  assert.equal(created.status, 201, created.text);
  return { ...served, teacher, cls: created.body as ClassJson };
}

async function join(client: Client, code: string, name: string): Promise<void> {
  const reply = await client.request('POST', '/api/join', { json: { code, name } });
  assert.equal(reply.status, 201, reply.text);
}

function classEvents(frames: Frames): ClassEventMessage[] {
  return frames.control as unknown as ClassEventMessage[];
}

describe('classes', () => {
  it('a teacher creates a class, three students join with names and no token, each gets a container of the class', async () => {
    const { client, runtime, teacher, cls } = await classroom({}, { budget: { memory: '256m', cpus: 1 } });
    assert.match(cls.joinCode, /^[A-Z2-9]{12}$/);
    assert.equal(cls.joinUrl, `/join/${cls.joinCode}`);
    assert.deepEqual(runtime.groups.get(`class-${cls.id}`), { memoryBytes: 256 * 1024 * 1024, cpus: 1 });

    const students = [client(), client(), client()];
    const names = ['Ada', 'Linus', '<img src=x onerror=alert(1)>'];
    for (const [i, student] of students.entries()) {
      // The join page loads without the token; the rest of the site does not.
      assert.notEqual((await student.request('GET', `/join/${cls.joinCode}`)).status, 401);
      assert.equal((await student.request('GET', '/api/containers')).status, 401);
      assert.equal((await student.request('GET', '/api/me')).body.role, 'guest');
      const before = student.cookies.get('mdocker_session');
      // Lower case and dashes are how people type a code off a projector.
      const code = cls.joinCode.toLowerCase().replace(/(.{4})(?=.)/g, '$1-');
      await join(student, code, names[i]!);
      assert.notEqual(student.cookies.get('mdocker_session'), before, 'joining gets a new session');
      const me = await student.request('GET', '/api/me');
      assert.equal(me.body.role, 'student');
      assert.equal(me.body.student.name, names[i], 'a name is kept as the text it is');
      assert.equal(me.body.student.className, 'Namespaces 101');
    }

    const containers: ContainerJson[] = [];
    for (const student of students) {
      const container = await student.createContainer();
      assert.deepEqual(container.limits, { memoryBytes: 64 * 1024 * 1024, cpus: 0.25, pidsLimit: 50 });
      assert.equal(runtime.groupOf.get(container.id), `class-${cls.id}`, "in the class's cgroup");
      containers.push(container);
    }
    // The class's policy: its image, at most its limits, one container each.
    const ada = students[0]!;
    assert.equal((await ada.request('POST', '/api/containers', { json: { image: 'alpine' } })).status, 400);
    assert.equal((await ada.request('POST', '/api/containers', { json: { memory: '1g' } })).status, 403);
    // Changed live, too: within the class's limits only.
    const mine = containers[0]!.id;
    assert.equal((await ada.request('PATCH', `/api/containers/${mine}`, { json: { pidsLimit: 40 } })).status, 200);
    assert.equal((await ada.request('PATCH', `/api/containers/${mine}`, { json: { pidsLimit: 51 } })).status, 403);
    assert.equal((await ada.request('PATCH', `/api/containers/${mine}`, { json: { memory: '1g' } })).status, 403);
    const second = await ada.request('POST', '/api/containers', { json: {} });
    assert.equal(second.status, 403);
    assert.equal(second.body.error.code, 'LIMIT_EXCEEDED');
    assert.match(second.body.error.message, /1 container per student/);

    // Students see only their own containers, and no class route exists for them.
    const other = await ada.request('GET', `/api/containers/${containers[1]!.id}`);
    assert.equal(other.status, 404);
    for (const path of ['/api/classes', `/api/classes/${cls.id}`, `/api/classes/${cls.id}/recordings`]) {
      assert.equal((await ada.request('GET', path)).status, 404, path);
    }
    assert.equal((await ada.request('POST', '/api/classes', { json: { name: 'mine' } })).status, 404);
    assert.equal((await ada.request('DELETE', `/api/classes/${cls.id}`)).status, 404);
    // Even holding the token, a student's session stays a student's.
    const withToken = await ada.request('GET', '/api/classes', { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(withToken.status, 404);
    for (const path of [
      `/api/classes/${cls.id}/events`,
      `/api/containers/${containers[1]!.id}/terminals/0?mode=watch`,
    ]) {
      const socket = new Frames(ada.socket(path));
      await socket.until('rejection', () => socket.rejected !== null || socket.opened);
      assert.equal(socket.rejected, 404, path);
    }
    const ownWatch = new Frames(ada.socket(`/api/containers/${containers[0]!.id}/terminals/0?mode=control`));
    await ownWatch.until('rejection', () => ownWatch.rejected !== null || ownWatch.opened);
    assert.equal(ownWatch.rejected, 404, 'a student cannot take a teacher mode even on its own terminal');

    const view = await teacher.request('GET', `/api/classes/${cls.id}`);
    assert.equal(view.status, 200);
    const listed = (view.body as ClassJson).students;
    assert.deepEqual(listed.map((student) => student.name).sort(), [...names].sort());
    for (const student of listed) assert.equal(student.containers.length, 1);
    assert.equal((await teacher.request('GET', '/api/classes')).body.length, 1);
  });

  it('watch sees what a student types and drops its input and resizes; control types, and the student is told', async () => {
    const { client, teacher, cls } = await classroom();
    const student = client();
    await join(student, cls.joinCode, 'Grace');
    const container = await student.createContainer();
    const stats = new Frames(student.socket('/api/stats'));
    const own = new Frames(student.socket(`/api/containers/${container.id}/terminals/0?cols=100&rows=30`));
    await own.until('attached', () => own.control.some((m) => m.type === 'attached'));

    const watch = new Frames(teacher.socket(`/api/containers/${container.id}/terminals/0?mode=watch`));
    await watch.until('attached', () => watch.control.some((m) => m.type === 'attached'));
    own.type('echo typed-by-$((6*7))\r');
    await watch.until('the student typing', () => watch.text().includes('typed-by-42'));
    watch.type('echo watcher-$((7*7))\r');
    watch.ws.send(JSON.stringify({ type: 'resize', cols: 20, rows: 5 }));
    own.type('echo after-$((5*5))\r');
    await own.until('the next command', () => own.text().includes('after-25'));
    assert.ok(!own.text().includes('watcher-49'), "a watcher's input never reaches the terminal");
    const size = await student.request('GET', `/api/containers/${container.id}/terminals`);
    assert.equal(size.body[0].cols, 100, "a watcher cannot resize the student's terminal");
    assert.equal(size.body[0].rows, 30);
    // The student's own window does, and the watcher is told.
    own.ws.send(JSON.stringify({ type: 'resize', cols: 90, rows: 25 }));
    await watch.until('told of the new size', () =>
      watch.control.some((m) => (m as { type: string }).type === 'resize' && 'cols' in m && m.cols === 90),
    );
    // The teacher reads the student's container (its state, terminals, samples); writes stay the owner's.
    for (const path of ['', '/terminals', '/stats']) {
      const read = await teacher.request('GET', `/api/containers/${container.id}${path}`);
      assert.equal(read.status, 200, `${path}: ${read.text}`);
    }
    assert.equal((await teacher.request('DELETE', `/api/containers/${container.id}`)).status, 404);
    assert.equal(
      (await teacher.request('POST', `/api/containers/${container.id}/exec`, { json: { cmd: ['true'] } })).status,
      404,
    );

    const control = new Frames(teacher.socket(`/api/containers/${container.id}/terminals/0?mode=control`));
    await control.until('attached', () => control.control.some((m) => m.type === 'attached'));
    const told = (teacher: boolean) => () =>
      (stats.control as StatsServerMessage[]).some(
        (m) => m.type === 'control' && m.containerId === container.id && m.teacher === teacher,
      );
    await stats.until('the student told the teacher has the keyboard', told(true));
    control.type('echo teacher-$((8*8))\r');
    await own.until("the teacher's typing, on the student's screen", () => own.text().includes('teacher-64'));
    control.ws.close();
    await stats.until('the student told the keyboard is back', told(false));
    const attached = watch.control.find((m) => m.type === 'attached') as Extract<
      TerminalServerMessage,
      { type: 'attached' }
    >;
    assert.equal(attached.cols, 100, "the teacher's client learns the student's size");
    for (const frames of [stats, own, watch]) frames.ws.close();
  });

  it('streams the class to the teacher: joins, containers, samples, miniature screens and typing', async () => {
    const { client, teacher, cls } = await classroom();
    const events = new Frames(teacher.socket(`/api/classes/${cls.id}/events`));
    await events.until('the class', () => classEvents(events).some((m) => m.type === 'class'));
    const student = client();
    await join(student, cls.joinCode, 'Ken');
    await events.until('the join', () =>
      classEvents(events).some((m) => m.type === 'student' && m.student.name === 'Ken'),
    );
    const container = await student.createContainer();
    const own = new Frames(student.socket(`/api/containers/${container.id}/terminals/0`));
    await own.until('attached', () => own.control.some((m) => m.type === 'attached'));
    own.type('echo mini-$((3*3))\r');
    await events.until('a screen showing the command', () =>
      classEvents(events).some(
        (m) =>
          m.type === 'screen' &&
          m.screen.containerId === container.id &&
          m.screen.lines.some((line) => line.includes('mini-9')),
      ),
    );
    await events.until('a sample', () =>
      classEvents(events).some((m) => m.type === 'sample' && m.containerId === container.id),
    );
    assert.ok(classEvents(events).some((m) => m.type === 'container' && m.container.id === container.id));
    assert.ok(classEvents(events).some((m) => m.type === 'input'));
    // At most one screen per student per second.
    const screens = classEvents(events).filter((m) => m.type === 'screen');
    own.type('for i in 1 2 3 4 5 6 7 8 9 10; do echo $i; sleep 0.1; done\r');
    await sleep(1500);
    const more = classEvents(events).filter((m) => m.type === 'screen').length - screens.length;
    assert.ok(more >= 1 && more <= 2, `${more} screens in 1.5 s`);
    own.ws.close();
    events.ws.close();
  });

  it('broadcasts reach the students, never their terminals; a reloaded page gets them again', async () => {
    const { client, teacher, cls } = await classroom();
    const student = client();
    await join(student, cls.joinCode, 'Barbara');
    const container = await student.createContainer();
    const stats = new Frames(student.socket('/api/stats'));
    const own = new Frames(student.socket(`/api/containers/${container.id}/terminals/0`));
    await own.until('attached', () => own.control.some((m) => m.type === 'attached'));
    await stats.until('open', () => stats.opened);
    const sent = await teacher.request('POST', `/api/classes/${cls.id}/broadcast`, {
      json: { message: 'Now try: <b>unshare</b>', command: 'unshare --pid --fork sh' },
    });
    assert.equal(sent.status, 201, sent.text);
    await stats.until('the broadcast', () =>
      (stats.control as StatsServerMessage[]).some(
        (m) => m.type === 'broadcast' && m.broadcast.command === 'unshare --pid --fork sh',
      ),
    );
    await sleep(200);
    assert.ok(!own.text().includes('unshare'), 'a broadcast command is never typed');
    const me = await student.request('GET', '/api/me');
    assert.equal(me.body.student.broadcasts[0].message, 'Now try: <b>unshare</b>');
    for (const bad of [
      { message: '' },
      { message: 'x\u202Eevil' },
      { message: 'ok', command: 'a\nb' },
      { message: 'ok', extra: 1 },
    ]) {
      assert.equal((await teacher.request('POST', `/api/classes/${cls.id}/broadcast`, { json: bad })).status, 400);
    }
    stats.ws.close();
    own.ws.close();
  });

  it('records each terminal as asciicast v2 for its owner and the teacher', async () => {
    const { client, teacher, cls, server } = await classroom();
    const student = client();
    await join(student, cls.joinCode, 'Dennis');
    const container = await student.createContainer();
    const own = new Frames(student.socket(`/api/containers/${container.id}/terminals/0`));
    await own.until('attached', () => own.control.some((m) => m.type === 'attached'));
    own.type('echo recorded-$((4*4))\r');
    await own.until('the output', () => own.text().includes('recorded-16'));
    own.ws.send(JSON.stringify({ type: 'resize', cols: 90, rows: 20 }));
    await sleep(200);

    const path = `/api/containers/${container.id}/terminals/0/recording`;
    for (const reader of [student, teacher]) {
      const reply = await reader.request('GET', path);
      assert.equal(reply.status, 200, reply.text);
      assert.equal(reply.headers['content-type'], 'application/x-asciicast');
      const [header, ...events] = reply.text
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line));
      assert.equal(header.version, 2);
      assert.equal(typeof header.width, 'number');
      assert.equal(typeof header.timestamp, 'number');
      const output = events
        .filter((e) => e[1] === 'o')
        .map((e) => e[2])
        .join('');
      assert.match(output, /recorded-16/);
      assert.ok(events.some((e) => e[1] === 'r' && e[2] === '90x20'));
      let last = 0;
      for (const event of events) {
        assert.ok(event[0] >= last, 'times only grow');
        last = event[0];
      }
    }
    const stranger = client();
    await join(stranger, cls.joinCode, 'Eve');
    assert.equal((await stranger.request('GET', path)).status, 404);
    const stats = await teacher.request('GET', `/api/containers/${container.id}/recording-stats`);
    assert.equal(stats.status, 200);
    const list = await teacher.request('GET', `/api/classes/${cls.id}/recordings`);
    assert.ok(list.body.some((r: { containerId: string; studentId: string }) => r.containerId === container.id));
    assert.ok(server.classes.get(cls.id).students.length === 2);
    own.ws.close();
  });

  it('ends a class: every container removed, students told why, the cgroup gone, no more joins or containers', async () => {
    const { client, runtime, teacher, cls } = await classroom();
    const student = client();
    await join(student, cls.joinCode, 'Margaret');
    const container = await student.createContainer();
    const stats = new Frames(student.socket('/api/stats'));
    await stats.until('open', () => stats.opened);
    const events = new Frames(teacher.socket(`/api/classes/${cls.id}/events`));
    await events.until('the class', () => classEvents(events).length > 0);
    assert.equal((await teacher.request('DELETE', `/api/classes/${cls.id}`)).status, 204);
    assert.ok(!runtime.records.has(container.id), 'the container is gone');
    assert.ok(!runtime.groups.has(`class-${cls.id}`), "the class's cgroup is gone");
    await stats.until('told the class ended', () =>
      (stats.control as StatsServerMessage[]).some((m) => m.type === 'class-ended'),
    );
    await stats.until('the container removed, with the reason', () =>
      (stats.control as StatsServerMessage[]).some(
        (m) => m.type === 'container' && m.container.state === 'removed' && m.container.exitReason === 'class-ended',
      ),
    );
    await events.until('ended and closed', () => events.closed !== null);
    assert.equal(events.closed?.code, WS_CLOSE.NORMAL);
    assert.ok(classEvents(events).some((m) => m.type === 'ended'));
    const again = await student.request('POST', '/api/containers', { json: {} });
    assert.equal(again.status, 409);
    assert.match(again.body.error.message, /class has ended/);
    assert.equal(
      (await client().request('POST', '/api/join', { json: { code: cls.joinCode, name: 'Late' } })).status,
      404,
    );
    assert.equal((await student.request('GET', '/api/me')).body.student.classOpen, false);
    stats.ws.close();
  });

  it('rotates the join code: the old one stops working, students in stay', async () => {
    const { client, teacher, cls } = await classroom();
    const early = client();
    await join(early, cls.joinCode, 'Early');
    const rotated = await teacher.request('POST', `/api/classes/${cls.id}/code`, { json: {} });
    assert.notEqual(rotated.body.joinCode, cls.joinCode);
    assert.equal(
      (await client().request('POST', '/api/join', { json: { code: cls.joinCode, name: 'X' } })).status,
      404,
    );
    await join(client(), rotated.body.joinCode, 'Late');
    assert.equal((await early.request('GET', '/api/me')).body.role, 'student');
  });

  it('resets a student: a fresh container, the old one removed with the reason', async () => {
    const { client, teacher, cls } = await classroom();
    const student = client();
    await join(student, cls.joinCode, 'Ritchie');
    const first = await student.createContainer();
    const studentId = (await teacher.request('GET', `/api/classes/${cls.id}`)).body.students[0].id;
    const reset = await teacher.request('POST', `/api/classes/${cls.id}/students/${studentId}/reset`, { json: {} });
    assert.equal(reset.status, 200, reset.text);
    assert.notEqual(reset.body.id, first.id);
    const mine = await student.request('GET', '/api/containers');
    assert.deepEqual(
      mine.body.map((c: ContainerJson) => c.id),
      [reset.body.id],
    );
  });

  it('holds join-code guessing to a few tries per address', async () => {
    const { client, cls } = await classroom({ joinRatePerIp: 5 });
    const guesser = client();
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      statuses.push(
        (await guesser.request('POST', '/api/join', { json: { code: `WRONGCODE${i}XX`, name: 'g' } })).status,
      );
    }
    assert.deepEqual(statuses.slice(0, 5), [404, 404, 404, 404, 404]);
    assert.deepEqual(statuses.slice(5), [429, 429, 429], 'guessing is rate limited');
    const right = await guesser.request('POST', '/api/join', { json: { code: cls.joinCode, name: 'g' } });
    assert.equal(right.status, 429, 'even the right code, once the address is held');
  });

  it('lets 12 students from one address in while a guesser is held', async () => {
    const { client, cls } = await classroom({ joinRatePerIp: 3 });
    for (let i = 0; i < 12; i++) await join(client(), cls.joinCode, `Student ${i}`);
  });

  it('refuses names that are not plain text, and tells same names apart', async () => {
    const { client, teacher, cls } = await classroom();
    for (const name of ['', '   ', 'a\u0000b', 'line\nbreak', '\u202Eevil', 'x'.repeat(41)]) {
      const reply = await client().request('POST', '/api/join', { json: { code: cls.joinCode, name } });
      assert.equal(reply.status, 400, JSON.stringify(name));
    }
    await join(client(), cls.joinCode, 'Ana');
    await join(client(), cls.joinCode, 'Ana');
    const names = (await teacher.request('GET', `/api/classes/${cls.id}`)).body.students.map(
      (s: { name: string }) => s.name,
    );
    assert.deepEqual(names, ['Ana', 'Ana (2)']);
    const bad = await teacher.request('POST', '/api/classes', { json: { name: 'x', lesson: 'no-such-lesson' } });
    assert.equal(bad.status, 400);
    const unknownField = await teacher.request('POST', '/api/classes', { json: { name: 'x', color: 'red' } });
    assert.equal(unknownField.status, 400);
    const tooMuch = await teacher.request('POST', '/api/classes', { json: { name: 'x', limits: { memory: '100g' } } });
    assert.equal(tooMuch.status, 403);
  });
});
