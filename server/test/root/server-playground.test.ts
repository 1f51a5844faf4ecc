/**
 * The playground server with real containers, in this process: terminals, reattach,
 * sessions, validation, caps, live limits, stats of a memory hog and a fork bomb,
 * inspect, and that DELETE leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import xtermHeadless from '@xterm/headless';
import xtermSerialize from '@xterm/addon-serialize';
import { pino } from 'pino';
import { resolveServeConfig, type ServeOptions } from '../../src/http/config.js';
import { WS_CLOSE, type ContainerJson } from '../../src/protocol/index.js';
import { startServer, type RunningServer } from '../../src/http/server.js';
import { BOOST_CPU_WEIGHT } from '../../src/playground/cpu-boost.js';
import { containerCgroups, rootOnly } from './helpers.js';
import { Client, Frames } from './playground-client.js';

const skip = rootOnly();
if (skip) console.log(`# skipping server-playground: ${skip}`);

const { Terminal: Headless } = xtermHeadless;
const { SerializeAddon } = xtermSerialize;

// ---- helpers ----

async function render(bytes: Buffer, cols: number, rows: number): Promise<string> {
  const terminal = new Headless({ cols, rows, scrollback: 5000, allowProposedApi: true });
  const serializer = new SerializeAddon();
  terminal.loadAddon(serializer as unknown as Parameters<typeof terminal.loadAddon>[0]);
  await new Promise<void>((resolve) => terminal.write(bytes, resolve));
  const screen = serializer.serialize();
  terminal.dispose();
  return screen;
}

const quiet = pino({ level: process.env.MDOCKER_TEST_LOG ?? 'silent' });
let stateRoot = '';
const servers: RunningServer[] = [];

async function serve(options: ServeOptions = {}): Promise<{ server: RunningServer; client: () => Client }> {
  const config = resolveServeConfig(
    {
      port: 0,
      stateRoot,
      dataDir: `${stateRoot}-data`,
      webDir: '/nonexistent',
      statsInterval: '500ms',
      createRatePerSession: 1000,
      createRatePerIp: 1000,
      maxContainersPerSession: 20,
      ...options,
    },
    {},
  );
  const server = await startServer(config, { logger: quiet, handleSignals: false, printUrl: false });
  servers.push(server);
  return { server, client: () => new Client(`http://127.0.0.1:${server.port}/`) };
}

function stateIds(): string[] {
  return existsSync(stateRoot) ? readdirSync(stateRoot).filter((name) => /^[0-9a-f]{32}$/.test(name)) : [];
}

/** Host processes that are this container's launcher or its processes. */
function processesOf(id: string, initPid: number | null): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(id) || Number(pid) === initPid) found.push(`${pid}: ${cmdline.slice(0, 80)}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

function mountsOf(id: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(id));
}

before(() => {
  if (!skip) stateRoot = mkdtempSync('/run/mdocker-server-test-');
});

after(async () => {
  await Promise.all(servers.map((server) => server.close()));
  if (stateRoot) {
    assert.deepEqual(stateIds(), [], 'closing the servers removed every container');
    rmSync(stateRoot, { recursive: true, force: true });
    rmSync(`${stateRoot}-data`, { recursive: true, force: true });
  }
});

// ---- tests ----

// In a subshell: ash gives up on a failed fork, and the exec's own shell must finish.
const forkLoop = '(i=0; while [ $i -lt 80 ]; do sleep 4 & i=$((i+1)); done) 2>/dev/null; echo forked';

describe('terminals in real containers', { skip }, () => {
  it('attaches, runs `echo $((6*7))` and reads 42, with the hostname asked for', async () => {
    const { client } = await serve();
    const user = client();
    const container = await user.create({ hostname: 'lesson-1' });
    assert.equal(container.state, 'running');
    assert.ok(container.initPid && container.initPid > 1);
    const term = new Frames(user.socket(`/api/containers/${container.id}/terminals/0`));
    await term.until('attached', () => term.binary.length > 0);
    term.type('echo $((6*7)); hostname; echo pid=$$\r');
    await term.until('42', () => /\r\n42\r\nlesson-1\r\npid=1\r\n/.test(term.text()));
    term.ws.close();
  });

  it('opens a second terminal that sees the first one’s processes', async () => {
    const { client } = await serve();
    const user = client();
    const container = await user.create();
    const first = new Frames(user.socket(`/api/containers/${container.id}/terminals/0`));
    await first.until('attached', () => first.binary.length > 0);
    first.type('sleep 4321 &\r');
    const opened = await user.request('POST', `/api/containers/${container.id}/terminals`, {});
    assert.equal(opened.status, 201, opened.text);
    const second = new Frames(user.socket(`/api/containers/${container.id}/terminals/${opened.body.id}`));
    await second.until('attached', () => second.binary.length > 0);
    second.type('ps -o pid,args\r');
    await second.until(
      'ps shows the first terminal’s sleep',
      () => /sleep 4321/.test(second.text()) && /\n\s*1 \/bin\/sh/.test(second.text()),
    );
    first.ws.close();
    second.ws.close();
  });

  it('gives a reconnecting client the screen exactly as it was', async () => {
    const { client } = await serve();
    const user = client();
    const container = await user.create();
    const first = new Frames(user.socket(`/api/containers/${container.id}/terminals/0?cols=100&rows=30`));
    await first.until('attached', () => first.binary.length > 0);
    first.type(
      "for i in $(seq 1 80); do printf '\\033[1;3%dmline %d \\342\\202\\254\\033[0m\\n' $((i%7)) $i; done; echo END-$((6*7))\r",
    );
    // END-42, not the echo of the command line.
    await first.until('output', () => /END-42\r\n/.test(first.text()));
    await sleep(300);
    const before = await render(first.bytes(), 100, 30);
    first.ws.close();
    await first.until('closed', () => first.closed !== null);

    const second = new Frames(user.socket(`/api/containers/${container.id}/terminals/0?cols=100&rows=30`));
    await second.until('screen', () => second.binary.length > 0);
    await sleep(200);
    const attached = second.control[0];
    assert.ok(attached?.type === 'attached');
    assert.equal(attached.cols, 100);
    assert.equal(await render(second.bytes(), attached.cols, attached.rows), before);
    assert.match(before, /line 80/);
    second.type('echo still-alive\r');
    await second.until('live after reattach', () => /still-alive\r\n/.test(second.text()));
    second.ws.close();
  });
});

describe('sessions, validation and caps with real containers', { skip }, () => {
  it('keeps two sessions’ containers apart', async () => {
    const { client } = await serve();
    const alice = client();
    const bob = client();
    const container = await alice.create();
    await bob.request('GET', '/healthz');
    assert.deepEqual((await bob.request('GET', '/api/containers')).body, []);
    assert.equal((await bob.request('DELETE', `/api/containers/${container.id}`)).status, 404);
    assert.equal((await bob.request('POST', `/api/containers/${container.id}/exec`, { cmd: ['id'] })).status, 404);
    const hijack = new Frames(bob.socket(`/api/containers/${container.id}/terminals/0`));
    await hijack.until('closed', () => hijack.closed !== null);
    assert.equal(hijack.closed?.code, WS_CLOSE.NOT_FOUND);
    assert.equal((await alice.request('GET', '/api/containers')).body.length, 1);
  });

  it('creates nothing for malformed JSON, unknown fields, absurd limits or an unknown image', async () => {
    const { client } = await serve();
    const user = client();
    await user.request('GET', '/healthz');
    const before = stateIds();
    const bad: [unknown, number][] = [
      [{ privileged: true }, 400],
      [{ memory: '1e9tb' }, 400],
      [{ cpus: -1 }, 400],
      [{ pidsLimit: 0 }, 400],
      [{ memory: '100g' }, 403],
      [{ image: 'no-such-image' }, 404],
      [{ image: '../busybox' }, 400],
      [{ cmd: 'sh' }, 400],
    ];
    for (const [body, status] of bad) {
      const reply = await user.request('POST', '/api/containers', body);
      assert.equal(reply.status, status, `${JSON.stringify(body)} → ${reply.text}`);
    }
    const malformed = await user.request(
      'POST',
      '/api/containers',
      undefined,
      { 'content-type': 'application/json' },
      '{"ima',
    );
    assert.equal(malformed.status, 400);
    assert.equal((await user.request('GET', '/api/containers/ffffffffffffffffffffffffffffffff')).status, 404);
    // The runtime writes a container's state before its cgroup, and removes its cgroup
    // when anything later fails: no new state dir means nothing was made.
    assert.deepEqual(stateIds(), before);
    assert.deepEqual((await user.request('GET', '/api/containers')).body, []);
  });

  it('enforces the per-session cap, naming it', async () => {
    const { client } = await serve({ maxContainersPerSession: 1 });
    const user = client();
    await user.create();
    const refused = await user.request('POST', '/api/containers', {});
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'LIMIT_EXCEEDED');
    assert.deepEqual(refused.body.error.details, { cap: 'containersPerSession', limit: 1 });
  });

  it('refuses another site’s Origin and, with a token, anyone without it', async () => {
    const { client } = await serve({ token: 'classroom-token-42' });
    const user = client();
    assert.equal((await user.request('GET', '/api/containers')).status, 401);
    const authorized = { authorization: 'Bearer classroom-token-42' };
    assert.equal((await user.request('GET', '/api/containers', undefined, authorized)).status, 200);
    const ws = new Frames(user.socket('/api/stats', 'http://evil.example'));
    await ws.until('refused', () => ws.rejected !== null || ws.opened);
    assert.equal(ws.rejected, 403);
  });
});

describe('limits and stats with real cgroups', { skip }, () => {
  it('streams samples that track a memory hog and count an OOM kill', async () => {
    const { client } = await serve();
    const user = client();
    const container = await user.create({ memory: '64m' });
    const stats = new Frames(user.socket('/api/stats'));
    await stats.until('history', () => stats.control.some((m) => m.type === 'history'));
    // Holds 16 MiB in a shell variable for a few seconds, then a pipe that grows without end.
    const hog = await user.request('POST', `/api/containers/${container.id}/exec`, {
      cmd: [
        'sh',
        '-c',
        'x=$(head -c 16777216 /dev/zero | tr "\\0" a); sleep 3; echo ${#x}; head -c 500m /dev/zero | tail >/dev/null; echo tail=$?',
      ],
      timeoutMs: 30_000,
    });
    assert.equal(hog.status, 200, hog.text);
    assert.match(hog.body.stdout, /16777216/, hog.text);
    assert.match(hog.body.stdout, /tail=137/, 'the OOM killer ended the hog');
    await stats.until('an OOM kill counted', () => stats.samples(container.id).some((s) => s.oomKills >= 1), 5000);
    const samples = stats.samples(container.id);
    assert.ok(
      samples.some((s) => s.memoryBytes > 14 * 1024 * 1024),
      'memory tracked the 16 MiB held',
    );
    assert.ok(samples.every((s) => s.memoryLimitBytes === 64 * 1024 * 1024));
    const after = (await user.request('GET', `/api/containers/${container.id}`)).body as ContainerJson;
    assert.equal(after.state, 'running', 'the init survived: the hog was the OOM victim');
    stats.ws.close();
  });

  it('counts pids-limit hits of a fork bomb', async () => {
    const { client } = await serve();
    const user = client();
    const container = await user.create({ pidsLimit: 40 });
    const stats = new Frames(user.socket('/api/stats'));
    await stats.until('history', () => stats.control.some((m) => m.type === 'history'));
    const bomb = await user.request('POST', `/api/containers/${container.id}/exec`, {
      cmd: ['sh', '-c', forkLoop],
      timeoutMs: 20_000,
    });
    assert.equal(bomb.status, 200, bomb.text);
    await stats.until(
      'pids-limit hits counted',
      () => stats.samples(container.id).some((s) => s.pidsLimitHits > 0),
      5000,
    );
    await stats.until('the pids graph climbed', () => stats.samples(container.id).some((s) => s.pids >= 30), 5000);
    assert.ok(stats.samples(container.id).every((s) => s.pids <= 40 && s.pidsLimit === 40));
    stats.ws.close();
  });

  it('applies limits changed while the container runs', async () => {
    const { client } = await serve();
    const user = client();
    const container = await user.create({ pidsLimit: 40, memory: '128m' });
    const stats = new Frames(user.socket('/api/stats'));
    await stats.until('history', () => stats.control.some((m) => m.type === 'history'));
    const patched = await user.request('PATCH', `/api/containers/${container.id}`, { pidsLimit: 12, memory: '64m' });
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual(patched.body.limits, { memoryBytes: 64 * 1024 * 1024, cpus: 0.5, pidsLimit: 12 });
    const seen = stats.samples(container.id).length;
    await user.request('POST', `/api/containers/${container.id}/exec`, {
      cmd: ['sh', '-c', forkLoop],
      timeoutMs: 20_000,
    });
    await stats.until(
      'samples under the new limit',
      () =>
        stats
          .samples(container.id)
          .slice(seen)
          .some((s) => s.pids >= 8 && s.pidsLimitHits > 0),
      5000,
    );
    const later = stats.samples(container.id).slice(seen);
    assert.ok(
      later.every((s) => s.pids <= 12),
      JSON.stringify(later.map((s) => s.pids)),
    );
    assert.ok(later.every((s) => s.pidsLimit === 12 && s.memoryLimitBytes === 64 * 1024 * 1024));
    const fresh = (await user.request('GET', `/api/containers/${container.id}`)).body as ContainerJson;
    assert.equal(fresh.limits.pidsLimit, 12);
    stats.ws.close();
  });

  it('inspects namespaces and processes with host and container PIDs', async () => {
    const { client } = await serve();
    const user = client();
    const container = await user.create({ hostname: 'inspected' });
    await user.request('POST', `/api/containers/${container.id}/exec`, {
      cmd: ['sh', '-c', 'sleep 30 >/dev/null 2>&1 &'],
    });
    assert.equal((await user.request('POST', `/api/containers/${container.id}/terminals`, {})).status, 201);
    await sleep(300);
    const reply = await user.request('GET', `/api/containers/${container.id}/inspect`);
    assert.equal(reply.status, 200, reply.text);
    const inspect = reply.body;
    for (const type of ['pid', 'uts', 'mnt', 'ipc', 'net']) {
      const ns = inspect.namespaces.find((n: { type: string }) => n.type === type);
      assert.ok(ns.isolated && ns.host !== ns.container && ns.container > 0, `${type} is isolated`);
    }
    const init = inspect.processes.find((p: { containerPid: number }) => p.containerPid === 1);
    assert.deepEqual(init, { hostPid: container.initPid, containerPid: 1, user: 'root', command: '/bin/sh' });
    const sleeper = inspect.processes.find((p: { command: string }) => p.command === 'sleep 30');
    assert.ok(sleeper && sleeper.hostPid > 1 && sleeper.containerPid > 1 && sleeper.hostPid !== sleeper.containerPid);
    assert.deepEqual(inspect.hostname.container, 'inspected');
    // The exec launcher sits in the cgroup but outside the namespaces: not listed.
    assert.ok(
      inspect.processes.every((p: { command: string }) => !p.command.includes('mdocker-init')),
      JSON.stringify(inspect.processes),
    );
    assert.equal(
      inspect.processes.filter((p: { command: string }) => p.command === '/bin/sh').length,
      2,
      'init and the terminal’s shell',
    );
  });
});

/** The container's CPU weight on v2's scale, as its cgroup holds it (v1: cpu.shares, 1024 per 100). */
function cpuWeightOf(id: string): number {
  const cpuDir = containerCgroups([id]).find(
    (dir) => existsSync(join(dir, 'cpu.weight')) || existsSync(join(dir, 'cpu.shares')),
  );
  assert.ok(cpuDir !== undefined, `a cpu cgroup for ${id}`);
  if (existsSync(join(cpuDir, 'cpu.weight'))) return Number(readFileSync(join(cpuDir, 'cpu.weight'), 'utf8'));
  return (Number(readFileSync(join(cpuDir, 'cpu.shares'), 'utf8')) * 100) / 1024;
}

function cpuQuotaOf(id: string): string {
  const dirs = containerCgroups([id]);
  const v2 = dirs.find((dir) => existsSync(join(dir, 'cpu.max')));
  if (v2 !== undefined) return readFileSync(join(v2, 'cpu.max'), 'utf8').trim();
  const v1 = dirs.find((dir) => existsSync(join(dir, 'cpu.cfs_quota_us')));
  assert.ok(v1 !== undefined);
  return readFileSync(join(v1, 'cpu.cfs_quota_us'), 'utf8').trim();
}

/** The container's cpu.idle: 1 in the kernel's idle class (the background), 0 out of it. */
function cpuIdleOf(id: string): number {
  const dir = containerCgroups([id]).find((candidate) => existsSync(join(candidate, 'cpu.idle')));
  assert.ok(dir !== undefined, `a cpu.idle for ${id}`);
  return Number(readFileSync(join(dir, 'cpu.idle'), 'utf8'));
}

/** Times the container's CPU quota held it back (cpu.stat's nr_throttled). */
function throttledPeriodsOf(id: string): number {
  const dir = containerCgroups([id]).find((candidate) => existsSync(join(candidate, 'cpu.stat')));
  assert.ok(dir !== undefined);
  return Number(/^nr_throttled (\d+)$/m.exec(readFileSync(join(dir, 'cpu.stat'), 'utf8'))?.[1] ?? NaN);
}

describe('the interactive CPU boost', { skip }, () => {
  it('raises the CPU weight of the container typed in, not its neighbour’s, and returns it', async () => {
    const { client } = await serve();
    const alice = client();
    const bob = client();
    const typed = await alice.create();
    const neighbour = await bob.create();
    assert.equal(cpuWeightOf(typed.id), 100);
    const term = new Frames(alice.socket(`/api/containers/${typed.id}/terminals/0`));
    await term.until('attached', () => term.binary.length > 0);
    term.type('x');
    await term.until('boosted', () => cpuWeightOf(typed.id) === BOOST_CPU_WEIGHT);
    assert.equal(cpuWeightOf(neighbour.id), 100);
    await term.until('back to the default weight', () => cpuWeightOf(typed.id) === 100);
    term.ws.close();
  });

  it('gives a student flooding input no more than their CPU quota, and no way to boost another’s container', async () => {
    const { client } = await serve();
    const alice = client();
    const mallory = client();
    const victim = await alice.create({ cpus: 0.5 });
    const own = await mallory.create({ cpus: 0.2 });
    const quota = cpuQuotaOf(own.id);
    // Someone else's terminal: the attach is refused, so no keystroke reaches it.
    const foreign = new Frames(mallory.socket(`/api/containers/${victim.id}/terminals/0`));
    await foreign.until('refused', () => foreign.closed !== null);
    assert.equal(cpuWeightOf(victim.id), 100);
    // Their own: a busy loop, kept boosted by a stream of keystrokes.
    const term = new Frames(mallory.socket(`/api/containers/${own.id}/terminals/0`));
    await term.until('attached', () => term.binary.length > 0);
    term.type('while :; do :; done &\r');
    const throttledBefore = throttledPeriodsOf(own.id);
    await term.until(
      'the quota holds the boosted loop back',
      () => {
        term.type('x');
        return cpuWeightOf(own.id) === BOOST_CPU_WEIGHT && throttledPeriodsOf(own.id) > throttledBefore + 5;
      },
      20_000,
    );
    assert.equal(cpuQuotaOf(own.id), quota, 'the boost leaves the quota as it was');
    assert.equal(cpuWeightOf(victim.id), 100);
    term.ws.close();
    // Its loop would go on contending the host's CPUs through the tests after this one.
    assert.equal((await mallory.request('DELETE', `/api/containers/${own.id}`)).status, 204);
  });
});

describe('the background: busy containers nobody types in', { skip }, () => {
  it('go into the idle class, an idle shell beside them does not, and a keystroke takes one out at once', async () => {
    const { client } = await serve({ statsInterval: '200ms' });
    const alice = client();
    const bob = client();
    const busy = await alice.create({ cpus: 0.5 });
    const idle = await bob.create({ cpus: 0.5 });
    assert.equal(cpuIdleOf(busy.id), 0);
    const term = new Frames(alice.socket(`/api/containers/${busy.id}/terminals/0`));
    await term.until('attached', () => term.binary.length > 0);
    // Busy for 8 s, then quiet.
    term.type("timeout 8 sh -c 'while :; do :; done' &\r");
    await term.until('in the background', () => cpuIdleOf(busy.id) === 1, 20_000);
    const quota = cpuQuotaOf(busy.id);
    assert.equal(cpuIdleOf(idle.id), 0, 'a shell waiting for keys stays in the normal class');
    // The write lands before the keystroke reaches the shell, so before the echo.
    const before = term.binary.length;
    term.type('x');
    await term.until('echoed', () => term.binary.length > before);
    assert.equal(cpuIdleOf(busy.id), 0);
    // The kernel refuses a weight for an idle group: the boost's write came after.
    assert.equal(cpuWeightOf(busy.id), BOOST_CPU_WEIGHT);
    assert.equal(cpuQuotaOf(busy.id), quota, 'the class leaves the quota as it was');
    // Nobody types: back to the background; the loop ended: quiet, out of it.
    await term.until('back in the background', () => cpuIdleOf(busy.id) === 1, 20_000);
    await term.until('quiet, out of the background', () => cpuIdleOf(busy.id) === 0, 40_000);
    assert.equal(cpuWeightOf(busy.id), 100, 'the kernel gives a group leaving the idle class the default weight');
    term.ws.close();
  });
});

describe('removal', { skip }, () => {
  it('DELETE returns once no process, cgroup, mount or state dir is left', async () => {
    const { client } = await serve();
    const user = client();
    const container = await user.create();
    const term = new Frames(user.socket(`/api/containers/${container.id}/terminals/0`));
    await term.until('attached', () => term.binary.length > 0);
    term.type('sleep 1000 &\r');
    await user.request('POST', `/api/containers/${container.id}/terminals`, {});
    assert.ok(processesOf(container.id, container.initPid).length > 0);
    assert.equal(containerCgroups([container.id]).length > 0, true);
    const deleted = await user.request('DELETE', `/api/containers/${container.id}`);
    assert.equal(deleted.status, 204, deleted.text);
    assert.deepEqual(processesOf(container.id, container.initPid), []);
    assert.deepEqual(containerCgroups([container.id]), []);
    assert.deepEqual(mountsOf(container.id), []);
    assert.equal(existsSync(`${stateRoot}/${container.id}`), false);
    await term.until('told', () => term.closed !== null);
    assert.deepEqual(
      term.control.find((m) => m.type === 'exit'),
      { type: 'exit', exitCode: 137, reason: 'killed' },
    );
    assert.equal((await user.request('GET', `/api/containers/${container.id}`)).status, 404);
  });

  it('reports a container whose command is not found as exited 127, not a hung terminal', async () => {
    const { client } = await serve();
    const user = client();
    const container = await user.create({ cmd: ['/no/such/program'] });
    const term = new Frames(user.socket(`/api/containers/${container.id}/terminals/0`));
    await term.until('exit', () => term.control.some((m) => m.type === 'exit'));
    assert.deepEqual(
      term.control.find((m) => m.type === 'exit'),
      { type: 'exit', exitCode: 127, reason: 'exited' },
    );
    const state = (await user.request('GET', `/api/containers/${container.id}`)).body as ContainerJson;
    assert.equal(state.state, 'exited');
    assert.equal(state.exitCode, 127);
    assert.equal((await user.request('DELETE', `/api/containers/${container.id}`)).status, 204);
  });
});

describe('launcher failures over HTTP', { skip }, () => {
  it("answers an exec of a missing command with 400 and the launcher's own code and message", async () => {
    const { client } = await serve();
    const user = client();
    const container = await user.create({});
    const reply = await user.request('POST', `/api/containers/${container.id}/exec`, { cmd: ['/no/such/program'] });
    assert.equal(reply.status, 400, JSON.stringify(reply.body));
    assert.equal(reply.body.error.code, 'COMMAND_NOT_FOUND');
    assert.match(reply.body.error.message, /\/no\/such\/program: executable file not found/);
    assert.equal(reply.body.error.details.launcherCode, 'COMMAND_NOT_FOUND');
    assert.equal(reply.body.error.details.syscall, 'execve');
    assert.equal(reply.body.error.details.errno, 2);
    // A command that runs and fails is a result, not an error.
    const ran = await user.request('POST', `/api/containers/${container.id}/exec`, { cmd: ['sh', '-c', 'exit 3'] });
    assert.equal(ran.status, 200);
    assert.equal(ran.body.exitCode, 3);
    assert.equal((await user.request('DELETE', `/api/containers/${container.id}`)).status, 204);
  });
});

describe('the warm pool', { skip }, () => {
  it('hands a default create a started container with its prompt, refills, and serves other requests cold', async () => {
    const root = mkdtempSync('/run/mdocker-warm-test-');
    const ids = (): string[] => readdirSync(root).filter((name) => /^[0-9a-f]{32}$/.test(name));
    try {
      const { server, client } = await serve({ warmPool: 2, maxContainers: 4, stateRoot: root });
      const playground = server.playground;
      await waitForCount('the pool to fill', () => ids().length === 2 && playground.containerCount === 2);
      const warmIds = new Set(ids());
      const user = client();
      assert.deepEqual((await user.request('GET', '/api/containers')).body, [], 'warm containers belong to nobody');

      const container = await user.create();
      assert.ok(warmIds.has(container.id), 'a default request takes a warm container');
      assert.equal(container.state, 'running');
      const term = new Frames(user.socket(`/api/containers/${container.id}/terminals/0`));
      // The prompt is on the screen already: the attach's first frame holds it.
      await term.until('the prompt', () => term.text().includes('# '));
      term.type('echo warm-$((6*7))\r');
      await term.until('the echo', () => term.text().includes('warm-42'));
      await waitForCount('the refill', () => playground.containerCount === 3);

      // Anything but the default is started for the request.
      const custom = await user.create({ cmd: ['/bin/sh', '-c', 'sleep 100'] });
      assert.ok(!warmIds.has(custom.id));
      // Full (4): a cold create makes way by retiring a warm container, never overshooting.
      const custom2 = await user.create({ pidsLimit: 100 });
      assert.ok(!warmIds.has(custom2.id));
      assert.ok(playground.containerCount <= 4, `${playground.containerCount} containers`);
      const mine = (await user.request('GET', '/api/containers')).body as ContainerJson[];
      assert.deepEqual(mine.map((c) => c.id).sort(), [container.id, custom.id, custom2.id].sort());

      await server.close();
      assert.deepEqual(ids(), [], 'shutdown removes the warm containers too');
      for (const id of warmIds) assert.deepEqual(processesOf(id, null), []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

async function waitForCount(what: string, predicate: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
