import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BOOST_CPU_WEIGHT, BOOST_HOLD_MS, CpuBoost } from '../src/playground/cpu-boost.js';
import { MdockerError } from '../src/runtime/errors.js';

/** A clock and timers the test moves by hand, and the cgroups' weights as the boost wrote them. */
function setUp(setWeight?: (id: string, weight: number) => Promise<void>) {
  let now = 0;
  const timers = new Map<number, { at: number; callback: () => void }>();
  let nextTimer = 1;
  const writes: [string, number][] = [];
  const errors: [string, unknown][] = [];
  const boost = new CpuBoost({
    normalWeight: 100,
    setWeight:
      setWeight ??
      (async (id, weight) => {
        writes.push([id, weight]);
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
