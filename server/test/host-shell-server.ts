// A playground server without root, for tests: a stand-in runtime whose "containers" are
// host shells on real ptys, and an HTTP/WebSocket client with its own cookie jar.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import type { CgroupHandle, CgroupStats, CgroupStatsReader, KnownLimits } from '../src/runtime/cgroups/driver.js';
import type {
  ContainerRecord,
  ContainerView,
  CreateOptions,
  ContainerProcess,
  ExecOptions,
  PreparedContainer,
  StartedContainer,
} from '../src/runtime/containers.js';
import { Lifecycles, type ContainerLifecycle, type RemovalReason } from '../src/runtime/lifecycle.js';
import { launch, type Stdio } from '../src/runtime/process.js';
import { MdockerError } from '../src/runtime/errors.js';
import type { Limits } from '../src/runtime/units.js';
import { resolveServeConfig, type ServeOptions } from '../src/http/config.js';
import type { PlaygroundRuntime } from '../src/playground/playground.js';
import type { ContainerJson } from '../src/protocol/index.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import type { ImageBackend } from '../src/playground/image-catalog.js';
import { FakeImageBackend } from './fake-images.js';

// ---- a runtime whose containers are host shells ----

export class HostShellRuntime implements PlaygroundRuntime {
  readonly records = new Map<string, ContainerRecord>();
  readonly removed: string[] = [];
  readonly lifecycles = new Lifecycles();
  /** class groups as the runtime would make them: name → budget, and each container's group */
  readonly groups = new Map<string, { memoryBytes: number | null; cpus: number | null }>();
  readonly groupOf = new Map<string, string>();
  /** networks as the runtime would make them: name → the ids of the containers on it */
  readonly networkMembers = new Map<string, Set<string>>();
  /** every network made, in order, and every one removed */
  readonly networksMade: string[] = [];
  readonly networksRemoved: string[] = [];
  #counter = 0;

  /** set: network creation fails as on a kernel without bridges (EOPNOTSUPP) */
  networksUnsupported = false;
  /** how many networks may exist at once, as the runtime's subnets of its range allow */
  networkSubnets = Infinity;

  readonly networks = {
    create: async (name: string): Promise<void> => {
      if (this.networksUnsupported) {
        throw new MdockerError('SYSCALL', 'cannot create the bridge: Operation not supported', {
          errno: 95,
          syscall: 'rtnetlink',
        });
      }
      if (this.networkMembers.has(name)) throw new MdockerError('CONFLICT', `network ${name} already exists`);
      if (this.networkMembers.size >= this.networkSubnets)
        throw new MdockerError('UNAVAILABLE', 'no free subnet left in the network range 10.89.0.0/16');
      this.networkMembers.set(name, new Set());
      this.networksMade.push(name);
    },
    remove: async (name: string): Promise<void> => {
      if (!this.networkMembers.delete(name)) throw new MdockerError('NOT_FOUND', `no such network: ${name}`);
      this.networksRemoved.push(name);
    },
    netnsPath: (name: string): string => `/nonexistent/networks/${name}/netns`,
  };

  readonly cgroups = {
    openStats: (handle: CgroupHandle): CgroupStatsReader => ({
      read: (known?: KnownLimits): CgroupStats => {
        const record = this.records.get(handle.id);
        if (!record) throw new MdockerError('NOT_FOUND', 'gone');
        const limits = known ?? record.limits;
        return {
          cpuUsageUsec: Date.now() * 10,
          cpuPeriods: 0,
          cpuThrottledPeriods: 0,
          cpuThrottledUsec: 0,
          memoryBytes: 1024 * 1024,
          memoryLimitBytes: limits.memoryBytes,
          pids: 1,
          pidsLimit: limits.pidsLimit,
          oomKills: 0,
          pidsLimitHits: 0,
        };
      },
      close: () => undefined,
    }),
    procs: async (handle: CgroupHandle): Promise<number[]> => {
      const pid = this.records.get(handle.id)?.launcher?.pid;
      return pid ? [pid] : [];
    },
    handleFromPaths: (id: string, paths: string[]): CgroupHandle => ({ id, paths }),
  };

  /** the images create knows besides busybox (a test's image backend's, as the store would) */
  imageKnown: (name: string) => boolean = () => false;

