import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ExecResultJson, StatsSample } from '../src/protocol/index.js';
import { evaluateCheck, parseMountInfo, type CheckTarget, type ProcAccess } from '../src/playground/lessons/checks.js';
import type { LessonCheck } from '../src/playground/lessons/loader.js';
import type { ProcessRef } from '../src/runtime/native.js';

const CONTAINER = 'c0ffee00c0ffee00c0ffee00c0ffee00';
const INIT: ProcessRef = { pid: 1000, startTime: 42 };

/** A fake /proc: per pid its status (NSpid), namespace links, cgroup and mountinfo. */
class FakeProc {
  readonly root = mkdtempSync(join(tmpdir(), 'mdocker-fake-proc-'));

  process(
    pid: number,
    options: {
      nsPids: number[];
      ns?: Partial<Record<string, number>>;
      cgroup?: string;
      mountinfo?: string;
    },
  ): void {
    const dir = join(this.root, String(pid));
    mkdirSync(join(dir, 'ns'), { recursive: true });
    writeFileSync(join(dir, 'status'), `Name:\tsh\nNSpid:\t${options.nsPids.join('\t')}\nUid:\t0\t0\t0\t0\n`);
    for (const type of ['pid', 'uts', 'mnt', 'ipc', 'net', 'cgroup', 'user']) {
      symlinkSync(`${type}:[${options.ns?.[type] ?? 4026530000}]`, join(dir, 'ns', type));
    }
    writeFileSync(join(dir, 'cgroup'), options.cgroup ?? `4:pids:/mdocker/${CONTAINER}\n`);
    writeFileSync(join(dir, 'mountinfo'), options.mountinfo ?? '');
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

const MOUNTINFO = [
  '600 500 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/x',
  '601 600 0:51 / /proc rw,nosuid - proc proc rw',
  '602 600 0:52 / /mnt/my\\040scratch rw - tmpfs none rw,size=1024k',
].join('\n');

const SAMPLE: StatsSample = {
  t: 0,
  cpuPercent: 0,
  cpuUsageUsec: 0,
  memoryBytes: 0,
  memoryLimitBytes: 64 * 1024 * 1024,
  pids: 2,
  pidsLimit: 20,
  oomKills: 0,
  pidsLimitHits: 0,
  cpuThrottledPeriods: 0,
  cpuThrottledUsec: 0,
};

function access(proc: FakeProc, overrides: Partial<ProcAccess> = {}): ProcAccess {
  return {
    procRoot: proc.root,
    isAlive: (ref) => ref.pid === INIT.pid && ref.startTime === INIT.startTime,
    utsHostname: () => 'abc123',
    readFileInRoot: () => null,
    listeningTcpPorts: () => [],
    ...overrides,
  };
}

function target(overrides: Partial<CheckTarget> = {}, pids: number[] = [INIT.pid]): CheckTarget {
  const limits = { memoryBytes: 64 * 1024 * 1024, cpus: 0.5, pidsLimit: 20 };
  return {
    containerId: CONTAINER,
    init: INIT,
    startHostname: 'abc123',
    createdLimits: limits,
    limits: () => limits,
    sample: SAMPLE,
    baseline: { pidsLimitHits: 0, oomKills: 0, cpuThrottledPeriods: 0 },
    procs: async () => pids,
    exec: async () => ({ exitCode: 1, stdout: '', stderr: '', timedOut: false, truncated: false }),
    ...overrides,
  };
}

describe('lesson checks', () => {
  const proc = new FakeProc();
  // The container's init (host pid 1000, PID 1 inside), a second process, a nested PID
  // namespace's process, and an exec launcher that joined the cgroup but stays a host process.
  proc.process(1000, { nsPids: [1000, 1], ns: { pid: 100, uts: 200, mnt: 300 }, mountinfo: MOUNTINFO });
  proc.process(1001, { nsPids: [1001, 2], ns: { pid: 100, uts: 200, mnt: 300 } });
  proc.process(1002, { nsPids: [1002, 3, 1], ns: { pid: 101, uts: 200, mnt: 301 } });
  proc.process(1003, { nsPids: [1003], ns: { pid: 1, uts: 2, mnt: 3 } });
  after(() => proc.cleanup());
  const check = (c: LessonCheck, t: CheckTarget = target(), a: ProcAccess = access(proc)) => evaluateCheck(c, t, a);

  it('hostname-changed and hostname-equals read the live UTS hostname, not the one at create', async () => {
    assert.equal(await check({ kind: 'hostname-changed' }), false);
    const renamed = access(proc, { utsHostname: () => 'classroom' });
    assert.equal(await check({ kind: 'hostname-changed' }, target(), renamed), true);
    assert.equal(await check({ kind: 'hostname-equals', value: 'classroom' }, target(), renamed), true);
    assert.equal(await check({ kind: 'hostname-equals', value: 'other' }, target(), renamed), false);
    const gone = access(proc, { utsHostname: () => null });
    assert.equal(await check({ kind: 'hostname-changed' }, target(), gone), false);
  });

  it("processes-at-least counts the container's PID namespace and nested ones, not an exec launcher", async () => {
    const all = target({ sample: { ...SAMPLE, pids: 4 } }, [1000, 1001, 1002, 1003]);
    assert.equal(await check({ kind: 'processes-at-least', count: 3 }, all), true);
    assert.equal(await check({ kind: 'processes-at-least', count: 4 }, all), false);
    // The sample's count alone already says no.
    assert.equal(
      await check({ kind: 'processes-at-least', count: 3 }, target({ sample: { ...SAMPLE, pids: 1 } }, [1000, 1001])),
      false,
    );
  });

  it('pids-limit-hit, oom-kill and cpu-throttled: the cumulative counters grew past the baseline', async () => {
    for (const [kind, field] of [
      ['pids-limit-hit', 'pidsLimitHits'],
      ['oom-kill', 'oomKills'],
      ['cpu-throttled', 'cpuThrottledPeriods'],
    ] as const) {
      assert.equal(await check({ kind }), false, kind);
      assert.equal(await check({ kind }, target({ sample: { ...SAMPLE, [field]: 1 } })), true, kind);
      const baseline = { pidsLimitHits: 1, oomKills: 1, cpuThrottledPeriods: 1 };
      assert.equal(await check({ kind }, target({ sample: { ...SAMPLE, [field]: 1 }, baseline })), false, kind);
      assert.equal(await check({ kind }, target({ sample: null })), false, kind);
    }
  });

  it('limit-changed compares the limits now with those at create', async () => {
    const raised = target({ limits: () => ({ memoryBytes: 64 * 1024 * 1024, cpus: 0.5, pidsLimit: 64 }) });
    assert.equal(await check({ kind: 'limit-changed', limit: 'pids' }, raised), true);
    assert.equal(await check({ kind: 'limit-changed', limit: 'memory' }, raised), false);
    assert.equal(await check({ kind: 'limit-changed', limit: 'cpus' }, raised), false);
  });

  it("nested-namespace finds a process of the container in another namespace of that type than the init's", async () => {
    const nested = target({}, [1000, 1001, 1002]);
    assert.equal(await check({ kind: 'nested-namespace', namespace: 'pid' }, nested), true);
    assert.equal(await check({ kind: 'nested-namespace', namespace: 'mnt' }, nested), true);
    assert.equal(await check({ kind: 'nested-namespace', namespace: 'uts' }, nested), false);
    // The exec launcher is in the host's namespaces: it is not a nested unshare.
    assert.equal(await check({ kind: 'nested-namespace', namespace: 'pid' }, target({}, [1000, 1001, 1003])), false);
    // A pid that left the container's cgroup (reused by another process) does not count.
    proc.process(1004, { nsPids: [1004, 7], ns: { pid: 555 }, cgroup: '4:pids:/mdocker/someone-else\n' });
    assert.equal(await check({ kind: 'nested-namespace', namespace: 'pid' }, target({}, [1000, 1004])), false);
    // The init gone: nothing is believed.
    const dead = access(proc, { isAlive: () => false });
    assert.equal(await check({ kind: 'nested-namespace', namespace: 'pid' }, nested, dead), false);
  });

  it("mount finds a mount point in the init's mountinfo, with its type, unescaping spaces", async () => {
    assert.equal(await check({ kind: 'mount', path: '/mnt/my scratch', fstype: 'tmpfs' }), true);
    assert.equal(await check({ kind: 'mount', path: '/mnt/my scratch/' }), true);
    assert.equal(await check({ kind: 'mount', path: '/mnt/my scratch', fstype: 'proc' }), false);
    assert.equal(await check({ kind: 'mount', path: '/mnt' }), false);
    assert.equal(await check({ kind: 'mount', path: '/proc', fstype: 'proc' }), true);
    assert.deepEqual(parseMountInfo(MOUNTINFO)[2], { mountPoint: '/mnt/my scratch', fstype: 'tmpfs' });
  });

  it('mount looks into a nested mount namespace of the container too', async () => {
    proc.process(1005, {
      nsPids: [1005, 9],
      ns: { pid: 100, mnt: 999 },
      mountinfo: '700 600 0:60 / /tmp rw - tmpfs none rw',
    });
    assert.equal(await check({ kind: 'mount', path: '/tmp', fstype: 'tmpfs' }), false);
    assert.equal(await check({ kind: 'mount', path: '/tmp', fstype: 'tmpfs' }, target({}, [1000, 1005])), true);
  });

  it('file-exists and file-contains read through the root-confined reader, with the init pinned', async () => {
    const seen: { ref: ProcessRef; path: string; maxBytes: number }[] = [];
    const files = access(proc, {
      readFileInRoot: (ref, path, maxBytes) => {
        seen.push({ ref, path, maxBytes });
        return path === '/tmp/hello' ? Buffer.from('line one\nhello world\n') : null;
      },
    });
    assert.equal(await check({ kind: 'file-exists', path: '/tmp/hello' }, target(), files), true);
    assert.equal(await check({ kind: 'file-exists', path: '/tmp/none' }, target(), files), false);
    assert.equal(await check({ kind: 'file-contains', path: '/tmp/hello', pattern: '^hello' }, target(), files), true);
    assert.equal(await check({ kind: 'file-contains', path: '/tmp/hello', pattern: '^world' }, target(), files), false);
    assert.ok(seen.every((call) => call.ref === INIT));
  });

  it('port-listening asks for the listening ports of the init, and is false once it is gone', async () => {
    const asked: ProcessRef[] = [];
    const ports = access(proc, {
      listeningTcpPorts: (ref) => {
        asked.push(ref);
        return ref.pid === INIT.pid ? [22, 8080] : null;
      },
    });
    assert.equal(await check({ kind: 'port-listening', port: 8080 }, target(), ports), true);
    assert.equal(await check({ kind: 'port-listening', port: 8081 }, target(), ports), false);
    assert.equal(
      await check({ kind: 'port-listening', port: 8080 }, target({ init: { pid: 1006, startTime: 1 } }), ports),
      false,
    );
    assert.deepEqual(
      asked.map((ref) => ref.pid),
      [INIT.pid, INIT.pid, 1006],
    );
    assert.equal(await check({ kind: 'port-listening', port: 8080 }), false);
  });

  it('script holds on exit 0 within its time limit, with the limit passed to the exec', async () => {
    const calls: { cmd: string[]; timeoutMs: number }[] = [];
    const result = (exitCode: number, timedOut = false): ExecResultJson => ({
      exitCode,
      stdout: '',
      stderr: '',
      timedOut,
      truncated: false,
    });
    const run = (answer: ExecResultJson | Error) =>
      target({
        exec: async (cmd, timeoutMs) => {
          calls.push({ cmd, timeoutMs });
          if (answer instanceof Error) throw answer;
          return answer;
        },
      });
    assert.equal(await check({ kind: 'script', run: 'true', timeout: 1500 }, run(result(0))), true);
    assert.deepEqual(calls[0], { cmd: ['/bin/sh', '-c', 'true'], timeoutMs: 1500 });
    assert.equal(await check({ kind: 'script', run: 'false' }, run(result(1))), false);
    assert.equal(calls[1]!.timeoutMs, 5000);
    assert.equal(await check({ kind: 'script', run: 'sleep 9' }, run(result(0, true))), false);
    assert.equal(await check({ kind: 'script', run: 'x' }, run(new Error('the container is gone'))), false);
  });
});
