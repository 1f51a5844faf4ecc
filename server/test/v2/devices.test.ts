/**
 * The device allowlist on cgroup v2, where the launcher attaches a
 * BPF_PROG_TYPE_CGROUP_DEVICE program to the container's cgroup before its first
 * instruction: even host root in a container, with MKNOD and with SYS_ADMIN to mount
 * the host's devtmpfs, opens none of the host's block devices and makes no node, while
 * the bound /dev nodes work.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { cli, v2VmOnly } from './vm.js';

const skip = v2VmOnly();
if (skip) console.log(`# skipping devices: ${skip}`);

describe('the cgroup v2 device program', { skip }, () => {
  test('--userns host --cap-add MKNOD --cap-add SYS_ADMIN: a host block device opens nothing (EPERM), /dev/null works', async () => {
    const block = readdirSync('/sys/class/block').find((name) => !name.startsWith('ram')) ?? '';
    const [major, minor] = readFileSync(`/sys/class/block/${block}/dev`, 'utf8').trim().split(':');
    const r = await cli([
      'run',
      '--rm',
      '--userns',
      'host',
      '--cap-add',
      'MKNOD',
      '--cap-add',
      'SYS_ADMIN',
      'busybox',
      'sh',
      '-c',
      // devtmpfs holds the host's own nodes, on a mount without nodev.
      `mkdir -p /mnt/d && mount -t devtmpfs devtmpfs /mnt/d && head -c0 /mnt/d/${block}; ` +
        `mknod /mnt/d/disk b ${major} ${minor}; mknod /tmp/null c 1 3; ` +
        'echo x > /dev/null && head -c1 /mnt/d/zero | wc -c',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stderr,
      `head: /mnt/d/${block}: Operation not permitted\n` +
        'mknod: /mnt/d/disk: Operation not permitted\n' +
        'mknod: /tmp/null: Operation not permitted\n',
    );
    assert.equal(r.stdout.trim(), '1', 'the allowed devices open, through any node');
  });
});
