/**
 * The interactive boost: a container whose terminal was typed in within the last
 * BOOST_HOLD_MS runs at a higher CPU weight than its neighbours, then returns to the
 * default. On the kernel's EEVDF scheduler a higher weight gives the container's group a
 * shorter virtual deadline, so the shell woken by a keystroke runs before the neighbours
 * that are busy printing. Only among its siblings: the containers' parent cgroup keeps
 * its own weight against the host's tasks (bench/PROFILE.md, "Keystroke echo"). The
 * weight orders who runs first, never how much: the container's CPU quota still caps it,
 * so a student flooding input gets no more CPU than their limit.
 *
 * One cgroup write per transition (boost, return), none per keystroke; a typist keeps the
 * boost by typing, and the one timer per boosted container re-arms itself for the rest.
 *
 * And the other way round, the background: a container that was busy over the last stats
 * sample (isBusy) while nobody typed in it goes into the kernel's idle class (cpu.idle),
 * where any task of the normal class woken on its CPU (a shell woken by a keystroke, the
 * server, the kernel's workers) preempts it at once. A weight alone cannot do that: with
 * 50 busy neighbours the woken shell still waits its turn among them (bench/PROFILE.md).
 * The idle class takes nothing from a container when nobody else wants the CPU, and its
 * quota stays what it was. It leaves the class on the first keystroke, written before the
 * keystroke reaches its terminal and before the boost (the kernel refuses a weight for an
 * idle group), or once it has been quiet a few samples; it then has the default weight. A
 * boosted container never enters the class, so the boost's return never meets one.
 */
import { readFileSync } from 'node:fs';
import { isMdockerError } from '../runtime/errors.js';

/** cpu.weight while boosted: ten neighbours' worth (v2's scale; 1024 per 100 on v1). */
export const BOOST_CPU_WEIGHT = 1000;
/** How long after the last keystroke the boost lasts. */
export const BOOST_HOLD_MS = 1000;

/**
 * Whether a container's CPU use over a sample makes it busy: at least half of its fair
 * share, the smaller of its own limit and the host's cores split among the running
 * containers. A shell waiting for keys uses next to nothing; a `yes` among 50 on two
 * cores gets its fair share, about 4 % of a core, twice what makes it busy.
 */
export function isBusy(cpuPercent: number, limitCpus: number | null, running: number, cores: number): boolean {
  return cpuPercent >= fairSharePercent(limitCpus, running, cores) / 2;
}

/** Quiet samples in a row that bring a container back from the background. */
export const QUIET_SAMPLES = 3;

/** Below this fraction of its fair share a container in the background is quiet. */
export function isQuiet(cpuPercent: number, limitCpus: number | null, running: number, cores: number): boolean {
  return cpuPercent < fairSharePercent(limitCpus, running, cores) / 8;
}

function fairSharePercent(limitCpus: number | null, running: number, cores: number): number {
  const share = cores / Math.max(1, running);
  return Math.min(limitCpus ?? share, share) * 100;
}

/**
 * The host's CPUs are contended when tasks waited for one more than this share of the time
 * since the last look (/proc/pressure/cpu's "some").
 */
export const CONTENDED_PRESSURE_PERCENT = 10;

/**
 * Whether the host's CPUs were contended since the last call, from the kernel's pressure
 * stall information (`total` µs of "some" waiting), read at most once per `minGapMs`
 * (the stats sampler asks once per container). True when it cannot be read (no PSI):
 * the background then lasts until the next keystroke.
 */
export class HostCpuPressure {
  readonly #path: string;
  readonly #minGapMs: number;
  readonly #now: () => number;
  #last: { atMs: number; totalUs: number } | null = null;
  #contended = true;

  constructor(options: { path?: string; minGapMs?: number; now?: () => number } = {}) {
    this.#path = options.path ?? '/proc/pressure/cpu';
    this.#minGapMs = options.minGapMs ?? 250;
    this.#now = options.now ?? (() => performance.now());
  }

