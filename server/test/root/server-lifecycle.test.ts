/**
 * `mdocker serve` as its own process with real containers: flow control under `yes` keeps
 * its memory bounded and other terminals responsive; SIGTERM removes every container in
 * seconds; a restart after kill -9 reaps what the dead server left.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import type { ContainerJson, TerminalServerMessage } from '../../src/protocol/index.js';
import { containerCgroups, rootOnly, waitFor } from './helpers.js';
import { spawnServer, type SpawnedServer } from './real-server.js';

const skip = rootOnly();
if (skip) console.log(`# skipping server-lifecycle: ${skip}`);

let stateRoot = '';
const children: ChildProcess[] = [];

type Served = SpawnedServer;

function serve(extra: string[] = []): Promise<Served> {
  return spawnServer(stateRoot, children, extra);
}

interface Reply {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

class Client {
  cookie = '';

  constructor(readonly base: string) {}

  request(method: string, path: string, json?: unknown): Promise<Reply> {
    const payload = json === undefined ? undefined : JSON.stringify(json);
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        new URL(path, this.base),
        {
          method,
          headers: {
            ...(this.cookie ? { cookie: this.cookie } : {}),
            ...(payload === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const setCookie = res.headers['set-cookie']?.find((line) => line.startsWith('mdocker_session='));
            if (setCookie) this.cookie = setCookie.split(';')[0]!;
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as unknown) : null, text });
          });
        },
      );
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  async create(body: Record<string, unknown> = {}): Promise<ContainerJson> {
    if (!this.cookie) await this.request('GET', '/healthz');
    const reply = await this.request('POST', '/api/containers', body);
    assert.equal(reply.status, 201, reply.text);
    return reply.body as ContainerJson;
  }

  socket(path: string): WebSocket {
    const url = new URL(path, this.base);
    url.protocol = 'ws:';
    url.search = url.search || '';
    return new WebSocket(url, { headers: { cookie: this.cookie } });
  }
}

/** A terminal client; acks only as fast as `ackBytesPerTick` every `tickMs` allows. */
class TerminalClient {
  readonly control: TerminalServerMessage[] = [];
  text = '';
  receivedBytes = 0;
  #unacked = 0;
  #timer: NodeJS.Timeout | null = null;
  closed: number | null = null;

  constructor(
    readonly ws: WebSocket,
    pace: { ackBytesPerTick: number; tickMs: number } | null,
    readonly keepText = true,
  ) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        this.control.push(JSON.parse(data.toString()) as TerminalServerMessage);
        return;
      }
      this.receivedBytes += data.length;
      this.#unacked += data.length;
      if (this.keepText) this.text = (this.text + data.toString('utf8')).slice(-20_000);
      if (!pace) this.#ack(this.#unacked);
    });
    ws.on('close', (code: number) => {
      this.closed = code;
      if (this.#timer) clearInterval(this.#timer);
    });
    ws.on('error', () => undefined);
    if (pace) this.#timer = setInterval(() => this.#ack(Math.min(this.#unacked, pace.ackBytesPerTick)), pace.tickMs);
  }

  #ack(bytes: number): void {
    if (bytes <= 0 || this.ws.readyState !== WebSocket.OPEN) return;
    this.#unacked -= bytes;
    this.ws.send(JSON.stringify({ type: 'ack', bytes }));
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.ws.readyState === WebSocket.OPEN) return resolve();
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  type(keys: string): void {
    this.ws.send(Buffer.from(keys));
  }
}

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) * 1024;
}

function stateIds(): string[] {
  return existsSync(stateRoot) ? readdirSync(stateRoot).filter((name) => /^[0-9a-f]{32}$/.test(name)) : [];
}

