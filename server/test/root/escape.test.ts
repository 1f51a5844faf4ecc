/**
 * The escape suite: a container's attempts to reach the host, each of which must fail,
 * with the failure asserted precisely. Real kernel, real CLI and launcher; SECURITY.md
 * says which mechanism answers each attempt and which CVE it belongs to.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { hostname, networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as pty from 'node-pty';
import { USERNS_SLOT_IDS, usernsPool } from '../../src/runtime/launcher.js';
import { launcherPath } from '../../src/runtime/native.js';
import { cliPath, containerCgroups, mdocker, repoRoot, rootOnly, waitFor, type RunResult } from './helpers.js';

const skip = rootOnly();
const imageDir = join(repoRoot, 'rootfs/images/busybox');
const started: string[] = [];
let scratch = '';

/** The CLI with binary stdin (a program copied into a container). */
function mdockerWithInput(args: string[], input: Buffer): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mdocker ${args.join(' ')} timed out; stderr=${stderr}`));
    }, 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 125, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** Runs script in a fresh busybox container (stdin a pipe, so -i); extra flags first. */
async function inside(script: string, flags: string[] = []): Promise<RunResult> {
  return mdocker(['run', '-i', '--rm', ...flags, 'busybox', 'sh', '-c', script], { timeoutMs: 60_000 });
}

async function detached(args: string[]): Promise<string> {
  const r = await mdocker(['run', '-d', ...args]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  started.push(id);
  return id;
}

async function copyIn(id: string, hostFile: string, path: string): Promise<void> {
  const r = await mdockerWithInput(
    ['exec', '-i', id, 'sh', '-c', `cat > ${path} && chmod 755 ${path}`],
    readFileSync(hostFile),
  );
  assert.equal(r.code, 0, r.stderr);
}

function initPid(id: string): number {
  return Number.parseInt(readFileSync(join('/run/mdocker', id, 'init.pid'), 'utf8'), 10);
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** "Uid:\t1\t2\t3\t4" of a host process. */
function statusIds(pid: number, key: 'Uid' | 'Gid'): number[] {
  const line =
    readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${key}:`)) ?? '';
  return line.split(/\s+/).slice(1).filter(Boolean).map(Number);
}

/** "N -> target" of `ls -l /proc/PID/fd` output. */
function fdTargets(lsOutput: string): Map<number, string> {
  const fds = new Map<number, string>();
  for (const m of lsOutput.matchAll(/\s(\d+) -> (\S+)/g)) fds.set(Number(m[1]), m[2] ?? '');
  return fds;
}

/** What may be open in a container: pipes, sockets, anonymous inodes and ptys. */
const CONTAINER_FD = /^(pipe:\[\d+\]|socket:\[\d+\]|anon_inode:.+|\/dev\/pts\/\d+)$/;

before(() => {
  if (skip) return;
  scratch = mkdtempSync(join(tmpdir(), 'mdocker-escape-'));
});

after(async () => {
  for (const id of started) await mdocker(['rm', '-f', id]);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('credentials', { skip }, () => {
  test('capabilities, no_new_privs and seccomp in /proc/self/status, for run and exec', async () => {
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID NET_BIND_SERVICE SYS_CHROOT
    const expected = [
      'CapInh:\t0000000000000000',
      'CapPrm:\t00000000000404fb',
      'CapEff:\t00000000000404fb',
      'CapBnd:\t00000000000404fb',
      'CapAmb:\t0000000000000000',
      'NoNewPrivs:\t1',
      'Seccomp:\t2',
      'Seccomp_filters:\t1',
    ];
    const script = "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status";
    const run = await inside(script);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.stdout.trim().split('\n'), expected);
    const id = await detached(['busybox', 'sleep', '1000']);
    const exec = await mdocker(['exec', id, 'sh', '-c', script]);
    assert.deepEqual(exec.stdout.trim().split('\n'), expected, exec.stderr);
  });

  test("uid_map is not the identity: the container's root is an unprivileged host uid of a range of its own", async () => {
    const pool = usernsPool();
    const a = await detached(['busybox', 'sleep', '1000']);
    const b = await detached(['busybox', 'sleep', '1000']);
    // A process exec'd in joins the same user namespace and is its root too.
    const bg = await mdocker(['exec', a, 'sh', '-c', 'sleep 1000 >/dev/null 2>&1 </dev/null &']);
    assert.equal(bg.code, 0, bg.stderr);
    const hostUids: number[] = [];
    for (const id of [a, b]) {
      const r = await mdocker(['exec', id, 'sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; id']);
      assert.equal(r.code, 0, r.stderr);
      const [uidMap, gidMap, ids] = r.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/));
      assert.equal(ids?.join(' '), 'uid=0(root) gid=0(root) groups=0(root)');
      const hostUid = Number(uidMap?.[1]);
      const hostGid = Number(gidMap?.[1]);
      assert.deepEqual(uidMap, ['0', String(hostUid), String(USERNS_SLOT_IDS)]);
      assert.deepEqual(gidMap, ['0', String(hostGid), String(USERNS_SLOT_IDS)]);
      const slot = (hostUid - pool.uidBase) / USERNS_SLOT_IDS;
      assert.ok(Number.isInteger(slot) && slot >= 0 && slot < pool.slots, `host uid ${hostUid} is a slot of the pool`);
      assert.equal(hostGid, pool.gidBase + slot * USERNS_SLOT_IDS);
      hostUids.push(hostUid);
      // Seen from the host, every process of the container (init and exec'd) runs as it.
      const pids = readFileSync(
        join(containerCgroups([id]).find((p) => p.includes('/pids/')) ?? '', 'cgroup.procs'),
        'utf8',
      )
        .trim()
        .split('\n')
        .map(Number);
      assert.ok(pids.includes(initPid(id)));
      for (const pid of pids) {
        assert.deepEqual(statusIds(pid, 'Uid'), [hostUid, hostUid, hostUid, hostUid], `pid ${pid}`);
        assert.deepEqual(statusIds(pid, 'Gid'), [hostGid, hostGid, hostGid, hostGid], `pid ${pid}`);
      }
    }
    assert.notEqual(hostUids[0], hostUids[1], 'two running containers never share host ids');
    // The opt-out for teaching: the identity map, container root is host root.
    const host = await inside('cat /proc/self/uid_map', ['--userns', 'host']);
    assert.deepEqual(host.stdout.trim().split(/\s+/), ['0', '0', '4294967295']);
  });

  test('rlimits: 1024 open files and no core dumps, neither raisable', async () => {
    const r = await inside('ulimit -n; ulimit -c; ulimit -c unlimited; ulimit -n 4096; ulimit -Hn; ulimit -Hc');
    assert.equal(r.stdout, '1024\n0\n1024\n0\n');
    assert.equal(r.stderr, 'sh: error setting limit: Operation not permitted\n'.repeat(2));
  });
});

