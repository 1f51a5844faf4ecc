// The stats sampler: CPU % from usage deltas, a bounded history, counter files open while a
// container is tracked, rounds that yield and never overlap.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CgroupStats } from '../src/runtime/cgroups/driver.js';
import { cpuPercent } from '../src/runtime/cgroups/driver.js';
import { SampleRing, StatsSampler, toSample, type StatsSource } from '../src/playground/stats.js';
import type { StatsSample } from '../src/protocol/index.js';

function stats(cpuUsageUsec: number): CgroupStats {
  return {
    cpuUsageUsec,
    cpuPeriods: 0,
    cpuThrottledPeriods: 3,
    cpuThrottledUsec: 40,
    memoryBytes: 1000,
    memoryLimitBytes: 2000,
    pids: 2,
    pidsLimit: 10,
    oomKills: 1,
    pidsLimitHits: 4,
  };
}

describe('cpuPercent', () => {
  it('is the usage delta over the wall-clock delta, in % of one core', () => {
    assert.equal(cpuPercent(null, 5_000_000, 1000), 0);
    assert.equal(cpuPercent({ usageUsec: 0, atMs: 0 }, 500_000, 1000), 50);
    assert.equal(cpuPercent({ usageUsec: 0, atMs: 0 }, 1_500_000, 1000), 150);
    assert.equal(
      cpuPercent({ usageUsec: 10, atMs: 0 }, 5, 1000),
      0,
      'a counter that went back (new cgroup) is not negative',
    );
  });
});

describe('SampleRing', () => {
  it('keeps the newest samples, oldest first, never more than its capacity', () => {
    const ring = new SampleRing(3);
    for (let t = 1; t <= 5; t++) ring.push(toSample(stats(t), t, 0));
    assert.deepEqual(
      ring.toArray().map((sample) => sample.t),
      [3, 4, 5],
    );
    assert.equal(ring.latest()?.t, 5);
    assert.equal(ring.size, 3);
  });
});

/** A fake container's counters that counts opens and closes. */
class Counters {
  usageUsec = 0;
  opens = 0;
  closes = 0;
  reads = 0;
  gone = false;

  source(): StatsSource {
    if (this.gone) throw new Error('no cgroup');
    this.opens++;
    let closed = false;
    return {
      read: () => {
        if (closed) throw new Error('read after close');
        if (this.gone) throw new Error('ENODEV');
        this.reads++;
        this.usageUsec += 100_000;
        return stats(this.usageUsec);
      },
      close: () => {
        if (!closed) this.closes++;
        closed = true;
      },
    };
  }
}

describe('StatsSampler', () => {
  it('samples tracked containers, keeps history after untrack, forgets on forget', async () => {
    const a = new Counters();
    const seen: [string, StatsSample][] = [];
    const sampler = new StatsSampler({
      intervalMs: 1000,
      historySamples: 600,
      open: (id) => {
        if (id === 'gone') throw new Error('no cgroup');
        return a.source();
      },
      onSample: (id, sample) => seen.push([id, sample]),
    });
    sampler.track('a');
    sampler.track('gone');
    await sampler.tick();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await sampler.tick();
    assert.deepEqual(
      seen.map(([id]) => id),
      ['a', 'a'],
    );
    const [first, second] = sampler.history('a');
    assert.equal(first?.cpuPercent, 0);
    assert.ok(
      second!.cpuPercent > 50 && second!.cpuPercent <= 100,
      `about 100 ms of CPU in about 100 ms: ${second!.cpuPercent}`,
    );
    assert.deepEqual({ ...second, t: 0, cpuPercent: 0 }, { ...toSample(stats(200_000), 0, 0) });
    sampler.untrack('a');
    await sampler.tick();
    assert.equal(sampler.history('a').length, 2);
    sampler.forget('a');
    assert.deepEqual(sampler.history('a'), []);
  });

  it("opens a container's counters once and closes them on untrack, forget and stop", async () => {
    const counters = new Map([
      ['a', new Counters()],
      ['b', new Counters()],
      ['c', new Counters()],
    ]);
    const sampler = new StatsSampler({
      intervalMs: 1000,
      historySamples: 10,
      open: (id) => counters.get(id)!.source(),
      onSample: () => undefined,
    });
    for (const id of counters.keys()) sampler.track(id);
    for (let round = 0; round < 3; round++) await sampler.tick();
    for (const c of counters.values()) assert.deepEqual([c.opens, c.reads, c.closes], [1, 3, 0]);
    assert.equal(sampler.openSources, 3);

    sampler.untrack('a');
    sampler.forget('b');
    await sampler.tick();
    assert.deepEqual([counters.get('a')!.closes, counters.get('a')!.reads], [1, 3], 'untrack closes');
    assert.deepEqual([counters.get('b')!.closes, counters.get('b')!.reads], [1, 3], 'forget closes');
    assert.equal(counters.get('c')!.reads, 4);

    sampler.track('a');
    await sampler.tick();
    assert.deepEqual([counters.get('a')!.opens, counters.get('a')!.reads], [2, 4], 'tracked again: reopened');
    sampler.stop();
    assert.equal(sampler.openSources, 0);
    for (const c of counters.values()) assert.equal(c.opens, c.closes, 'every open was closed');
  });

  it('closes the files of a container whose cgroup vanished, and skips it until it can open again', async () => {
    const c = new Counters();
    const seen: number[] = [];
    const sampler = new StatsSampler({
      intervalMs: 1000,
      historySamples: 10,
      open: () => c.source(),
      onSample: (_id, sample) => seen.push(sample.cpuUsageUsec),
    });
    sampler.track('x');
    await sampler.tick();
    c.gone = true;
    await sampler.tick();
    await sampler.tick();
    assert.deepEqual([c.opens, c.closes, sampler.openSources], [1, 1, 0]);
    assert.deepEqual(seen, [100_000]);
  });

  it('yields to the event loop during a long round, and skips a round due meanwhile', async () => {
    const c = new Counters();
    const events: string[] = [];
    const sampler = new StatsSampler({
      intervalMs: 1000,
      historySamples: 10,
      open: () => c.source(),
      onSample: (id) => events.push(id),
      sliceMs: 0,
    });
    for (const id of ['a', 'b', 'c']) sampler.track(id);
    const round = sampler.tick();
    setImmediate(() => events.push('other work'));
    await sampler.tick();
    await round;
    assert.equal(c.reads, 3, 'the second tick read nothing');
    assert.ok(events.indexOf('other work') < events.indexOf('c'), events.join(', '));
    sampler.stop();
  });
});
