import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMdockerError } from '../src/runtime/errors.js';
import {
  EGRESS_BLOCKED,
  egressAddresses,
  egressRules,
  formatCidr,
  hostForwardingProblem,
  nameservers,
  hostsFile,
  memberAddresses,
  nextFreeSubnet,
  numberToIp,
  parseCidr,
  validateNetworkName,
} from '../src/runtime/networks.js';

describe('network subnets', () => {
  it('parses a CIDR and refuses one whose base is not the first address', () => {
    assert.deepEqual(formatCidr(parseCidr('10.89.3.0/24')), '10.89.3.0/24');
    assert.throws(
      () => parseCidr('10.89.3.1/24'),
      (e) => isMdockerError(e) && e.code === 'INVALID_ARGUMENT',
    );
    assert.throws(() => parseCidr('10.89.3.0/31'), /LEN 8 to 30/);
    assert.throws(() => parseCidr('10.300.0.0/16'), /invalid IPv4/);
  });

  it('hands out the next /24 of the range that overlaps no network', () => {
    const range = parseCidr('10.89.0.0/16');
    assert.equal(formatCidr(nextFreeSubnet(range, [])!), '10.89.0.0/24');
    const taken = [parseCidr('10.89.0.0/24'), parseCidr('10.89.1.0/25')];
    assert.equal(formatCidr(nextFreeSubnet(range, taken)!), '10.89.2.0/24');
    assert.equal(nextFreeSubnet(parseCidr('10.89.0.0/24'), [parseCidr('10.89.0.0/16')]), null);
    assert.equal(formatCidr(nextFreeSubnet(parseCidr('192.168.5.0/28'), [])!), '192.168.5.0/28');
  });

  it('keeps .1 (a gateway) and the broadcast address out of the members', () => {
    const { first, last } = memberAddresses(parseCidr('10.89.3.0/24'));
    assert.equal(numberToIp(first), '10.89.3.2');
    assert.equal(numberToIp(last), '10.89.3.254');
  });
});

describe('network hosts file', () => {
  it('lists localhost, then each member by address with its hostname and name', () => {
    const text = hostsFile([
      { id: 'b', name: 'web', hostname: 'web', ip: '10.89.0.10' },
      { id: 'a', name: 'mdocker-1', hostname: 'alpha', ip: '10.89.0.2' },
    ]);
    assert.equal(
      text,
      '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.89.0.2\talpha mdocker-1\n10.89.0.10\tweb\n',
    );
  });

  it('refuses names that are no file name, and "none"', () => {
    for (const bad of ['none', '../x', '', 'a/b', 'x'.repeat(64), 'subnets']) {
      assert.throws(() => validateNetworkName(bad), /invalid network name/);
    }
    validateNetworkName('class-12_a.b');
  });
});

describe('network egress', () => {
  const egress = { uplink: 'mdu0a1b2c3d', ...egressAddresses(parseCidr('10.89.7.0/24')), dns: ['192.168.1.1'] };

  it("puts the gateway first and the uplink in the last /30, out of the members' addresses", () => {
    assert.deepEqual(egressAddresses(parseCidr('10.89.7.0/24')), {
      gateway: '10.89.7.1',
      hostAddress: '10.89.7.253',
      peerAddress: '10.89.7.254',
    });
    const { first, last } = memberAddresses(parseCidr('10.89.7.0/24'), true);
    assert.equal(numberToIp(first), '10.89.7.2');
    assert.equal(numberToIp(last), '10.89.7.251');
  });

  it("forwards in the network's namespace only from the bridge out of the uplink, and the answers back", () => {
    const { network } = egressRules(egress, '10.89.0.0/16');
    assert.match(network, /hook forward priority filter; policy drop;/);
    assert.match(network, /iifname "br0" oifname "up0" accept/);
    assert.match(network, /iifname "up0" oifname "br0" ct state established,related accept/);
    assert.match(network, /hook input priority filter; policy drop;/);
    assert.match(network, /oifname "up0" masquerade/);
  });

  it("keeps the host, private and link-local addresses and other networks out of the host's forwarding, and lets nothing in", () => {
    const { host } = egressRules(egress, '10.89.0.0/16');
    assert.match(host, /^table inet mdocker-mdu0a1b2c3d\ndelete table inet mdocker-mdu0a1b2c3d\n/);
    assert.match(host, /hook input priority filter; policy accept;\n\s+iifname "mdu0a1b2c3d" drop/);
    assert.match(host, /oifname "mdu0a1b2c3d" ct state established,related accept\n\s+oifname "mdu0a1b2c3d" drop/);
    for (const range of [...EGRESS_BLOCKED, '10.89.0.0/16']) assert.ok(host.includes(range), range);
    assert.ok(EGRESS_BLOCKED.includes('169.254.0.0/16'), 'cloud metadata');
    // The host's own nameserver may be private: only port 53 of it is let through, before the block.
    const dnsAt = host.indexOf('ip daddr { 192.168.1.1 } meta l4proto { tcp, udp } th dport 53 accept');
    assert.ok(dnsAt > 0 && dnsAt < host.indexOf('169.254.0.0/16'));
    assert.match(host, /ip saddr 10\.89\.7\.254 oifname != "mdu0a1b2c3d" masquerade/);
    assert.doesNotMatch(egressRules({ ...egress, dns: [] }, '10.89.0.0/16').host, /dport 53/);
  });

  it("takes the host's IPv4 nameservers but loopback ones, up to three", () => {
    const text =
      'search lan\nnameserver 127.0.0.53\nnameserver 192.168.1.1\n# nameserver 8.8.8.8\nnameserver ::1\nnameserver 9.9.9.9\nnameserver 9.9.9.9\nnameserver 1.1.1.1\nnameserver 8.8.4.4\nnameserver 1.2.3.4; rm -rf\n';
    assert.deepEqual(nameservers(text), ['192.168.1.1', '9.9.9.9', '1.1.1.1']);
    assert.deepEqual(nameservers('nameserver 127.0.0.53\n'), []);
  });

  it("says when the host's default route does not forward, and is quiet when it does", () => {
    const dir = mkdtempSync(join(tmpdir(), 'mdocker-fwd-'));
    try {
      const routes = join(dir, 'route');
      const header = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n';
      writeFileSync(routes, header + 'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n');
      mkdirSync(join(dir, 'conf', 'eth0'), { recursive: true });
      writeFileSync(join(dir, 'conf', 'eth0', 'forwarding'), '0\n');
      assert.match(hostForwardingProblem(routes, join(dir, 'conf')) ?? '', /net\.ipv4\.conf\.eth0\.forwarding=1/);
      writeFileSync(join(dir, 'conf', 'eth0', 'forwarding'), '1\n');
      assert.equal(hostForwardingProblem(routes, join(dir, 'conf')), null);
      writeFileSync(routes, header);
      assert.match(hostForwardingProblem(routes, join(dir, 'conf')) ?? '', /no default route/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
