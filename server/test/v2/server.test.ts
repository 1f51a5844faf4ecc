/**
 * `mdocker serve` as its own process on a pure cgroup v2 host, with no --cgroup-parent:
 * a container made over the REST API, its terminal over a WebSocket, stats samples,
 * DELETE, and SIGTERM leaving no cgroup, mount or launcher behind.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { BOOST_CPU_WEIGHT } from '../../src/playground/cpu-boost.js';
import { cliPath, containerCgroups, launcherProcesses, mdockerMounts, waitFor } from '../root/helpers.js';
import { Client, Frames } from '../root/playground-client.js';
import { cgroupDirOf, mdockerCgroups, readCgroupFile, v2VmOnly } from './vm.js';

const skip = v2VmOnly();
if (skip) console.log(`# skipping server: ${skip}`);

const stateRoot = skip ? '' : mkdtempSync('/run/mdocker-v2-server-');
let server: ChildProcess | undefined;

after(() => {
  if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  if (stateRoot) rmSync(stateRoot, { recursive: true, force: true });
});

async function serve(): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const child = spawn(
    process.execPath,
    [cliPath, 'serve', '--port', '0', '--state-root', stateRoot, '--web-dir', '/nonexistent', '--log-level', 'warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  server = child;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /mdocker playground: (http:\/\/\S+)/.exec(output);
      if (match) resolve(match[1]!);
    });
    void exited.then(() => reject(new Error(`the server exited before serving:\n${output}`)));
    setTimeout(() => reject(new Error(`the server did not start in 90 s:\n${output}`)), 90_000).unref();
  });
  return { child, url, exited };
}

describe('mdocker serve on cgroup v2', { skip }, () => {
  test('REST create, terminal echo, stats, DELETE, then SIGTERM leaves nothing behind', async () => {
    const cgroupsBefore = mdockerCgroups();
    const mountsBefore = mdockerMounts();
    const served = await serve();
    const user = new Client(served.url);

    const first = await user.create({ memory: '64m', pidsLimit: 64 });
    assert.equal(first.state, 'running');
    const cgroup = cgroupDirOf(first.id);
    assert.equal(readCgroupFile(cgroup, 'pids.max'), '64');
    assert.equal(readCgroupFile(cgroup, 'memory.max'), String(64 * 1024 * 1024));
    assert.ok(readCgroupFile(cgroup, 'cgroup.procs').split('\n').includes(String(first.initPid)));

    const terminal = new Frames(user.socket(`/api/containers/${first.id}/terminals/0`));
    await terminal.until('the prompt', () => terminal.binary.length > 0, 30_000);
    terminal.type('echo hi\r');
    await terminal.until('hi', () => /\r\nhi\r\n/.test(terminal.text()), 30_000);
    // The interactive boost: typing raises the container's cpu.weight, which returns once
    // the typing stops.
    await terminal.until(
      'cpu.weight boosted',
      () => {
        terminal.type(' ');
        return readCgroupFile(cgroup, 'cpu.weight') === String(BOOST_CPU_WEIGHT);
      },
      30_000,
    );
    await terminal.until('cpu.weight back to 100', () => readCgroupFile(cgroup, 'cpu.weight') === '100', 30_000);
    // The background: busy while nobody types, the container goes into the idle class; a
    // keystroke takes it out before the boost (v2 refuses a weight for an idle group).
    terminal.type("timeout 60 sh -c 'while :; do :; done' &\r");
    await terminal.until('cpu.idle 1', () => readCgroupFile(cgroup, 'cpu.idle') === '1', 60_000);
    terminal.type('\x15');
    await terminal.until('cpu.idle 0', () => readCgroupFile(cgroup, 'cpu.idle') === '0', 5_000);
    await terminal.until(
      'boosted out of the idle class',
      () => readCgroupFile(cgroup, 'cpu.weight') === String(BOOST_CPU_WEIGHT),
      5_000,
    );
    terminal.type('kill %1\r');

    const stats = new Frames(user.socket('/api/stats'));
    await stats.until('two samples', () => stats.samples(first.id).length >= 2, 30_000);
    const sample = stats.samples(first.id).at(-1)!;
    assert.ok(sample.pids >= 1, JSON.stringify(sample));
    assert.equal(sample.pidsLimit, 64);
    assert.equal(sample.memoryLimitBytes, 64 * 1024 * 1024);
    assert.ok(sample.memoryBytes > 0, JSON.stringify(sample));
    terminal.ws.close();
    stats.ws.close();

    const removed = await user.request('DELETE', `/api/containers/${first.id}`);
    assert.ok(removed.status >= 200 && removed.status < 300, removed.text);
    assert.equal(existsSync(cgroup), false, `${cgroup} is gone once DELETE returns`);
    assert.equal(existsSync(`/proc/${first.initPid}`), false);

    const second = await user.create();
    assert.equal(containerCgroups([second.id]).length, 1);
    served.child.kill('SIGTERM');
    assert.equal(await served.exited, 0);
    assert.equal(existsSync(`/proc/${second.initPid}`), false);
    assert.deepEqual(containerCgroups([first.id, second.id]), []);
    // A transient scope systemd made for the server goes once its last process is gone.
    const leftover = () => mdockerCgroups().filter((path) => !cgroupsBefore.includes(path));
    await waitFor('no new mdocker cgroups', () => leftover().length === 0, 15_000).catch(() => undefined);
    assert.deepEqual(leftover(), []);
    assert.deepEqual(
      mdockerMounts().filter((line) => !mountsBefore.includes(line)),
      [],
    );
    assert.deepEqual(launcherProcesses(), []);
  });
});
