// Lessons on real containers through the server's API: every built-in lesson driven
// step by step by typing into the container's terminal, each step ticking by itself
// within 3 seconds of the action (no "Check now"); a hanging script check killed at its
// time limit; a step not done staying not done; a file check that cannot be led to a host
// file by a symlink.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type {
  ClassEventMessage,
  ClassJson,
  ContainerLessonJson,
  LessonJson,
  StatsServerMessage,
} from '../../src/protocol/index.js';
import { rootOnly, waitFor } from './helpers.js';
import { Client, Frames } from './playground-client.js';
import { startRealServer, type RealServer } from './real-server.js';

const skip = rootOnly();
const STEP_WITHIN_MS = 3000;
let lessonsDir = '';

/** Test lessons beside the built-in ones (--lessons-dir). */
function writeTestLessons(dir: string): void {
  const lesson = (id: string, steps: Record<string, string>): void => {
    mkdirSync(join(dir, id), { recursive: true });
    writeFileSync(
      join(dir, id, 'lesson.yaml'),
      `id: ${id}\ntitle: ${id}\ndescription: a test lesson\ncontainer:\n  limits: { memory: 64m, pidsLimit: 32 }\n`,
    );
    for (const [name, text] of Object.entries(steps)) writeFileSync(join(dir, id, name), text);
  };
  lesson('test-hang', {
    '01-hang.md':
      '---\nid: hang\ntitle: a check that hangs\nchecks:\n  - kind: script\n    run: sleep 30\n    timeout: 1s\n---\nwait\n',
    '02-never.md':
      '---\nid: never\ntitle: never done\nchecks:\n  - kind: file-exists\n    path: /nonexistent/file\n---\nno\n',
  });
  lesson('test-hidden', {
    '01-any.md': '---\nid: any\ntitle: any\nchecks:\n  - kind: file-exists\n    path: /tmp\n---\nno\n',
  });
  writeFileSync(
    join(dir, 'test-hidden', 'lesson.yaml'),
    'id: test-hidden\ntitle: hidden\ndescription: kept out\nhidden: true\n',
  );
  lesson('test-symlink', {
    '01-host.md':
      '---\nid: host\ntitle: a host file\nchecks:\n  - kind: file-contains\n    path: /tmp/x\n    pattern: root\n---\nno\n',
    '02-inside.md':
      '---\nid: inside\ntitle: the container file\nchecks:\n  - kind: file-contains\n    path: /tmp/y\n    pattern: root\n---\nyes\n',
  });
}

/** One student's container with a lesson: its terminal and its stats stream. */
class LessonSession {
  readonly client: Client;
  containerId = '';
  stats!: Frames;
  terminal!: Frames;

  constructor(base: string) {
    this.client = new Client(base);
  }