/** Host processes whose command line names one of the ids (launchers carry --id). */
function processesOf(ids: string[]): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (ids.some((id) => cmdline.includes(id))) found.push(`${pid}: ${cmdline.slice(0, 100)}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

function pidsAlive(pids: number[]): number[] {
  return pids.filter((pid) => existsSync(`/proc/${pid}`));
}

function mountsOf(ids: string[]): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => ids.some((id) => line.includes(id)));
}

before(() => {
  if (!skip) stateRoot = mkdtempSync('/run/mdocker-server-lifecycle-');
});

after(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (stateRoot) rmSync(stateRoot, { recursive: true, force: true });
  if (stateRoot) rmSync(`${stateRoot}-data`, { recursive: true, force: true });
});

describe('mdocker serve as a process', { skip }, () => {
  it('keeps its memory bounded and other terminals responsive while `yes` floods a slow client for 20 s', async () => {
    const served = await serve();
    const user = new Client(served.url);
    const flood = await user.create();
    const quiet = await user.create();
    const slow = new TerminalClient(
      user.socket(`/api/containers/${flood.id}/terminals/0`),
      { ackBytesPerTick: 16 * 1024, tickMs: 50 },
      false,
    );
    const probe = new TerminalClient(user.socket(`/api/containers/${quiet.id}/terminals/0`), null);
    await Promise.all([slow.opened(), probe.opened()]);
    await sleep(300);
    const baseline = rssBytes(served.child.pid!);
    slow.type('yes\r');

    const roundTrips: number[] = [];
    let peak = baseline;
    const start = Date.now();
    for (let n = 0; Date.now() - start < 20_000; n++) {
      const sentAt = Date.now();
      probe.type(`echo rt-${n}\r`);
      await waitFor(`round trip ${n}`, () => probe.text.includes(`\r\nrt-${n}\r\n`), 5000);
      roundTrips.push(Date.now() - sentAt);
      peak = Math.max(peak, rssBytes(served.child.pid!));
      await sleep(250);
    }
    const streamed = slow.receivedBytes;
    slow.type('\x03');
    const growthMiB = (peak - baseline) / 1024 / 1024;
    console.log(
      `# yes → slow client: ${(streamed / 1024 / 1024).toFixed(1)} MiB in 20 s; RSS ${(baseline / 1024 / 1024).toFixed(0)} MiB → peak +${growthMiB.toFixed(1)} MiB; round trips max ${Math.max(...roundTrips)} ms, median ${roundTrips.sort((a, b) => a - b)[roundTrips.length >> 1]} ms`,
    );
    assert.ok(slow.closed === null, 'a slow but acking client is not dropped');
    assert.ok(streamed > 2 * 1024 * 1024, `the slow client kept receiving (${streamed} bytes)`);
    assert.ok(streamed < 20 * 20 * 16 * 1024 + 1024 * 1024, 'it received no more than it acked plus the window');
    assert.ok(growthMiB < 64, `server RSS grew by ${growthMiB.toFixed(1)} MiB`);
    assert.ok(Math.max(...roundTrips) < 1000, `echo round trips: ${roundTrips.join(', ')} ms`);

    served.child.kill('SIGTERM');
    assert.deepEqual(await served.exited, { code: 0, signal: null });
  });

  it("started without serve's Node flags, execs Node again with them: the same pid, the same arguments, and it serves", async () => {
    // spawnServer runs `node main.js serve ...` with no Node flags, as the README does. A
    // data dir whose name a shell would split and expand must come through the exec as is.
    const dataDir = `${stateRoot}-data/two words; $(touch x) "quoted"`;
    mkdirSync(`${stateRoot}-data`, { recursive: true });
    const served = await serve(['--data-dir', dataDir]);
    const pid = served.child.pid!;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
    assert.deepEqual(argv, [process.execPath, '--max-semi-space-size=64', ...served.child.spawnargs.slice(1)]);
    const reply = await new Client(served.url).request('GET', '/healthz');
    assert.equal(reply.status, 200);
    assert.ok(existsSync(dataDir), 'the server made its data dir by the name it was given');
    served.child.kill('SIGTERM');
    assert.deepEqual(await served.exited, { code: 0, signal: null });
  });

  it('on SIGTERM tells clients, removes every container (100) within seconds, and exits 0', async () => {
    const served = await serve();
    const user = new Client(served.url);
    await user.request('GET', '/healthz');
    const containers: ContainerJson[] = [];
    for (let batch = 0; batch < 10; batch++) {
      containers.push(
        ...(await Promise.all(Array.from({ length: 10 }, () => user.create({ memory: '32m', pidsLimit: 32 })))),
      );
    }
    const ids = containers.map((c) => c.id);
    const initPids = containers.map((c) => c.initPid!).filter(Boolean);
    assert.equal(initPids.length, 100);
    assert.equal(pidsAlive(initPids).length, 100);
    const watcher = new TerminalClient(user.socket(`/api/containers/${ids[0]}/terminals/0`), null);
    await watcher.opened();
    await sleep(200);

    const signalledAt = Date.now();
    served.child.kill('SIGTERM');
    const exit = await served.exited;
    const tookMs = Date.now() - signalledAt;
    console.log(`# SIGTERM with 100 containers: exited in ${tookMs} ms`);
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(tookMs < 8000, `took ${tookMs} ms`);
    await waitFor('the watcher told', () => watcher.closed !== null, 2000);
    assert.deepEqual(
      watcher.control.find((m) => m.type === 'exit'),
      { type: 'exit', exitCode: 137, reason: 'shutdown' },
    );
    assert.deepEqual(pidsAlive(initPids), []);
    assert.deepEqual(processesOf(ids), []);
    assert.deepEqual(containerCgroups(ids), []);
    assert.deepEqual(mountsOf(ids), []);
    assert.deepEqual(
      stateIds().filter((id) => ids.includes(id)),
      [],
    );
  });

  it('after kill -9, the next start reaps the leftovers before it serves', async () => {
    const first = await serve();
    const user = new Client(first.url);
    const containers = await Promise.all([user.create(), user.create(), user.create()]);
    const ids = containers.map((c) => c.id);
    const initPids = containers.map((c) => c.initPid!);
    first.child.kill('SIGKILL');
    await first.exited;
    // The launchers die with their parent (PR_SET_PDEATHSIG), and the containers with them;
    // their state (and maybe cgroups) stays behind for the next start to find.
    await waitFor('the containers to die with the server', () => pidsAlive(initPids).length === 0, 5000);
    assert.deepEqual(
      stateIds()
        .filter((id) => ids.includes(id))
        .sort(),
      [...ids].sort(),
      'state left behind',
    );

    const second = await serve();
    assert.deepEqual(
      stateIds().filter((id) => ids.includes(id)),
      [],
      'reaped before serving',
    );
    assert.deepEqual(containerCgroups(ids), []);
    assert.deepEqual(processesOf(ids), []);
    assert.deepEqual(mountsOf(ids), []);
    const fresh = new Client(second.url);
    await fresh.create();
    second.child.kill('SIGTERM');
    assert.deepEqual(await second.exited, { code: 0, signal: null });
    assert.deepEqual(stateIds(), []);
  });
});
