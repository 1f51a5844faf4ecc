// process.ts's launch() for the CLI's run and exec without a terminal: the addon's
// posix_spawn on this process's own stdout and stderr (host programs, no root needed).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { launch } from '../src/runtime/process.js';

const PIPES_IGNORE = { kind: 'pipes', stdin: 'ignore', output: 'inherit' } as const;

describe('launch on inherited stdio', () => {
  it('runs the program in / with stdin from /dev/null and no fd beyond 0-2', async () => {
    // The exit status carries the answers: the output itself is the test runner's.
    const script = [
      'exec >/dev/null 2>&1',
      '[ "$(pwd)" = / ] || exit 10',
      'read line && exit 11',
      'n=$(ls /proc/self/fd | wc -l)',
      'exit $n',
    ].join('; ');
    const p = launch({ file: '/bin/sh', args: ['-c', script] }, PIPES_IGNORE);
    assert.ok(p.pid > 1);
    assert.equal(await p.spawned, p.pid);
    // 0, 1, 2 of the command substitution's ls, and the fd it reads /proc/self/fd through.
    assert.equal(await p.exit, 4);
  });

  it('reports a death by signal as 128+N, and signals only its own child', async () => {
    const p = launch({ file: '/bin/sleep', args: ['30'] }, PIPES_IGNORE);
    p.signal('SIGTERM');
    assert.equal(await p.exit, 143);
    p.signal('SIGKILL'); // reaped: a no-op, never another process's pid
  });

  it('exits 125 when the program cannot be started', async () => {
    const p = launch({ file: '/no/such/launcher', args: [] }, PIPES_IGNORE);
    assert.equal(await p.exit, 125);
    await assert.rejects(p.spawned);
    p.signal('SIGKILL');
  });
});
