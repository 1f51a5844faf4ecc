// The playground's pty (the addon's posix_spawn + a tty.ReadStream on the master), on a
// real pty running host programs: no root needed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnPty, startPty, type PtyExit, type PtyProcess } from '../src/runtime/pty.js';
import { processStartTime, raiseOpenFilesLimit } from '../src/runtime/native.js';

const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', TERM: 'xterm-256color' };

function start(
  script: string,
  size = { cols: 80, rows: 24 },
): { pty: PtyProcess; output: () => string; exit: Promise<PtyExit> } {
  const pty = spawnPty('/bin/sh', ['-c', script], { ...size, cwd: '/', env: ENV });
  const chunks: Buffer[] = [];
  pty.onData((data) => chunks.push(Buffer.isBuffer(data) ? data : Buffer.from(data)));
  const exit = new Promise<PtyExit>((resolve) => pty.onExit(resolve));
  return { pty, output: () => Buffer.concat(chunks).toString('utf8'), exit };
}

async function until(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('spawnPty', () => {
  it('keeps what the program printed before anyone listened (the prompt the CLI attaches to after a tick)', async () => {
    const pty = spawnPty('/bin/sh', ['-c', 'echo early-bytes; sleep 0.3'], { cols: 80, rows: 24, cwd: '/', env: ENV });
    await sleep(150);
    let output = '';
    pty.onData((data: Buffer | string) => (output += data.toString()));
    await new Promise<PtyExit>((resolve) => pty.onExit(resolve));
    assert.match(output, /early-bytes/);
  });

  it('runs the program on a terminal of the given size, as a session leader, with exactly the env given', async () => {
    const { output, exit } = start(
      'stty size; tty; echo "env:$TERM:$PWD:$(env | wc -l)"; [ "$(ps -o sid= -p $$ | tr -d " ")" = "$$" ] && echo leader; pwd',
      { cols: 123, rows: 45 },
    );
    assert.deepEqual(await exit, { exitCode: 0 });
    const lines = output().split('\r\n');
    assert.equal(lines[0], '45 123');
    assert.match(lines[1]!, /^\/dev\/pts\/\d+$/);
    assert.equal(lines[2], 'env:xterm-256color:/:3'); // PATH, TERM, PWD
    assert.equal(lines[3], 'leader');
    assert.equal(lines[4], '/');
  });

  it('passes every byte written before the exit, and reports the exit code after the output', async () => {
    const { output, exit } = start('head -c 300000 /dev/zero | tr "\\0" a; exit 7');
    assert.deepEqual(await exit, { exitCode: 7 });
    assert.equal(output().length, 300000);
  });

  it('reports a death by signal as the signal, as node-pty does', async () => {
    const { pty, output, exit } = start('echo ready; sleep 30');
    await until(() => output().includes('ready'), 'ready');
    pty.kill('SIGKILL');
    assert.deepEqual(await exit, { exitCode: 0, signal: 9 });
    pty.kill('SIGKILL'); // once reaped, a no-op: the pid may be another process's now
  });

  it('delivers keystrokes through the line discipline (echo, ^C as SIGINT to the foreground)', async () => {
    const { pty, output, exit } = start('trap "echo caught; exit 3" INT; read line; echo "got:$line"; sleep 30');
    pty.write('hello\r');
    await until(() => output().includes('got:hello'), 'the line');
    assert.match(output(), /hello\r\n/); // the terminal echoed it
    pty.write(Buffer.from([3]));
    assert.deepEqual(await exit, { exitCode: 3 });
    assert.match(output(), /caught/);
  });

  it('resizes: the program sees the new size and SIGWINCH', async () => {
    const { pty, output, exit } = start('trap "stty size; exit 0" WINCH; echo ready; while :; do sleep 0.05; done');
    await until(() => output().includes('ready'), 'ready');
    pty.resize(100, 40);
    assert.deepEqual(await exit, { exitCode: 0 });
    assert.match(output(), /40 100/);
  });

  it('stops reading while paused: the writer blocks, and nothing is lost on resume', async () => {
    const { pty, output, exit } = start('echo start; head -c 1000000 /dev/zero | tr "\\0" b; echo; echo end');
    await until(() => output().includes('start'), 'start');
    pty.pause();
    const atPause = output().length;
    await sleep(300);
    // The kernel's buffers hold a few KiB at most: far from all of it.
    assert.ok(output().length < atPause + 200_000, `read ${output().length - atPause} bytes while paused`);
    pty.resume();
    assert.deepEqual(await exit, { exitCode: 0 });
    assert.equal(output().split('b').length - 1, 1_000_000);
    assert.match(output(), /end\r\n$/);
  });

  it('queues input the program does not read yet, tells as it takes it, and loses or reorders nothing', async () => {
    const total = 1_000_000;
    const { pty, output, exit } = start(`stty raw -echo; echo ready; sleep 1; head -c ${total} | md5sum; sleep 30`);
    await until(() => output().includes('ready'), 'ready');
    // Writes of every size, from a keystroke to more than a queue chunk, a pattern that
    // shows a reordered or lost piece.
    const data = Buffer.alloc(total);
    for (let i = 0; i < total; i++) data[i] = (i * 7 + (i >> 13)) & 0xff;
    let writes = 0;
    for (let at = 0, size = 1; at < total; at += size, size = (size * 3 + 1) % 70_001) {
      pty.write(data.subarray(at, at + size));
      writes++;
    }
    assert.ok(pty.queuedInputBytes > total - 100_000, `queued ${pty.queuedInputBytes} of ${total}`);
    let told = 0;
    pty.onInputWritten(() => told++);
    await until(() => output().includes('  -'), 'the checksum');
    assert.equal(pty.queuedInputBytes, 0);
    assert.ok(told > 0, 'told as the program took its input');
    assert.ok(writes >= 20, `${writes} writes`);
    assert.match(output(), new RegExp(createHash('md5').update(data).digest('hex')));
    pty.kill('SIGKILL');
    await exit;
  });

  it('gathers a trickle of small writes into fewer reads, losing nothing', async () => {
    // perl (Debian's perl-base is essential): 100 unbuffered writes 2 ms apart, no forks.
    const script = '$| = 1; for (1 .. 100) { print "ab"; select(undef, undef, undef, 0.002) }';
    const pty = spawnPty('/usr/bin/perl', ['-e', script], {
      cols: 80,
      rows: 24,
      cwd: '/',
      env: ENV,
    });
    let reads = 0;
    let text = '';
    pty.onData((data) => {
      reads++;
      text += data.toString();
    });
    await new Promise<PtyExit>((resolve) => pty.onExit(resolve));
    assert.equal(text, 'ab'.repeat(100));
    // Held 10 ms after each read, the writes come in far fewer reads.
    assert.ok(reads < 50, `${reads} reads for 100 writes`);
  });

  it('does not hold the reads of a terminal someone is typing into', async () => {
    // The trickle above, once alone and once with a key typed every 2 ms (the terminal
    // echoes it): a held read would delay each echo by the hold.
    const script = '$| = 1; for (1 .. 100) { print "ab"; select(undef, undef, undef, 0.002) }';
    const run = async (typing: boolean): Promise<{ reads: number; text: string }> => {
      const pty = spawnPty('/usr/bin/perl', ['-e', script], { cols: 80, rows: 24, cwd: '/', env: ENV });
      let reads = 0;
      let text = '';
      pty.onData((data) => {
        reads++;
        text += data.toString();
      });
      const keys = typing ? setInterval(() => pty.write('k'), 2) : null;
      await new Promise<PtyExit>((resolve) => pty.onExit(resolve));
      if (keys) clearInterval(keys);
      return { reads, text };
    };
    const quiet = await run(false);
    const typed = await run(true);
    assert.equal(typed.text.replace(/k/g, ''), 'ab'.repeat(100));
    assert.ok(typed.text.includes('k'), 'the keys were echoed');
    assert.ok(typed.reads > 2 * quiet.reads, `${typed.reads} reads while typing, ${quiet.reads} without`);
  });

  it('closes the master: no fd of ours is left after the exit', async () => {
    const ptyFds = (): string[] =>
      readdirSync('/proc/self/fd')
        .map((fd) => {
          try {
            return readlinkSync(`/proc/self/fd/${fd}`);
          } catch {
            return '';
          }
        })
        .filter((target) => target === '/dev/ptmx' || target.startsWith('/dev/pts/'));
    const before = ptyFds().length;
    const runs = Array.from({ length: 20 }, () => start('echo hi').exit);
    await until(() => ptyFds().length >= before + 1, 'the masters to be open');
    await Promise.all(runs);
    await sleep(50);
    assert.deepEqual(ptyFds().slice(before), []);
  });

  it("fails with an error shaped as Node's SystemError, not a crash, when the program cannot be started", () => {
    assert.throws(
      () => spawnPty('/no/such/program', [], { cols: 80, rows: 24, cwd: '/', env: ENV }),
      (err: NodeJS.ErrnoException) => {
        assert.match(err.message, /posix_spawn: No such file or directory/);
        assert.equal(err.code, 'ENOENT');
        assert.equal(err.errno, 2);
        assert.equal(err.syscall, 'posix_spawn');
        return true;
      },
    );
    assert.throws(
      () => spawnPty('/bin/sh', [], { cols: 0, rows: 24, cwd: '/', env: ENV }),
      (err: NodeJS.ErrnoException) => err.code === 'ERR_OUT_OF_RANGE' && /cols and rows/.test(err.message),
    );
  });
});

describe("startPty (the spawn on the addon's spawner thread)", () => {
  it('returns the terminal before the pid, then runs the program on it as spawnPty does', async () => {
    const pty = startPty('/bin/sh', ['-c', 'echo "pid:$$"; exit 3'], { cols: 80, rows: 24, cwd: '/', env: ENV });
    assert.equal(pty.pid, -1);
    let output = '';
    pty.onData((data: Buffer | string) => (output += data.toString()));
    const exit = new Promise<PtyExit>((resolve) => pty.onExit(resolve));
    const pid = await pty.spawned;
    assert.ok(pid > 1);
    assert.equal(pty.pid, pid);
    assert.deepEqual(await exit, { exitCode: 3 });
    assert.equal(output.trim(), `pid:${pid}`);
  });

  it("reports the child's start time, read on the spawner thread, as /proc has it", async () => {
    const pty = startPty('/bin/sleep', ['30'], { cols: 80, rows: 24, cwd: '/', env: ENV });
    assert.equal(pty.startTime, null);
    const exit = new Promise<PtyExit>((resolve) => pty.onExit(resolve));
    pty.onData(() => undefined);
    const pid = await pty.spawned;
    assert.ok(pty.startTime !== null && pty.startTime > 0);
    assert.equal(pty.startTime, processStartTime(pid));
    pty.kill('SIGKILL');
    assert.deepEqual(await exit, { exitCode: 0, signal: 9 });
  });

  it('delivers a signal sent before the pid was known once it is, to that child only', async () => {
    const pty = startPty('/bin/sleep', ['30'], { cols: 80, rows: 24, cwd: '/', env: ENV });
    const exit = new Promise<PtyExit>((resolve) => pty.onExit(resolve));
    pty.onData(() => undefined);
    pty.kill('SIGTERM');
    assert.deepEqual(await exit, { exitCode: 0, signal: 15 });
    pty.kill('SIGKILL'); // reaped: a no-op
  });

  it('rejects spawned with the SystemError-shaped error and ends the terminal as exit 125, never signalling pid -1', async () => {
    const pty = startPty('/no/such/program', [], { cols: 80, rows: 24, cwd: '/', env: ENV });
    pty.kill('SIGKILL'); // queued: the spawn fails, so it is dropped, not sent to -1 (every process)
    const exit = new Promise<PtyExit>((resolve) => pty.onExit(resolve));
    pty.onData(() => undefined);
    await assert.rejects(pty.spawned, (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ENOENT');
      assert.equal(err.syscall, 'posix_spawn');
      return true;
    });
    assert.deepEqual(await exit, { exitCode: 125 });
    assert.equal(pty.pid, -1);
    pty.kill('SIGKILL');
    assert.throws(
      () => startPty('/bin/sh', [], { cols: 0, rows: 24, cwd: '/', env: ENV }),
      (err: NodeJS.ErrnoException) => err.code === 'ERR_OUT_OF_RANGE',
    );
  });

  it('spawns many at once, each its own child, and leaves no terminal open', async () => {
    const runs = Array.from({ length: 40 }, (_, i) => {
      const pty = startPty('/bin/sh', ['-c', `echo run-${i}`], { cols: 80, rows: 24, cwd: '/', env: ENV });
      let output = '';
      pty.onData((data: Buffer | string) => (output += data.toString()));
      return new Promise<string>((resolve) => pty.onExit(() => resolve(output.trim())));
    });
    assert.deepEqual(
      await Promise.all(runs),
      Array.from({ length: 40 }, (_, i) => `run-${i}`),
    );
  });
});

describe('raiseOpenFilesLimit', () => {
  it('raises the soft limit on open files to the hard one', () => {
    const { soft, hard } = raiseOpenFilesLimit();
    assert.equal(soft, hard);
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    assert.deepEqual(line?.split(/\s+/).slice(3, 5), [String(soft), String(hard)]);
  });
});
