// The playground's networks without root (the host-shell runtime keeps the books): a
// session's containers share one network, made with the first and removed with the last
// (after a grace, in which the session's next container joins it);
// a warm container brings its own network to the session that takes it; a class puts its
// students on one network or each on their own. The kernel's side: root/networks-playground.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClassJson, ContainerJson } from '../src/protocol/index.js';
import { serve, type Client, type HostShellRuntime } from './host-shell-server.js';
import { waitFor } from './root/helpers.js';

const TOKEN = 'sesame-0123456789';

async function remove(client: Client, container: ContainerJson): Promise<void> {
  assert.equal((await client.request('DELETE', `/api/containers/${container.id}`)).status, 204);
}

function live(runtime: HostShellRuntime): string[] {
  return [...runtime.networkMembers.keys()];
}

describe('playground networks', () => {
  it("a session's containers share a network made with the first and removed with the last; another session's is another", async () => {
    const { client, runtime } = await serve({ networkGrace: '0' });
    const alice = client();
    const bob = client();
    const a1 = await alice.createContainer();
    const a2 = await alice.createContainer();
    const b1 = await bob.createContainer();
    assert.ok(a1.network !== null && a2.network !== null && b1.network !== null);
    assert.equal(a1.network.name, a2.network.name);
    assert.notEqual(a1.network.name, b1.network.name);
    assert.notEqual(a1.network.ip, a2.network.ip);
    const got = (await alice.request('GET', `/api/containers/${a1.id}`)).body as ContainerJson;
    assert.deepEqual(got.network, a1.network);
    const listed = (await alice.request('GET', '/api/containers')).body as ContainerJson[];
    assert.deepEqual(
      listed.map((c) => c.network?.name),
      [a1.network.name, a1.network.name],
    );
    assert.deepEqual(live(runtime).sort(), [a1.network.name, b1.network.name].sort());

    await remove(alice, a1);
    assert.ok(live(runtime).includes(a1.network.name), 'kept while a container is on it');
    await remove(alice, a2);
    await waitFor('the session network removed', () => !live(runtime).includes(a1.network!.name));
    const a3 = await alice.createContainer();
    assert.notEqual(a3.network?.name, a1.network.name, 'a new one with the next first container');
    await remove(alice, a3);
    await remove(bob, b1);
    await waitFor('no network left', () => live(runtime).length === 0);
  });

  it("a warm container's network becomes the session's; a session with a network creates cold on it; a retired warm container takes its network along", async () => {
    const { client, runtime, server } = await serve({ warmPool: 1, networkGrace: '0' });
    await waitFor('a warm container running on its network', () =>
      [...runtime.records.values()].some(
        (record) => record.network && runtime.lifecycle(record.id)?.status === 'running',
      ),
    );
    assert.equal(runtime.networksMade.length, 1);
    const warmNetwork = runtime.networksMade[0]!;
    const alice = client();
    const first = await alice.createContainer();
    assert.equal(first.network?.name, warmNetwork, 'the warm container, its network now the session');
    await waitFor('the pool refilled on a network of its own', () => runtime.networksMade.length === 2);
    const poolNetwork = runtime.networksMade[1]!;
    const second = await alice.createContainer();
    assert.equal(second.network?.name, warmNetwork, 'cold, on the session network');
    assert.equal(runtime.networksMade.length, 2, 'no network made for it');
    assert.ok(runtime.networkMembers.get(poolNetwork)?.size === 1, 'the warm container stays in the pool');

    await remove(alice, first);
    await remove(alice, second);
    await waitFor('the session network removed', () => runtime.networksRemoved.includes(warmNetwork));
    await server.close();
    assert.ok(runtime.networksRemoved.includes(poolNetwork), 'the retired warm container took its network');
    assert.deepEqual(live(runtime), []);
  });

  for (const mode of ['class', 'per-student'] as const) {
    it(`a class with network '${mode}'`, async () => {
      const { client, runtime } = await serve({ token: TOKEN, networkGrace: '0' });
      const teacher = client();
      assert.equal((await teacher.request('GET', `/?token=${TOKEN}`)).status, 302);
      const created = await teacher.request('POST', '/api/classes', { json: { name: 'Networks', network: mode } });
      assert.equal(created.status, 201, created.text);
      const cls = created.body as ClassJson;
      assert.equal(cls.network, mode);
      const containers: ContainerJson[] = [];
      for (const name of ['Ada', 'Linus']) {
        const student = client();
        assert.equal((await student.request('POST', '/api/join', { json: { code: cls.joinCode, name } })).status, 201);
        containers.push(await student.createContainer());
      }
      const [one, two] = containers.map((c) => c.network?.name);
      if (mode === 'class') {
        assert.equal(one, `class-${cls.id}`);
        assert.equal(two, one);
      } else {
        assert.ok(one !== undefined && two !== undefined && one !== two);
      }
      assert.equal((await teacher.request('DELETE', `/api/classes/${cls.id}`)).status, 204);
      await waitFor('no network left after the class', () => live(runtime).length === 0);
    });
  }

  it("a session's network outlives its last container by the grace: the next one joins it, another session's never does, the stop removes it", async () => {
    const { client, runtime, server } = await serve({ networkGrace: '1h' });
    const alice = client();
    const bob = client();
    const a1 = await alice.createContainer();
    const network = a1.network!.name;
    await remove(alice, a1);
    assert.deepEqual(live(runtime), [network], 'kept for the grace');
    const b1 = await bob.createContainer();
    assert.notEqual(b1.network?.name, network, "another session's container never joins it");
    const a2 = await alice.createContainer();
    assert.equal(a2.network?.name, network, 'the next container joins it');
    assert.equal(runtime.networksMade.length, 2, 'one network per session');
    await remove(alice, a2);
    await remove(bob, b1);
    assert.equal(live(runtime).length, 2, 'both in their grace');
    await server.close();
    assert.deepEqual(live(runtime), [], 'the stop removes networks in their grace');
  });

  it('a network past its grace is removed, and the next container gets a new one', async () => {
    const { client, runtime } = await serve({ networkGrace: '300ms' });
    const alice = client();
    const a1 = await alice.createContainer();
    await remove(alice, a1);
    assert.deepEqual(live(runtime), [a1.network!.name]);
    await waitFor('the network removed after its grace', () => runtime.networksRemoved.includes(a1.network!.name));
    const a2 = await alice.createContainer();
    assert.notEqual(a2.network?.name, a1.network!.name);
    await remove(alice, a2);
  });

  it('a session whose network is in its grace takes a warm container, and its old network goes when the grace ends', async () => {
    const { client, runtime } = await serve({ warmPool: 1, networkGrace: '2s' });
    await waitFor('a warm container running', () =>
      [...runtime.records.values()].some(
        (record) => record.network && runtime.lifecycle(record.id)?.status === 'running',
      ),
    );
    const alice = client();
    const cold = await alice.createContainer({ cmd: ['sh'] });
    await remove(alice, cold);
    assert.ok(live(runtime).includes(cold.network!.name), 'in its grace');
    const warm = await alice.createContainer();
    assert.notEqual(warm.network?.name, cold.network!.name, 'the warm container, on its own network');
    assert.ok(live(runtime).includes(cold.network!.name), 'not removed in the click');
    await waitFor('the network in its grace removed', () => runtime.networksRemoved.includes(cold.network!.name));
    const next = await alice.createContainer({ cmd: ['sh'] });
    assert.equal(next.network?.name, warm.network?.name, "the session's network is now the warm container's");
    await remove(alice, warm);
    await remove(alice, next);
  });

  it('networks in their grace make way when the range has no subnet left, and a failed network waits out no grace', async () => {
    const { client, runtime } = await serve({ networkGrace: '1h' });
    runtime.networkSubnets = 2;
    const sessions = [client(), client(), client()];
    const [first, second] = [await sessions[0]!.createContainer(), await sessions[1]!.createContainer()];
    await remove(sessions[0]!, first);
    await remove(sessions[1]!, second);
    assert.equal(live(runtime).length, 2, 'both in their grace, every subnet taken');
    const third = await sessions[2]!.createContainer();
    assert.ok(third.network);
    assert.deepEqual(live(runtime), [third.network.name], 'the lingering ones were removed for it');

    // With every subnet held by a container, the create fails in one line and keeps nothing.
    runtime.networkSubnets = 1;
    const reply = await sessions[0]!.request('POST', '/api/containers', { json: {} });
    assert.equal(reply.status, 503, reply.text);
    assert.match((reply.body as { error: { message: string } }).error.message, /no free subnet/);
    assert.deepEqual(live(runtime), [third.network.name]);
    runtime.networkSubnets = Infinity;
    const again = await sessions[0]!.createContainer();
    assert.ok(again.network && again.network.name !== third.network.name, 'a new network, not a failed one kept');
    await remove(sessions[0]!, again);
    await remove(sessions[2]!, third);
  });

  it('gives containers only lo on a host whose kernel cannot make networks, instead of refusing them', async () => {
    const { client, runtime } = await serve();
    runtime.networksUnsupported = true;
    const alice = client();
    const first = await alice.createContainer();
    assert.equal(first.network, null);
    const second = await alice.createContainer();
    assert.equal(second.network, null, 'and it does not try again for every container');
    assert.deepEqual(live(runtime), []);
    await remove(alice, first);
    await remove(alice, second);
  });

  it('refuses an unknown class network mode', async () => {
    const { client } = await serve({ token: TOKEN });
    const teacher = client();
    await teacher.request('GET', `/?token=${TOKEN}`);
    const reply = await teacher.request('POST', '/api/classes', { json: { name: 'x', network: 'host' } });
    assert.equal(reply.status, 400, reply.text);
  });
});
