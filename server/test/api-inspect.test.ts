// What inspect reads from /proc: namespace links, NSpid, uid maps.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIdMap, parseNamespaceLink, parseProcStatus, toInsideId } from '../src/runtime/inspect.js';

describe('inspect parsing', () => {
  it('reads the inode of a namespace link', () => {
    assert.equal(parseNamespaceLink('pid:[4026531836]'), 4026531836);
    assert.equal(parseNamespaceLink('cgroup:[4026531835]'), 4026531835);
    assert.equal(parseNamespaceLink('garbage'), null);
  });

  it('takes the host PID first and the container PID last from NSpid', () => {
    const status = parseProcStatus('Name:\tsleep\nUid:\t100000\t100000\t100000\t100000\nNSpid:\t4242\t7\n');
    assert.deepEqual(status, { nsPids: [4242, 7], uid: 100000, name: 'sleep' });
  });

  it('maps a host uid into the container through uid_map', () => {
    const map = parseIdMap('         0     100000      65536\n');
    assert.equal(toInsideId(map, 100000), 0);
    assert.equal(toInsideId(map, 101000), 1000);
    assert.equal(toInsideId(map, 0), null);
    assert.equal(toInsideId(parseIdMap('0 0 4294967295'), 0), 0);
  });
});