  async create(opts: CreateOptions): Promise<PreparedContainer> {
    if (opts.image !== undefined && opts.image !== 'busybox' && !this.imageKnown(opts.image)) {
      throw new MdockerError('NOT_FOUND', `unknown image ${JSON.stringify(opts.image)}`, { image: opts.image });
    }
    if (opts.group !== undefined && !this.groups.has(opts.group)) {
      throw new MdockerError('NOT_FOUND', `no such group: ${opts.group}`);
    }
    const id = (++this.#counter).toString(16).padStart(32, '0') + '';
    if (opts.group !== undefined) this.groupOf.set(id.slice(-32), opts.group);
    const network = opts.network === undefined || opts.network === 'none' ? null : opts.network;
    const members = network === null ? undefined : this.networkMembers.get(network);
    if (network !== null && members === undefined) throw new MdockerError('NOT_FOUND', `no such network: ${network}`);
    members?.add(id);
    // Only the fields the server reads; the runtime's record grows as it learns more.
    const record = {
      security: undefined,
      id: id.slice(-32),
      name: `fake-${this.#counter}`,
      image: opts.image ?? 'busybox',
      rootfs: null,
      hostname: opts.hostname ?? 'fake',
      cmd: opts.cmd,
      env: [],
      workdir: '/',
      tty: opts.tty,
      limits: opts.limits,
      cgroupPaths: [`/fake/${id}`],
      network: network === null ? null : { name: network, ip: `10.89.0.${(this.#counter % 250) + 2}` },
      autoRemove: true,
      owner: null,
      createdAt: new Date().toISOString(),
      launcher: null,
      init: null,
      startedAt: null,
      finishedAt: null,
      exitCode: null,
    } as unknown as ContainerRecord;
    this.records.set(record.id, record);
    // hostname "launch-fails" plays a launcher that reports a runtime failure.
    const script =
      opts.hostname === 'launch-fails'
        ? 'echo "mdocker-init: pivot_root: EINVAL" >&2; exit 125'
        : 'PS1="$ " exec /bin/sh';
    return { record, file: '/bin/sh', args: ['-c', script] };
  }

  start(prepared: PreparedContainer, stdio: Stdio): StartedContainer {
    const process = launch(prepared, stdio);
    const started = process.spawned.then((pid) => this.started(prepared.record.id, pid));
    const done = (async () => {
      const code = await process.exit;
      await started;
      return this.records.has(prepared.record.id) ? (await this.exited(prepared.record.id, code)).error : null;
    })().then(async (error) => ({ code: await process.exit, error }));
    return { process, started, done, lifecycle: this.lifecycles.track(prepared.record, started, done) };
  }

  lifecycle(id: string): Readonly<ContainerLifecycle> | null {
    return this.lifecycles.get(id);
  }

  async exec(id: string, opts: Omit<ExecOptions, 'errorFile'>, stdio: Stdio): Promise<ContainerProcess> {
    const process = launch(await this.execCommand(id, opts), stdio);
    return { process, done: process.exit.then((code) => ({ code, error: null })) };
  }

  async started(id: string, launcherPid: number): Promise<ContainerRecord> {
    const record = this.#get(id);
    await sleep(30);
    record.launcher = { pid: launcherPid, startTime: 0 };
    record.startedAt = new Date().toISOString();
    if (record.hostname !== 'launch-fails') record.init = { pid: launcherPid, startTime: 0 };
    return { ...record };
  }

  async exited(id: string, code: number) {
    const record = this.#get(id);
    record.exitCode = code;
    this.records.delete(id);
    this.#leaveNetwork(record);
    const error = code === 125 ? { code: 'LAUNCH_FAILED', message: 'pivot_root: EINVAL' } : null;
    return { record, error };
  }

  async execCommand(id: string, opts: ExecOptions) {
    const record = this.#get(id);
    if (!record.init) throw new MdockerError('CONFLICT', 'not running');
    return { file: '/bin/sh', args: ['-c', 'exec "$@"', 'sh', ...opts.cmd] };
  }

  async remove(id: string, opts: { reason?: RemovalReason } = {}): Promise<void> {
    const known = this.lifecycles.get(id);
    if (known?.status === 'exited' && !this.records.has(id)) {
      this.lifecycles.removed(id, opts.reason ?? 'exit');
      return;
    }
    const record = this.#get(id);
    const pid = record.launcher?.pid;
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
      for (let i = 0; i < 200 && alive(pid); i++) await sleep(10);
    }
    this.records.delete(id);
    this.#leaveNetwork(record);
    this.removed.push(id);
    this.lifecycles.removed(id, opts.reason ?? 'kill');
  }

