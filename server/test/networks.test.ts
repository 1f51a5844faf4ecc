import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMdockerError } from '../src/runtime/errors.js';
import {
  formatCidr,
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
