/**
 * Events read from a container's stats: the kernel only keeps cumulative counters (OOM
 * kills in memory.events, refused forks in pids.events, throttled periods in cpu.stat),
 * so an event is an increase of a counter between two consecutive samples.
 */
import type { StatsSample } from '../../server/src/protocol/index';

export type StatsEventKind = 'oom' | 'pids-limit' | 'cpu-throttled';

export interface StatsEvent {
  kind: StatsEventKind;
  t: number; // epoch ms of the sample that showed the increase
  count: number; // how much the counter grew
}

export const EVENT_LABELS: Record<StatsEventKind, string> = {
  oom: 'OOM kill',
  'pids-limit': 'pids limit hit',
  'cpu-throttled': 'CPU throttled',
};

export function eventsBetween(previous: StatsSample, current: StatsSample): StatsEvent[] {
  const events: StatsEvent[] = [];
  const grew = (kind: StatsEventKind, before: number, after: number): void => {
    // A counter that went down belongs to a new cgroup (a restarted container): no event.
    if (after > before) events.push({ kind, t: current.t, count: after - before });
  };
  grew('oom', previous.oomKills, current.oomKills);
  grew('pids-limit', previous.pidsLimitHits, current.pidsLimitHits);
  grew('cpu-throttled', previous.cpuThrottledPeriods, current.cpuThrottledPeriods);
  return events;
}

/** All events within a run of samples, oldest first. */
export function eventsIn(samples: readonly StatsSample[]): StatsEvent[] {
  const events: StatsEvent[] = [];
  for (let i = 1; i < samples.length; i++) {
    events.push(...eventsBetween(samples[i - 1]!, samples[i]!));
  }
  return events;
}
