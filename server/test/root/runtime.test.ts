/**
 * The runtime on a real kernel, through the real CLI and launcher: isolation, limits,
 * exit codes, terminals, exec, cross-process state, and that nothing leaks.
 */
import { after, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pty from 'node-pty';
import {
  childrenOf,
  cliPath,
  containerCgroups,
  launcherProcesses,
  mdocker,
  mdockerMounts,
  repoRoot,
  rootOnly,
  stateDirs,
  waitFor,
} from './helpers.js';

const skip = rootOnly();
const imageDir = join(repoRoot, 'rootfs/images/busybox');
const started: string[] = [];

/** Starts a detached container and remembers it for cleanup. */
async function detached(args: string[]): Promise<string> {
  const r = await mdocker(['run', '-d', ...args]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  assert.match(id, /^[0-9a-f]{32}$/);
  started.push(id);
  return id;
}

async function statsOf(id: string): Promise<Record<string, string>> {
  const r = await mdocker(['stats', '--no-stream', id]);
  assert.equal(r.code, 0, r.stderr);
  const [header, row] = r.stdout.trim().split('\n');
  assert.ok(header && row, r.stdout);
  const cols = header.split(/ {3,}/);
  const cells = row.split(/ {3,}/);
  return Object.fromEntries(cols.map((c, i) => [c.trim(), (cells[i] ?? '').trim()]));
}

function treeHash(dir: string): string {
  const hash = createHash('sha256');
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p, { throwIfNoEntry: false }) ?? null;
      hash.update(`${p}:${st?.mode}:${st?.size}:${st?.mtimeMs}\n`);
      if (st?.isDirectory() && !st.isSymbolicLink()) walk(p);
      else if (st?.isFile()) hash.update(readFileSync(p));
    }
  };
  walk(dir);
  return hash.digest('hex');
}

after(async () => {
  for (const id of started) await mdocker(['rm', '-f', id]);
});

