// Three nodes on loopback behind Debian's HAProxy with the deployment's template (root):
// sessions and classes stick to their node, new sessions follow headroom, a full node
// takes no one new, a killed node's users are told and start again elsewhere while the
// others notice nothing, a drained node tells its users and leaves nothing behind.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClassEventMessage, ContainerJson, ReadyJson, StatsServerMessage } from '../../src/protocol/index.js';
import { Client } from '../host-shell-server.js';
import { rootOnly, waitFor } from '../root/helpers.js';
import { Frames } from '../root/playground-client.js';
import { CLUSTER_TOKEN, leftovers, startLocalCluster, type LocalCluster } from './local-cluster.js';

const skip = rootOnly();
const auth = { authorization: `Bearer ${CLUSTER_TOKEN}` };

let cluster: LocalCluster;

/** The node a client's session cookie names. */
function nodeOf(client: Client): string | undefined {
  return client.cookies.get('mdocker_session')?.split('.')[1];
}

/** A new client through HAProxy with a session (the first request hands it out). */
async function newSession(): Promise<Client> {
  const client = new Client(cluster.base);
  const reply = await client.request('GET', '/api/containers', { headers: auth });
  assert.equal(reply.status, 200, reply.text);
  return client;
}

/** A client through HAProxy whose session is on the given node. */
async function sessionOn(node: string): Promise<Client> {
  const direct = new Client(cluster.nodes.find((n) => n.id === node)!.base);
  await direct.request('GET', '/api/containers', { headers: auth });
  const client = new Client(cluster.base);
  client.cookies.set('mdocker_session', direct.cookies.get('mdocker_session')!);
  return client;
}

async function create(client: Client): Promise<ContainerJson> {
  const reply = await client.request('POST', '/api/containers', { json: {}, headers: auth });
  assert.equal(reply.status, 201, reply.text);
  return reply.body as ContainerJson;
}

async function ready(node: string): Promise<ReadyJson> {
  const reply = await new Client(cluster.nodes.find((n) => n.id === node)!.base).request('GET', '/readyz');
  return reply.body as ReadyJson;
}

/** Attaches terminal 0 through HAProxy, types a command, waits for its output. */
async function typeAndSee(client: Client, containerId: string, marker: string): Promise<void> {
  const frames = new Frames(
    client.socket(`/api/containers/${containerId}/terminals/0?cols=80&rows=24`, { headers: auth }),
  );
  try {
    await frames.until('attached', () => frames.opened || frames.rejected !== null, 10_000);
    assert.equal(frames.rejected, null, `the attach was refused with ${frames.rejected}`);
    frames.type(`echo ${marker.slice(0, 4)}''${marker.slice(4)}\n`);
    await frames.until(`the echo of ${marker}`, () => frames.text().includes(marker), 10_000);
  } finally {
    frames.ws.close();
  }
}

