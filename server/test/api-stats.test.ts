// The stats sampler: CPU % from usage deltas, a bounded history, rounds that never overlap.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CgroupStats } from '../src/runtime/cgroups/driver.js';
import { SampleRing, StatsSampler, cpuPercent, toSample } from '../src/api/stats.js';
import type { StatsSample } from '../src/api/protocol.js';

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

describe('StatsSampler', () => {
  it('samples tracked containers, keeps history after untrack, forgets on forget', async () => {
    let usage = 0;
    const seen: [string, StatsSample][] = [];
    const sampler = new StatsSampler({
      intervalMs: 1000,
      historySamples: 600,
      read: async (id) => {
        if (id === 'gone') throw new Error('no cgroup');
        usage += 100_000;
        return stats(usage);
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

  it('skips a round while the previous one is still reading', async () => {
    let reads = 0;
    let release: () => void = () => undefined;
    const sampler = new StatsSampler({
      intervalMs: 1000,
      historySamples: 10,
      read: async () => {
        reads++;
        await new Promise<void>((resolve) => (release = resolve));
        return stats(1);
      },
      onSample: () => undefined,
    });
    sampler.track('slow');
    const first = sampler.tick();
    await sampler.tick();
    assert.equal(reads, 1);
    release();
    await first;
  });
});
