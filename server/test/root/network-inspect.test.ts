/**
 * The inspector's network on a real kernel: two containers of one session each see lo
 * and eth0 with its address and the subnet's route, and the host's end of eth0 is a veth
 * on the network's bridge whose packet counters grow with a ping; a container with
 * `--network none` sees only lo; another session cannot inspect. Packets go only to
 * addresses inside namespaces made here.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ContainerJson, ExecResultJson, InspectJson, InspectNetworkJson } from '../../src/protocol/index.js';
import { Runtime } from '../../src/runtime/containers.js';
import { readContainerNetwork } from '../../src/runtime/network-info.js';
import { mdocker, rootOnly } from './helpers.js';
import { Client } from './playground-client.js';
import { startRealServer, type RealServer } from './real-server.js';

const skip = rootOnly();
if (skip) console.log(`# skipping network-inspect: ${skip}`);

async function inspectNetwork(client: Client, container: ContainerJson): Promise<InspectNetworkJson> {
  const reply = await client.request('GET', `/api/containers/${container.id}/inspect`);
  assert.equal(reply.status, 200, reply.text);
  const network = (reply.body as InspectJson).network;
  assert.ok(network, `the inspect answer has the container's network: ${reply.text}`);
  return network;
}

/** The dotted subnet of ip/prefix: 10.89.3.7/24 → 10.89.3.0/24 */
function subnetOf(ip: string, prefix: number): string {
  const n = ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
  const base = n - (n % 2 ** (32 - prefix));
  return `${[base >>> 24, (base >>> 16) & 255, (base >>> 8) & 255, base & 255].join('.')}/${prefix}`;
}

function assertLoopbackOnly(network: InspectNetworkJson): void {
  assert.deepEqual(
    network.interfaces.map((i) => i.name),
    ['lo'],
  );
  const lo = network.interfaces[0]!;
  assert.equal(lo.up, true);
  assert.deepEqual(lo.addresses, [{ address: '127.0.0.1', prefix: 8, scope: 'host' }]);
  assert.equal(network.peer, null);
}

describe('the inspector reads a container network on a real kernel', { skip }, () => {
  let real: RealServer;
  let stateRoot = '';
  let base = '';

  before(async () => {
    real = await startRealServer('netinspect-test', { createRatePerIp: 1000, createRatePerSession: 1000 });
    ({ stateRoot, base } = real);
  });

  after(() => real?.close());

  it("two containers of one network: eth0 with its address and the subnet's route, lo, and eth0's peer on br0 counting a ping", async () => {
    const alice = new Client(base);
    const one = await alice.create();
    const two = await alice.create();
    assert.ok(one.network && two.network, 'both containers are on a network');

    for (const container of [one, two]) {
      const network = await inspectNetwork(alice, container);
      assert.equal(network.name, container.network!.name);
      assert.deepEqual(
        network.interfaces.map((i) => i.name),
        ['lo', 'eth0'],
      );
      const [lo, eth0] = network.interfaces as [
        InspectNetworkJson['interfaces'][0],
        InspectNetworkJson['interfaces'][0],
      ];
      assert.deepEqual(lo.addresses, [{ address: '127.0.0.1', prefix: 8, scope: 'host' }]);
      assert.equal(eth0.kind, 'veth');
      assert.equal(eth0.up, true);
      assert.match(eth0.mac ?? '', /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      assert.equal(eth0.addresses.length, 1, JSON.stringify(eth0.addresses));
      const address = eth0.addresses[0]!;
      assert.equal(address.address, container.network!.ip);
      assert.equal(address.scope, 'global');
      // The subnet's route, which the kernel adds with the address, and no other.
      assert.deepEqual(network.routes, [
        {
          destination: subnetOf(address.address, address.prefix),
          gateway: null,
          device: 'eth0',
          source: address.address,
          scope: 'link',
          protocol: 'kernel',
        },
      ]);
      const peer = network.peer;
      assert.ok(peer, "eth0's peer is found in the network's namespace");
      assert.equal(peer.peerOf, 'eth0');
      assert.equal(peer.kind, 'veth');
      assert.equal(peer.master, 'br0');
      assert.equal(peer.up, true);
      assert.equal(peer.operState, 'up');
      assert.equal(peer.name, `md${container.id.slice(0, 12)}`);
    }

    const before = await inspectNetwork(alice, one);
    const ping = await alice.request('POST', `/api/containers/${one.id}/exec`, {
      cmd: ['ping', '-c', '3', '-W', '3', two.network!.ip],
      timeoutMs: 20_000,
    });
    assert.equal(ping.status, 200, ping.text);
    const result = ping.body as ExecResultJson;
    assert.equal(result.exitCode, 0, result.stdout + result.stderr);
    const afterPing = await inspectNetwork(alice, one);
    const eth0Before = before.interfaces.find((i) => i.name === 'eth0')!;
    const eth0After = afterPing.interfaces.find((i) => i.name === 'eth0')!;
    // Three echo requests out of eth0 are three packets into its peer, three replies the other way.
    assert.ok(
      eth0After.txPackets >= eth0Before.txPackets + 3,
      `eth0 tx ${eth0Before.txPackets} → ${eth0After.txPackets}`,
    );
    assert.ok(
      eth0After.rxPackets >= eth0Before.rxPackets + 3,
      `eth0 rx ${eth0Before.rxPackets} → ${eth0After.rxPackets}`,
    );
    assert.ok(
      afterPing.peer!.rxPackets >= before.peer!.rxPackets + 3,
      `peer rx ${before.peer!.rxPackets} → ${afterPing.peer!.rxPackets}`,
    );
    assert.ok(
      afterPing.peer!.txPackets >= before.peer!.txPackets + 3,
      `peer tx ${before.peer!.txPackets} → ${afterPing.peer!.txPackets}`,
    );
    assert.ok(afterPing.peer!.rxBytes > before.peer!.rxBytes);

    const stranger = new Client(base);
    await stranger.create();
    const refused = await stranger.request('GET', `/api/containers/${one.id}/inspect`);
    assert.equal(refused.status, 404, "another session's container is not found");

    for (const container of [one, two]) {
      assert.equal((await alice.request('DELETE', `/api/containers/${container.id}`)).status, 204);
    }
  });

  it('a container with --network none shows only lo, and no peer', async () => {
    const env = { MDOCKER_STATE_ROOT: stateRoot };
    const name = `netinspect-none-${process.pid}`;
    const run = await mdocker(['run', '-d', '--name', name, '--network', 'none', 'busybox', 'sleep', '1000'], { env });
    assert.equal(run.code, 0, run.stderr);
    try {
      const runtime = await Runtime.open({ stateRoot });
      const view = await runtime.get(name);
      assert.ok(view.init, 'the container is running');
      assertLoopbackOnly(await readContainerNetwork({ init: view.init, network: null }));
      assert.deepEqual((await readContainerNetwork({ init: view.init, network: null })).routes, []);
    } finally {
      const removed = await mdocker(['rm', '-f', name], { env });
      assert.equal(removed.code, 0, removed.stderr);
    }
  });
});