describe('three nodes behind HAProxy', { skip, concurrency: false }, () => {
  before(async () => {
    cluster = await startLocalCluster([
      ['--max-containers', '40'],
      ['--max-containers', '40'],
      ['--max-containers', '12', '--drain-grace', '3s'],
    ]);
  });
  after(async () => {
    await cluster?.stop();
  });

  it('a session’s requests and WebSocket reconnects always reach its node', async () => {
    const user = await newSession();
    const node = nodeOf(user);
    assert.match(node ?? '', /^node-\d$/);
    const container = await create(user);
    for (let i = 0; i < 30; i++) {
      const reply = await user.request('GET', `/api/containers/${container.id}`, { headers: auth });
      assert.equal(reply.status, 200, `request ${i}: ${reply.text}`);
    }
    for (let i = 0; i < 4; i++) await typeAndSee(user, container.id, `again${i}-ok`);
    assert.equal(nodeOf(user), node, 'the session never moved');
  });

  it('a class and its students share the teacher’s node, whatever node a student came from', async () => {
    const teacher = await newSession();
    const created = await teacher.request('POST', '/api/classes', { json: { name: 'workshop' }, headers: auth });
    assert.equal(created.status, 201, created.text);
    const node = nodeOf(teacher)!;
    assert.equal(new URL(created.body.joinUrl, cluster.base).searchParams.get('node'), node);
    const code = created.body.joinCode as string;
    for (let i = 0; i < 6; i++) {
      // Some students had a session on another node before they opened the link.
      const student = i % 2 === 0 ? new Client(cluster.base) : await sessionOn(`node-${(i + 1) % 3}`);
      const page = await student.request('GET', created.body.joinUrl);
      assert.notEqual(page.status, 421, page.text);
      const joined = await student.request('POST', `/api/join?node=${node}`, { json: { code, name: `student ${i}` } });
      assert.equal(joined.status, 201, joined.text);
      assert.equal(nodeOf(student), node, 'the student’s session is the class’s node');
      const reply = await student.request('POST', '/api/containers', { json: {} });
      assert.equal(reply.status, 201, reply.text);
    }
    const seen = await teacher.request('GET', `/api/classes/${created.body.id}`, { headers: auth });
    assert.equal(seen.body.students.length, 6);
  });

  it('30 new sessions spread by headroom', async () => {
    // node-0 gets half full: its weight halves.
    const filler = await sessionOn('node-0');
    while ((await ready('node-0')).headroom.containers < 20) await create(filler);
    const expected = new Map<string, number>();
    for (const node of cluster.nodes) expected.set(node.id, (await ready(node.id)).headroom.weightPercent);
    // HAProxy applies the agents' weights within a second or two.
    await waitFor(
      'HAProxy to apply the weights',
      async () => {
        const seen = await cluster.servers();
        return [...expected].every(([id, weight]) => Math.abs((seen.get(id)?.weight ?? -100) - weight) <= 3);
      },
      10_000,
    );
    const counts = new Map<string, number>(cluster.nodes.map((n) => [n.id, 0]));
    for (let i = 0; i < 30; i++) {
      const client = await newSession();
      counts.set(nodeOf(client)!, counts.get(nodeOf(client)!)! + 1);
    }
    const total = [...expected.values()].reduce((a, b) => a + b, 0);
    for (const [id, weight] of expected) {
      const want = (30 * weight) / total;
      const got = counts.get(id)!;
      assert.ok(
        Math.abs(got - want) <= Math.max(3, want * 0.25),
        `${id}: ${got} sessions for ${want.toFixed(1)} expected (weights ${JSON.stringify([...expected])})`,
      );
    }
    assert.ok(
      counts.get('node-0')! < counts.get('node-1')!,
      `the fuller node gets fewer: ${JSON.stringify([...counts])}`,
    );
  });

  it('a node at its container cap turns unready and gets no new session while its users keep typing', async () => {
    const user = await sessionOn('node-2');
    const container = await create(user);
    while ((await ready('node-2')).headroom.containers < 12) await create(user);
    const full = await ready('node-2');
    assert.equal(full.ready, false);
    assert.deepEqual(full.reasons, ['at-capacity']);
    // The agent's "drain" puts the server in DRAIN: no new users, persistence still works.
    await waitFor('HAProxy to drain node-2', async () => {
      const seen = (await cluster.servers()).get('node-2');
      return seen !== undefined && seen.status.includes('DRAIN');
    });
    for (let i = 0; i < 15; i++) {
      const client = await newSession();
      assert.notEqual(nodeOf(client), 'node-2', `session ${i} went to the full node`);
    }
    await typeAndSee(user, container.id, 'still-typing-ok');
    // Room again: ready again.
    await user.request('DELETE', `/api/containers/${container.id}`, { headers: auth });
    assert.equal((await ready('node-2')).ready, true);
  });

  it('kill -9 of a node: its users are told and start again elsewhere; the others notice nothing; its restart reaps', async () => {
    const victim = cluster.nodes.find((n) => n.id === 'node-1')!;
    const lost = await sessionOn('node-1');
    const lostContainer = await create(lost);
    const oldCookie = lost.cookies.get('mdocker_session')!;
    const stats = new Frames(lost.socket('/api/stats', { headers: auth }));
    await stats.until('the stats stream', () => stats.opened);
    const bystander = await sessionOn('node-0');
    const kept = await create(bystander);

    victim.child!.kill('SIGKILL');
    await victim.exited;
    await stats.until('the stream to drop', () => stats.closed !== null);
    // Its next request reaches another node, which says what happened.
    const told = await waitFor(
      'NODE_GONE',
      async () => {
        const reply = await lost.request('GET', `/api/containers/${lostContainer.id}`, { headers: auth });
        return reply.status === 421 ? reply : null;
      },
      10_000,
    );
    assert.equal(told.body.error.code, 'NODE_GONE');
    assert.match(told.body.error.message, /your node \(node-1\) is gone/);
    const fresh = nodeOf(lost);
    assert.ok(fresh === 'node-0' || fresh === 'node-2', `a new session elsewhere (${fresh})`);
    await create(lost);

    await typeAndSee(bystander, kept.id, 'bystander-ok');
    for (const node of ['node-0', 'node-2']) {
      const child = cluster.nodes.find((n) => n.id === node)!;
      assert.doesNotMatch(child.output, /"level":(50|60)/, `${node} logged no error`);
    }

    // The restart reaps the previous run's containers before it serves.
    assert.notDeepEqual(leftovers(victim), [], 'the kill left containers behind');
    await cluster.start(victim);
    assert.deepEqual(leftovers(victim), []);
    await waitFor(
      'HAProxy to see node-1 up',
      async () => (await cluster.servers()).get('node-1')?.status === 'UP',
      15_000,
    );
    const stale = new Client(cluster.base);
    stale.cookies.set('mdocker_session', oldCookie);
    const reply = await stale.request('GET', '/api/containers', { headers: auth });
    assert.equal(reply.status, 421);
    assert.deepEqual(reply.body.error.details, { node: 'node-1', restarted: true });
  });

  it('drain of a node under load: no new session reaches it, its users are told, nothing leaks', async () => {
    const node = cluster.nodes.find((n) => n.id === 'node-0')!;
    const users: { client: Client; frames: Frames }[] = [];
    for (let i = 0; i < 3; i++) {
      const client = await sessionOn('node-0');
      await create(client);
      const frames = new Frames(client.socket('/api/stats', { headers: auth }));
      await frames.until('the stats stream', () => frames.opened);
      users.push({ client, frames });
    }
    // Load: new sessions arriving all along the drain.
    let loading = true;
    const arrived: string[] = [];
    const load = (async () => {
      while (loading) {
        const client = new Client(cluster.base);
        const reply = await client.request('GET', '/api/containers', { headers: auth }).catch(() => null);
        if (reply?.status === 200) arrived.push(nodeOf(client) ?? 'none');
        await sleep(50);
      }
    })();
    await sleep(300);
    const refused = await new Client(node.base).request('POST', '/api/node/drain', { json: { grace: '3s' } });
    assert.equal(refused.status, 401, 'the drain needs the token');
    const drained = await new Client(node.base).request('POST', '/api/node/drain', {
      json: { grace: '3s' },
      headers: auth,
    });
    assert.equal(drained.status, 202, drained.text);
    const arrivedBefore = arrived.length;
    for (const { frames } of users) {
      await frames.until('the drain notice', () =>
        frames.control.some((m) => (m as StatsServerMessage).type === 'node'),
      );
    }
    const exit = await node.exited!;
    loading = false;
    await load;
    assert.equal(exit.code, 0);
    assert.ok(arrived.length > arrivedBefore, 'new sessions kept arriving');
    assert.deepEqual(
      arrived.slice(arrivedBefore).filter((id) => id === 'node-0'),
      [],
      'no new session reached the drained node',
    );
    assert.deepEqual(leftovers(node), []);
    for (const { frames } of users) frames.ws.close();
  });

  it('SIGTERM with a grace drains too: readyz 503 at once, users told, a clean exit', async () => {
    const node = cluster.nodes.find((n) => n.id === 'node-2')!;
    const user = await sessionOn('node-2');
    await create(user);
    const frames = new Frames(user.socket('/api/stats', { headers: auth }));
    await frames.until('the stats stream', () => frames.opened);
    // A teacher watching a class of this node is told too, on the class's event stream.
    const teacher = await sessionOn('node-2');
    const created = await teacher.request('POST', '/api/classes', { json: { name: 'drained' }, headers: auth });
    assert.equal(created.status, 201, created.text);
    const events = new Frames(teacher.socket(`/api/classes/${created.body.id as string}/events`, { headers: auth }));
    await events.until('the class events', () => events.opened);
    node.child!.kill('SIGTERM');
    await frames.until('the drain notice', () => frames.control.some((m) => (m as StatsServerMessage).type === 'node'));
    await events.until('the teacher told', () => events.control.some((m) => (m as ClassEventMessage).type === 'node'));
    assert.equal((await new Client(node.base).request('GET', '/readyz')).status, 503);
    assert.equal((await new Client(node.base).request('GET', '/healthz')).status, 200, 'alive while it drains');
    const exit = await node.exited!;
    assert.equal(exit.code, 0);
    assert.deepEqual(leftovers(node), []);
    frames.ws.close();
    events.ws.close();
  });
});
