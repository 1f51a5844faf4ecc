/**
 * File capabilities in image layers: a layer's security.capability (a pax
 * SCHILY.xattr record) is kept, and works in the container's user namespace through the
 * layer's idmapped mount and the overlay; every other extended attribute a layer names is
 * dropped: trusted.overlay.* and user.overlay.* would steer the container's overlay,
 * security.selinux is the host's.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mdocker, rootOnly } from './helpers.js';
import { allBlobs, image, layer, makeTar, writeLayout } from './oci-builder.js';

const skip = rootOnly();

/** vfs_cap_data v2: magic 0x02000001 (effective), permitted CAP_NET_RAW (bit 13), nothing else. */
const NET_RAW_EP = '\x01\x00\x00\x02' + '\x00\x20\x00\x00' + '\x00'.repeat(12);
const CAP_EFF = "sed -n 's/^CapEff:\\t*//p' /proc/self/status";
const NET_RAW_MASK = '0000000000002000';

/** The extended attributes of a file, as the host sees them (Node has no listxattr). */
function xattrsOf(path: string): string[] {
  const r = spawnSync('python3', ['-c', 'import os,sys; print(" ".join(sorted(os.listxattr(sys.argv[1]))))', path], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split(' ').filter(Boolean);
}

describe('file capabilities in image layers', { skip }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const cli = (args: string[]) => mdocker(args, { env, timeoutMs: 60_000 });
  const run = (flags: string[], script: string) =>
    cli(['run', '--rm', '-u', 'app', ...flags, 'test.local/caps:v1', '/bin/sh', '-c', script]);
  const privileged = ['--cap-add', 'NET_RAW', '--security-opt', 'no-new-privileges=false'];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mdocker-filecaps-'));
    env = { MDOCKER_DATA_DIR: join(dir, 'data') };
    const busybox = readFileSync('/bin/busybox');
    const base = await makeTar([
      { name: 'bin/', type: 'directory' },
      { name: 'bin/busybox', content: busybox, mode: 0o755 },
      ...['sh', 'sed', 'cat', 'ping', 'ls'].map((a) => ({
        name: `bin/${a}`,
        type: 'symlink' as const,
        linkname: 'busybox',
      })),
      { name: 'etc/', type: 'directory' },
      { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/:/bin/sh\n' },
      { name: 'etc/group', content: 'root:x:0:\napp:x:1000:\n' },
      { name: 'data/', type: 'directory' },
      { name: 'data/old', content: 'from the base layer\n' },
    ]);
    // busybox runs the applet named by argv[1] when its own name starts with "busybox".
    const second = await makeTar([
      {
        name: 'bin/busybox-netraw',
        content: busybox,
        mode: 0o755,
        pax: { 'SCHILY.xattr.security.capability': NET_RAW_EP },
      },
      {
        name: 'bin/busybox-badcap',
        content: busybox,
        mode: 0o755,
        pax: { 'SCHILY.xattr.security.capability': '\x01\x00\x00\x02\x00' },
      },
      // The attacker's: an opaque mark that would hide the base's /data, and marks and
      // labels the host's kernel would act on.
      {
        name: 'data/',
        type: 'directory',
        pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y', 'SCHILY.xattr.user.overlay.opaque': 'y' },
      },
      {
        name: 'etc/victim',
        content: 'x\n',
        pax: {
          'SCHILY.xattr.security.selinux': 'system_u:object_r:shadow_t:s0',
          'SCHILY.xattr.trusted.overlay.metacopy': '',
          'SCHILY.xattr.user.overlay.redirect': '/etc/passwd',
          'SCHILY.xattr.trusted.evil': 'y',
        },
      },
    ]);
    const parts = image([layer(base), layer(second)], { Cmd: ['/bin/sh'] });
    const layout = join(dir, 'layout');
    await writeLayout(layout, parts.manifest, allBlobs(parts).slice(1), 'test.local/caps:v1');
    const loaded = await cli(['load', '-i', layout]);
    assert.equal(loaded.code, 0, loaded.stderr);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function storedFile(rel: string): Promise<string> {
    const layers = join(dir, 'data/images/layers');
    for (const hex of await readdir(layers)) {
      const path = join(layers, hex, 'root', rel);
      if (spawnSync('test', ['-e', path]).status === 0) return path;
    }
    throw new Error(`${rel} is in no layer`);
  }

  it('keeps a v2 file capability, which gives a user of the container CAP_NET_RAW at exec', async () => {
    assert.deepEqual(xattrsOf(await storedFile('bin/busybox-netraw')), ['security.capability']);
    const caps = await run(privileged, `/bin/busybox-netraw ${CAP_EFF}; ${CAP_EFF}`);
    assert.equal(caps.code, 0, caps.stderr);
    assert.equal(caps.stdout, `${NET_RAW_MASK}\n0000000000000000\n`);
    const ping = await run(privileged, '/bin/busybox-netraw ping -c 1 -W 2 127.0.0.1 >/dev/null && echo pinged');
    assert.equal(ping.stdout, 'pinged\n', ping.stderr);
    const plain = await run(privileged, '/bin/ping -c 1 -W 2 127.0.0.1 2>&1; echo "exit $?"');
    assert.match(plain.stdout, /permission denied|Operation not permitted/i);
    assert.match(plain.stdout, /exit 1\n$/, 'the same program without the capability cannot ping');
  });

  it('grants nothing under no_new_privs (the default) or outside the bounding set', async () => {
    const nnp = await run(['--cap-add', 'NET_RAW'], `/bin/busybox-netraw ${CAP_EFF}`);
    assert.equal(nnp.stdout, '0000000000000000\n', nnp.stderr);
    // A capability-dumb file whose permitted set cannot be granted in full: execve refuses.
    const bounded = await run(
      ['--security-opt', 'no-new-privileges=false'],
      `/bin/busybox-netraw ${CAP_EFF} 2>&1; echo "exit $?"`,
    );
    assert.match(bounded.stdout, /Operation not permitted\nexit 126\n$/);
    const unknown = await run(['--security-opt', 'no-new-privileges=maybe'], 'true');
    assert.equal(unknown.code, 125);
    assert.match(unknown.stderr, /unsupported --security-opt "no-new-privileges=maybe"/);
  });

  it('drops a malformed capability and every other extended attribute a layer names', async () => {
    assert.deepEqual(xattrsOf(await storedFile('bin/busybox-badcap')), []);
    assert.deepEqual(xattrsOf(await storedFile('etc/victim')), []);
    const data = join(await storedFile('data/old'), '..');
    assert.deepEqual(xattrsOf(data), [], "the base layer's /data");
    const layers = join(dir, 'data/images/layers');
    for (const hex of await readdir(layers)) {
      const top = join(layers, hex, 'root/data');
      if (spawnSync('test', ['-d', top]).status === 0) assert.deepEqual(xattrsOf(top), [], top);
    }
    // The container sees the base's /data through the second layer's: nothing made it opaque.
    const r = await run([], 'cat /data/old; cat /etc/victim');
    assert.equal(r.stdout, 'from the base layer\nx\n', r.stderr);
  });
});
