import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  BOOST_CPU_WEIGHT,
  BOOST_HOLD_MS,
  CpuBoost,
  HostCpuPressure,
  QUIET_SAMPLES,
  isBusy,
  isQuiet,
} from '../src/playground/cpu-boost.js';
import { MdockerError } from '../src/runtime/errors.js';

/** A clock and timers the test moves by hand, and the cgroups' weights as the boost wrote them. */
function setUp(
  setWeight?: (id: string, weight: number) => Promise<void>,
  setIdle?: (id: string, idle: boolean) => Promise<void>,
) {
  let now = 0;
  const timers = new Map<number, { at: number; callback: () => void }>();
  let nextTimer = 1;
  const writes: [string, number | 'idle' | 'normal'][] = [];
  const errors: [string, unknown][] = [];
  const boost = new CpuBoost({
    normalWeight: 100,
    setWeight:
      setWeight ??
      (async (id, weight) => {
        writes.push([id, weight]);
      }),
    setIdle:
      setIdle ??
      (async (id, idle) => {
        writes.push([id, idle ? 'idle' : 'normal']);
      }),
    onError: (id, err) => errors.push([id, err]),
    now: () => now,
    setTimer: (callback, ms) => {
      timers.set(nextTimer, { at: now + ms, callback });
      return nextTimer++;
    },
    clearTimer: (timer) => timers.delete(timer as number),
  });
  /** Moves the clock, firing each timer that falls due on the way. */
  const advance = async (ms: number): Promise<void> => {
    const until = now + ms;
    for (;;) {
      const due = [...timers].filter(([, timer]) => timer.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      timers.delete(due[0]);
      now = due[1].at;
      due[1].callback();
    }
    now = until;
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { boost, writes, errors, timers, advance };
}

describe('interactive CPU boost', () => {
  it('raises the weight on the first keystroke and returns it a hold after the last, one write each', async () => {
    const { boost, writes, timers, advance } = setUp();
    boost.keystroke('c1');
    for (let i = 0; i < 50; i++) {
      await advance(BOOST_HOLD_MS / 4);
      boost.keystroke('c1');
    }
    assert.deepEqual(writes, [['c1', BOOST_CPU_WEIGHT]]);
    assert.equal(boost.isBoosted('c1'), true);
    assert.equal(timers.size, 1);
    await advance(BOOST_HOLD_MS - 1);
    assert.equal(boost.isBoosted('c1'), true);
    await advance(1);
    assert.deepEqual(writes, [
      ['c1', BOOST_CPU_WEIGHT],
      ['c1', 100],
    ]);
    assert.equal(boost.isBoosted('c1'), false);
    assert.equal(timers.size, 0);
  });

  it('boosts again after it returned', async () => {
    const { boost, writes, advance } = setUp();
    boost.keystroke('c1');
    await advance(BOOST_HOLD_MS);
    boost.keystroke('c1');
    assert.deepEqual(writes, [
      ['c1', BOOST_CPU_WEIGHT],
      ['c1', 100],
      ['c1', BOOST_CPU_WEIGHT],
    ]);
  });

  it('boosts only the container typed in', async () => {
    const { boost, writes, advance } = setUp();
    boost.keystroke('c1');
    await advance(BOOST_HOLD_MS / 2);
    boost.keystroke('c2');
    await advance(BOOST_HOLD_MS / 2);
    assert.equal(boost.isBoosted('c1'), false);
    assert.equal(boost.isBoosted('c2'), true);
    assert.equal(boost.isBoosted('c3'), false);
    assert.deepEqual(writes, [
      ['c1', BOOST_CPU_WEIGHT],
      ['c2', BOOST_CPU_WEIGHT],
      ['c1', 100],
    ]);
  });

  it('leaves no timer and writes nothing once the container is forgotten', async () => {
    const { boost, writes, timers, advance } = setUp();
    boost.keystroke('c1');
    boost.keystroke('c2');
    boost.forget('c1');
    assert.equal(timers.size, 1);
    boost.dispose();
    assert.equal(timers.size, 0);
    await advance(BOOST_HOLD_MS * 2);
    assert.deepEqual(writes, [
      ['c1', BOOST_CPU_WEIGHT],
      ['c2', BOOST_CPU_WEIGHT],
    ]);
    boost.forget('never-boosted');
  });

  it('takes a cgroup that is gone quietly, and reports any other failure', async () => {
    let fail: Error = new MdockerError('NOT_FOUND', 'cgroup gone');
    const { boost, errors, timers, advance } = setUp(async () => {
      throw fail;
    });
    boost.keystroke('c1');
    await advance(BOOST_HOLD_MS);
    assert.deepEqual(errors, []);
    assert.equal(timers.size, 0);
    fail = new MdockerError('UNSUPPORTED', 'EACCES');
    boost.keystroke('c1');
    boost.keystroke('c1');
    await advance(0);
    assert.deepEqual(errors, [['c1', fail]]);
    await advance(BOOST_HOLD_MS);
    assert.equal(errors.length, 2);
    assert.equal(boost.isBoosted('c1'), false);
  });
});

const BUSY = { busy: true, quiet: false };
const QUIET = { busy: false, quiet: true };
const BETWEEN = { busy: false, quiet: false };

describe('the background (idle class)', () => {
  it('sends a busy container nobody types in to the idle class, and brings it back when quiet', async () => {
    const { boost, writes } = setUp();
    boost.sample('c1', BUSY);
    boost.sample('c1', BUSY);
    assert.equal(boost.isBackground('c1'), true);
    // Held back by the class, its use may fall below busy: it stays until it is quiet.
    boost.sample('c1', BETWEEN);
    assert.equal(boost.isBackground('c1'), true);
    // Quiet only while busy siblings were still in the normal class: not enough.
    for (let i = 1; i < QUIET_SAMPLES; i++) boost.sample('c1', QUIET);
    boost.sample('c1', BETWEEN);
    for (let i = 1; i < QUIET_SAMPLES; i++) boost.sample('c1', QUIET);
    assert.equal(boost.isBackground('c1'), true);
    boost.sample('c1', QUIET);
    assert.equal(boost.isBackground('c1'), false);
    boost.sample('c2', BETWEEN);
    boost.sample('c2', QUIET);
    assert.deepEqual(writes, [
      ['c1', 'idle'],
      ['c1', 'normal'],
    ]);
  });

  it('takes it out on the first keystroke, before the boost, and not while typed in', async () => {
    const { boost, writes, advance } = setUp();
    boost.sample('c1', BUSY);
    boost.keystroke('c1');
    assert.deepEqual(writes, [
      ['c1', 'idle'],
      ['c1', 'normal'],
      ['c1', BOOST_CPU_WEIGHT],
    ]);
    boost.sample('c1', BUSY); // typed in within the hold: busy, but interactive
    assert.equal(boost.isBackground('c1'), false);
    await advance(BOOST_HOLD_MS);
    boost.sample('c1', BUSY);
    assert.equal(boost.isBackground('c1'), true);
    assert.deepEqual(writes.slice(3), [
      ['c1', 100],
      ['c1', 'idle'],
    ]);
  });

  it('writes the idle class before keystroke() returns (the keystroke reaches the pty after)', () => {
    const order: string[] = [];
    const boost = new CpuBoost({
      normalWeight: 100,
      setWeight: async () => undefined,
      setIdle: (id, idle) => {
        order.push(`${id} ${idle ? 'idle' : 'normal'}`);
        return Promise.resolve();
      },
    });
    boost.sample('c1', BUSY);
    boost.keystroke('c1');
    order.push('pty');
    assert.deepEqual(order, ['c1 idle', 'c1 normal', 'pty']);
    boost.dispose();
  });

  it('turns itself off for good where the kernel has no idle class, and says so once', async () => {
    const unsupported = new MdockerError('UNSUPPORTED', 'no cpu.idle');
    const { boost, errors, advance } = setUp(undefined, async () => {
      throw unsupported;
    });
    boost.sample('c1', BUSY);
    boost.sample('c2', BUSY);
    await advance(0);
    boost.sample('c3', BUSY);
    await advance(0);
    assert.deepEqual(errors, [['c1', unsupported]]);
    assert.equal(boost.isBackground('c1'), false);
    assert.equal(boost.isBackground('c3'), false);
  });

  it('has no background without setIdle, and forgets a container that goes', async () => {
    const plain = new CpuBoost({ normalWeight: 100, setWeight: async () => undefined });
    plain.sample('c1', BUSY);
    assert.equal(plain.isBackground('c1'), false);
    const { boost, writes } = setUp();
    boost.sample('c1', BUSY);
    boost.forget('c1');
    assert.equal(boost.isBackground('c1'), false);
    boost.sample('c1', QUIET);
    assert.deepEqual(writes, [['c1', 'idle']]);
  });
});

describe('busy and quiet', () => {
  it('measures a container against its fair share: its limit or the cores split among the running', () => {
    // 51 containers on 2 cores: a fair share is 3.9 % of a core.
    assert.equal(isBusy(3.9, 0.5, 51, 2), true); // a `yes` among 50
    assert.equal(isBusy(0.3, 0.5, 51, 2), false); // a shell echoing keys
    assert.equal(isQuiet(0.3, 0.5, 51, 2), true);
    assert.equal(isQuiet(1.5, 0.5, 51, 2), false); // between: stays where it is
    // Alone: its limit (0.5 CPU) is the smaller share.
    assert.equal(isBusy(30, 0.5, 1, 2), true);
    assert.equal(isBusy(20, 0.5, 1, 2), false);
    assert.equal(isBusy(60, null, 2, 2), true); // no limit: a core each
    assert.equal(isBusy(40, null, 2, 2), false);
    assert.equal(isBusy(0, null, 0, 2), false);
  });
});

describe('host CPU pressure', () => {
  it('is contended when tasks waited more than a tenth of the time since the last look, and when unreadable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mdocker-psi-'));
    try {
      const path = join(dir, 'cpu');
      const write = (totalUs: number): void =>
        writeFileSync(
          path,
          `some avg10=0.00 avg60=0.00 avg300=0.00 total=${totalUs}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n`,
        );
      let now = 0;
      const pressure = new HostCpuPressure({ path, minGapMs: 250, now: () => now });
      write(1_000_000);
      assert.equal(pressure.contended(), true, 'nothing to compare with yet');
      now += 1000;
      write(1_050_000); // 50 ms of waiting in 1 s: 5 %
      assert.equal(pressure.contended(), false);
      now += 100;
      write(9_000_000);
      assert.equal(pressure.contended(), false, 'read at most once per minGapMs');
      now += 900;
      assert.equal(pressure.contended(), true); // 7.95 s in 1 s: several tasks waited
      now += 1000;
      write(9_150_000); // 15 %
      assert.equal(pressure.contended(), true);
      now += 1000;
      writeFileSync(path, 'garbage\n');
      assert.equal(pressure.contended(), true);
      const none = new HostCpuPressure({ path: join(dir, 'missing'), now: () => now });
      assert.equal(none.contended(), true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
