// process.ts's launch() without a terminal: the CLI's run and exec (the addon's posix_spawn
// on this process's own stdout and stderr) and the server's execs on pipes (the spawn on the
// addon's spawner thread). Host programs, no root needed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Readable } from 'node:stream';
import { launch } from '../src/runtime/process.js';

const PIPES_IGNORE = { kind: 'pipes', stdin: 'ignore', output: 'inherit' } as const;
const PIPED = { kind: 'pipes', stdin: 'ignore', output: 'pipe' } as const;

async function readAll(stream: Readable | null): Promise<string> {
  assert.ok(stream);
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

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

describe("launch on pipes (the server's exec)", () => {
  it('returns before the spawn, then runs the program in / with stdin at EOF and its output piped', async () => {
    const script = 'cd /tmp; pwd >&2; cd "$OLDPWD"; pwd; cat; echo "$PATH"; ls /proc/self/fd | wc -l; exit 3';
    const p = launch({ file: '/bin/sh', args: ['-c', script] }, PIPED);
    const [stdout, stderr, pid] = await Promise.all([readAll(p.stdout), readAll(p.stderr), p.spawned]);
    assert.ok(pid > 1);
    assert.equal(p.pid, pid);
    // In /, stdin read EOF at once, nothing of this process's environment, fds 0-2 only
    // (plus ls's own for /proc/self/fd).
    assert.deepEqual(stdout.split('\n'), ['/', '/usr/sbin:/usr/bin:/sbin:/bin', '4', '']);
    assert.equal(stderr, '/tmp\n');
    assert.equal(await p.exit, 3);
  });

  it('delivers a signal sent before the pid is known, once it is, and never after the reap', async () => {
    const p = launch({ file: '/bin/sleep', args: ['30'] }, PIPED);
    p.signal('SIGKILL'); // at once: the spawn is still on the spawner thread or just done
    assert.equal(await p.exit, 137);
    p.signal('SIGKILL'); // reaped: a no-op, never another process's pid
    p.stdout?.destroy();
    p.stderr?.destroy();
  });

  it('exits 125 with no output when the program cannot be started', async () => {
    const p = launch({ file: '/no/such/launcher', args: [] }, PIPED);
    p.signal('SIGTERM'); // before the failure is known: dropped, not sent to pid -1
    await assert.rejects(p.spawned);
    assert.equal(p.pid, -1);
    assert.equal(await p.exit, 125);
    assert.equal(await readAll(p.stdout), '');
    assert.equal(await readAll(p.stderr), '');
  });
});
