/**
 * A cluster on loopback for the cluster tests and the bench: N `mdocker serve` nodes,
 * each with its own port, agent port, state root, cgroup parent (on cgroup v1), network
 * range and data directory, sharing one session key and token, behind Debian's HAProxy
 * with the configuration rendered from deploy/haproxy/haproxy.cfg.template.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cliPath, repoRoot } from '../root/helpers.js';

export const CLUSTER_TOKEN = 'cluster-test-token-0123456789';

export interface ClusterNodeProcess {
  id: string;
  port: number;
  agentPort: number;
  stateRoot: string;
  dataDir: string;
  /** relative to each hierarchy's root (cgroup v1); null: the runtime's default (v2) */
  cgroupParent: string | null;
  networkRange: string;
  extra: string[];
  child: ChildProcess | null;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null;
  output: string;
  /** http://127.0.0.1:PORT/ */
  base: string;
}

export interface LocalCluster {
  nodes: ClusterNodeProcess[];
  /** http://127.0.0.1:PORT/ of HAProxy */
  base: string;
  statsSocket: string;
  haproxy: ChildProcess;
  start(node: ClusterNodeProcess): Promise<void>;
  stop(): Promise<void>;
  /** HAProxy's view of each node: status (UP, DOWN, DRAIN, MAINT) and current weight */
  servers(): Promise<Map<string, { status: string; weight: number }>>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const cgroupV2 = existsSync('/sys/fs/cgroup/cgroup.controllers');

/** The v1 hierarchies' mount points (a node's cgroup parent is made in each it uses). */
export function v1Hierarchies(): string[] {
  if (cgroupV2) return [];
  return readdirSync('/sys/fs/cgroup', { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => join('/sys/fs/cgroup', entry.name));
}

/** What a node left behind: cgroups below its parent, launchers and mounts naming its
 * state root, container and network state. Empty when it cleaned up. */
export function leftovers(node: ClusterNodeProcess): string[] {
  const found: string[] = [];
  if (node.cgroupParent !== null) {
    for (const hierarchy of v1Hierarchies()) {
      const dir = join(hierarchy, node.cgroupParent);
      if (!existsSync(dir)) continue;
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) found.push(`cgroup ${join(dir, entry.name)}`);
      }
    }
  }
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes('mdocker-init') && cmd.includes(node.stateRoot))
        found.push(`process ${pid}: ${cmd.slice(0, 80)}`);
    } catch {
      // gone meanwhile
    }
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line.includes(node.stateRoot)) found.push(`mount ${line.slice(0, 120)}`);
  }
  if (existsSync(node.stateRoot)) {
    for (const name of readdirSync(node.stateRoot)) {
      if (/^[0-9a-f]{32}$/.test(name)) found.push(`state ${join(node.stateRoot, name)}`);
    }
    const networks = join(node.stateRoot, 'networks');
    if (existsSync(networks)) {
      for (const name of readdirSync(networks)) {
        if (name !== 'subnets' && name !== 'lock') found.push(`network ${join(networks, name)}`);
      }
    }
  }
  return found;
}

