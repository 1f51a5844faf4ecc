import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { ExecResultJson, StatsSample } from '../src/protocol/index.js';
import { Lessons, progressOf } from '../src/playground/lessons/engine.js';
import type { Lesson } from '../src/playground/lessons/loader.js';
import type { ObservedContainer } from '../src/playground/playground.js';

const LESSON: Lesson = {
  id: 'demo',
  title: 'Demo',
  description: 'd',
  order: 1,
  hidden: false,
  source: 'builtin',
  dir: '/nonexistent',
  container: {
    image: null,
    limits: { memoryBytes: null, cpus: null, pidsLimit: 20 },
    capabilities: [],
    seccomp: 'default',
  },
  steps: [
    { id: 'oom', title: 'OOM', text: '', checks: [{ kind: 'oom-kill' }] },
    { id: 'hit', title: 'Hit', text: '', checks: [{ kind: 'pids-limit-hit' }] },
    { id: 'script', title: 'Script', text: '', checks: [{ kind: 'script', run: 'test -f /tmp/x' }] },
  ],
};

const SAMPLE: StatsSample = {
  t: 0,
  cpuPercent: 0,
  cpuUsageUsec: 0,
  memoryBytes: 0,
  memoryLimitBytes: null,
  pids: 1,
  pidsLimit: 20,
  oomKills: 0,
  pidsLimitHits: 0,
  cpuThrottledPeriods: 0,
  cpuThrottledUsec: 0,
};

function container(exec: () => Promise<ExecResultJson>): ObservedContainer {
  return {
    id: 'c1',
    sessionId: 's1',
    lesson: 'demo',
    init: { pid: 1000, startTime: 1 },
    hostname: 'h',
    limits: () => ({ memoryBytes: null, cpus: null, pidsLimit: 20 }),
    procs: async () => [1000],
    exec: () => exec(),
  };
}

const settle = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the lessons engine', () => {
  it('ticks steps in any order, and a done step stays done when its counter cannot say so any more', async () => {
    const lessons = new Lessons({ catalog: new Map([['demo', LESSON]]), logger: pino({ level: 'silent' }) });
    lessons.onStarted(
      container(async () => ({ exitCode: 1, stdout: '', stderr: '', timedOut: false, truncated: false })),
    );
    lessons.onSample('c1', { ...SAMPLE, pidsLimitHits: 3 });
    await settle();
    assert.deepEqual(
      lessons.state('c1')!.steps.map((step) => step.done),
      [false, true, false],
    );
    assert.equal(lessons.state('c1')!.current, 0, 'the page points at the first step not done');
    lessons.onSample('c1', { ...SAMPLE, oomKills: 1 });
    await settle();
    assert.deepEqual(
      lessons.state('c1')!.steps.map((step) => step.done),
      [true, true, false],
    );
    assert.equal(lessons.state('c1')!.current, 2);
    lessons.onRemoved('c1');
    assert.equal(lessons.state('c1'), null);
  });

  it('runs script checks once the terminal has been quiet, not while it prints, and on Check now', async () => {
    let runs = 0;
    let ok = false;
    const lessons = new Lessons({
      catalog: new Map([['demo', LESSON]]),
      logger: pino({ level: 'silent' }),
      quietMs: 60,
    });
    lessons.onStarted(
      container(async () => {
        runs++;
        return { exitCode: ok ? 0 : 1, stdout: '', stderr: '', timedOut: false, truncated: false };
      }),
    );
    for (let i = 0; i < 5; i++) {
      lessons.onOutput('c1');
      await settle(20);
    }
    assert.equal(runs, 0, 'output kept coming: no check yet');
    await settle(120);
    assert.equal(runs, 1, 'one round after the quiet');
    ok = true;
    const state = await lessons.checkNow('c1');
    assert.equal(runs, 2);
    assert.equal(state.steps[2]!.done, true);
    lessons.onOutput('c1');
    await settle(120);
    assert.equal(runs, 2, 'a done step is not checked again');
    lessons.close();
  });

  it('bounds script rounds per container per minute', async () => {
    const lessons = new Lessons({
      catalog: new Map([['demo', LESSON]]),
      logger: pino({ level: 'silent' }),
      scriptRoundsPerMinute: 2,
    });
    lessons.onStarted(
      container(async () => ({ exitCode: 1, stdout: '', stderr: '', timedOut: false, truncated: false })),
    );
    await lessons.checkNow('c1');
    await lessons.checkNow('c1');
    await assert.rejects(lessons.checkNow('c1'), /RATE_LIMITED|times in the last minute/);
    lessons.close();
  });

  it('progress: the current step and since when the student is on it', () => {
    const progress = progressOf('demo', [1000, null, 3000], 500);
    assert.deepEqual(progress, {
      lesson: 'demo',
      step: 1,
      steps: 3,
      stepSince: new Date(1000).toISOString(),
      done: false,
    });
    assert.equal(progressOf('demo', [1000, 2000], 0).done, true);
  });
});
