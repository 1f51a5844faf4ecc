// Small shared pieces of the benchmark: statistics, /proc readers, bounded waiting,
// process bookkeeping. Plain Node ESM, no dependencies.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function summarize(values) {
  const xs = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (xs.length === 0) return { n: 0, median: NaN, p99: NaN, min: NaN, max: NaN, mean: NaN };
  return {
    n: xs.length,
    median: percentile(xs, 50),
    p90: percentile(xs, 90),
    p99: percentile(xs, 99),
    min: xs[0],
    max: xs[xs.length - 1],
    mean: xs.reduce((a, b) => a + b, 0) / xs.length,
  };
}

/** Rejects with a message naming `what` if the promise takes longer than ms. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function statFields(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name is in parentheses and may hold spaces: split after the last ')'.
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of a process in seconds (not its children). */
export function cpuSeconds(pid) {
  const f = statFields(pid);
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

export function parentPid(pid) {
  return Number(statFields(pid)[1]);
}

/** Start time in clock ticks since boot: with the pid, names one process for good. */
export function startTime(pid) {
  try {
    return Number(statFields(pid)[19]);
  } catch {
    return null;
  }
}

export function isSameProcess(ref) {
  return ref !== null && startTime(ref.pid) === ref.startTime;
}

export function processRef(pid) {
  const t = startTime(pid);
  return t === null ? null : { pid, startTime: t };
}

/** Kills a process we started, by pid, only if it is still the same process. */
export function killRef(ref, signal = 'SIGKILL') {
  if (!isSameProcess(ref)) return false;
  try {
    process.kill(ref.pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** A field of /proc/PID/smaps_rollup ("Pss", "Rss") in bytes; null when unreadable. */
export function smapsRollup(pid, field) {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export function rssBytes(pid) {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export function meminfo() {
  const out = {};
  for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+)/.exec(line);
    if (m) out[m[1]] = Number(m[2]) * 1024;
  }
  return out;
}

export function loadavg() {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
}

/** Whole-host CPU jiffies (busy, total), to tell how busy the machine was meanwhile. */
export function hostCpu() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

export function hostBusyPercent(before, after) {
  const total = after.total - before.total;
  return total > 0 ? ((after.busy - before.busy) / total) * 100 : NaN;
}

/** This process's cgroup path per v1 controller, from /proc/PID/cgroup. */
export function cgroupPaths(pid = 'self') {
  const out = {};
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers === undefined || path === undefined) continue;
    for (const c of controllers.split(',')) out[c === '' ? 'unified' : c] = path;
  }
  return out;
}

/** Directories below dir, depth-first, children before parents (for rmdir). */
export function dirsBottomUp(dir) {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) out.push(...dirsBottomUp(`${dir}/${entry.name}`));
  }
  out.push(dir);
  return out;
}

export function commandOutput(file, args) {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 }).trim();
  } catch {
    return null;
  }
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export function fmtMs(ms) {
  if (!Number.isFinite(ms)) return '–';
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  return ms.toFixed(2);
}

export function fmtRatio(x) {
  return Number.isFinite(x) ? `${x.toFixed(2)}×` : '–';
}

export function fmtBytes(bytes) {
  if (!Number.isFinite(bytes)) return '–';
  const abs = Math.abs(bytes);
  if (abs >= GiB) return `${(bytes / GiB).toFixed(2)} GiB`;
  if (abs >= MiB) return `${(bytes / MiB).toFixed(2)} MiB`;
  if (abs >= 1024) return `${(bytes / 1024).toFixed(0)} KiB`;
  return `${bytes.toFixed(0)} B`;
}
