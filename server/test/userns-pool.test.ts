// The pool of host ids the containers' user namespaces come from: the mdocker user's
// ranges in /etc/subuid and /etc/subgid, refused when an account of the host lies inside.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_USERNS_POOL, USERNS_SLOT_IDS, poolClashes, usernsPoolFrom } from '../src/runtime/launcher.js';

describe('the user namespace pool', () => {
  it("takes the mdocker user's ranges, in whole slots", () => {
    const pool = usernsPoolFrom('alice:100000:65536\nmdocker:268435456:1073741824\n', 'mdocker:268435456:1073741824\n');
    assert.deepEqual(pool, { uidBase: 268435456, gidBase: 268435456, slots: 1073741824 / USERNS_SLOT_IDS });
  });

  it('falls back to 2^28 when mdocker has no range, and refuses half a configuration', () => {
    assert.deepEqual(usernsPoolFrom('alice:100000:65536\n', ''), DEFAULT_USERNS_POOL);
    assert.throws(() => usernsPoolFrom('mdocker:268435456:65536\n', ''), /only one of/);
    assert.throws(() => usernsPoolFrom('mdocker:0:65536\n', 'mdocker:0:65536\n'), /start above 0/);
  });

  it('finds the users and groups of the name service that lie inside the pool', () => {
    const pool = { uidBase: 1_000_000, gidBase: 2_000_000, slots: 2 };
    const passwd = [
      'root:x:0:0:root:/root:/bin/bash',
      'ldapuser:*:1000005:100::/home/l:/bin/sh',
      'edge:x:1131072:100::/:/bin/sh', // 1_000_000 + 2 * 65536: the first id past the pool
      'nobody:x:65534:65534::/:/usr/sbin/nologin',
    ].join('\n');
    const group = ['root:x:0:', 'team:x:2000000:', 'other:x:1000005:'].join('\n');
    assert.deepEqual(poolClashes(pool, passwd, group), [
      { kind: 'user', name: 'ldapuser', id: 1_000_005 },
      { kind: 'group', name: 'team', id: 2_000_000 },
    ]);
    assert.deepEqual(poolClashes(pool, 'root:x:0:0::/:/bin/sh\n', 'root:x:0:\n'), []);
  });
});