describe("the kernel's knobs", { skip }, () => {
  test('/proc/kcore and /proc/keys read empty (and the other masked paths)', async () => {
    const r = await inside(
      'for f in /proc/kcore /proc/keys /proc/timer_list /proc/interrupts; do ' +
        '[ -e $f ] && echo "$f $(stat -c "%t:%T" $f) $(wc -c < $f)" || echo "$f absent"; done; ' +
        'ls -A /proc/acpi | wc -l; ls -A /sys/firmware | wc -l',
    );
    assert.equal(r.code, 0, r.stderr);
    // A masked file is the null device (1:3); one this kernel lacks stays absent.
    const expect = (f: string) => (existsSync(f) ? `${f} 1:3 0` : `${f} absent`);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      expect('/proc/kcore'),
      expect('/proc/keys'),
      expect('/proc/timer_list'),
      expect('/proc/interrupts'),
      '0',
      '0',
    ]);
  });

  test('writing /proc/sysrq-trigger or /proc/sys/kernel/core_pattern fails', async () => {
    const corePattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8');
    const r = await inside('echo c > /proc/sysrq-trigger; echo "|/tmp/pwn" > /proc/sys/kernel/core_pattern; true');
    // This kernel may have no sysrq at all: then the file is absent inside too.
    const sysrq = existsSync('/proc/sysrq-trigger') ? 'Read-only file system' : 'nonexistent directory';
    assert.equal(
      r.stderr,
      `sh: can't create /proc/sysrq-trigger: ${sysrq}\n` +
        "sh: can't create /proc/sys/kernel/core_pattern: Read-only file system\n",
    );
    assert.equal(readFileSync('/proc/sys/kernel/core_pattern', 'utf8'), corePattern);
  });
});

describe('mounts', { skip }, () => {
  test('mount tmpfs, umount a masked path, unshare -r and a cgroup v1 mount (CVE-2022-0492) are refused', async () => {
    const r = await inside(
      'mkdir -p /mnt/t /mnt/cg; mount -t tmpfs none /mnt/t; umount /proc/keys; unshare -r true; ' +
        'mount -t cgroup -o pids cgroup /mnt/cg; ls /sys/fs/cgroup/*/release_agent; true',
    );
    assert.equal(
      r.stderr,
      'mount: permission denied (are you root?)\n' +
        "umount: can't unmount /proc/keys: Operation not permitted\n" +
        'unshare: unshare(0x10000000): Operation not permitted\n' +
        'mount: permission denied (are you root?)\n' +
        // The escape writes the release_agent of a hierarchy's root: the container sees
        // only its own cgroups, which have none.
        'ls: /sys/fs/cgroup/*/release_agent: No such file or directory\n',
    );
  });

  test('the cgroup mounts are read-only, and pids.current is readable', async () => {
    const id = await detached(['--pids-limit', '50', 'busybox', 'sleep', '1000']);
    const r = await mdocker([
      'exec',
      id,
      'sh',
      '-c',
      'grep -E " /sys/fs/cgroup" /proc/mounts | cut -d" " -f2,4 | cut -d, -f1; cat /sys/fs/cgroup/pids/pids.current; ' +
        'echo 100000 > /sys/fs/cgroup/pids/pids.max; mkdir /sys/fs/cgroup/pids/escape; echo $$ > /sys/fs/cgroup/pids/cgroup.procs; true',
    ]);
    const lines = r.stdout.trim().split('\n');
    assert.ok(lines.length >= 3, r.stdout);
    for (const line of lines.slice(0, -1)) assert.match(line, /^\/sys\/fs\/cgroup(\/[a-z,_]+)? ro$/);
    assert.match(lines.at(-1) ?? '', /^[1-9]\d*$/);
    assert.equal(
      r.stderr,
      "sh: can't create /sys/fs/cgroup/pids/pids.max: Read-only file system\n" +
        "mkdir: can't create directory '/sys/fs/cgroup/pids/escape': Read-only file system\n" +
        "sh: can't create /sys/fs/cgroup/pids/cgroup.procs: Read-only file system\n",
    );
    const hostPids = containerCgroups([id]).find((p) => p.includes('/pids/')) ?? '';
    assert.equal(readFileSync(join(hostPids, 'pids.max'), 'utf8').trim(), '50');
  });

  test('with --cap-add SYS_ADMIN the user namespace still keeps host files, sysctls and cgroup limits closed', async () => {
    // Seccomp lets mount and umount through for SYS_ADMIN (Docker's rule); what is left
    // is the user namespace: host root's files and the host's sysctls are not the
    // container root's, and a cgroup hierarchy it mounts shows its own cgroup only.
    const r = await inside(
      'umount /proc/sys && echo "|/tmp/pwn" > /proc/sys/kernel/core_pattern; ' +
        'mkdir -p /mnt/cg && mount -t cgroup -o pids cgroup /mnt/cg && ls /mnt/cg/release_agent; ' +
        'echo 100000 > /mnt/cg/pids.max; mkdir /mnt/cg/escape; true',
      ['--cap-add', 'SYS_ADMIN', '--pids-limit', '50'],
    );
    assert.equal(
      r.stderr,
      "sh: can't create /proc/sys/kernel/core_pattern: Permission denied\n" +
        'ls: /mnt/cg/release_agent: No such file or directory\n' +
        "sh: can't create /mnt/cg/pids.max: Permission denied\n" +
        "mkdir: can't create directory '/mnt/cg/escape': Permission denied\n",
    );
  });

  test('a --rootfs whose /proc or /dev is a symlink or a file is refused (CVE-2019-16884)', async () => {
    const hostDir = mkdtempSync(join(scratch, 'target-'));
    // A symlink as the last component is "not a directory" (O_NOFOLLOW|O_DIRECTORY); one
    // further up the path is refused by RESOLVE_NO_SYMLINKS (ELOOP).
    for (const [name, plant, error] of [
      [
        'proc',
        (p: string) => symlinkSync(hostDir, p),
        '/proc in the container must be a plain directory: Not a directory',
      ],
      [
        'proc',
        (p: string) => writeFileSync(p, ''),
        '/proc in the container must be a plain directory: Not a directory',
      ],
      ['dev', (p: string) => symlinkSync('/', p), '/dev in the container must be a plain directory: Not a directory'],
      ['dev', (p: string) => writeFileSync(p, ''), '/dev in the container must be a plain directory: Not a directory'],
      [
        'etc',
        (p: string) => symlinkSync(hostDir, p),
        'cannot create /etc/hostname in the container: Too many levels of symbolic links',
      ],
    ] as const) {
      const rootfs = mkdtempSync(join(scratch, 'rootfs-'));
      cpSync(imageDir, rootfs, { recursive: true, verbatimSymlinks: true });
      // Owned by a range of its own, as a --rootfs with a user namespace must be.
      assert.equal(spawnSync('chown', ['-R', '1000000:1000000', rootfs]).status, 0);
      rmSync(join(rootfs, name), { recursive: true, force: true });
      plant(join(rootfs, name));
      const r = await mdocker(['run', '--rm', '--rootfs', rootfs, '/bin/true']);
      assert.equal(r.code, 125, `${name}: ${r.stderr}`);
      assert.equal(r.stderr, `mdocker: ${error}\n`);
      rmSync(rootfs, { recursive: true, force: true });
    }
    assert.deepEqual(readdirSync(hostDir), [], 'nothing was mounted or written through the symlink');
  });
});