  async update(id: string, limits: Partial<Limits>): Promise<ContainerView> {
    const record = this.#get(id);
    record.limits = { ...record.limits, ...limits };
    return { ...record, status: 'running' };
  }

  async reapLeftovers(): Promise<string[]> {
    return [];
  }

  async createGroup(name: string, budget: { memoryBytes: number | null; cpus: number | null }): Promise<void> {
    this.groups.set(name, budget);
  }

  async removeGroup(name: string): Promise<void> {
    for (const [id, group] of this.groupOf) {
      if (group === name && this.records.has(id)) throw new MdockerError('CONFLICT', `group ${name} is not empty`);
    }
    this.groups.delete(name);
  }

  #leaveNetwork(record: ContainerRecord): void {
    if (record.network) this.networkMembers.get(record.network.name)?.delete(record.id);
  }

  #get(id: string): ContainerRecord {
    const record = this.records.get(id);
    if (!record) throw new MdockerError('NOT_FOUND', `no such container: ${id}`);
    return record;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// ---- a client with its own cookie jar ----

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

export class Client {
  cookies = new Map<string, string>();

  constructor(readonly base: string) {}

  get cookieHeader(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  request(
    method: string,
    path: string,
    options: { json?: unknown; raw?: string; headers?: Record<string, string> } = {},
  ): Promise<Reply> {
    const url = new URL(path, this.base);
    const payload = options.json !== undefined ? JSON.stringify(options.json) : options.raw;
    const headers: Record<string, string> = { ...(this.cookies.size > 0 ? { cookie: this.cookieHeader } : {}) };
    if (options.json !== undefined) headers['content-type'] = 'application/json';
    if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
    Object.assign(headers, options.headers);
    return new Promise((resolve, reject) => {
      const req = httpRequest(url, { method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          for (const line of res.headers['set-cookie'] ?? []) {
            const [pair] = line.split(';');
            const [name, ...value] = pair!.split('=');
            this.cookies.set(name!.trim(), value.join('='));
          }
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = null;
          try {
            body = text ? JSON.parse(text) : null;
          } catch {
            body = null;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
        });
      });
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  async createContainer(
    body: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ): Promise<ContainerJson> {
    const reply = await this.request('POST', '/api/containers', { json: body, headers });
    assert.equal(reply.status, 201, reply.text);
    return reply.body as ContainerJson;
  }

  socket(path: string, options: { origin?: string; headers?: Record<string, string> } = {}): WebSocket {
    const url = new URL(path, this.base);
    url.protocol = 'ws:';
    return new WebSocket(url, {
      headers: { ...(this.cookies.size > 0 ? { cookie: this.cookieHeader } : {}), ...options.headers },
      ...(options.origin ? { origin: options.origin } : {}),
    });
  }
}

const quiet = pino({ level: 'silent' });
const running: RunningServer[] = [];
const dataDirs: string[] = [];

export async function serve(
  options: ServeOptions = {},
  runtime = new HostShellRuntime(),
  imageBackend: ImageBackend = new FakeImageBackend(),
): Promise<{ server: RunningServer; runtime: HostShellRuntime; client: () => Client }> {
  const config = resolveServeConfig(
    {
      port: 0,
      webDir: '/nonexistent',
      dataDir: dataDirs[dataDirs.push(mkdtempSync(join(tmpdir(), 'mdocker-data-'))) - 1],
      statsInterval: '200ms',
      createRatePerIp: 1000,
      createRatePerSession: 1000,
      ...options,
    },
    {},
  );
  const server = await startServer(config, {
    runtime,
    logger: quiet,
    handleSignals: false,
    printUrl: false,
    imageBackend,
  });
  running.push(server);
  return { server, runtime, client: () => new Client(`http://127.0.0.1:${server.port}/`) };
}

after(async () => {
  await Promise.all(running.map((server) => server.close()));
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});
