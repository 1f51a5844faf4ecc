/**
 * The README's demo through the real CLI on a pure cgroup v2 host, with no
 * --cgroup-parent: PID 1, the pids limit stopping a fork loop, the OOM kill, a live
 * `update`, and `mdocker info` telling what kind of host this is.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { launcherProcesses, mdockerMounts, waitFor } from '../root/helpers.js';
import { cgroupDirOf, cli, detached, mdockerCgroups, readCgroupFile, systemdBooted, v2VmOnly } from './vm.js';

const skip = v2VmOnly();
if (skip) console.log(`# skipping cli-demo: ${skip}`);

const started: string[] = [];
const cgroupsBefore = skip ? [] : mdockerCgroups();
const mountsBefore = skip ? [] : mdockerMounts();

after(async () => {
  for (const id of started) await cli(['rm', '-f', id]);
});

async function statsOf(id: string): Promise<Record<string, string>> {
  const r = await cli(['stats', '--no-stream', id]);
  assert.equal(r.code, 0, r.stderr);
  const [header, row] = r.stdout.trim().split('\n');
  assert.ok(header && row, r.stdout);
  const cells = row.split(/ {3,}/);
  return Object.fromEntries(header.split(/ {3,}/).map((name, i) => [name.trim(), (cells[i] ?? '').trim()]));
}

describe('the README demo on cgroup v2', { skip }, () => {
  test("run --rm busybox sh -c 'echo $$' prints 1", async () => {
    const r = await cli(['run', '--rm', 'busybox', 'sh', '-c', 'echo $$']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '1');
  });

  test('--pids-limit 20 stops the fork loop with "can\'t fork", and stats shows the limit hit', async () => {
    // The loop in a subshell: ash gives up on a failed fork; `exec` keeps the container
    // running without a fork of its own.
    const loop = 'for i in $(seq 1 30); do sh -c "sleep 100" & done';
    const id = await detached(started, [
      '--pids-limit',
      '20',
      'busybox',
      'sh',
      '-c',
      `(${loop}) 2>&1; exec sleep 1000`,
    ]);
    const stats = await waitFor(
      'a refused fork',
      async () => {
        const s = await statsOf(id);
        return Number(s['PIDS LIMIT HITS']) >= 1 && s;
      },
      60_000,
    );
    const [pids, limit] = (stats.PIDS ?? '').split(' / ').map(Number);
    assert.equal(limit, 20, JSON.stringify(stats));
    assert.ok(pids !== undefined && pids >= 15 && pids <= 20, JSON.stringify(stats));
    assert.match(readFileSync(`/run/mdocker/${id}/output.log`, 'utf8'), /can't fork/);
    assert.equal(readCgroupFile(cgroupDirOf(id), 'pids.max'), '20');
    assert.equal((await cli(['rm', '-f', id])).code, 0);
  });

  test('a memory hog under -m 16m is OOM-killed: exit 137', async () => {
    const r = await cli(['run', '--rm', '-m', '16m', 'busybox', 'sh', '-c', 'x=aaaaaaaa; while :; do x=$x$x; done']);
    assert.equal(r.code, 137, r.stderr);
  });

  test('update --pids-limit raises the limit of a running container', async () => {
    const id = await detached(started, ['--pids-limit', '10', 'busybox', 'sleep', '1000']);
    const before = await cli(['exec', id, 'cat', '/sys/fs/cgroup/pids.max']);
    assert.equal(before.stdout.trim(), '10', before.stderr);
    assert.equal((await cli(['update', '--pids-limit', '50', id])).code, 0);
    const inside = await cli(['exec', id, 'cat', '/sys/fs/cgroup/pids.max']);
    assert.equal(inside.stdout.trim(), '50', inside.stderr);
    assert.equal(readCgroupFile(cgroupDirOf(id), 'pids.max'), '50');
    assert.equal((await cli(['rm', '-f', id])).code, 0);
  });

  test('info --format json reports cgroup v2, the driver for this host and where containers go', async () => {
    const r = await cli(['info', '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(info.cgroupVersion, 2, r.stdout);
    assert.equal(info.cgroupDriver, systemdBooted ? 'systemd' : 'cgroupfs', r.stdout);
    assert.equal(info.kernelVersion, release());
    const controllers = info.controllers as string[];
    for (const controller of ['cpu', 'memory', 'pids']) assert.ok(controllers.includes(controller), r.stdout);
    const parent = info.cgroupParent as string;
    assert.ok(parent.startsWith('/sys/fs/cgroup/'), `cgroupParent ${parent} is a directory of the hierarchy`);
    // The image store sits on ext4, which kernel 6.1 can idmap.
    const idmapped = info.idmappedMounts as { dir: string; supported: boolean };
    assert.equal(resolve(idmapped.dir), resolve(process.env.MDOCKER_IMAGES ?? ''), r.stdout);
    assert.equal(idmapped.supported, true, r.stdout);

    if (!systemdBooted) {
      // Without systemd the parent outlives the command: a container goes right there.
      const id = await detached(started, ['busybox', 'sleep', '1000']);
      assert.equal(cgroupDirOf(id), `${parent}/${id}`);
      assert.equal((await cli(['rm', '-f', id])).code, 0);
    }
    const text = await cli(['info']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^Cgroup Version: 2$/m);
  });

  test('leaves no cgroup, mount or launcher behind', async () => {
    // systemd removes an emptied transient scope on its own schedule.
    await waitFor(
      'no new mdocker cgroups',
      () => mdockerCgroups().filter((path) => !cgroupsBefore.includes(path)).length === 0,
      15_000,
    ).catch(() => undefined);
    assert.deepEqual(
      mdockerCgroups().filter((path) => !cgroupsBefore.includes(path)),
      [],
    );
    assert.deepEqual(
      mdockerMounts().filter((line) => !mountsBefore.includes(line)),
      [],
    );
    assert.deepEqual(launcherProcesses(), []);
  });
});