describe('files and descriptors', { skip }, () => {
  test('a host sentinel file is unreachable through /proc/1/root, /proc/self/cwd and every fd', async () => {
    const dir = mkdtempSync(join(scratch, 'sentinel-'));
    const secret = randomBytes(8).toString('hex');
    writeFileSync(join(dir, 'sentinel'), secret);
    const script =
      `cat ${dir}/sentinel /proc/1/root${dir}/sentinel /proc/self/cwd${dir}/sentinel; ` +
      `for f in /proc/*/fd/* /proc/*/cwd /proc/*/root; do cat $f${dir}/sentinel; cat $f/../..${dir}/sentinel; done; ` +
      `grep -rs ${secret} /bin /etc /home /mnt /root /run /tmp /usr /var; echo done`;
    const id = await detached(['busybox', 'sleep', '1000']);
    for (const r of [await inside(script), await mdocker(['exec', id, 'sh', '-c', script])]) {
      assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), 'the sentinel leaked');
      assert.equal(r.stdout.trim(), 'done');
      assert.match(r.stderr, new RegExp(`cat: can't open '${dir}/sentinel': No such file or directory`));
    }
  });

  test('only pipes, sockets, ptys and anonymous inodes are open in a container (CVE-2024-21626)', async () => {
    const script = 'ls -l /proc/$$/fd';
    const id = await detached(['busybox', 'sleep', '1000']);
    const ptyOutput = await new Promise<string>((resolve) => {
      const term = pty.spawn(process.execPath, [cliPath, 'run', '-t', '--rm', 'busybox', 'sh', '-c', script], {
        cols: 120,
        rows: 30,
        env: process.env as Record<string, string>,
      });
      let out = '';
      term.onData((d) => (out += d));
      term.onExit(() => resolve(out));
    });
    for (const [how, output] of [
      ['run -i', (await mdocker(['run', '-i', '--rm', 'busybox', 'sh', '-c', script])).stdout],
      ['exec -i', (await mdocker(['exec', '-i', id, 'sh', '-c', script])).stdout],
      ['run -t', ptyOutput],
    ] as const) {
      const fds = fdTargets(output);
      assert.deepEqual([...fds.keys()], [0, 1, 2], `${how}: ${output}`);
      for (const [fd, target] of fds) assert.match(target, CONTAINER_FD, `${how}: fd ${fd}`);
    }
  });

  test('a working directory outside the container is refused (CVE-2024-21626)', async () => {
    const id = await detached(['busybox', 'sleep', '1000']);
    for (const n of [3, 4, 5, 6, 7, 8]) {
      for (const r of [
        await mdocker(['run', '--rm', '-w', `/proc/self/fd/${n}`, 'busybox', 'pwd']),
        await mdocker(['exec', '-w', `/proc/self/fd/${n}`, id, 'pwd']),
      ]) {
        assert.equal(r.code, 125, r.stdout);
        assert.match(
          r.stderr,
          new RegExp(
            `^mdocker: cannot enter working directory /proc/self/fd/${n}: (Not a directory|No such file or directory)\n$`,
          ),
        );
      }
    }
    const dots = await mdocker(['run', '--rm', '-w', '/../../../..', 'busybox', 'pwd']);
    assert.equal(dots.stdout, '/\n');
  });
});

/**
 * CVE-2019-5736 replayed: the container turns a command an administrator may run into
 * a "#!/proc/self/exe" script, so that `mdocker exec` runs the runtime's own binary in
 * the container; an attacker process spinning on the PIDs to come keeps /proc/PID/exe
 * of every runtime process it can open and, once that process is gone, reopens it for
 * writing (the published exploit, in C: busybox is too slow to win the race).
 */
