/**
 * `mdocker commit`: a running container's upper layer (taken from its launcher, which keeps
 * it for the container's life) becomes a layer on top of its image. Changes, deletions
 * (whiteouts) and a directory deleted and made again (opaque) are in the new image; the
 * original image is untouched. The student is the attacker: symlinks to the host's files
 * are committed as symlinks, a FIFO is not made, a `.wh.` name and a path-like reference
 * are refused; nothing leaks.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';
import { launcherProcesses, mdocker, mdockerMounts, repoRoot, rootOnly, stateDirs } from './helpers.js';
import { allBlobs, image, layer, makeTar, writeLayout, type TarEntry } from './oci-builder.js';

const skip = rootOnly();

/** A v2 file capability: cap_net_raw permitted, effective. */
const NET_RAW_EP = '\x01\x00\x00\x02' + '\x00\x20\x00\x00' + '\x00'.repeat(12);

/** A file's security.capability as the host reads it, hex ('' when it has none). */
function capabilityOf(path: string): string {
  const r = spawnSync(
    'python3',
    [
      '-c',
      'import os,sys\ntry: print(os.getxattr(sys.argv[1], "security.capability").hex())\nexcept OSError: print("")',
      path,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

const APPLETS = [
  'sh',
  'echo',
  'cat',
  'ls',
  'rm',
  'mkdir',
  'ln',
  'mkfifo',
  'chown',
  'chmod',
  'sed',
  'stat',
  'readlink',
  'sleep',
  'test',
  'touch',
];

async function baseImage() {
  const entries: TarEntry[] = [
    { name: 'bin/', type: 'directory' },
    { name: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
    ...APPLETS.map((applet) => ({ name: `bin/${applet}`, type: 'symlink' as const, linkname: 'busybox' })),
    { name: 'etc/', type: 'directory' },
    { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
    { name: 'etc/motd', content: 'original motd\n' },
    { name: 'etc/doomed', content: 'deleted in the container\n' },
    { name: 'data/', type: 'directory' },
    { name: 'data/old', content: 'old\n' },
    { name: 'data/sub/', type: 'directory' },
    { name: 'data/sub/deep', content: 'deep\n' },
    // busybox runs the applet argv[1] names when its own name starts with "busybox"
    {
      name: 'bin/busybox-netraw',
      content: readFileSync('/bin/busybox'),
      mode: 0o755,
      pax: { 'SCHILY.xattr.security.capability': NET_RAW_EP },
    },
  ];
  return image([layer(await makeTar(entries))], { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] });
}

/** The entries of a gzip layer blob: name → { type, linkname, uid, gid, content }. */
async function layerEntries(path: string) {
  const out = new Map<string, { type: string; linkname: string | null; uid: number; gid: number; content: string }>();
  const ex = extract();
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const h = entry.header;
      out.set(h.name, {
        type: h.type ?? 'file',
        linkname: h.linkname ?? null,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        content: Buffer.concat(chunks).toString('latin1'),
      });
    }
  })();
  createReadStream(path)
    .pipe(createGunzip())
    .pipe(ex as unknown as NodeJS.WritableStream);
  await done;
  return out;
}

describe('mdocker commit', { skip }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let mountsBefore: string[];
  const names: string[] = [];
  const ids: string[] = [];

  const cli = (args: string[]) => mdocker(args, { env, timeoutMs: 60_000 });
  const sh = async (name: string, script: string) => {
    const r = await cli(['exec', name, '/bin/sh', '-c', script]);
    assert.equal(r.code, 0, `${script}: ${r.stderr}`);
    return r.stdout;
  };
  const start = async (name: string, ref: string) => {
    names.push(name);
    const r = await cli(['run', '-d', '--name', name, ref, '/bin/sleep', '1000']);
    assert.equal(r.code, 0, r.stderr);
    ids.push(r.stdout.trim());
  };
  const imageRecord = async (id: string) =>
    JSON.parse(await readFile(join(dir, 'data/images/images', `${id.slice(7)}.json`), 'utf8')) as {
      configDigest: string;
      layers: Array<{ digest: string; diffId: string }>;
    };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mdocker-commit-'));
    env = { MDOCKER_DATA_DIR: join(dir, 'data') };
    mountsBefore = mdockerMounts();
    const parts = await baseImage();
    const layout = join(dir, 'layout');
    await writeLayout(layout, parts.manifest, allBlobs(parts).slice(1), 'test.local/base:v1');
    const r = await cli(['load', '-i', layout]);
    assert.equal(r.code, 0, r.stderr);
  });

  after(async () => {
    for (const name of names) await mdocker(['rm', '-f', name], { env });
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps changes, deletions and a directory made again; the original image is unchanged', async () => {
    await start('mdocker-commit-a', 'test.local/base:v1');
    await sh(
      'mdocker-commit-a',
      [
        'echo changed > /etc/motd',
        'rm /etc/doomed',
        // deleted whole and made again: opaque, nothing of the image's /data shows through
        'rm -r /data',
        'mkdir /data',
        'echo fresh > /data/fresh',
        'echo hard > /hard1',
        'ln /hard1 /hard2',
        'echo owned > /owned',
        'chown 1000:1000 /owned',
        // the attacker's links to the host: data, committed as they read
        'ln -s /etc/shadow /shadow-link',
        'ln -s / /root-link',
        'mkfifo /fifo',
      ].join(' && '),
    );
    const r = await cli(['commit', '-m', 'my work', 'mdocker-commit-a', 'test.local/committed:v1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^sha256:[a-f0-9]{64}\n$/);
    const id = r.stdout.trim();

    const run = await cli([
      'run',
      '--rm',
      'test.local/committed:v1',
      '/bin/sh',
      '-c',
      [
        'cat /etc/motd',
        'test -e /etc/doomed && echo doomed-present',
        'ls /data',
        'cat /hard2',
        'test "$(stat -c %i /hard1)" = "$(stat -c %i /hard2)" && echo one-inode',
        'stat -c %u:%g /owned',
        'readlink /shadow-link',
        'readlink /root-link',
        'test -L /root-link && echo root-link-is-a-link',
        'test -e /fifo && echo fifo-present',
        'cat /etc/passwd',
      ].join('; '),
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stdout,
      'changed\nfresh\nhard\none-inode\n1000:1000\n/etc/shadow\n/\nroot-link-is-a-link\nroot:x:0:0:root:/root:/bin/sh\n',
    );

    const original = await cli([
      'run',
      '--rm',
      'test.local/base:v1',
      '/bin/sh',
      '-c',
      'cat /etc/motd /etc/doomed; ls /data; test -e /hard1 && echo hard-present',
    ]);
    assert.equal(original.stdout, 'original motd\ndeleted in the container\nold\nsub\n', original.stderr);

    // The layer itself: whiteouts and the opaque mark as the format says, the owner mapped
    // back to the container's ids, the links as links, the FIFO kept as one (the store's
    // unpacker does not make it), and nothing of the host's.
    const record = await imageRecord(id);
    assert.equal(record.layers.length, 2);
    const top = record.layers[1]!.digest.slice(7);
    const entries = await layerEntries(join(dir, 'data/images/blobs/sha256', top));
    assert.equal(entries.get('etc/.wh.doomed')?.type, 'file');
    assert.equal(entries.get('data/.wh..wh..opq')?.type, 'file');
    assert.equal(entries.get('data/fresh')?.content, 'fresh\n');
    assert.equal(entries.has('data/old'), false);
    assert.deepEqual(entries.get('shadow-link')?.type, 'symlink');
    assert.equal(entries.get('shadow-link')?.linkname, '/etc/shadow');
    assert.equal(entries.get('root-link')?.linkname, '/');
    assert.equal(entries.get('hard2')?.type === 'link' || entries.get('hard1')?.type === 'link', true);
    assert.equal(entries.get('owned')?.uid, 1000);
    assert.equal(entries.get('owned')?.gid, 1000);
    assert.equal(entries.get('fifo')?.type, 'fifo');
    // The launcher's own mount points are not the student's changes.
    assert.equal(entries.has('etc/hosts') || entries.has('etc/hostname'), false);
    const shadow = readFileSync('/etc/shadow', 'latin1');
    for (const [name, entry] of entries) {
      assert.ok(!name.startsWith('/') && !name.split('/').includes('..'), name);
      if (shadow.length > 0) assert.ok(!entry.content.includes(shadow.slice(0, 64)), `${name} holds the host's shadow`);
    }

    const config = JSON.parse(
      await readFile(join(dir, 'data/images/blobs/sha256', record.configDigest.slice(7)), 'utf8'),
    );
    assert.deepEqual(config.config.Cmd, ['/bin/sh']);
    assert.equal(config.rootfs.diff_ids.length, 2);
    assert.equal(config.history.at(-1).comment, 'my work');
  });

  it("keeps a file capability the container's file carries, as the container's (v2)", async () => {
    await start('mdocker-commit-caps', 'test.local/base:v1');
    // chmod copies the file up with its xattrs: the upper's copy holds the capability as
    // the kernel writes it in a user namespace (v3, rootid the container root's host id).
    await sh('mdocker-commit-caps', 'chmod 755 /bin/busybox-netraw');
    const r = await cli(['commit', 'mdocker-commit-caps', 'test.local/caps:v1']);
    assert.equal(r.code, 0, r.stderr);
    const record = await imageRecord(r.stdout.trim());
    const top = join(dir, 'data/images/layers', record.layers[1]!.diffId.slice(7), 'root/bin/busybox-netraw');
    assert.equal(capabilityOf(top), Buffer.from(NET_RAW_EP, 'latin1').toString('hex'));
    const caps = await cli([
      'run',
      '--rm',
      '--cap-add',
      'NET_RAW',
      '--security-opt',
      'no-new-privileges=false',
      '-u',
      '1000:1000',
      'test.local/caps:v1',
      '/bin/sh',
      '-c',
      "stat -c %a /bin/busybox-netraw; /bin/busybox-netraw sed -n 's/^CapEff:\\t*//p' /proc/self/status",
    ]);
    assert.equal(caps.stdout, '755\n0000000000002000\n', caps.stderr);
  });

  it('commits a container of the built-in busybox, whose tree becomes the first layer', async () => {
    await start('mdocker-commit-busybox', 'busybox');
    await sh('mdocker-commit-busybox', 'echo mine > /etc/motd && rm /bin/vi');
    const r = await cli(['commit', 'mdocker-commit-busybox', 'test.local/from-busybox']);
    assert.equal(r.code, 0, r.stderr);
    const run = await cli([
      'run',
      '--rm',
      'test.local/from-busybox',
      '/bin/sh',
      '-c',
      'cat /etc/motd; test -e /bin/vi || echo no-vi',
    ]);
    assert.equal(run.stdout, 'mine\nno-vi\n', run.stderr);
    assert.equal(existsSync(join(repoRoot, 'rootfs/images/busybox/bin/vi')), true);
    assert.equal(existsSync(join(repoRoot, 'rootfs/images/busybox/etc/motd')), false);
    assert.equal(existsSync(join(repoRoot, 'rootfs/images/busybox/.mdocker-image')), true);
  });

  it('never follows a directory the student swaps for a symlink to / during the commit', async () => {
    await start('mdocker-commit-swap', 'test.local/base:v1');
    await sh(
      'mdocker-commit-swap',
      'while true; do rm -rf /swap; mkdir /swap; echo mine > /swap/f; rm -rf /swap; ln -s / /swap; done >/dev/null 2>&1 &',
    );
    for (let round = 0; round < 5; round++) {
      const r = await cli(['commit', 'mdocker-commit-swap', `test.local/swap:v${round}`]);
      assert.equal(r.code, 0, r.stderr);
      const record = await imageRecord(r.stdout.trim());
      const entries = await layerEntries(join(dir, 'data/images/blobs/sha256', record.layers[1]!.digest.slice(7)));
      for (const [name, entry] of entries) {
        if (!name.startsWith('swap')) continue;
        if (name === 'swap') assert.deepEqual([entry.type, entry.linkname], ['symlink', '/']);
        else if (name === 'swap/') assert.equal(entry.type, 'directory');
        else {
          // caught before or after the echo wrote it
          assert.equal(name, 'swap/f');
          assert.ok(entry.content === '' || entry.content === 'mine\n', entry.content);
        }
      }
    }
  });

  it('refuses a reference that names a path, a digest, or a built-in image, and writes nothing', async () => {
    for (const ref of [
      '/tmp/mdocker-commit-evil',
      '../../tmp/mdocker-commit-evil',
      './evil',
      'a/../../evil',
      'UPPER',
    ]) {
      const r = await cli(['commit', 'mdocker-commit-a', ref]);
      assert.equal(r.code, 1, ref);
      assert.match(r.stderr, /^mdocker: invalid reference/, ref);
    }
    assert.equal(existsSync('/tmp/mdocker-commit-evil'), false);
    const digest = await cli(['commit', 'mdocker-commit-a', `x/y@sha256:${'a'.repeat(64)}`]);
    assert.match(digest.stderr, /a tag, not a digest/);
    const builtin = await cli(['commit', 'mdocker-commit-a', 'busybox']);
    assert.equal(builtin.code, 1);
    assert.match(builtin.stderr, /built-in image's name/);
  });

  it('refuses a .wh. name of the student (it would mean a deletion), then commits once it is gone', async () => {
    await sh('mdocker-commit-a', 'touch /etc/.wh.motd');
    const r = await cli(['commit', 'mdocker-commit-a', 'test.local/wh:v1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /names starting with \.wh\. mean deletions/);
    await sh('mdocker-commit-a', 'rm /etc/.wh.motd');
    assert.equal((await cli(['commit', 'mdocker-commit-a', 'test.local/wh:v1'])).code, 0);
  });

  it('refuses an unknown container and one that exited, clearly', async () => {
    const unknown = await cli(['commit', 'mdocker-commit-nosuch', 'test.local/x:v1']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no such container/);
    names.push('mdocker-commit-exited');
    assert.equal(
      (await cli(['run', '--name', 'mdocker-commit-exited', 'test.local/base:v1', '/bin/touch', '/x'])).code,
      0,
    );
    const exited = await cli(['commit', 'mdocker-commit-exited', 'test.local/x:v1']);
    assert.equal(exited.code, 1);
    assert.match(exited.stderr, /is not running: its writable layer \(a tmpfs\) ended with it/);
  });

  it('leaves nothing behind: no work in the store, no mount, no launcher', async () => {
    assert.deepEqual(await readdir(join(dir, 'data/images/tmp')), []);
    for (const name of names.splice(0)) assert.equal((await cli(['rm', '-f', name])).code, 0);
    assert.deepEqual(
      mdockerMounts().filter((line) => !mountsBefore.includes(line) && line.includes(dir)),
      [],
    );
    assert.deepEqual(stateDirs(ids), []);
    assert.deepEqual(
      launcherProcesses().filter((line) => ids.some((id) => line.includes(id))),
      [],
    );
  });
});
