// SpawningChild: signals that wait for a pid the spawner thread has not told yet.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { SpawningChild } from '../src/runtime/spawning-child.js';

describe('SpawningChild', () => {
  it('sends a signal asked before the pid is known once it is, and none after the reap', async () => {
    const sleeper = spawn('/bin/sleep', ['30']);
    const exited = new Promise<string | null>((resolve) => sleeper.once('exit', (_code, signal) => resolve(signal)));
    const child = new SpawningChild();
    child.kill('SIGTERM');
    assert.equal(child.pid, -1);
    assert.equal(child.settle(null, sleeper.pid ?? -1), true);
    assert.equal(await child.spawned, sleeper.pid);
    assert.equal(await exited, 'SIGTERM');
    child.reaped();
    child.kill('SIGKILL'); // reaped: not sent to a pid that may be another's by now
  });

  it('drops pending signals when the spawn failed, and rejects spawned', async () => {
    const child = new SpawningChild();
    child.kill('SIGKILL');
    const error = new Error('ENOENT');
    assert.equal(child.settle(error, null), false);
    await assert.rejects(child.spawned, error);
    assert.equal(child.pid, -1);
    child.kill('SIGKILL'); // never to -1
  });
});