  contended(): boolean {
    const atMs = this.#now();
    if (this.#last !== null && atMs - this.#last.atMs < this.#minGapMs) return this.#contended;
    let totalUs: number;
    try {
      const total = /^some .*\btotal=(\d+)/m.exec(readFileSync(this.#path, 'utf8'))?.[1];
      if (total === undefined) return (this.#contended = true);
      totalUs = Number(total);
    } catch {
      return (this.#contended = true);
    }
    const last = this.#last;
    this.#last = { atMs, totalUs };
    if (last === null) return this.#contended;
    this.#contended = ((totalUs - last.totalUs) / 1000 / (atMs - last.atMs)) * 100 > CONTENDED_PRESSURE_PERCENT;
    return this.#contended;
  }
}

export interface CpuBoostOptions {
  /** Writes the container's CPU weight; NOT_FOUND once its cgroup is gone. */
  setWeight(containerId: string, weight: number): Promise<void>;
  /**
   * Puts the container in the idle class or takes it out (CgroupDriver.setCpuIdle): its
   * synchronous part must do the write, so that it lands before the keystroke that asked
   * for it. NOT_FOUND once its cgroup is gone; UNSUPPORTED turns the background off.
   * Without it there is no background.
   */
  setIdle?(containerId: string, idle: boolean): Promise<void>;
  /** The weight it returns to. */
  normalWeight: number;
  boostedWeight?: number;
  holdMs?: number;
  /** A write that failed for another reason than the cgroup being gone. */
  onError?(containerId: string, err: unknown): void;
  now?: () => number;
  setTimer?: (callback: () => void, ms: number) => unknown;
  clearTimer?: (timer: unknown) => void;
}

interface Boosted {
  lastInputAt: number;
  timer: unknown;
}

export class CpuBoost {
  readonly #options: CpuBoostOptions;
  readonly #boostedWeight: number;
  readonly #holdMs: number;
  readonly #now: () => number;
  readonly #setTimer: (callback: () => void, ms: number) => unknown;
  readonly #clearTimer: (timer: unknown) => void;
  readonly #boosted = new Map<string, Boosted>();
  /** Containers in the idle class, each with the quiet samples in a row it has had there. */
  readonly #background = new Map<string, number>();
  #backgroundOff: boolean;

  constructor(options: CpuBoostOptions) {
    this.#options = options;
    this.#boostedWeight = options.boostedWeight ?? BOOST_CPU_WEIGHT;
    this.#holdMs = options.holdMs ?? BOOST_HOLD_MS;
    this.#now = options.now ?? (() => performance.now());
    this.#setTimer =
      options.setTimer ??
      ((callback, ms) => {
        const timer = setTimeout(callback, ms);
        timer.unref();
        return timer;
      });
    this.#clearTimer = options.clearTimer ?? ((timer) => clearTimeout(timer as NodeJS.Timeout));
    this.#backgroundOff = options.setIdle === undefined;
  }

  /** Input reached the container's terminal (called before the pty gets it). */
  keystroke(containerId: string): void {
    if (this.#background.delete(containerId)) this.#writeIdle(containerId, false);
    const now = this.#now();
    const boosted = this.#boosted.get(containerId);
    if (boosted !== undefined) {
      boosted.lastInputAt = now;
      return;
    }
    this.#boosted.set(containerId, { lastInputAt: now, timer: this.#arm(containerId, this.#holdMs) });
    this.#write(containerId, this.#boostedWeight);
  }

  isBoosted(containerId: string): boolean {
    return this.#boosted.has(containerId);
  }

  /**
   * A stats sample of the container: `busy` (isBusy) sends it to the background unless it
   * was typed in within the hold; QUIET_SAMPLES quiet ones in a row bring it back, quiet
   * meaning little use (isQuiet) while the host's CPUs are not contended
   * (HostCpuPressure). Under contention a container in the class may get next to nothing
   * however much it wants (while a busy sibling is still in the normal class, as when a
   * class's neighbours go in over a few samples), so its use cannot tell it is quiet: they
   * would take turns going in and out, the normal half taking the CPUs.
   */
  sample(containerId: string, usage: { busy: boolean; quiet: boolean }): void {
    if (this.#backgroundOff) return;
    const quietSamples = this.#background.get(containerId);
    if (quietSamples !== undefined) {
      if (!usage.quiet) this.#background.set(containerId, 0);
      else if (quietSamples + 1 < QUIET_SAMPLES) this.#background.set(containerId, quietSamples + 1);
      else {
        this.#background.delete(containerId);
        this.#writeIdle(containerId, false);
      }
    } else if (usage.busy && !this.#boosted.has(containerId)) {
      this.#background.set(containerId, 0);
      this.#writeIdle(containerId, true);
    }
  }

  isBackground(containerId: string): boolean {
    return this.#background.has(containerId);
  }

  /** The container is going away: its timer goes, and nothing is written. */
  forget(containerId: string): void {
    this.#background.delete(containerId);
    const boosted = this.#boosted.get(containerId);
    if (boosted === undefined) return;
    this.#clearTimer(boosted.timer);
    this.#boosted.delete(containerId);
  }

  /** Drops every timer (the server is stopping; the containers go with it). */
  dispose(): void {
    for (const id of [...this.#boosted.keys()]) this.forget(id);
    this.#background.clear();
  }

  #arm(containerId: string, ms: number): unknown {
    return this.#setTimer(() => this.#expire(containerId), ms);
  }

  #expire(containerId: string): void {
    const boosted = this.#boosted.get(containerId);
    if (boosted === undefined) return;
    const left = boosted.lastInputAt + this.#holdMs - this.#now();
    if (left > 0) {
      boosted.timer = this.#arm(containerId, left);
      return;
    }
    this.#boosted.delete(containerId);
    this.#write(containerId, this.#options.normalWeight);
  }

  #write(containerId: string, weight: number): void {
    this.#options.setWeight(containerId, weight).catch((err: unknown) => {
      if (isMdockerError(err) && err.code === 'NOT_FOUND') return;
      this.#options.onError?.(containerId, err);
    });
  }

  #writeIdle(containerId: string, idle: boolean): void {
    this.#options.setIdle?.(containerId, idle).catch((err: unknown) => {
      if (isMdockerError(err) && err.code === 'NOT_FOUND') return;
      if (isMdockerError(err) && err.code === 'UNSUPPORTED') {
        // The kernel has no idle class: said once, then no more background.
        if (this.#backgroundOff) return;
        this.#backgroundOff = true;
        this.#background.clear();
      }
      this.#options.onError?.(containerId, err);
    });
  }
}
