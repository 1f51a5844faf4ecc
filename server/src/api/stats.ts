/**
 * Samples the running containers' cgroup counters at a fixed period, turns CPU usage into a
 * percentage from the deltas, and keeps a bounded history per container.
 */
import type { CgroupStats } from '../runtime/cgroups/driver.js';
import type { StatsSample } from './protocol.js';

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

export interface StatsSamplerOptions {
  intervalMs: number;
  historySamples: number;
  /** reads one container's counters; a rejection skips that container for this tick */
  read: (id: string) => Promise<CgroupStats>;
  onSample: (id: string, sample: StatsSample) => void;
  /** reads in flight at once, so hundreds of containers do not open thousands of files */
  concurrency?: number;
}

interface Tracked {
  ring: SampleRing;
  sampling: boolean;
  previous: { usageUsec: number; atMs: number } | null;
}

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

/** CPU % of one core between two readings: usage delta over wall-clock delta. */
export function cpuPercent(
  previous: { usageUsec: number; atMs: number } | null,
  usageUsec: number,
  atMs: number,
): number {
  if (previous === null) return 0;
  const wallUsec = (atMs - previous.atMs) * 1000;
  const usedUsec = usageUsec - previous.usageUsec;
  if (wallUsec <= 0 || usedUsec < 0) return 0;
  return Math.round((usedUsec / wallUsec) * 1000) / 10;
}

export class StatsSampler {
  readonly #options: StatsSamplerOptions;
  readonly #tracked = new Map<string, Tracked>();
  #timer: NodeJS.Timeout | null = null;
  #ticking = false;

  constructor(options: StatsSamplerOptions) {
    this.#options = options;
  }

  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => void this.tick(), this.#options.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Starts sampling a container (its history is kept until forget()). */
  track(id: string): void {
    const existing = this.#tracked.get(id);
    if (existing) {
      existing.sampling = true;
      return;
    }
    this.#tracked.set(id, { ring: new SampleRing(this.#options.historySamples), sampling: true, previous: null });
  }

  /** Stops sampling (the container ended) but keeps its history for a reloading graph. */
  untrack(id: string): void {
    const tracked = this.#tracked.get(id);
    if (tracked) tracked.sampling = false;
  }

  forget(id: string): void {
    this.#tracked.delete(id);
  }

  history(id: string): StatsSample[] {
    return this.#tracked.get(id)?.ring.toArray() ?? [];
  }

  latest(id: string): StatsSample | null {
    return this.#tracked.get(id)?.ring.latest() ?? null;
  }

  /** One sampling round; a round still running when the next is due makes that one skip. */
  async tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      const ids = [...this.#tracked].filter(([, tracked]) => tracked.sampling).map(([id]) => id);
      const concurrency = Math.max(1, this.#options.concurrency ?? 32);
      let cursor = 0;
      const worker = async (): Promise<void> => {
        while (cursor < ids.length) {
          const id = ids[cursor++]!;
          await this.#sampleOne(id);
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, ids.length) }, worker));
    } finally {
      this.#ticking = false;
    }
  }

  async #sampleOne(id: string): Promise<void> {
    let stats: CgroupStats;
    try {
      stats = await this.#options.read(id);
    } catch {
      // The container ended between listing and reading: its exit handler untracks it.
      return;
    }
    const tracked = this.#tracked.get(id);
    if (!tracked || !tracked.sampling) return;
    const atMs = performance.now();
    const sample = toSample(stats, Date.now(), cpuPercent(tracked.previous, stats.cpuUsageUsec, atMs));
    tracked.previous = { usageUsec: stats.cpuUsageUsec, atMs };
    tracked.ring.push(sample);
    this.#options.onSample(id, sample);
  }
}