const ATTACK_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static long last_pid (void) {
  char buf[32] = { 0 };
  int fd = open ("/proc/sys/kernel/ns_last_pid", O_RDONLY);
  if (fd < 0 || read (fd, buf, sizeof (buf) - 1) <= 0) return -1;
  close (fd);
  return atol (buf);
}
static double now (void) {
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}
int main (void) {
  long base = last_pid (), denied = 0;
  pid_t self = getpid ();
  char path[64], target[256], self_fd[64];
  setvbuf (stdout, NULL, _IOLBF, 0);
  while (access ("/tmp/stop", F_OK) != 0) {
    for (long p = base + 1; p <= base + 6; p++) {
      int fd, w;
      ssize_t n;
      double give_up;
      if (p == self) continue;
      snprintf (path, sizeof (path), "/proc/%ld/exe", p);
      fd = open (path, O_PATH | O_CLOEXEC);
      if (fd < 0) {
        if (errno == EACCES || errno == EPERM) denied++;
        continue;
      }
      snprintf (self_fd, sizeof (self_fd), "/proc/self/fd/%d", fd);
      n = readlink (self_fd, target, sizeof (target) - 1);
      target[n > 0 ? n : 0] = '\0';
      if (strstr (target, "busybox") || strstr (target, "attack")) { close (fd); continue; }
      give_up = now () + 2;
      do w = open (self_fd, O_WRONLY | O_CLOEXEC);
      while (w < 0 && errno == ETXTBSY && now () < give_up);
      if (w < 0) printf ("caught %s reopen=%s\n", target, strerrorname_np (errno));
      else {
        ssize_t r = write (w, "#!/bin/sh\necho pwned\n", 21);
        printf ("caught %s reopen=ok write=%s\n", target, r == 21 ? "ok" : strerrorname_np (errno));
        close (w);
      }
      close (fd);
    }
    long l = last_pid ();
    if (l > base + 3) base = l - 3;
  }
  printf ("denied %ld\n", denied);
  return 0;
}
`;

/** Field 22 of /proc/PID/stat: the start time the launcher's --pid-start-time names. */
function startTimeOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

describe('exec never lands on the host', { skip }, () => {
  /** `mdocker-init exec` run by hand, as a confused or hostile caller would. */
  function launcherExec(args: string[]): { code: number; stderr: string } {
    const r = spawnSync(launcherPath, ['exec', ...args], { encoding: 'utf8', timeout: 30_000 });
    return { code: r.status ?? 125, stderr: r.stderr };
  }

  test("exec against a host process's pid is refused, whatever the flags", async () => {
    const host = spawn('sleep', ['60'], { stdio: 'ignore' });
    const marker = join(scratch, 'exec-ran-on-the-host');
    try {
      const pid = host.pid!;
      const pin = ['--pid', String(pid), '--pid-start-time', String(startTimeOf(pid))];
      const attempt = ['--', '/bin/sh', '-c', `touch ${marker}`];
      const plain = launcherExec([...pin, ...attempt]);
      assert.equal(plain.code, 125);
      assert.match(plain.stderr, new RegExp(`pid ${pid} is not a container's init: its user namespace is the host's`));
      // Saying the container shares the host's user namespace does not get further.
      const hostUserns = launcherExec([...pin, '--host-userns', ...attempt]);
      assert.equal(hostUserns.code, 125);
      assert.match(hostUserns.stderr, /is not a container's init: its pid namespace is the host's/);
      assert.equal(existsSync(marker), false, 'nothing ran on the host');
    } finally {
      host.kill('SIGKILL');
    }
  });

  test("the init's pid is told only once the container's root is built, never while it stands in the host's mounts", async () => {
    // Before its pivot_root the init sees a copy of the host's mounts: an exec or a file
    // upload that joined it then would write on the host. The launcher writes init.pid
    // after the root is built; this watches for the file as closely as a loop can.
    const host = statSync('/');
    for (let round = 0; round < 10; round++) {
      const name = `early-${process.pid}-${round}`;
      const run = mdocker(['run', '-d', '--name', name, 'busybox', 'sleep', '1000']);
      const deadline = Date.now() + 20_000;
      let pidFile: string | null = null;
      let seen: { dev: number; ino: number } | null = null;
      while (Date.now() < deadline && seen === null) {
        try {
          pidFile ??= join('/run/mdocker/names', readlinkSync(`/run/mdocker/names/${name}`), 'init.pid');
          const text = readFileSync(pidFile, 'utf8');
          const root = statSync(`/proc/${Number.parseInt(text, 10)}/root`);
          seen = { dev: root.dev, ino: root.ino };
        } catch {
          // not yet: the CLI's process is started and read by this event loop
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      const r = await run;
      assert.equal(r.code, 0, r.stderr);
      started.push(r.stdout.trim());
      assert.ok(seen, 'init.pid appeared');
      assert.ok(
        seen.dev !== host.dev || seen.ino !== host.ino,
        `round ${round}: init.pid named a process whose root was the host's`,
      );
    }
  });

  test('exec naming an init by a stale start time (its pid reused) is refused, and a pid alone is not enough', async () => {
    const id = await detached(['busybox', 'sleep', '1000']);
    const pid = initPid(id);
    const stale = launcherExec(['--pid', String(pid), '--pid-start-time', String(startTimeOf(pid) + 1), '--', 'true']);
    assert.equal(stale.code, 125);
    assert.match(stale.stderr, new RegExp(`the container's init \\(pid ${pid}, start time \\d+\\) is gone`));
    const bare = launcherExec(['--pid', String(pid), '--', 'true']);
    assert.equal(bare.code, 125);
    assert.match(bare.stderr, /exec needs --pid-start-time/);
  });

  test("kill and rm -f signal only processes proven to be the container's", async () => {
    const id = await detached(['busybox', 'sleep', '1000']);
    const host = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const pid = host.pid!;
      // A state record that names a host process as the init (tampered with, or raced).
      const stateFile = join('/run/mdocker', id, 'state.json');
      const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { init: { pid: number; startTime: number } };
      const realInit = state.init;
      state.init = { pid, startTime: startTimeOf(pid) };
      writeFileSync(stateFile, JSON.stringify(state));
      const kill = await mdocker(['kill', '-s', 'TERM', id]);
      assert.notEqual(kill.code, 0);
      assert.match(kill.stderr, /is not running/);
      const removed = await mdocker(['rm', '-f', id]);
      assert.equal(removed.code, 0, removed.stderr);
      assert.equal(host.exitCode, null, 'the host process was not signalled');
      assert.equal(host.signalCode, null);
      assert.ok(existsSync(`/proc/${pid}`));
      // The container itself went all the same: its cgroup was emptied and removed.
      await waitFor('the real init to be reaped', () => {
        try {
          return startTimeOf(realInit.pid) !== realInit.startTime;
        } catch {
          return true; // gone
        }
      });
      assert.deepEqual(containerCgroups([id]), []);
    } finally {
      host.kill('SIGKILL');
    }
  });

  test("a detached container's output log stops at its size cap, and the container goes on", async () => {
    const id = await detached([
      '--log-opt',
      'max-size=64k',
      'busybox',
      'sh',
      '-c',
      'head -c 10000000 /dev/zero | tr "\\0" x; echo; echo still-running > /tmp/mark; sleep 1000',
    ]);
    const log = join('/run/mdocker', id, 'output.log');
    await waitFor(
      'the container to write past the cap',
      async () => {
        const r = await mdocker(['exec', id, 'cat', '/tmp/mark']);
        return r.stdout.includes('still-running') || null;
      },
      60_000,
    );
    const size = readFileSync(log).length;
    assert.ok(size <= 64 * 1024 + 100, `the log holds ${size} bytes`);
    assert.match(readFileSync(log, 'utf8').slice(-100), /\[mdocker: output past 65536 bytes is not kept\]/);
    const bad = await mdocker(['run', '-d', '--log-opt', 'max-file=3', 'busybox', 'true']);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /unsupported --log-opt "max-file=3" \(known: max-size\)/);
  });

  test('a host account inside the id pool stops containers from starting, naming it; --userns host needs no pool', async () => {
    const pool = usernsPool();
    const uid = pool.uidBase + 12_345;
    const name = `mdclash${process.pid % 100000}`;
    const added = spawnSync(
      'useradd',
      ['--system', '--no-create-home', '--uid', String(uid), '--shell', '/usr/sbin/nologin', name],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(added.status, 0, added.stderr);
    try {
      const refused = await mdocker(['run', '--rm', 'busybox', 'true']);
      assert.equal(refused.code, 125);
      assert.match(refused.stderr, new RegExp(`the user ${name} \\(id ${uid}\\) lies inside the user namespace pool`));
      const hostUserns = await mdocker(['run', '--rm', '--userns', 'host', 'busybox', 'true']);
      assert.equal(hostUserns.code, 0, hostUserns.stderr);
    } finally {
      spawnSync('userdel', [name]);
    }
    const again = await mdocker(['run', '--rm', 'busybox', 'true']);
    assert.equal(again.code, 0, again.stderr);
  });

  test("exec racing the init's exit runs in the container or not at all", { timeout: 180_000 }, async () => {
    const hostMnt = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')[0];
    let ranInside = 0;
    let refused = 0;
    for (let round = 0; round < 4; round++) {
      // The init ends once an exec has run (however slow a loaded machine makes each
      // exec), and execs go on until the container is gone: every one that runs must be
      // inside it.
      const id = await detached(['busybox', 'sh', '-c', 'until [ -e /tmp/go ]; do sleep 0.02; done']);
      for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
        const r = await mdocker(['exec', id, 'sh', '-c', 'head -n 1 /proc/self/mountinfo; hostname; touch /tmp/go']);
        // Whatever it printed, it printed inside; an exec whose init exits while it runs
        // is killed with the container's PID namespace (137).
        assert.notEqual(r.stdout.split('\n')[0], hostMnt, 'an exec ran in the host mount namespace');
        assert.notEqual(r.stdout.split('\n')[1], hostname(), "an exec saw the host's hostname");
        if (r.code === 0) {
          ranInside++;
        } else if (r.code === 137) {
          refused++;
          break;
        } else {
          assert.match(r.stderr, /is not running|is gone|no such container/, r.stderr);
          refused++;
          break;
        }
      }
    }
    assert.ok(ranInside > 0 && refused > 0, `ran ${ranInside}, refused ${refused}`);
  });
});

