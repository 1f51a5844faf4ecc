// A class on the real runtime: students' containers in the class's cgroup with the
// class's limits, a refused fork marked in the terminal's recording, and the end of the
// class leaving no container, cgroup or state behind.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ClassJson, StatsServerMessage } from '../../src/protocol/index.js';
import { containerCgroups, launcherProcesses, rootOnly, stateDirs, waitFor } from './helpers.js';
import { Client, Frames } from './playground-client.js';
import { startRealServer, type RealServer } from './real-server.js';

const skip = rootOnly();

/** Directories named class-<id> under any hierarchy. */
function classCgroups(classId: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    if (depth > 7) return;
    let names: string[];
    try {
      names = readdirSync(dir, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name);
    } catch {
      return;
    }
    for (const name of names) {
      if (name === `class-${classId}`) found.push(join(dir, name));
      else walk(join(dir, name), depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return found;
}

describe('a class on real containers', { skip }, () => {
  let real: RealServer;
  before(async () => {
    real = await startRealServer('classes-test');
  });
  after(() => real?.close());

  it("puts students' containers in the class's cgroup with its limits, marks a refused fork in the recording, and ends without a trace", async () => {
    const base = real.base;
    // A token-less loopback server: the local user is the teacher.
    const teacher = new Client(base);
    await teacher.request('GET', '/healthz');
    const created = await teacher.request('POST', '/api/classes', {
      name: 'PID namespaces',
      limits: { memory: '64m', cpus: 0.5, pidsLimit: 16 },
      budget: { memory: '512m', cpus: 1 },
    });
    assert.equal(created.status, 201, created.text);
    const cls = created.body as ClassJson;
    assert.ok(classCgroups(cls.id).length > 0, "the class's cgroup exists");

    const students = [new Client(base), new Client(base)];
    const ids: string[] = [];
    for (const [i, student] of students.entries()) {
      const joined = await student.request('POST', '/api/join', { code: cls.joinCode, name: `student ${i}` });
      assert.equal(joined.status, 201, joined.text);
      const container = await student.create();
      assert.equal(container.limits.pidsLimit, 16);
      ids.push(container.id);
      const pid = container.initPid!;
      const cgroups = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      assert.match(cgroups, new RegExp(`/class-${cls.id}/${container.id}`), "the init is in the class's cgroup");
    }
    assert.equal((await students[0]!.request('GET', `/api/containers/${ids[1]}`)).status, 404);

    const student = students[0]!;
    const stats = new Frames(student.socket('/api/stats'));
    const own = new Frames(student.socket(`/api/containers/${ids[0]}/terminals/0`));
    await own.until('attached', () => own.control.some((m) => m.type === 'attached'));
    own.type('echo before-the-bomb-$((6*7))\r');
    await own.until('the echo', () => own.text().includes('before-the-bomb-42'));
    own.type('for i in $(seq 40); do sleep 30 & done\r');
    await stats.until('a refused fork counted', () =>
      (stats.control as StatsServerMessage[]).some(
        (m) => m.type === 'sample' && m.containerId === ids[0] && m.sample.pidsLimitHits > 0,
      ),
    );
    const cast = await waitFor(
      'a pids-limit marker in the recording',
      async () => {
        const reply = await teacher.request('GET', `/api/containers/${ids[0]}/terminals/0/recording`);
        return reply.status === 200 && reply.text.includes('"m","pids-limit"') ? reply.text : null;
      },
      10_000,
    );
    const [header, ...events] = cast
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as unknown[]);
    assert.equal((header as unknown as { version: number }).version, 2);
    const typedAt = events.findIndex((e) => e[1] === 'o' && String(e[2]).includes('before-the-bomb-42'));
    const markedAt = events.findIndex((e) => e[1] === 'm' && e[2] === 'pids-limit');
    assert.ok(typedAt >= 0 && markedAt > typedAt, 'what was typed, then the marker');
    own.ws.close();

    assert.equal((await teacher.request('DELETE', `/api/classes/${cls.id}`)).status, 204);
    await stats.until('the end of the class, told', () =>
      (stats.control as StatsServerMessage[]).some((m) => m.type === 'class-ended'),
    );
    stats.ws.close();
    assert.deepEqual(containerCgroups(ids), [], 'no container cgroup left');
    assert.deepEqual(classCgroups(cls.id), [], 'no class cgroup left');
    assert.deepEqual(stateDirs(ids), [], 'no state left');
    await waitFor('no launcher of the class left', () =>
      launcherProcesses().every((line) => !ids.some((id) => line.includes(id))),
    );
    // The recording outlives the class (until the retention time), for the teacher.
    assert.equal((await teacher.request('GET', `/api/containers/${ids[0]}/terminals/0/recording`)).status, 200);
  });
});
