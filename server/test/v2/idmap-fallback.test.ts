/**
 * Debian 12's kernel (6.1) cannot idmap the 9p-under-overlay root the VM runs from: with
 * the image store there, `mdocker info` says so and why, and containers still run, in the
 * host's user namespace, with one warning naming the fix (SECURITY.md, "The fallback").
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { mdocker, repoRoot } from '../root/helpers.js';
import { v2VmOnly } from './vm.js';

const skip = v2VmOnly();
if (skip) console.log(`# skipping idmap fallback: ${skip}`);

// The checkout's own image store: on the VM's overlay of the host's root over 9p.
const env = { MDOCKER_IMAGES: join(repoRoot, 'rootfs/images') };

describe('an image store that cannot be idmapped', { skip }, () => {
  test("mdocker info says no, with the kernel's reason", async () => {
    const r = await mdocker(['info', '--format', 'json'], { env, timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as { idmappedMounts: { dir: string; supported: boolean; reason: string } };
    assert.equal(info.idmappedMounts.dir, env.MDOCKER_IMAGES);
    assert.equal(info.idmappedMounts.supported, false);
    assert.match(info.idmappedMounts.reason, /does not support idmapped mounts/);
  });

  test('a container still runs, without a user namespace, and the CLI warns once with the fix', async () => {
    const r = await mdocker(['run', '--rm', 'busybox', 'sh', '-c', 'cat /proc/self/uid_map; echo pid=$$'], {
      env,
      timeoutMs: 90_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\s*0\s+0\s+4294967295\s*$/m, 'the host user namespace: uid 0 is host uid 0');
    assert.match(r.stdout, /pid=1/);
    const warnings = r.stderr.split('\n').filter((line) => line.startsWith('mdocker: warning:'));
    assert.equal(warnings.length, 1, r.stderr);
    assert.match(warnings[0] ?? '', /without a user namespace.*ext4, xfs or btrfs \(MDOCKER_IMAGES[;)]/);
  });
});
