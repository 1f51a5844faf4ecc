/**
 * Shared by the root tests: run the real `mdocker` CLI (compiled) as a child process,
 * find what a container left behind. Root tests skip only when not root, and say so;
 * in CI (CI=true) not being root is a failure, not a skip.
 */
import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
export const cliPath = join(repoRoot, 'server/dist/src/cli/main.js');

export const isRoot = process.getuid?.() === 0;

/** node:test's `skip` option: a reason when the test cannot run here, else false. */
export function rootOnly(): string | false {
  if (isRoot) return false;
  if (process.env.CI === 'true') throw new Error('root tests must run as root in CI');
  return 'needs root: real namespaces, cgroups and mounts';
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function mdocker(
  args: string[],
  opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
    } satisfies SpawnOptions);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mdocker ${args.join(' ')} timed out; stdout=${stdout} stderr=${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** `mdocker ARGS` that must succeed: its stdout (a failure fails the test with its stderr). */
export async function mdockerOk(args: string[]): Promise<string> {
  const r = await mdocker(args);
  if (r.code !== 0) throw new Error(`mdocker ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** A shell in a fresh --rm busybox container on `network`: its output and exit code. */
export async function shOnNetwork(network: string, script: string): Promise<{ code: number; out: string }> {
  const r = await mdocker(['run', '--rm', '--network', network, 'busybox', 'sh', '-c', script]);
  return { code: r.code, out: r.stdout + r.stderr };
}

export function mdockerSync(args: string[]): RunResult {
  const r = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8' });
  return { code: r.status ?? 125, stdout: r.stdout, stderr: r.stderr };
}

/** Every process on the host whose command line names mdocker-init. */
export function launcherProcesses(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes('mdocker-init')) found.push(`${pid}: ${cmd.slice(0, 100)}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Container cgroups (mdocker/<32 hex>, or mdocker/class-<id>/<32 hex>) in every hierarchy. */
export function containerCgroups(ids?: string[]): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 6) return;
    let entries: string[];
    try {
      entries = readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch {
      return;
    }
    for (const name of entries) {
      const path = join(dir, name);
      const parent = dir.endsWith('/mdocker') || /\/mdocker\/class-[a-z0-9-]+$/.test(dir);
      if (/^[0-9a-f]{32}$/.test(name) && parent && (!ids || ids.includes(name))) found.push(path);
      else walk(path, depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return found;
}

export function mdockerMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes('mdocker'));
}

/** The ids that still have a state directory, in /run/mdocker or any other state root
 * (the server's tests use their own). */
export function stateDirs(ids: string[]): string[] {
  const roots = readdirSync('/run')
    .filter((name) => name.startsWith('mdocker'))
    .map((name) => join('/run', name));
  return ids.filter((id) => roots.some((root) => existsSync(join(root, id))));
}

export async function waitFor<T>(
  what: string,
  probe: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Children of pid, from /proc (the launcher is the CLI's child). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
