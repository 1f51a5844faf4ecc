/**
 * Samples the running containers' cgroup counters at a fixed period, turns CPU usage into a
 * percentage from the deltas, and keeps a bounded history per container.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { cpuPercent, type CgroupStats } from '../runtime/cgroups/driver.js';
import type { StatsSample } from '../protocol/index.js';

/** Fixed-capacity ring: the oldest sample is overwritten, memory never grows. */
export class SampleRing {
  readonly #items: (StatsSample | undefined)[];
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    this.#items = new Array<StatsSample | undefined>(Math.max(1, capacity));
  }

  push(sample: StatsSample): void {
    this.#items[this.#next] = sample;
    this.#next = (this.#next + 1) % this.#items.length;
    this.#size = Math.min(this.#size + 1, this.#items.length);
  }

  get size(): number {
    return this.#size;
  }

  latest(): StatsSample | null {
    if (this.#size === 0) return null;
    return this.#items[(this.#next - 1 + this.#items.length) % this.#items.length] ?? null;
  }

  /** Oldest first. */
  toArray(): StatsSample[] {
    const out: StatsSample[] = [];
    const start = (this.#next - this.#size + this.#items.length) % this.#items.length;
    for (let i = 0; i < this.#size; i++) {
      const item = this.#items[(start + i) % this.#items.length];
      if (item) out.push(item);
    }
    return out;
  }
}

/** One container's counters, open for repeated synchronous reads (a cgroup stats reader). */
export interface StatsSource {
  read(): CgroupStats;
  close(): void;
}

export interface StatsSamplerOptions {
  intervalMs: number;
  historySamples: number;
  /**
   * Opens one container's counters when it is first sampled; they stay open until it is
   * untracked. A throw, from here or from a read, skips the container for this round.
   */
  open: (id: string) => StatsSource;
  onSample: (id: string, sample: StatsSample) => void;
  /** How long a round reads before it yields to the event loop, so terminals are not held up. */
  sliceMs?: number;
}

interface Tracked {
  ring: SampleRing;
  sampling: boolean;
  previous: { usageUsec: number; atMs: number } | null;
  source: StatsSource | null;
}

const DEFAULT_SLICE_MS = 2;

export function toSample(stats: CgroupStats, t: number, cpuPercent: number): StatsSample {
  return {
    t,
    cpuPercent,
    cpuUsageUsec: stats.cpuUsageUsec,
    memoryBytes: stats.memoryBytes,
    memoryLimitBytes: stats.memoryLimitBytes,
    pids: stats.pids,
    pidsLimit: stats.pidsLimit,
    oomKills: stats.oomKills,
    pidsLimitHits: stats.pidsLimitHits,
    cpuThrottledPeriods: stats.cpuThrottledPeriods,
    cpuThrottledUsec: stats.cpuThrottledUsec,
  };
}

export class StatsSampler {
  readonly #options: StatsSamplerOptions;
  readonly #tracked = new Map<string, Tracked>();
  #timer: NodeJS.Timeout | null = null;
  #ticking = false;

  constructor(options: StatsSamplerOptions) {
    this.#options = options;
  }

  /** How many containers are sampled. */
  get trackedCount(): number {
    return this.#tracked.size;
  }

  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => void this.tick(), this.#options.intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and closes every container's counter files (a later round reopens them). */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    for (const tracked of this.#tracked.values()) closeSource(tracked);
  }

  /** Starts sampling a container (its history is kept until forget()). */
  track(id: string): void {
    const existing = this.#tracked.get(id);
    if (existing) {
      existing.sampling = true;
      return;
    }
    this.#tracked.set(id, {
      ring: new SampleRing(this.#options.historySamples),
      sampling: true,
      previous: null,
      source: null,
    });
  }

  /** Stops sampling (the container ended) and closes its files, but keeps its history for a reloading graph. */
  untrack(id: string): void {
    const tracked = this.#tracked.get(id);
    if (!tracked) return;
    tracked.sampling = false;
    closeSource(tracked);
  }

  forget(id: string): void {
    const tracked = this.#tracked.get(id);
    if (tracked) closeSource(tracked);
    this.#tracked.delete(id);
  }

  /** Containers whose counter files are open now. */
  get openSources(): number {
    let count = 0;
    for (const tracked of this.#tracked.values()) if (tracked.source !== null) count++;
    return count;
  }

  history(id: string): StatsSample[] {
    return this.#tracked.get(id)?.ring.toArray() ?? [];
  }

  latest(id: string): StatsSample | null {
    return this.#tracked.get(id)?.ring.latest() ?? null;
  }

  /**
   * One sampling round: a synchronous read per container, yielding to the event loop every
   * sliceMs. A round still running when the next is due makes that one skip.
   */
  async tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      const ids = [...this.#tracked].filter(([, tracked]) => tracked.sampling).map(([id]) => id);
      const sliceMs = this.#options.sliceMs ?? DEFAULT_SLICE_MS;
      let sliceStartMs = performance.now();
      for (const id of ids) {
        if (performance.now() - sliceStartMs >= sliceMs) {
          await nextTurn();
          sliceStartMs = performance.now();
        }
        this.#sampleOne(id);
      }
    } finally {
      this.#ticking = false;
    }
  }

  #sampleOne(id: string): void {
    // Untracked or forgotten while the round yielded.
    const tracked = this.#tracked.get(id);
    if (!tracked || !tracked.sampling) return;
    let stats: CgroupStats;
    try {
      tracked.source ??= this.#options.open(id);
      stats = tracked.source.read();
    } catch {
      // Its cgroup is gone (the container is ending: its exit handler untracks it) or not
      // readable now; a later round opens it afresh.
      closeSource(tracked);
      return;
    }
    const atMs = performance.now();
    const sample = toSample(stats, Date.now(), cpuPercent(tracked.previous, stats.cpuUsageUsec, atMs));
    tracked.previous = { usageUsec: stats.cpuUsageUsec, atMs };
    tracked.ring.push(sample);
    this.#options.onSample(id, sample);
  }
}

function closeSource(tracked: Tracked): void {
  const source = tracked.source;
  tracked.source = null;
  source?.close();
}
