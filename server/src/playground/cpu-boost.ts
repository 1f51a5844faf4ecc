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
 */
import { isMdockerError } from '../runtime/errors.js';

/** cpu.weight while boosted: ten neighbours' worth (v2's scale; 1024 per 100 on v1). */
export const BOOST_CPU_WEIGHT = 1000;
/** How long after the last keystroke the boost lasts. */
export const BOOST_HOLD_MS = 1000;

export interface CpuBoostOptions {
  /** Writes the container's CPU weight; NOT_FOUND once its cgroup is gone. */
  setWeight(containerId: string, weight: number): Promise<void>;
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
  }

  /** Input reached the container's terminal. */
  keystroke(containerId: string): void {
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

  /** The container is going away: its timer goes, and nothing is written. */
  forget(containerId: string): void {
    const boosted = this.#boosted.get(containerId);
    if (boosted === undefined) return;
    this.#clearTimer(boosted.timer);
    this.#boosted.delete(containerId);
  }

  /** Drops every timer (the server is stopping; the containers go with it). */
  dispose(): void {
    for (const id of [...this.#boosted.keys()]) this.forget(id);
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
}