export async function startLocalCluster(
  nodeExtras: string[][],
  options: { name?: string; keyFile?: string } = {},
): Promise<LocalCluster> {
  const name = options.name ?? 'cluster';
  const work = mkdtempSync(join(tmpdir(), `mdocker-${name}-`));
  const keyFile = options.keyFile ?? join(work, 'session.key');
  if (!options.keyFile)
    writeFileSync(keyFile, 'k'.repeat(16) + Math.random().toString(36).repeat(4) + '\n', { mode: 0o600 });
  const nodes: ClusterNodeProcess[] = [];
  for (const [index, extra] of nodeExtras.entries()) {
    const stateRoot = mkdtempSync(`/run/mdocker-${name}-${index}-`);
    const port = await freePort();
    nodes.push({
      id: `node-${index}`,
      port,
      agentPort: await freePort(),
      stateRoot,
      dataDir: `${stateRoot}-data`,
      cgroupParent: cgroupV2 ? null : `mdocker-${name}-${index}-${process.pid}`,
      networkRange: `10.${120 + index}.0.0/16`,
      extra,
      child: null,
      exited: null,
      output: '',
      base: `http://127.0.0.1:${port}/`,
    });
  }

  const start = async (node: ClusterNodeProcess): Promise<void> => {
    const child = spawn(
      process.execPath,
      [
        cliPath,
        'serve',
        '--host',
        '127.0.0.1',
        '--port',
        String(node.port),
        '--agent-port',
        String(node.agentPort),
        '--node-id',
        node.id,
        '--session-key-file',
        keyFile,
        '--token',
        CLUSTER_TOKEN,
        '--trust-proxy',
        '1',
        '--state-root',
        node.stateRoot,
        '--data-dir',
        node.dataDir,
        '--network-range',
        node.networkRange,
        '--web-dir',
        '/nonexistent',
        '--log-level',
        'warn',
        '--max-containers-per-session',
        '100',
        '--max-containers-per-address',
        '1000',
        '--create-rate-per-session',
        '10000',
        '--create-rate-per-ip',
        '10000',
        '--api-rate-per-ip',
        '1000000',
        '--upgrade-rate-per-ip',
        '100000',
        '--join-rate-per-ip',
        '1000',
        '--max-students-per-class',
        '1000',
        '--stats-interval',
        '500ms',
        ...node.extra,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...(node.cgroupParent ? { MDOCKER_CGROUP_PARENT: node.cgroupParent } : {}) },
      },
    );
    node.child = child;
    node.output = '';
    node.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.stdout!.on('data', (chunk: Buffer) => (node.output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (node.output += chunk.toString()));
    const exited = node.exited;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${node.id} did not start:\n${node.output}`)), 30_000);
      const check = setInterval(() => {
        if (/mdocker playground: http/.test(node.output)) {
          clearInterval(check);
          clearTimeout(timer);
          resolve();
        }
      }, 20);
      void exited.then(() => {
        clearInterval(check);
        clearTimeout(timer);
        reject(new Error(`${node.id} exited before serving:\n${node.output}`));
      });
    });
  };

  const children: ChildProcess[] = [];
  try {
    for (const node of nodes) await start(node);
  } catch (err) {
    for (const node of nodes) node.child?.kill('SIGKILL');
    throw err;
  }
  for (const node of nodes) if (node.child) children.push(node.child);

  const haproxyPort = await freePort();
  const statsSocket = join(work, 'haproxy.sock');
  const render = (await import(pathToFileURL(join(repoRoot, 'deploy/haproxy/render.mjs')).href)) as {
    render(options: {
      bind: string;
      statsSocket: string;
      nodes: { id: string; address: string; agentPort: number }[];
    }): string;
  };
  const config = render.render({
    bind: `127.0.0.1:${haproxyPort}`,
    statsSocket,
    nodes: nodes.map((node) => ({ id: node.id, address: `127.0.0.1:${node.port}`, agentPort: node.agentPort })),
  });
  const configFile = join(work, 'haproxy.cfg');
  writeFileSync(configFile, config);
  const haproxy = spawn('haproxy', ['-db', '-f', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let haproxyOutput = '';
  haproxy.stderr!.on('data', (chunk: Buffer) => (haproxyOutput += chunk.toString()));
  const haproxyExited = new Promise<void>((resolve) => haproxy.once('exit', () => resolve()));

  const servers = async (): Promise<Map<string, { status: string; weight: number }>> => {
    const csv = await runtimeApi(statsSocket, 'show stat\n');
    const lines = csv.split('\n');
    const header = (lines[0] ?? '').replace(/^# /, '').split(',');
    const col = (name: string): number => header.indexOf(name);
    const result = new Map<string, { status: string; weight: number }>();
    for (const line of lines.slice(1)) {
      const fields = line.split(',');
      if (fields[col('pxname')] !== 'nodes' || !/^node-/.test(fields[col('svname')] ?? '')) continue;
      result.set(fields[col('svname')]!, {
        status: fields[col('status')]!,
        weight: Number(fields[col('weight')]),
      });
    }
    return result;
  };

  const cluster: LocalCluster = {
    nodes,
    base: `http://127.0.0.1:${haproxyPort}/`,
    statsSocket,
    haproxy,
    start,
    servers,
    stop: async () => {
      haproxy.kill('SIGTERM');
      await Promise.race([haproxyExited, new Promise((r) => setTimeout(r, 5000))]);
      for (const node of nodes) {
        if (node.child && node.child.exitCode === null && node.child.signalCode === null) node.child.kill('SIGTERM');
      }
      for (const node of nodes)
        if (node.exited) await Promise.race([node.exited, new Promise((r) => setTimeout(r, 20_000))]);
      for (const node of nodes) {
        if (node.child && node.child.exitCode === null && node.child.signalCode === null) node.child.kill('SIGKILL');
        rmSync(node.stateRoot, { recursive: true, force: true });
        rmSync(node.dataDir, { recursive: true, force: true });
        if (node.cgroupParent) {
          for (const hierarchy of v1Hierarchies()) {
            try {
              rmdirSync(join(hierarchy, node.cgroupParent));
            } catch {
              // never made, or a leftover the test reported
            }
          }
        }
      }
      rmSync(work, { recursive: true, force: true });
    },
  };

  // HAProxy is ready once every node is UP with its agent's weight.
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const seen = await servers();
      if (seen.size === nodes.length && [...seen.values()].every((s) => s.status === 'UP')) break;
    } catch {
      // the socket is not there yet
    }
    if (Date.now() > deadline || haproxy.exitCode !== null) {
      await cluster.stop();
      throw new Error(`HAProxy did not see the nodes up:\n${haproxyOutput}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return cluster;
}

/** One command on HAProxy's runtime API (its stats socket), its whole answer. */
export function runtimeApi(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = connect(socketPath);
    socket.on('connect', () => socket.write(command));
    socket.on('data', (chunk) => (text += chunk.toString()));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}
