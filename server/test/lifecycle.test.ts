// The containers' state machine, kept by the runtime: created → running → exited → removed,
// with the reason of the removal and the exit status.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import { Lifecycles } from '../src/runtime/lifecycle.js';
import type { ContainerRecord } from '../src/runtime/state.js';

function record(id: string, initPid: number | null = null): ContainerRecord {
  return { id, init: initPid === null ? null : { pid: initPid, startTime: 1 } } as unknown as ContainerRecord;
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('container lifecycles', () => {
  it('goes created → running → exited with the exit code, then removed with the reason', async () => {
    const lifecycles = new Lifecycles();
    const started = deferred<ContainerRecord>();
    const exited = deferred<{ code: number }>();
    const lifecycle = lifecycles.track(record('a'), started.promise, exited.promise);
    assert.equal(lifecycle.status, 'created');
    started.resolve(record('a', 42));
    await turn();
    assert.equal(lifecycle.status, 'running');
    assert.equal(lifecycle.initPid, 42);
    exited.resolve({ code: 3 });
    await turn();
    assert.equal(lifecycle.status, 'exited');
    assert.equal(lifecycle.exitCode, 3);
    assert.ok(lifecycle.finishedAt !== null);
    lifecycles.removed('a', 'idle');
    assert.deepEqual(
      { status: lifecycle.status, reason: lifecycle.removedReason, code: lifecycle.exitCode },
      { status: 'removed', reason: 'idle', code: 3 },
    );
    assert.equal(lifecycles.get('a'), lifecycle, 'a removed container is still known');
  });

  it('never runs a container whose launcher failed before placing its init', async () => {
    const lifecycles = new Lifecycles();
    const lifecycle = lifecycles.track(record('b'), Promise.resolve(record('b')), Promise.resolve({ code: 125 }));
    await turn();
    assert.equal(lifecycle.status, 'exited');
    assert.equal(lifecycle.initPid, null);
    assert.equal(lifecycle.exitCode, 125);
  });

  it('reports a container removed while running as killed (137), and keeps it removed when its exit comes late', async () => {
    const lifecycles = new Lifecycles();
    const exited = deferred<{ code: number }>();
    const lifecycle = lifecycles.track(record('c'), Promise.resolve(record('c', 7)), exited.promise);
    await turn();
    lifecycles.removed('c', 'shutdown');
    exited.resolve({ code: 0 });
    await turn();
    assert.deepEqual(
      { status: lifecycle.status, reason: lifecycle.removedReason, code: lifecycle.exitCode },
      { status: 'removed', reason: 'shutdown', code: 137 },
    );
  });

  it('keeps at most a bounded number of removed containers, dropping the oldest', async () => {
    const lifecycles = new Lifecycles();
    const never = new Promise<never>(() => undefined);
    for (let i = 0; i < 1005; i++) {
      lifecycles.track(record(`r${i}`), never, never);
      lifecycles.removed(`r${i}`, 'exit');
    }
    assert.equal(lifecycles.get('r0'), null);
    assert.equal(lifecycles.get('r1004')?.status, 'removed');
  });
});
