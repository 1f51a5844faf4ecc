import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { describe, it } from 'node:test';
import { runHelper } from '../src/runtime/helper.js';
import { MdockerError } from '../src/runtime/errors.js';

const LIMITS = { timeoutMs: 5000, maxBuffer: 1 << 20 };
/** This process's open pipes by inode ("pipe:[N]"): a leaked one is one not there before. */
const openPipes = (): Set<string> =>
  new Set(
    readdirSync('/proc/self/fd').flatMap((fd) => {
      try {
        const target = readlinkSync(`/proc/self/fd/${fd}`);
        return target.startsWith('pipe:') ? [target] : [];
      } catch {
        return [];
      }
    }),
  );

describe('runHelper', () => {
  it('returns the exit code and what the helper printed on stdout and stderr, and feeds it its input', async () => {
    const r = await runHelper('/bin/sh', ['-c', 'tr a-z A-Z; echo oops >&2; exit 3'], { ...LIMITS, input: 'hello\n' });
    assert.deepEqual(r, { code: 3, signal: null, stdout: 'HELLO\n', stderr: 'oops\n' });
  });

  it('closes stdin at once without input, and passes the environment on', async () => {
    process.env['MDOCKER_HELPER_TEST'] = 'passed';
    try {
      const r = await runHelper('/bin/sh', ['-c', 'cat; echo "$MDOCKER_HELPER_TEST"'], LIMITS);
      assert.deepEqual(r, { code: 0, signal: null, stdout: 'passed\n', stderr: '' });
    } finally {
      delete process.env['MDOCKER_HELPER_TEST'];
    }
  });

  it('reports a death by signal as the signal', async () => {
    const r = await runHelper('/bin/sh', ['-c', 'kill -TERM $$'], LIMITS);
    assert.equal(r.code, null);
    assert.equal(r.signal, 15);
  });

  it('kills a helper past its time and fails naming the limit', async () => {
    const started = Date.now();
    await assert.rejects(
      runHelper('/bin/sleep', ['30'], { ...LIMITS, timeoutMs: 200 }),
      (err: unknown) => err instanceof MdockerError && /took longer than 200 ms/.test(err.message),
    );
    assert.ok(Date.now() - started < 5000);
  });

  it('kills a helper that prints past the cap instead of holding it all', async () => {
    await assert.rejects(
      runHelper('/bin/sh', ['-c', 'yes'], { ...LIMITS, maxBuffer: 64 * 1024 }),
      (err: unknown) => err instanceof MdockerError && /printed more than 65536 bytes/.test(err.message),
    );
  });

  it('gives the helper only stdin, stdout and stderr, and leaves no fd of ours open', async () => {
    const before = openPipes();
    const r = await runHelper('/bin/sh', ['-c', 'ls /proc/self/fd'], LIMITS);
    // 0, 1, 2 and the fd ls reads /proc/self/fd through.
    assert.deepEqual(r.stdout.trim().split('\n').map(Number).sort(), [0, 1, 2, 3]);
    // Earlier tests' pipes may close meanwhile; none of this call's may stay.
    assert.deepEqual(
      [...openPipes()].filter((pipe) => !before.has(pipe)),
      [],
    );
  });

  it('kills a helper whose time ran out before its spawn was done, once it is spawned', async () => {
    const t0 = performance.now();
    await assert.rejects(
      runHelper('/bin/sleep', ['30'], { ...LIMITS, timeoutMs: 0 }),
      (err: unknown) => err instanceof MdockerError && /took longer than 0 ms/.test(err.message),
    );
    assert.ok(performance.now() - t0 < 10_000, 'the sleep was killed, not waited for');
  });

  it('fails with a SystemError-shaped error when the program cannot be started', async () => {
    await assert.rejects(runHelper('/nonexistent/helper', [], LIMITS), (err: unknown) => {
      return typeof err === 'object' && err !== null && (err as { code?: string }).code === 'ENOENT';
    });
  });
});