  /** A new container of the lesson (a student's gets its class's lesson without asking). */
  async open(lesson: string): Promise<ContainerLessonJson> {
    const student = (await this.client.request('GET', '/api/me')).body?.role === 'student';
    const container = await this.client.create(student ? {} : { lesson });
    assert.equal(container.lesson, lesson);
    this.containerId = container.id;
    this.stats = new Frames(this.client.socket('/api/stats'));
    this.terminal = new Frames(this.client.socket(`/api/containers/${container.id}/terminals/0`));
    await this.terminal.until('attached', () => this.terminal.control.some((m) => m.type === 'attached'));
    // The prompt: the shell reads what is typed from now on.
    await this.terminal.until('the prompt', () => /[#$] (\x1b\[6n)?$/.test(this.terminal.text()));
    const reply = await this.client.request('GET', `/api/containers/${container.id}/lesson`);
    assert.equal(reply.status, 200, reply.text);
    const state = reply.body as ContainerLessonJson;
    assert.ok(
      state.steps.every((step) => !step.done),
      `nothing is done before the student acts: ${JSON.stringify(state.steps)}`,
    );
    return state;
  }

  /** The latest lesson state pushed on the stats stream. */
  latest(): ContainerLessonJson | null {
    const messages = (this.stats.control as StatsServerMessage[]).filter(
      (m): m is Extract<StatsServerMessage, { type: 'lesson' }> =>
        m.type === 'lesson' && m.containerId === this.containerId,
    );
    return messages.at(-1)?.lesson ?? null;
  }

  done(stepId: string): boolean {
    return this.latest()?.steps.find((step) => step.id === stepId)?.done ?? false;
  }

  /** Does the action, then waits for the step to tick on the stats stream, by itself. */
  async step(stepId: string, action: string | (() => Promise<void>)): Promise<number> {
    assert.equal(this.done(stepId), false, `${stepId} was not done before its action`);
    const startedAt = Date.now();
    if (typeof action === 'string') this.terminal.type(action);
    else await action();
    await waitFor(
      `step ${stepId} done (terminal: ${JSON.stringify(this.terminal.text().slice(-400))})`,
      () => this.done(stepId),
      STEP_WITHIN_MS + 7000,
    );
    const tookMs = Date.now() - startedAt;
    assert.ok(
      tookMs <= STEP_WITHIN_MS,
      `step ${stepId} ticked ${tookMs} ms after the action (at most ${STEP_WITHIN_MS})`,
    );
    return tookMs;
  }

  async patch(limits: Record<string, unknown>): Promise<void> {
    const reply = await this.client.request('PATCH', `/api/containers/${this.containerId}`, limits);
    assert.equal(reply.status, 200, reply.text);
  }

  async close(): Promise<void> {
    this.terminal?.ws.close();
    this.stats?.ws.close();
    if (this.containerId) await this.client.request('DELETE', `/api/containers/${this.containerId}`);
  }
}

describe('lessons on real containers', { skip }, () => {
  let real: RealServer;
  before(async () => {
    lessonsDir = mkdtempSync('/tmp/mdocker-lessons-');
    writeTestLessons(lessonsDir);
    real = await startRealServer('lessons-test', {
      lessonsDir,
      maxContainersPerSession: 20,
      createRatePerSession: 1000,
      createRatePerIp: 1000,
    });
  });

  after(async () => {
    await real?.close();
    if (lessonsDir) rmSync(lessonsDir, { recursive: true, force: true });
  });

  const base = (): string => real.base;

  /** Runs one lesson's script: each [step, action] in turn. */
  async function drive(
    lesson: string,
    actions: [string, string | ((session: LessonSession) => Promise<void>)][],
  ): Promise<void> {
    const session = new LessonSession(base());
    try {
      const state = await session.open(lesson);
      assert.deepEqual(
        state.steps.map((step) => step.id),
        actions.map(([id]) => id),
        'the test drives every step',
      );
      for (const [stepId, action] of actions) {
        await session.step(stepId, typeof action === 'string' ? action : () => action(session));
      }
      const final = session.latest();
      assert.equal(final?.progress.done, true);
      assert.equal(final?.current, actions.length);
    } finally {
      await session.close();
    }
  }

  it('lists the built-in lessons in order, a hidden lesson left out and refused', async () => {
    const reply = await new Client(base()).request('GET', '/api/lessons');
    assert.equal(reply.status, 200);
    const ids = (reply.body as LessonJson[]).map((lesson) => lesson.id);
    assert.deepEqual(ids.slice(0, 8), [
      'pid-namespace',
      'uts-namespace',
      'mount-namespace',
      'pids-cgroup',
      'memory-cgroup',
      'cpu-cgroup',
      'user-namespace',
      'network-namespace',
    ]);
    assert.ok(!ids.includes('test-hidden'));
    const refused = await new Client(base()).request('POST', '/api/containers', { lesson: 'test-hidden' });
    assert.equal(refused.status, 400, refused.text);
  });

  it('pid-namespace: PID 1, ps, a nested PID namespace', () =>
    drive('pid-namespace', [
      ['pid-one', 'echo $$ > /tmp/mypid\r'],
      ['ps', 'sleep 1000 &\r'],
      ['nested', 'unshare --pid --fork --mount-proc sh\r'],
    ]));

  it('uts-namespace: rename, an exact name, a nested UTS namespace', () =>
    drive('uts-namespace', [
      ['rename', 'hostname my-box\r'],
      ['exact', 'hostname classroom\r'],
      ['nested', 'unshare -u sh\r'],
    ]));

  it('mount-namespace: a tmpfs, a file in it, a nested mount namespace', () =>
    drive('mount-namespace', [
      ['mount', 'mkdir -p /mnt/scratch && mount -t tmpfs none /mnt/scratch\r'],
      ['write', 'echo hello > /mnt/scratch/hello.txt\r'],
      ['private', 'unshare -m sh\r'],
    ]));

  it('pids-cgroup: the fork loop hits the limit, the limit is raised live, the loop goes further', () =>
    drive('pids-cgroup', [
      ['hit', 'for i in $(seq 1 30); do sh -c "sleep 100" & done\r'],
      ['raise', (session) => session.patch({ pidsLimit: 64 })],
      ['further', 'for i in $(seq 1 30); do sh -c "sleep 100" & done\r'],
    ]));

  it('memory-cgroup: an OOM kill at the limit, the limit raised', () =>
    drive('memory-cgroup', [
      ['oom', 'dd if=/dev/zero of=/dev/null bs=64M count=1\r'],
      ['raise', (session) => session.patch({ memory: '128m' })],
    ]));

  it('cpu-cgroup: busy loops throttled at half a CPU, the limit raised', () =>
    drive('cpu-cgroup', [
      ['throttle', 'while :; do :; done &\rwhile :; do :; done &\r'],
      ['raise', (session) => session.patch({ cpus: 1 })],
    ]));

  it('user-namespace: root inside, the uid map (a script check after the terminal goes quiet), a refusal', () =>
    drive('user-namespace', [
      ['root', 'touch /tmp/mine\r'],
      ['map', 'cat /proc/self/uid_map > /tmp/uidmap\r'],
      ['cannot', 'date -s 2000-01-01 2> /tmp/denied\r'],
    ]));

  it('network-namespace: the address, a port, a neighbour by name, an empty network namespace', () => {
    let neighbour = '';
    return drive('network-namespace', [
      ['address', "ip -4 addr show eth0 | sed -n 's/.*inet \\([0-9.]*\\)\\/.*/\\1/p' > /tmp/my-ip\r"],
      ['listen', 'mkdir -p /tmp/www && echo hi > /tmp/www/index.html && httpd -p 8080 -h /tmp/www\r'],
      [
        'neighbour',
        async (session) => {
          // A second container of the same session: the same network.
          const created = await session.client.create({});
          neighbour = created.id;
          session.terminal.type(`ping -c 1 -W 2 ${created.hostname}\r`);
        },
      ],
      [
        'empty',
        async (session) => {
          const removed = await session.client.request('DELETE', `/api/containers/${neighbour}`);
          assert.equal(removed.status, 204, removed.text);
          session.terminal.type('unshare --net sh\r');
        },
      ],
    ]);
  });

  it('kills a hanging script check at its time limit, and a step not done stays not done', async () => {
    const session = new LessonSession(base());
    try {
      await session.open('test-hang');
      const startedAt = Date.now();
      const reply = await session.client.request('POST', `/api/containers/${session.containerId}/lesson/check`);
      const tookMs = Date.now() - startedAt;
      assert.equal(reply.status, 200, reply.text);
      // 1 s limit, then SIGTERM; SIGKILL a second later at the latest.
      assert.ok(tookMs < 3500, `the check came back after ${tookMs} ms`);
      const state = reply.body as ContainerLessonJson;
      assert.deepEqual(
        state.steps.map((step) => step.done),
        [false, false],
      );
      // The sleep of the check is gone from the container.
      const ps = await session.client.request('POST', `/api/containers/${session.containerId}/exec`, {
        cmd: ['ps', '-o', 'args'],
      });
      assert.doesNotMatch(ps.body.stdout as string, /sleep 30/);
      // Kernel ticks and terminal activity do not tick it either.
      session.terminal.type('echo still here\r');
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const again = await session.client.request('GET', `/api/containers/${session.containerId}/lesson`);
      assert.deepEqual(
        (again.body as ContainerLessonJson).steps.map((step) => step.done),
        [false, false],
      );
    } finally {
      await session.close();
    }
  });

  it("cannot be led to a host file by a symlink: the path resolves in the container's root", async () => {
    const session = new LessonSession(base());
    try {
      await session.open('test-symlink');
      // An attacker's link to the host's shadow file (which holds "root"), and one to the
      // container's own passwd through enough .. to leave any root.
      await session.step('inside', 'ln -s /etc/shadow /tmp/x; ln -s ../../../../../../etc/passwd /tmp/y\r');
      const reply = await session.client.request('POST', `/api/containers/${session.containerId}/lesson/check`);
      assert.equal(reply.status, 200, reply.text);
      const steps = (reply.body as ContainerLessonJson).steps;
      assert.equal(steps.find((step) => step.id === 'host')?.done, false, 'the host /etc/shadow was never read');
      assert.equal(steps.find((step) => step.id === 'inside')?.done, true);
    } finally {
      await session.close();
    }
  });

  it("gives a class's lesson to its students' containers and shows their progress on the teacher's events", async () => {
    const teacher = new Client(base());
    await teacher.request('GET', '/healthz');
    const refused = await teacher.request('POST', '/api/classes', { name: 'x', lesson: 'no-such-lesson' });
    assert.equal(refused.status, 400, refused.text);
    const created = await teacher.request('POST', '/api/classes', { name: 'UTS', lesson: 'uts-namespace' });
    assert.equal(created.status, 201, created.text);
    const cls = created.body as ClassJson;
    const events = new Frames(teacher.socket(`/api/classes/${cls.id}/events`));
    const session = new LessonSession(base());
    try {
      const joined = await session.client.request('POST', '/api/join', { code: cls.joinCode, name: 'Ana' });
      assert.equal(joined.status, 201, joined.text);
      await session.open('uts-namespace');
      await session.step('rename', 'hostname my-box\r');
      await events.until('the progress event', () =>
        (events.control as unknown as ClassEventMessage[]).some(
          (m) => m.type === 'progress' && m.progress.lesson === 'uts-namespace' && m.progress.step === 1,
        ),
      );
      const board = await teacher.request('GET', `/api/classes/${cls.id}`);
      assert.equal((board.body as ClassJson).students[0]?.progress?.step, 1);
    } finally {
      events.ws.close();
      await session.close();
      await teacher.request('DELETE', `/api/classes/${cls.id}`);
    }
  });

  it("keeps another session out of a container's lesson", async () => {
    const session = new LessonSession(base());
    try {
      await session.open('user-namespace');
      const other = new Client(base());
      await other.request('GET', '/healthz');
      assert.equal((await other.request('GET', `/api/containers/${session.containerId}/lesson`)).status, 404);
      assert.equal((await other.request('POST', `/api/containers/${session.containerId}/lesson/check`)).status, 404);
    } finally {
      await session.close();
    }
  });
});