describe("the launcher's binary (CVE-2019-5736)", { skip }, () => {
  let attacker = '';
  before(() => {
    if (skip) return;
    writeFileSync(join(scratch, 'attack.c'), ATTACK_C);
    attacker = join(scratch, 'attack');
    const cc = spawnSync('cc', ['-static', '-O2', '-o', attacker, join(scratch, 'attack.c')], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `the attacker must build (cc, static libc): ${cc.stderr}`);
  });

  for (const userns of ['private', 'host'] as const) {
    test(`/proc/1/exe is the command, and an exec'd "#!/proc/self/exe" cannot reach or overwrite the launcher (--userns ${userns})`, async () => {
      const hashBefore = sha256(launcherPath);
      const id = await detached(['--userns', userns, 'busybox', 'sleep', '1000']);
      const exe = await mdocker(['exec', id, 'readlink', '/proc/1/exe']);
      assert.equal(exe.stdout, '/bin/busybox\n', exe.stderr);
      await copyIn(id, attacker, '/tmp/attack');
      const plant = await mdocker([
        'exec',
        id,
        'sh',
        '-c',
        'rm /bin/ps && printf "#!/proc/self/exe\\n" > /bin/ps && chmod 755 /bin/ps',
      ]);
      assert.equal(plant.code, 0, plant.stderr);
      const start = await mdocker(['exec', id, 'sh', '-c', '/tmp/attack > /tmp/attack.log 2>&1 </dev/null &']);
      assert.equal(start.code, 0, start.stderr);
      await sleep(200);
      for (let i = 0; i < 6; i++) {
        const r = await mdocker(['exec', id, 'ps']);
        // This kernel refuses to execute a file outside the caller's root through the
        // magic link (127, "not found"); one that allows it runs the launcher's sealed
        // memfd copy, which stops at the unknown verb (125).
        assert.ok(
          (r.code === 127 && /executable file not found/.test(r.stderr)) ||
            (r.code === 125 && /unknown verb/.test(r.stderr)),
          `exec of the planted script: ${r.code} ${r.stderr}`,
        );
      }
      await mdocker(['exec', id, 'touch', '/tmp/stop']);
      const log = await waitFor(
        'the attacker to report',
        async () => {
          const text = (await mdocker(['exec', id, 'cat', '/tmp/attack.log'])).stdout;
          return /^denied \d+$/m.test(text) ? text : null;
        },
        20_000,
      );
      const caught = log.split('\n').filter((l) => l.startsWith('caught '));
      const denied = Number(/^denied (\d+)$/m.exec(log)?.[1]);
      // The attacker did race launcher processes: /proc/PID/exe of a launcher in the
      // container was refused (it is not dumpable), or was the sealed copy.
      assert.ok(denied + caught.length > 0, `the attack never reached a launcher process: ${log}`);
      for (const line of caught) {
        assert.match(line, /^caught \/memfd:mdocker-init \(deleted\) reopen=/, 'never the binary on disk');
        assert.doesNotMatch(line, /write=ok/);
      }
      assert.equal(sha256(launcherPath), hashBefore, 'the launcher on disk is unchanged');
    });
  }
});

