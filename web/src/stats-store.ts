/**
 * Each container's recent stats samples (the server's 10 minutes of history, then the
 * live 1 Hz samples) and the events derived from them, grouped into episodes for the
 * event log so a busy loop under a CPU limit reads as one "CPU throttled" run, not 60.
 */
import type { StatsSample } from '../../server/src/protocol/index';
import { eventsBetween, type StatsEvent, type StatsEventKind } from './stats-events';

export const HISTORY_LIMIT_SAMPLES = 600;
/** Increases this close together (ms) belong to one episode. */
const EPISODE_GAP_MS = 2500;

export interface StatsEpisode {
  kind: StatsEventKind;
  start: number;
  end: number;
  count: number;
}

interface ContainerStats {
  samples: StatsSample[];
  events: StatsEvent[];
  episodes: StatsEpisode[];
}

type Listener = (containerId: string) => void;

export class StatsStore {
  private readonly byContainer = new Map<string, ContainerStats>();
  private readonly listeners = new Set<Listener>();

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  setHistory(containerId: string, samples: readonly StatsSample[]): void {
    const stats: ContainerStats = { samples: [], events: [], episodes: [] };
    this.byContainer.set(containerId, stats);
    for (const sample of [...samples].sort((a, b) => a.t - b.t)) this.push(stats, sample);
    this.emit(containerId);
  }

  add(containerId: string, sample: StatsSample): void {
    let stats = this.byContainer.get(containerId);
    if (!stats) {
      stats = { samples: [], events: [], episodes: [] };
      this.byContainer.set(containerId, stats);
    }
    if (this.push(stats, sample)) this.emit(containerId);
  }

  samples(containerId: string): readonly StatsSample[] {
    return this.byContainer.get(containerId)?.samples ?? [];
  }

  events(containerId: string): readonly StatsEvent[] {
    return this.byContainer.get(containerId)?.events ?? [];
  }

  episodes(containerId: string): readonly StatsEpisode[] {
    return this.byContainer.get(containerId)?.episodes ?? [];
  }

  latest(containerId: string): StatsSample | undefined {
    const samples = this.samples(containerId);
    return samples[samples.length - 1];
  }

  forget(containerId: string): void {
    this.byContainer.delete(containerId);
  }

  private push(stats: ContainerStats, sample: StatsSample): boolean {
    const last = stats.samples[stats.samples.length - 1];
    if (last && sample.t <= last.t) return false; // a replayed sample after a reconnect
    stats.samples.push(sample);
    if (stats.samples.length > HISTORY_LIMIT_SAMPLES)
      stats.samples.splice(0, stats.samples.length - HISTORY_LIMIT_SAMPLES);
    if (!last) return true;
    for (const event of eventsBetween(last, sample)) {
      stats.events.push(event);
      const open = findLast(stats.episodes, (e) => e.kind === event.kind);
      if (open && event.t - open.end <= EPISODE_GAP_MS) {
        open.end = event.t;
        open.count += event.count;
      } else {
        stats.episodes.push({ kind: event.kind, start: event.t, end: event.t, count: event.count });
      }
    }
    const oldest = stats.samples[0]!.t;
    while (stats.events.length > 0 && stats.events[0]!.t < oldest) stats.events.shift();
    return true;
  }

  private emit(containerId: string): void {
    for (const listener of this.listeners) listener(containerId);
  }
}

function findLast<T>(items: readonly T[], predicate: (item: T) => boolean): T | undefined {
  for (let i = items.length - 1; i >= 0; i--) {
    if (predicate(items[i]!)) return items[i];
  }
  return undefined;
}
