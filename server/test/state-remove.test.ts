import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { StateStore, type ContainerRecord } from '../src/runtime/state.js';

const root = mkdtempSync(join(tmpdir(), 'mdocker-state-remove-'));
after(() => rmSync(root, { recursive: true, force: true }));

function record(id: string): ContainerRecord {
  return {
    id,
    name: `mdocker-${id.slice(0, 8)}`,
    image: 'busybox',
    rootfs: null,
    hostname: id.slice(0, 12),
    cmd: ['/bin/sh'],
    env: [],
    workdir: '/',
    tty: false,
    limits: { memoryBytes: null, cpus: null, pidsLimit: null },
    security: { capAdd: [], capDrop: [], seccomp: 'default' },
    cgroupPaths: [],
    autoRemove: true,
    owner: null,
    createdAt: new Date(0).toISOString(),
    launcher: null,
    init: null,
    startedAt: null,
    finishedAt: null,
    exitCode: null,
  };
}

test("a container's state dir goes whole, and what links out of it is not followed", async () => {
  const store = new StateStore(join(root, 'state'));
  // Outside the state: what a link in a container's dir points at must survive its removal.
  const outside = join(root, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'keep'), 'kept\n');

  const plain = record('a'.repeat(32));
  await store.createDir(plain);
  writeFileSync(join(store.dir(plain.id), 'exit.json'), '{"exitCode":0}\n');
  symlinkSync(outside, join(store.dir(plain.id), 'link-to-dir'));
  symlinkSync(join(outside, 'keep'), join(store.dir(plain.id), 'link-to-file'));
  await store.remove(plain);
  assert.equal(existsSync(store.dir(plain.id)), false);
  assert.equal(existsSync(join(root, 'state', 'names', plain.name)), false, 'its name is released');
  assert.equal(readFileSync(join(outside, 'keep'), 'utf8'), 'kept\n');

  // A layer dir left with files in it (not the usual empty one) still goes, by the slow path.
  const full = record('b'.repeat(32));
  await store.createDir(full);
  mkdirSync(join(store.dir(full.id), 'layer', 'deep', 'er'), { recursive: true });
  writeFileSync(join(store.dir(full.id), 'layer', 'deep', 'er', 'f'), 'x');
  symlinkSync(outside, join(store.dir(full.id), 'layer', 'deep', 'link'));
  await store.remove(full);
  assert.equal(existsSync(store.dir(full.id)), false);
  assert.equal(readFileSync(join(outside, 'keep'), 'utf8'), 'kept\n');

  // Removing what is already gone is not an error.
  await store.remove(full);
});