describe('processes, names, network and IPC', { skip }, () => {
  test('host processes are invisible and cannot be killed', async () => {
    // The glob is expanded by the shell itself, PID 1; killing it from inside is a no-op.
    const r = await inside(`echo /proc/[0-9]*; kill -9 ${process.pid}; kill -9 1; echo alive`);
    assert.equal(r.stdout, '/proc/1\nalive\n');
    assert.equal(r.stderr, `sh: can't kill pid ${process.pid}: No such process\n`);
    assert.ok(existsSync(`/proc/${process.pid}`));
  });

  test('a hostname change does not reach the host', async () => {
    const hostBefore = hostname();
    const r = await inside('hostname escaped; hostname', ['--hostname', 'inside']);
    assert.equal(r.stderr, 'hostname: sethostname: Operation not permitted\n');
    assert.equal(r.stdout, 'inside\n');
    const admin = await inside('hostname escaped && hostname', ['--cap-add', 'SYS_ADMIN']);
    assert.equal(admin.stdout, 'escaped\n', admin.stderr);
    assert.equal(hostname(), hostBefore);
  });

  test("only lo, and the host's loopback servers are unreachable", async () => {
    let connections = 0;
    const server: Server = createServer((socket) => {
      connections++;
      socket.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const hostAddress = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    try {
      const r = await inside(
        `sed -n 's/^ *\\([^:]*\\):.*/\\1/p' /proc/net/dev; nc 127.0.0.1 ${port} </dev/null; ` +
          (hostAddress ? `nc ${hostAddress} ${port} </dev/null; ` : '') +
          'true',
      );
      assert.equal(r.stdout, 'lo\n');
      assert.equal(
        r.stderr,
        "nc: can't connect to remote host (127.0.0.1): Connection refused\n" +
          (hostAddress ? `nc: can't connect to remote host (${hostAddress}): Network is unreachable\n` : ''),
      );
      assert.equal(connections, 0);
    } finally {
      server.close();
    }
  });

  test('host SysV IPC is invisible', async () => {
    const made = spawnSync('ipcmk', ['-M', '4096'], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const shmid = /(\d+)/.exec(made.stdout)?.[1] ?? '';
    try {
      assert.match(readFileSync('/proc/sysvipc/shm', 'utf8'), new RegExp(`^\\s*-?\\d+\\s+${shmid}\\s`, 'm'));
      const r = await inside('cat /proc/sysvipc/shm | wc -l; cat /proc/sysvipc/sem /proc/sysvipc/msg | wc -l');
      assert.equal(r.stdout, '1\n2\n', 'the headers alone');
    } finally {
      spawnSync('ipcrm', ['-m', shmid]);
    }
  });

  test('mknod of a device is refused; a FIFO is allowed', async () => {
    const r = await inside('mknod /tmp/sda b 8 0; mknod /tmp/mem c 1 1; mkfifo /tmp/fifo && echo fifo');
    assert.equal(r.stderr, 'mknod: /tmp/sda: Operation not permitted\nmknod: /tmp/mem: Operation not permitted\n');
    assert.equal(r.stdout, 'fifo\n');
  });
});

describe('resources', { skip }, () => {
  test('a fork bomb stops at the pids limit while the host stays responsive', { timeout: 120_000 }, async () => {
    // A playground container's default limits.
    const id = await detached(['--pids-limit', '256', '--cpus', '0.5', '-m', '256m', 'busybox', 'sleep', '1000']);
    const pidsDir = containerCgroups([id]).find((p) => p.includes('/pids/')) ?? '';
    const bomb = await mdocker(['exec', id, 'sh', '-c', 'b() { b | b & }; b >/dev/null 2>&1 </dev/null']);
    assert.equal(bomb.code, 0, bomb.stderr);
    const current = (): number => Number(readFileSync(join(pidsDir, 'pids.current'), 'utf8'));
    const refused = (): number => Number(/^max (\d+)$/m.exec(readFileSync(join(pidsDir, 'pids.events'), 'utf8'))?.[1]);
    // The kernel counts each fork the limit refused. Where the bomb settles is its own
    // business: shells whose fork failed exit, so it can rest a few below 256.
    await waitFor('the kernel to refuse the bomb a fork', () => refused() > 0, 30_000).catch((error: unknown) => {
      throw new Error(`${String(error)}; pids.current ${current()}, refused ${refused()}`);
    });
    const latenciesMs: number[] = [];
    let most = 0;
    for (const deadline = Date.now() + 3000; Date.now() < deadline;) {
      const t0 = performance.now();
      assert.equal(spawnSync('/bin/true').status, 0);
      latenciesMs.push(performance.now() - t0);
      most = Math.max(most, current());
    }
    latenciesMs.sort((x, y) => x - y);
    const median = latenciesMs[Math.floor(latenciesMs.length / 2)] ?? Infinity;
    const worst = latenciesMs.at(-1) ?? Infinity;
    assert.ok(
      median < 200 && worst < 2000,
      `host latency of /bin/true: median ${median.toFixed(1)} ms, worst ${worst.toFixed(1)} ms`,
    );
    assert.ok(most <= 256 && most > 128, `still contained and still alive: at most ${most} of 256 pids`);
    assert.ok(refused() > 0);
    assert.equal((await mdocker(['rm', '-f', id])).code, 0);
    await waitFor('the bomb gone with its cgroup', () => !existsSync(pidsDir), 10_000);
  });

  test('a memory hog is OOM-killed (137) inside its own cgroup', { timeout: 60_000 }, async () => {
    const id = await detached(['-m', '16m', 'busybox', 'sleep', '1000']);
    const hog = await mdocker(['exec', id, 'sh', '-c', 'x=aaaaaaaa; while :; do x=$x$x; done'], { timeoutMs: 60_000 });
    assert.equal(hog.code, 137);
    const memoryDir = containerCgroups([id]).find((p) => p.includes('/memory/')) ?? containerCgroups([id])[0] ?? '';
    const events = existsSync(join(memoryDir, 'memory.oom_control'))
      ? readFileSync(join(memoryDir, 'memory.oom_control'), 'utf8')
      : readFileSync(join(memoryDir, 'memory.events'), 'utf8');
    assert.match(events, /^oom_kill [1-9]\d*$/m);
    const alive = await mdocker(['exec', id, 'true']);
    assert.equal(alive.code, 0, 'the container lives on: only the hog was killed');
  });
});

describe('the syscall probe', { skip }, () => {
  // Built for the tests only (native/test/Makefile): npm install does not build it.
  const probePath = join(repoRoot, 'native/build/test/mdocker-probe');
  before(() => {
    if (skip) return;
    const make = spawnSync('make', ['-s', '-C', join(repoRoot, 'native/test'), 'probe'], { encoding: 'utf8' });
    assert.equal(make.status, 0, `the probe must build (make -C native/test probe): ${make.stderr}`);
  });

  const EPERM = 'ret=-1 errno=1 (Operation not permitted)';
  const ENOSYS = 'ret=-1 errno=38 (Function not implemented)';
  const EAFNOSUPPORT = 'ret=-1 errno=97 (Address family not supported by protocol)';
  const expected: Record<string, string | RegExp> = {
    keyctl: EPERM,
    add_key: EPERM,
    request_key: EPERM,
    bpf: EPERM,
    perf_event_open: EPERM,
    userfaultfd: EPERM,
    io_uring_setup: EPERM,
    setns: EPERM,
    'unshare(CLONE_NEWUSER)': EPERM,
    'clone(CLONE_NEWPID)': EPERM,
    clone: /^ret=[1-9]\d* errno=0 \(Success\)$/,
    clone3: ENOSYS, // so that libc falls back to clone, whose flags seccomp can read
    mount: EPERM,
    umount2: EPERM,
    pivot_root: EPERM,
    fsopen: EPERM,
    kexec_load: EPERM,
    init_module: EPERM,
    finit_module: EPERM,
    delete_module: EPERM,
    open_by_handle_at: EPERM,
    'ptrace(PTRACE_TRACEME)': EPERM,
    acct: EPERM,
    reboot: EPERM,
    clock_settime: EPERM,
    syslog: EPERM,
    swapon: EPERM,
    'personality(ADDR_NO_RANDOMIZE)': ENOSYS,
    // Socket families: UNIX, INET, INET6 and NETLINK; PACKET only with NET_RAW; the rest
    // answer as a kernel without them would, whatever the high half of the argument.
    'socket(AF_UNIX)': /^ret=\d+ errno=0 \(Success\)$/,
    'socket(AF_INET)': /^ret=\d+ errno=0 \(Success\)$/,
    'socket(AF_INET6)': /^ret=\d+ errno=0 \(Success\)$/,
    'socket(AF_NETLINK)': /^ret=\d+ errno=0 \(Success\)$/,
    'socket(AF_PACKET)': EAFNOSUPPORT,
    'socket(AF_VSOCK)': EAFNOSUPPORT,
    'socket(AF_BLUETOOTH)': EAFNOSUPPORT,
    'socket(AF_KEY)': EAFNOSUPPORT,
    'socket(AF_ALG)': EAFNOSUPPORT,
    'socket(1<<32|AF_INET)': EAFNOSUPPORT,
    'socketpair(AF_UNIX)': 'ret=0 errno=0 (Success)',
    'socketpair(AF_INET)': 'ret=-1 errno=95 (Operation not supported)', // the kernel's: no pairs
    'socketpair(AF_ALG)': EAFNOSUPPORT,
    'socket(AF_INET,SOCK_RAW)': EPERM,
    'mknod(c 1:3)': EPERM,
    chroot: 'ret=0 errno=0 (Success)',
    sethostname: EPERM,
    // Another ABI's numbers: the filter kills the process. int 0x80 segfaults instead
    // where the kernel runs no 32-bit code (ia32_emulation=off).
    'x32 getpid': 'killed by signal 31 (Bad system call)',
    'int80 getpid': /^killed by signal (31 \(Bad system call\)|11 \(Segmentation fault\))$/,
  };

  for (const userns of ['private', 'host'] as const) {
    test(`every call the probe makes gets the expected answer (--userns ${userns})`, async () => {
      const r = await mdockerWithInput(
        [
          'run',
          '-i',
          '--rm',
          '--userns',
          userns,
          'busybox',
          'sh',
          '-c',
          'cat > /tmp/probe && chmod 755 /tmp/probe && /tmp/probe',
        ],
        readFileSync(probePath),
      );
      assert.equal(r.code, 0, r.stderr);
      const answers = new Map<string, string>();
      for (const line of r.stdout.trim().split('\n')) {
        const m = /^(.+?) (ret=.*|killed by signal .*)$/.exec(line);
        assert.ok(m?.[1] && m[2], `unexpected probe line: ${line}`);
        answers.set(m[1], m[2]);
      }
      assert.deepEqual([...answers.keys()], Object.keys(expected));
      for (const [name, answer] of answers) {
        const want = expected[name] ?? '';
        if (typeof want === 'string') assert.equal(answer, want, name);
        else assert.match(answer, want, name);
      }
    });
  }
});

describe('device nodes and setuid files give nothing', { skip }, () => {
  /** The mount options of / as the container sees them (mountinfo's sixth field). */
  const rootOptions = (mountinfo: string): string[] =>
    (mountinfo.split('\n').find((line) => line.split(' ')[4] === '/') ?? '').split(' ')[5]?.split(',') ?? [];

  /** A copy of the busybox image in a directory every host user may enter. */
  function rootfsCopy(owner: number | null): string {
    const dir = mkdtempSync(join(scratch, 'rootfs-'));
    chmodSync(scratch, 0o755);
    cpSync(imageDir, dir, { recursive: true, verbatimSymlinks: true });
    chmodSync(dir, 0o755);
    if (owner !== null) {
      const chown = spawnSync('chown', ['-R', `${owner}:${owner}`, dir], { encoding: 'utf8' });
      assert.equal(chown.status, 0, chown.stderr);
    }
    return dir;
  }

  test('/ is nosuid and nodev: the overlay of an image and a --rootfs, in both userns modes', async () => {
    const rootfs = rootfsCopy(1_000_000);
    const hostRootfs = rootfsCopy(null);
    for (const [what, r] of [
      ['image', await inside('cat /proc/self/mountinfo')],
      ['image, --userns host', await inside('cat /proc/self/mountinfo', ['--userns', 'host'])],
      ['--rootfs', await mdocker(['run', '--rm', '--rootfs', rootfs, '/bin/cat', '/proc/self/mountinfo'])],
      [
        '--rootfs, --userns host',
        await mdocker(['run', '--rm', '--userns', 'host', '--rootfs', hostRootfs, '/bin/cat', '/proc/self/mountinfo']),
      ],
    ] as const) {
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
      const options = rootOptions(r.stdout);
      assert.ok(options.includes('nosuid') && options.includes('nodev'), `${what}: / is ${options.join(',')}`);
    }
  });

  test('a block device opens nothing, even with --userns host --cap-add MKNOD (and SYS_ADMIN to lift nodev)', async () => {
    // A real block device of this host: /dev/loop0 where there is one.
    const block = existsSync('/sys/class/block/loop0') ? 'loop0' : (readdirSync('/sys/class/block')[0] ?? '');
    const [major, minor] = readFileSync(`/sys/class/block/${block}/dev`, 'utf8').trim().split(':');
    const rootfs = rootfsCopy(null);
    // A node planted in the rootfs, as a host user who made it might have left it.
    assert.equal(spawnSync('mknod', [join(rootfs, 'disk'), 'b', `${major}`, `${minor}`]).status, 0);
    const r = await mdocker(
      [
        'run',
        '--rm',
        '--userns',
        'host',
        '--cap-add',
        'MKNOD',
        '--cap-add',
        'SYS_ADMIN',
        '--rootfs',
        rootfs,
        '/bin/sh',
        '-c',
        // nodev on / refuses the planted node; with it lifted (SYS_ADMIN, host root),
        // and on a tmpfs of its own, the device cgroup refuses the open and any mknod.
        `head -c0 /disk; mount -o remount,dev / && head -c0 /disk; mknod /tmp/disk b ${major} ${minor}; ` +
          `mkdir /mnt/t && mount -t tmpfs none /mnt/t && mknod /mnt/t/disk b ${major} ${minor}; ` +
          'mknod /mnt/t/null c 1 3; echo x > /dev/null && head -c1 /dev/zero | wc -c',
      ],
      { timeoutMs: 60_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stderr,
      'head: /disk: Permission denied\n' +
        'head: /disk: Operation not permitted\n' +
        'mknod: /tmp/disk: Operation not permitted\n' +
        'mknod: /mnt/t/disk: Operation not permitted\n' +
        'mknod: /mnt/t/null: Operation not permitted\n',
    );
    assert.equal(r.stdout.trim(), '1', 'the bound /dev nodes still work');
  });

  test('a setuid-root file a container writes on its --rootfs gives no privilege on the host', async () => {
    const owner = 1_000_000;
    const rootfs = rootfsCopy(owner);
    // A host program that prints its effective uid, for the container to make setuid root.
    cpSync('/usr/bin/id', join(rootfs, 'id'));
    const r = await mdocker([
      'run',
      '--rm',
      '--rootfs',
      rootfs,
      '/bin/sh',
      '-c',
      'cp /id /suid && chown 0:0 /suid && chmod 4755 /suid && stat -c "%u %a" /suid',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '0 4755\n', "the container's root owns its setuid file");
    // On the host it belongs to the rootfs's owner range, never to host root.
    const run = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', join(rootfs, 'suid'), '-u'], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), String(owner), 'run by nobody on the host, it is the rootfs owner, not root');
  });

  test('a --rootfs owned by host root is refused with a user namespace', async () => {
    const rootfs = rootfsCopy(null);
    const r = await mdocker(['run', '--rm', '--rootfs', rootfs, '/bin/sh', '-c', 'touch /written']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /belongs to host uid 0 gid 0: with a user namespace its owner is the container's root/);
    assert.equal(existsSync(join(rootfs, 'written')), false);
  });
});

describe('socket families and the launcher dumpability (security round 2, items 5 and 9)', { skip }, () => {
  const suidDumpable = '/proc/sys/fs/suid_dumpable';
  let probePath = '';
  before(() => {
    if (skip) return;
    const make = spawnSync('make', ['-s', '-C', join(repoRoot, 'native/test'), 'probe'], { encoding: 'utf8' });
    assert.equal(make.status, 0, `the probe must build (make -C native/test probe): ${make.stderr}`);
    // A copy of our own: a rebuild of native/ wipes native/build/test.
    probePath = join(scratch, 'mdocker-probe');
    cpSync(join(repoRoot, 'native/build/test/mdocker-probe'), probePath);
  });

  /** fs.suid_dumpable=1 for fn: a credential change then leaves a process dumpable. */
  async function withSuidDumpable<T>(fn: () => Promise<T>): Promise<T> {
    const saved = readFileSync(suidDumpable, 'utf8');
    writeFileSync(suidDumpable, '1');
    try {
      return await fn();
    } finally {
      writeFileSync(suidDumpable, saved);
    }
  }

  /** The probe's "look pid=P uid=U name=N owner=O environ=E mem=M" lines. */
  function looks(
    log: string,
  ): { pid: number; uid: number; name: string; owner: number; environ: string; mem: string }[] {
    return [...log.matchAll(/^look pid=(\d+) uid=(\d+) name=(.*) owner=(\d+) environ=(\S+) mem=(\S+)$/gm)].map((m) => ({
      pid: Number(m[1]),
      uid: Number(m[2]),
      name: m[3] ?? '',
      owner: Number(m[4]),
      environ: m[5] ?? '',
      mem: m[6] ?? '',
    }));
  }

  // The launcher names itself so until it execs, however it was started.
  const LAUNCHER_NAME = 'mdocker-init';

  test(
    "exec's launcher child stays non-dumpable from its credential change to execve, with fs.suid_dumpable=1",
    { timeout: 180_000 },
    async () => {
      const id = await detached(['busybox', 'sleep', '1000']);
      await copyIn(id, probePath, '/tmp/probe');
      // Another process of the container stops every new process in it, again and again
      // until it has exec'd, and looks at it while it is stopped.
      const start = await mdocker([
        'exec',
        id,
        'sh',
        '-c',
        '/tmp/probe stop-and-look 0 /tmp/stop > /tmp/look.log 2>&1 </dev/null &',
      ]);
      assert.equal(start.code, 0, start.stderr);
      const log = await withSuidDumpable(async () => {
        let text = '';
        for (let i = 0; i < 60; i++) {
          const r = await mdocker(['exec', id, 'true']);
          assert.equal(r.code, 0, r.stderr);
          if (i % 10 === 9) {
            text = (await mdocker(['exec', id, 'cat', '/tmp/look.log'])).stdout;
            // Uid 0 is the container's root: the credential change is behind it.
            const seen = looks(text);
            if (
              seen.filter((l) => l.name === LAUNCHER_NAME && l.uid === 0).length >= 5 &&
              seen.some((l) => l.name === 'true')
            )
              break;
          }
        }
        return text;
      });
      await mdocker(['exec', id, 'touch', '/tmp/stop']);
      const between = looks(log).filter((l) => l.name === LAUNCHER_NAME && l.uid === 0);
      assert.ok(between.length > 0, `no launcher child was caught between its credential change and execve:\n${log}`);
      // Neither its environment nor its memory ever opens.
      for (const l of between) {
        assert.deepEqual([l.environ, l.mem], ['EACCES', 'EACCES'], `launcher child pid ${l.pid}: ${JSON.stringify(l)}`);
      }
      // Non-dumpable, its /proc files belong to host root (unmapped here: 65534). The kernel
      // sets dumpability on the credential change itself (to fs.suid_dumpable), so a stop
      // can land in the one system call between setresuid and the PR_SET_DUMPABLE after
      // it; without that call the whole way to execve is dumpable, every look shows it.
      const dumpable = between.filter((l) => l.owner !== 65534);
      assert.ok(
        dumpable.length <= Math.max(1, Math.floor(between.length / 4)),
        `${dumpable.length} of ${between.length} looks found the launcher child dumpable: ${JSON.stringify(dumpable)}`,
      );
      // The command it became is the container's own, as dumpable as any: the look
      // tells the two apart.
      assert.ok(
        looks(log).some((l) => l.name === 'true' && l.owner === 0),
        `no exec'd command was caught:\n${log}`,
      );
    },
  );

  test(
    "run's launcher child stays non-dumpable from its credential change to execve, with fs.suid_dumpable=1",
    { timeout: 120_000 },
    async () => {
      // Nothing else is in the new container while its init prepares it: the host looks,
      // stopping every descendant of one `mdocker run` again and again until it execs.
      const between = await withSuidDumpable(async () => {
        const caught: ReturnType<typeof looks> = [];
        for (let round = 0; round < 5 && caught.length < 3; round++) {
          const stopFile = join(scratch, `look-stop-${round}`);
          const run = spawn('sh', ['-c', `sleep 0.2; exec "${process.execPath}" "${cliPath}" run --rm busybox true`], {
            stdio: 'ignore',
          });
          const probe = spawn(probePath, ['stop-and-look', String(run.pid), stopFile], {
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          let out = '';
          probe.stdout.on('data', (d: Buffer) => (out += d.toString()));
          const code = await new Promise<number | null>((resolve) => run.on('close', (c) => resolve(c)));
          writeFileSync(stopFile, '');
          await new Promise((resolve) => probe.on('close', resolve));
          assert.equal(code, 0, 'the container ran');
          // A host uid other than root's: the child has become the container's root.
          caught.push(...looks(out).filter((l) => l.name === LAUNCHER_NAME && l.uid !== 0));
        }
        return caught;
      });
      assert.ok(between.length > 0, 'no launcher child was caught between its credential change and execve');
      // Non-dumpable: its /proc files belong to host root, not to the container's root; a
      // look may land in the one system call between setresuid and PR_SET_DUMPABLE (see
      // the exec test), never on the whole way to execve.
      const dumpable = between.filter((l) => l.owner !== 0);
      assert.ok(
        dumpable.length <= Math.max(1, Math.floor(between.length / 4)),
        `${dumpable.length} of ${between.length} looks found the launcher child dumpable: ${JSON.stringify(dumpable)}`,
      );
    },
  );

  test('with --cap-add NET_RAW, AF_PACKET and raw sockets open (ping works); every other family stays refused', async () => {
    const r = await mdockerWithInput(
      [
        'run',
        '-i',
        '--rm',
        '--cap-add',
        'NET_RAW',
        'busybox',
        'sh',
        '-c',
        'cat > /tmp/probe && chmod 755 /tmp/probe && /tmp/probe | grep ^socket; ping -c1 -W1 127.0.0.1 >/dev/null && echo ping ok',
      ],
      readFileSync(probePath),
    );
    assert.equal(r.code, 0, r.stderr);
    const OK = /^ret=\d+ errno=0 \(Success\)$/;
    const EAFNOSUPPORT = 'ret=-1 errno=97 (Address family not supported by protocol)';
    const answers = new Map(
      r.stdout
        .trim()
        .split('\n')
        .map((line) => /^(\S+) (.*)$/.exec(line)?.slice(1, 3) as [string, string]),
    );
    for (const name of ['socket(AF_UNIX)', 'socket(AF_INET)', 'socket(AF_INET6)', 'socket(AF_NETLINK)']) {
      assert.match(answers.get(name) ?? '', OK, name);
    }
    assert.match(answers.get('socket(AF_PACKET)') ?? '', OK);
    assert.match(answers.get('socket(AF_INET,SOCK_RAW)') ?? '', OK);
    for (const name of ['socket(AF_VSOCK)', 'socket(AF_BLUETOOTH)', 'socket(AF_KEY)', 'socket(AF_ALG)']) {
      assert.equal(answers.get(name), EAFNOSUPPORT, name);
    }
    assert.ok(r.stdout.endsWith('ping ok\n'), r.stdout);
  });
});
