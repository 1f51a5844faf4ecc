// What the runtime makes of `mdocker-init netinfo`'s dumps: names for the kernel's
// numbers, routes by device name, and eth0's peer found by the links' cross indexes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { containerSide, peerSide, type NetnsDump } from '../src/runtime/network-info.js';

const counters = { rxBytes: 10, rxPackets: 1, txBytes: 20, txPackets: 2 };
const noLink = { master: null, link: null, linkNetnsid: null };

const container: NetnsDump = {
  links: [
    {
      index: 2,
      name: 'eth0',
      kind: 'veth',
      flags: 0x11043,
      mtu: 1500,
      operstate: 6,
      mac: '0a:00:00:00:00:02',
      master: null,
      link: 7,
      linkNetnsid: 0,
      ...counters,
    },
    {
      index: 1,
      name: 'lo',
      kind: null,
      flags: 0x10049,
      mtu: 65536,
      operstate: 0,
      mac: '00:00:00:00:00:00',
      ...noLink,
      ...counters,
    },
  ],
  addresses: [
    { index: 1, address: '127.0.0.1', prefix: 8, scope: 254 },
    { index: 2, address: '10.89.3.2', prefix: 24, scope: 0 },
  ],
  routes: [
    {
      destination: '10.89.3.0',
      prefix: 24,
      gateway: null,
      source: '10.89.3.2',
      oif: 2,
      metric: null,
      scope: 253,
      protocol: 2,
      type: 1,
    },
    {
      destination: '0.0.0.0',
      prefix: 0,
      gateway: '10.89.3.1',
      source: null,
      oif: 2,
      metric: null,
      scope: 0,
      protocol: 3,
      type: 1,
    },
    {
      destination: '10.0.0.0',
      prefix: 8,
      gateway: null,
      source: null,
      oif: null,
      metric: null,
      scope: 0,
      protocol: 4,
      type: 7,
    },
  ],
  truncated: false,
};

const network: NetnsDump = {
  links: [
    {
      index: 1,
      name: 'lo',
      kind: null,
      flags: 0x8,
      mtu: 65536,
      operstate: 2,
      mac: '00:00:00:00:00:00',
      ...noLink,
      ...counters,
    },
    {
      index: 2,
      name: 'br0',
      kind: 'bridge',
      flags: 0x11043,
      mtu: 1500,
      operstate: 6,
      mac: '0a:00:00:00:00:01',
      ...noLink,
      ...counters,
    },
    // Another member's veth whose index happens to be eth0's IFLA_LINK elsewhere is not it: its link is not eth0's index.
    {
      index: 6,
      name: 'mdother',
      kind: 'veth',
      flags: 0x11043,
      mtu: 1500,
      operstate: 6,
      mac: null,
      master: 2,
      link: 9,
      linkNetnsid: 1,
      ...counters,
    },
    {
      index: 7,
      name: 'md0123456789ab',
      kind: 'veth',
      flags: 0x1002,
      mtu: 1500,
      operstate: 2,
      mac: '0a:00:00:00:00:03',
      master: 2,
      link: 2,
      linkNetnsid: 1,
      ...counters,
    },
  ],
  addresses: [],
  routes: [],
  truncated: false,
};

describe('network info', () => {
  test('interfaces by index with their addresses, states named', () => {
    const { interfaces } = containerSide(container);
    assert.deepEqual(
      interfaces.map((i) => [i.name, i.up, i.operState, i.addresses]),
      [
        ['lo', true, 'unknown', [{ address: '127.0.0.1', prefix: 8, scope: 'host' }]],
        ['eth0', true, 'up', [{ address: '10.89.3.2', prefix: 24, scope: 'global' }]],
      ],
    );
  });

  test('routes: CIDR or default, device by name, scope and protocol named, other types prefixed', () => {
    assert.deepEqual(containerSide(container).routes, [
      {
        destination: '10.89.3.0/24',
        gateway: null,
        device: 'eth0',
        source: '10.89.3.2',
        scope: 'link',
        protocol: 'kernel',
      },
      { destination: 'default', gateway: '10.89.3.1', device: 'eth0', source: null, scope: 'global', protocol: 'boot' },
      {
        destination: 'unreachable 10.0.0.0/8',
        gateway: null,
        device: null,
        source: null,
        scope: 'global',
        protocol: 'static',
      },
    ]);
  });

  test("eth0's peer is the link whose index is eth0's IFLA_LINK and whose IFLA_LINK is eth0's index", () => {
    const peer = peerSide(container, network);
    assert.ok(peer);
    assert.equal(peer.name, 'md0123456789ab');
    assert.equal(peer.master, 'br0');
    assert.equal(peer.peerOf, 'eth0');
    assert.equal(peer.up, false);
    assert.equal(peer.operState, 'down');
  });

  test('no peer without eth0, or when the indexes do not pair', () => {
    assert.equal(peerSide({ ...container, links: container.links.filter((l) => l.name === 'lo') }, network), null);
    const unpaired = { ...network, links: network.links.map((l) => (l.index === 7 ? { ...l, link: 5 } : l)) };
    assert.equal(peerSide(container, unpaired), null);
  });
});
