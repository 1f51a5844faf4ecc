/**
 * Supplementary groups, as Docker sets them: a container running as a user of the image
 * (its User or -u) is in the groups of the image's /etc/group that list it, and in those
 * of --group-add; `exec` joins with the same groups; a gid the container's user namespace
 * does not map is refused with the group's name.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { mdocker, rootOnly } from './helpers.js';
import { allBlobs, image, layer, makeTar, writeLayout } from './oci-builder.js';

const skip = rootOnly();

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'bob:x:1001:1001:bob:/home/bob:/bin/sh',
  'carol:x:1002:1002:carol:/home/carol:/bin/sh',
  'dave:x:1003:1003:dave:/:/bin/sh',
].join('\n');
// bob is in wheel and audio; carol also in a group whose gid the container cannot map.
const GROUP = [
  'root:x:0:',
  'bob:x:1001:',
  'carol:x:1002:',
  'wheel:x:10:alice,bob',
  'audio:x:29:bob,carol',
  'video:x:44:',
  'huge:x:70000:carol',
].join('\n');

/** The kernel's view: /proc/self/status's Groups line (sorted by the kernel). */
const GROUPS_LINE = "sed -n 's/^Groups:\\t*//p' /proc/self/status";

describe('supplementary groups of a container user', { skip }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const cli = (args: string[]) => mdocker(args, { env, timeoutMs: 60_000 });
  const name = `mdocker-groups-${process.pid}`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mdocker-groups-'));
    env = { MDOCKER_DATA_DIR: join(dir, 'data') };
    const tar = await makeTar([
      { name: 'bin/', type: 'directory' },
      { name: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
      ...['sh', 'id', 'sed', 'sleep'].map((a) => ({ name: `bin/${a}`, type: 'symlink' as const, linkname: 'busybox' })),
      { name: 'etc/', type: 'directory' },
      { name: 'etc/passwd', content: PASSWD + '\n' },
      { name: 'etc/group', content: GROUP + '\n' },
    ]);
    const parts = image([layer(tar)], { Cmd: ['/bin/sh', '-c', 'id -G'], User: 'bob' });
    const layout = join(dir, 'layout');
    await writeLayout(layout, parts.manifest, allBlobs(parts).slice(1), 'test.local/groups:v1');
    const loaded = await cli(['load', '-i', layout]);
    assert.equal(loaded.code, 0, loaded.stderr);
  });

  after(async () => {
    await mdocker(['rm', '-f', name], { env });
    await rm(dir, { recursive: true, force: true });
  });

  it("puts the image's User in the groups /etc/group lists it in", async () => {
    const r = await cli(['run', '--rm', 'test.local/groups:v1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '1001 10 29\n');
    const kernel = await cli(['run', '--rm', 'test.local/groups:v1', '/bin/sh', '-c', GROUPS_LINE]);
    assert.equal(kernel.stdout.trim(), '10 29 1001');
  });

  it('does the same for -u NAME, adds --group-add by name or gid, and gives exec the same groups', async () => {
    const r = await cli([
      'run',
      '--rm',
      '-u',
      'bob',
      '--group-add',
      'video',
      '--group-add',
      '500',
      'test.local/groups:v1',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '1001 10 29 44 500\n');
    const none = await cli(['run', '--rm', '-u', 'dave', 'test.local/groups:v1']);
    assert.equal(none.stdout, '1003\n', 'a user no group lists has only its own');
    const asRoot = await cli(['run', '--rm', '-u', '0', '--group-add', 'audio', 'test.local/groups:v1']);
    assert.equal(asRoot.stdout, '0 29\n');

    const started = await cli(['run', '-d', '--name', name, 'test.local/groups:v1', 'sleep', '60']);
    assert.equal(started.code, 0, started.stderr);
    const exec = await cli(['exec', name, '/bin/sh', '-c', GROUPS_LINE]);
    assert.equal(exec.code, 0, exec.stderr);
    assert.equal(exec.stdout.trim(), '10 29 1001');
    await cli(['rm', '-f', name]);
  });

  it("refuses a group outside the container's ids, naming it, and an unknown group name", async () => {
    const huge = await cli(['run', '--rm', '-u', 'carol', 'test.local/groups:v1']);
    assert.equal(huge.code, 125);
    assert.match(huge.stderr, /group huge \(gid 70000\) of user carol lies outside the container's ids 0\.\.65535/);
    const added = await cli(['run', '--rm', '--group-add', '65536', 'test.local/groups:v1']);
    assert.equal(added.code, 125);
    assert.match(added.stderr, /group 65536 \(gid 65536\) of user bob lies outside/);
    const unknown = await cli(['run', '--rm', '--group-add', 'nope', 'test.local/groups:v1']);
    assert.equal(unknown.code, 125);
    assert.match(unknown.stderr, /unable to find group nope/);
  });
});