describe('isolation', { skip }, () => {
  test('the command is PID 1 and host processes are invisible', async () => {
    // `; true` keeps sh from exec-ing ps in its place.
    const r = await mdocker(['run', '--rm', 'busybox', 'sh', '-c', 'echo $$; ps -o pid,comm; true']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], '1');
    const procs = lines.slice(2).map((l) => l.trim().split(/\s+/));
    assert.deepEqual(
      procs.map((p) => p[1]),
      ['sh', 'ps'],
      `only sh and ps: ${r.stdout}`,
    );
    assert.equal(procs[0]?.[0], '1');
  });

  test('hostname is set inside and the host keeps its own', async () => {
    const before = hostname();
    const r = await mdocker([
      'run',
      '--rm',
      '--hostname',
      'box-under-test',
      'busybox',
      'sh',
      '-c',
      'hostname; cat /etc/hostname; hostname changed-inside; hostname',
    ]);
    assert.equal(r.code, 0, r.stderr);
    // Without SYS_ADMIN the container may not rename itself either.
    assert.deepEqual(r.stdout.trim().split('\n'), ['box-under-test', 'box-under-test', 'box-under-test']);
    const renamed = await mdocker([
      'run',
      '--rm',
      '--cap-add',
      'SYS_ADMIN',
      '--hostname',
      'box-under-test',
      'busybox',
      'sh',
      '-c',
      'hostname changed-inside && hostname',
    ]);
    assert.equal(renamed.stdout.trim(), 'changed-inside', renamed.stderr);
    assert.equal(hostname(), before);
  });

  test('a mount made inside is invisible outside', async () => {
    // Mounting needs SYS_ADMIN, which containers lack by default.
    const r = await mdocker([
      'run',
      '--rm',
      '--cap-add',
      'SYS_ADMIN',
      'busybox',
      'sh',
      '-c',
      'mkdir -p /mnt/x && mount -t tmpfs inside-only /mnt/x && grep -c inside-only /proc/mounts',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '1');
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes('inside-only'));
  });

  test('host files are unreachable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mdocker-sentinel-'));
    const secret = randomBytes(8).toString('hex');
    writeFileSync(join(dir, 'sentinel'), secret);
    try {
      const r = await mdocker([
        'run',
        '--rm',
        'busybox',
        'sh',
        '-c',
        `cat ${dir}/sentinel; cat /proc/1/root${dir}/sentinel; cat /proc/self/cwd${dir}/sentinel; cd /proc/self/fd && for f in *; do cat $f${dir}/sentinel; done; find / -xdev -name sentinel; grep -rs ${secret} /tmp /root /etc /run; echo done`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!r.stdout.includes(secret), `the sentinel leaked: ${r.stdout}`);
      assert.match(r.stdout, /done/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the image is unchanged after a container writes everywhere', async () => {
    const before = treeHash(imageDir);
    const r = await mdocker([
      'run',
      '--rm',
      'busybox',
      'sh',
      '-c',
      'echo x > /etc/passwd; rm -rf /bin/ls /etc/group; mkdir /new; touch /root/f; echo y >> /bin/busybox 2>/dev/null; ls /bin/ls 2>&1; true',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /No such file/);
    assert.equal(treeHash(imageDir), before);
    const again = await mdocker(['run', '--rm', 'busybox', 'sh', '-c', 'ls /bin/ls && head -c 5 /etc/passwd']);
    assert.equal(again.stdout.trim(), '/bin/ls\nroot:', 'a new container starts from the pristine image');
  });

  test('--rootfs runs a plain directory read-write, writing as its owner range', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mdocker-rootfs-'));
    try {
      const cp = spawn('cp', ['-a', `${imageDir}/.`, dir]);
      await new Promise((r) => cp.on('close', r));
      // With a user namespace the owner of the rootfs is the container's root (SECURITY.md).
      const chown = spawn('chown', ['-R', '1000000:1001000', dir]);
      await new Promise((r) => chown.on('close', r));
      const r = await mdocker([
        'run',
        '--rm',
        '--rootfs',
        dir,
        '/bin/sh',
        '-c',
        'echo written > /written; id -u; chown 5:5 /written',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '0\n');
      assert.equal(readFileSync(join(dir, 'written'), 'utf8'), 'written\n');
      // Container uid N is the owner + N on disk.
      const st = statSync(join(dir, 'written'));
      assert.deepEqual([st.uid, st.gid], [1000005, 1001005]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('limits', { skip }, () => {
  test('the pids limit stops a fork loop and stats shows it reached and hit', async () => {
    // A non-interactive sh exits when a fork fails; the loop runs in an exec'd shell so
    // the container (sleep as init) lives on with the sleepers.
    const id = await detached(['--pids-limit', '20', 'busybox', 'sleep', '1000']);
    // The sleepers must not hold the test's pipes open past the exec.
    const loop = await mdocker([
      'exec',
      id,
      'sh',
      '-c',
      'for i in $(seq 1 30); do sh -c "sleep 100" >/dev/null 2>&1 & done; wait',
    ]);
    assert.match(loop.stderr, /can't fork/);
    // The forking shell has exited since: init and the sleepers stay, just below 20.
    const stats = await statsOf(id);
    const [pids, limit] = (stats.PIDS ?? '').split(' / ').map(Number);
    assert.equal(limit, 20);
    assert.ok(pids !== undefined && pids >= 17 && pids <= 20, JSON.stringify(stats));
    assert.ok(Number(stats['PIDS LIMIT HITS']) >= 1, JSON.stringify(stats));
    await mdocker(['rm', '-f', id]);
  });

  test('the memory limit OOM-kills a hog with 137 and the OOM is counted', async () => {
    const r = await mdocker(
      ['run', '--rm', '-m', '16m', 'busybox', 'sh', '-c', 'x=aaaaaaaa; while :; do x=$x$x; done'],
      { timeoutMs: 30_000 },
    );
    assert.equal(r.code, 137, r.stderr);

    const id = await detached(['-m', '16m', 'busybox', 'sleep', '1000']);
    const hog = await mdocker(['exec', id, 'sh', '-c', 'x=aaaaaaaa; while :; do x=$x$x; done'], { timeoutMs: 30_000 });
    assert.equal(hog.code, 137);
    const stats = await statsOf(id);
    assert.ok(Number(stats['OOM KILLS']) >= 1, JSON.stringify(stats));
    assert.match(stats['MEM USAGE / LIMIT'] ?? '', /\/ 16MiB$/);
    await mdocker(['rm', '-f', id]);
  });

  test('the CPU quota throttles a busy loop', async () => {
    const id = await detached(['--cpus', '0.2', 'busybox', 'sh', '-c', 'while :; do :; done']);
    await new Promise((r) => setTimeout(r, 1500));
    const stats = await statsOf(id);
    const cpu = Number((stats['CPU %'] ?? '').replace('%', ''));
    assert.ok(cpu > 5 && cpu < 35, `CPU ${cpu}% should be close to the 20% quota`);
    assert.ok(Number(stats.THROTTLED) > 0, JSON.stringify(stats));
    await mdocker(['rm', '-f', id]);
  });

  test('update changes limits while the container runs', async () => {
    const id = await detached(['--pids-limit', '10', 'busybox', 'sleep', '1000']);
    assert.equal((await mdocker(['update', '--pids-limit', '33', '-m', '32m', id])).code, 0);
    const r = await mdocker(['exec', id, 'cat', '/sys/fs/cgroup/pids/pids.max']);
    const v2 = r.code === 0 ? r : await mdocker(['exec', id, 'cat', '/sys/fs/cgroup/pids.max']);
    assert.equal(v2.stdout.trim(), '33');
    const stats = await statsOf(id);
    assert.equal(stats.PIDS, '1 / 33');
    assert.match(stats['MEM USAGE / LIMIT'] ?? '', /\/ 32MiB$/);
    await mdocker(['rm', '-f', id]);
  });
});

describe('exit status', { skip }, () => {
  for (const [cmd, code] of [
    [['true'], 0],
    [['sh', '-c', 'exit 7'], 7],
    [['/etc/passwd'], 126],
    [['/no/such/command'], 127],
  ] as const) {
    test(`${cmd.join(' ')} exits ${code}`, async () => {
      const r = await mdocker(['run', '--rm', 'busybox', ...cmd]);
      assert.equal(r.code, code, r.stderr);
      if (code >= 126) assert.match(r.stderr, code === 127 ? /not found/ : /cannot execute/);
    });
  }

  test("the package's bin, run by its shebang as a user runs `mdocker`, is the same command", async () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { bin: { mdocker: string } };
    const bin = join(repoRoot, pkg.bin.mdocker);
    assert.match(bin, /\.cjs$/, 'CommonJS by its name: no ES module loader at each start');
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(bin, ['run', '--rm', 'busybox', 'sh', '-c', 'echo "hi from $(hostname)"; exit 3'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /^hi from [0-9a-f]{12}\n$/);
    const help = await new Promise<string>((resolve, reject) => {
      const child = spawn(bin, ['--help'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('close', () => resolve(out));
    });
    assert.match(help, /^Usage: mdocker /m);
  });

  test('a container killed with SIGKILL exits 137', async () => {
    const child = spawn(process.execPath, [
      cliPath,
      'run',
      '--rm',
      '--name',
      `kill-${process.pid}`,
      'busybox',
      'sleep',
      '100',
    ]);
    const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitFor('running', async () => (await mdocker(['ps'])).stdout.includes(`kill-${process.pid}`));
    assert.equal((await mdocker(['kill', `kill-${process.pid}`])).code, 0);
    assert.equal(await exit, 137);
  });

  test('stdin and stdout are pipes without -t, stderr apart', async () => {
    const r = await mdocker(['run', '-i', '--rm', 'busybox', 'sh', '-c', 'cat; echo to-stderr >&2'], { input: 'hi\n' });
    assert.equal(r.stdout, 'hi\n');
    assert.equal(r.stderr, 'to-stderr\n');
  });
});

describe('bad input', { skip }, () => {
  for (const [args, pattern] of [
    [['run', 'nosuchimage'], /unknown image "nosuchimage"/],
    [['run', '-m', 'abc', 'busybox'], /invalid memory "abc"/],
    [['run', '--pids-limit', '0', 'busybox'], /pids limit/],
    [['run', '--cpus', '-1', 'busybox'], /cpus/],
    [['exec', 'no-such-container', 'sh'], /no such container/],
  ] as const) {
    test(`mdocker ${args.join(' ')} fails with one clear line`, async () => {
      const before = readdirSync('/run/mdocker').length;
      const r = await mdocker([...args]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(readdirSync('/run/mdocker').length, before, 'nothing left behind');
    });
  }

  test('not root: one line, non-zero', async () => {
    const child = spawn(process.execPath, [cliPath, 'run', 'busybox', 'true'], { uid: 65534, gid: 65534 });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.notEqual(code, 0);
    assert.match(stderr, /needs root/);
  });
});

describe('terminals', { skip }, () => {
  const terms: pty.IPty[] = [];
  // A failed test must not leave its CLI (and container) behind, holding the run open.
  afterEach(() => {
    for (const term of terms.splice(0)) {
      try {
        term.kill('SIGKILL');
      } catch {
        // exited already
      }
    }
  });

  function runPty(args: string[]) {
    const term = pty.spawn(process.execPath, [cliPath, ...args], {
      cols: 80,
      rows: 24,
      env: process.env as Record<string, string>,
    });
    terms.push(term);
    let output = '';
    term.onData((d) => (output += d));
    const exit = new Promise<number>((r) => term.onExit(({ exitCode }) => r(exitCode)));
    const expect = (pattern: RegExp, what: string) =>
      waitFor(what, () => pattern.test(output), 10_000).catch((err: Error) => {
        throw new Error(`${err.message}; the terminal showed: ${JSON.stringify(output.slice(-600))}`);
      });
    return { term, exit, expect, output: () => output };
  }

  test('Ctrl-C through the pty reaches the foreground job, not the shell', async () => {
    const { term, exit, expect } = runPty(['run', '-it', '--rm', 'busybox', 'sh']);
    await expect(/# (\x1b\[6n)?$/, 'prompt');
    term.write('sleep 30\r');
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    term.write('\x03');
    term.write('echo after-$((40+2))\r');
    await expect(/after-42/, 'the shell to survive Ctrl-C');
    assert.ok(Date.now() - t0 < 5000, 'sleep was interrupted');
    term.write('exit 3\r');
    assert.equal(await exit, 3);
  });

  test('a window size change reaches stty size', async () => {
    const { term, exit, expect } = runPty(['run', '-it', '--rm', 'busybox', 'sh']);
    await expect(/# (\x1b\[6n)?$/, 'prompt');
    term.resize(101, 37);
    await new Promise((r) => setTimeout(r, 100));
    term.write('stty size\r');
    await expect(/37 101/, 'the new size');
    term.write('exit\r');
    assert.equal(await exit, 0);
  });

  test("the seed's demo: mdocker run /bin/sh, ps, and a fork loop stopped at the pids limit", async () => {
    const name = `seed-${process.pid}`;
    const { term, exit, expect } = runPty(['run', '--name', name, '--rm', '--pids-limit', '20', '/bin/sh']);
    await expect(/# (\x1b\[6n)?$/, 'prompt');
    term.write('ps\r');
    // busybox runs the ps applet in a forked sh: its command line stays /bin/sh.
    await expect(
      /PID\s+USER\s+COMMAND\r*\n\s+1 root\s+\/bin\/sh\r*\n\s+\d+ root\s+(\{ps\} \/bin\/sh|ps)\r*\n[^\n]*# /,
      'sh as PID 1 and ps, nothing else',
    );
    term.write('for i in $(seq 1 30); do sh -c "sleep 100" & done\r');
    await expect(/can't fork/, 'the fork loop to hit the limit');
    const stats = await waitFor('20 pids', async () => {
      const s = await statsOf(name);
      return s.PIDS === '20 / 20' ? s : null;
    });
    assert.ok(Number(stats['PIDS LIMIT HITS']) >= 1);
    term.write('kill %1 %2 %3 %4 %5 %6 %7 %8 %9 %10 %11 %12 %13 %14 %15 %16 %17 %18 %19; exit 0\r');
    assert.equal(await exit, 0);
  });
});

describe('exec and cross-process state', { skip }, () => {
  test('exec joins the same PID namespace and cgroup', async () => {
    const id = await detached(['--name', `exec-${process.pid}`, 'busybox', 'sleep', '1000']);
    const r = await mdocker([
      'exec',
      `exec-${process.pid}`,
      'sh',
      '-c',
      'ps -o pid,comm | grep sleep; cat /proc/self/cgroup',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\s*1 sleep$/m);
    // In its cgroup namespace the container's cgroup is the root.
    for (const line of r.stdout.split('\n').filter((l) => /:(pids|memory|cpu)[,:]/.test(l) || l.startsWith('0::'))) {
      if (/:(pids|memory):/.test(line)) assert.match(line, /:\/$/, line);
    }
    const hostCgroups = containerCgroups([id]);
    assert.ok(hostCgroups.length > 0);
    const execPid = await mdocker(['exec', id, 'sh', '-c', 'echo $$']);
    assert.notEqual(execPid.stdout.trim(), '1');
    await mdocker(['rm', '-f', id]);
  });

  test('ps, stats, kill and rm work across processes', async () => {
    const id = await detached(['--name', `cross-${process.pid}`, 'busybox', 'sleep', '1000']);
    const ps = await mdocker(['ps']);
    assert.match(ps.stdout, new RegExp(`${id.slice(0, 12)}.*Up .*cross-${process.pid}`));
    assert.equal((await statsOf(id)).PIDS, '1');
    assert.equal((await mdocker(['rm', id])).code, 1, 'a running container needs -f');
    assert.equal((await mdocker(['kill', id])).code, 0);
    await waitFor('exited', async () =>
      /Exited \(137\)/.test(
        (await mdocker(['ps', '-a'])).stdout.split('\n').find((l) => l.startsWith(id.slice(0, 12))) ?? '',
      ),
    );
    assert.equal((await mdocker(['rm', id])).code, 0);
    assert.ok(!(await mdocker(['ps', '-a'])).stdout.includes(id.slice(0, 12)));
    assert.deepEqual(containerCgroups([id]), []);
    assert.deepEqual(stateDirs([id]), []);
  });
});

describe('leaks', { skip }, () => {
  test(
    '50 run/exit cycles, some ended by kill -9 of the launcher or the CLI, leave nothing behind',
    { timeout: 180_000 },
    async () => {
      // Other tests (and other engineers' servers) may run containers meanwhile: look only
      // at what this test started, tagged by hostname, plus cgroups that no state owns.
      const tag = `lk${process.pid}`;
      const cgroupsBefore = new Set(containerCgroups());
      const ids: string[] = [];
      const idOf = async (name: string) => {
        const line = (await mdocker(['ps', '-a', '--no-trunc'])).stdout.split('\n').find((l) => l.endsWith(name));
        return line?.split(/\s+/)[0];
      };
      for (let i = 0; i < 50; i++) {
        const name = `leak-${process.pid}-${i}`;
        const common = [
          '--rm',
          '--name',
          name,
          '--hostname',
          `${tag}-${i}`,
          '-m',
          '32m',
          '--pids-limit',
          '16',
          'busybox',
        ];
        if (i % 5 !== 0) {
          const r = await mdocker(['run', ...common, 'sh', '-c', 'echo $$']);
          assert.equal(r.stdout.trim(), '1', r.stderr);
          continue;
        }
        const cli = spawn(process.execPath, [cliPath, 'run', ...common, 'sh', '-c', 'sleep 100 & sleep 100'], {
          stdio: 'ignore',
        });
        const exited = new Promise((r) => cli.on('exit', r));
        const id = await waitFor(`container ${name}`, () => idOf(name));
        ids.push(id);
        await waitFor('init running', async () => (await mdocker(['ps'])).stdout.includes(id.slice(0, 12)));
        if (i % 10 === 0) {
          const [launcher] = childrenOf(cli.pid ?? -1);
          assert.ok(launcher, 'the launcher is the CLI child');
          process.kill(launcher, 'SIGKILL');
        } else {
          cli.kill('SIGKILL');
        }
        await exited;
      }
      // The next command reaps what a killed CLI could not clean.
      await mdocker(['ps', '-a']);
      const ours = () => launcherProcesses().filter((p) => p.includes(`--hostname ${tag}-`));
      await waitFor('launchers gone', () => ours().length === 0, 5_000).catch(() => undefined);
      assert.deepEqual(ours(), []);
      const orphanCgroups = containerCgroups().filter(
        (path) => !cgroupsBefore.has(path) && stateDirs([path.slice(-32)]).length === 0,
      );
      assert.deepEqual(orphanCgroups, []);
      // This runtime's mounts, under its state root (another runtime's, a bench's, are not ours).
      assert.deepEqual(
        mdockerMounts().filter((line) => line.split(' ')[4]?.startsWith('/run/mdocker/')),
        [],
      );
      assert.deepEqual(stateDirs(ids), []);
      const names = readdirSync('/run/mdocker/names').filter((n) => n.startsWith(`leak-${process.pid}-`));
      assert.deepEqual(names, []);
    },
  );
});
