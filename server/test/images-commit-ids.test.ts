/**
 * A commit maps the upper layer's owners (host ids) back to the container's through its
 * init's uid_map and gid_map: a pool slot's range, the host's identity map, and ids no
 * range maps (the kernel's overflow id, nobody).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { containerId, layerCapability, parseIdMap } from '../src/runtime/images/commit.js';

describe('commit id maps', () => {
  it('parses a uid_map as the kernel prints it', () => {
    assert.deepEqual(parseIdMap('         0     100000      65536\n'), [{ inside: 0, outside: 100000, count: 65536 }]);
    assert.deepEqual(parseIdMap('0 0 4294967295\n'), [{ inside: 0, outside: 0, count: 4294967295 }]);
    assert.deepEqual(parseIdMap('0 1000 1\n1 200000 1000\n'), [
      { inside: 0, outside: 1000, count: 1 },
      { inside: 1, outside: 200000, count: 1000 },
    ]);
    assert.deepEqual(parseIdMap('garbage\n1 2\n'), []);
  });

  it("maps a slot's host ids back to the container's, and unmapped ones to nobody", () => {
    const slot = parseIdMap('0 100000 65536\n');
    assert.equal(containerId(slot, 100000), 0);
    assert.equal(containerId(slot, 101000), 1000);
    assert.equal(containerId(slot, 165535), 65535);
    assert.equal(containerId(slot, 165536), 65534);
    assert.equal(containerId(slot, 0), 65534);
    assert.equal(containerId(slot, 99999), 65534);
    const split = parseIdMap('0 1000 1\n1 200000 1000\n');
    assert.equal(containerId(split, 1000), 0);
    assert.equal(containerId(split, 200004), 5);
  });

  it('keeps the ids of a container in the host user namespace', () => {
    const host = parseIdMap('0 0 4294967295\n');
    assert.equal(containerId(host, 0), 0);
    assert.equal(containerId(host, 1000), 1000);
  });
});

describe('commit file capabilities', () => {
  const slot = parseIdMap('0 100000 65536\n');
  const v2 = Buffer.from([0x01, 0, 0, 0x02, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const v3 = (rootid: number) => {
    const value = Buffer.alloc(24);
    v2.copy(value);
    value.writeUInt32LE(0x03000001, 0);
    value.writeUInt32LE(rootid, 20);
    return value;
  };

  it("makes the namespace root's v3 capability the v2 form images use", () => {
    assert.deepEqual(layerCapability(v3(100000), slot), v2);
  });

  it("keeps another mapped rootid as the container's, drops an unmapped one", () => {
    assert.deepEqual(layerCapability(v3(101000), slot), v3(1000));
    assert.equal(layerCapability(v3(5), slot), null);
  });

  it('keeps a v2 capability and drops a malformed one', () => {
    assert.deepEqual(layerCapability(v2, slot), v2);
    assert.equal(layerCapability(Buffer.from([1, 0, 0, 2, 0]), slot), null);
    assert.equal(layerCapability(Buffer.alloc(24), slot), null);
  });
});
