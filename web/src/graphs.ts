/**
 * Live graphs of one container's cgroup numbers: CPU %, memory and pids, each with its
 * limit drawn as a dashed line, over a sliding window at 1 Hz, with the events the
 * kernel counted (OOM kills, refused forks, throttled periods) marked where they happened.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { StatsSample } from '../../server/src/protocol/index';
import { h, replaceChildren } from './dom';
import type { ChartPalette } from './prefs';
import { EVENT_LABELS, type StatsEvent, type StatsEventKind } from './stats-events';
import type { StatsEpisode, StatsStore } from './stats-store';

export const WINDOW_SECONDS = 120;
const MIN_WINDOW_SECONDS = 30;
const CHART_HEIGHT_PX = 118;
const MIB = 1024 * 1024;

interface ChartSpec {
  key: 'cpu' | 'memory' | 'pids';
  title: string;
  readoutLabel: string;
  valueLabel: string;
  color: (p: ChartPalette) => string;
  value: (s: StatsSample) => number;
  limit: (s: StatsSample) => number | null;
  floor: number; // the y axis shows at least 0..floor
  format: (v: number) => string;
  markers: StatsEventKind[];
}

const CHARTS: ChartSpec[] = [
  {
    key: 'cpu',
    title: 'CPU',
    readoutLabel: 'Current CPU',
    valueLabel: 'CPU %',
    color: (p) => p.cpu,
    value: (s) => s.cpuPercent,
    // Samples do not carry the CPU limit: Graphs draws the container's cpus x 100 instead.
    limit: () => null,
    floor: 100,
    format: (v) => `${v.toFixed(v < 10 ? 1 : 0)} %`,
    markers: ['cpu-throttled'],
  },
  {
    key: 'memory',
    title: 'Memory',
    readoutLabel: 'Current memory',
    valueLabel: 'Memory MiB',
    color: (p) => p.memory,
    value: (s) => s.memoryBytes / MIB,
    limit: (s) => (s.memoryLimitBytes === null ? null : s.memoryLimitBytes / MIB),
    floor: 8,
    format: (v) => `${v.toFixed(v < 10 ? 1 : 0)} MiB`,
    markers: ['oom'],
  },
  {
    key: 'pids',
    title: 'Pids',
    readoutLabel: 'Current pids',
    valueLabel: 'Pids',
    color: (p) => p.pids,
    value: (s) => s.pids,
    limit: (s) => s.pidsLimit,
    floor: 5,
    format: (v) => String(Math.round(v)),
    markers: ['pids-limit'],
  },
];

function markerColor(kind: StatsEventKind, palette: ChartPalette): string {
  if (kind === 'oom') return palette.oom;
  if (kind === 'pids-limit') return palette.pidsHit;
  return palette.throttled;
}

/** Draws events on the plot: a labelled line for OOM kills and refused forks, a tick
 * along the bottom for throttled periods (they come every second under a CPU limit). */
function markersPlugin(
  kinds: StatsEventKind[],
  events: () => readonly StatsEvent[],
  palette: () => ChartPalette,
): uPlot.Plugin {
  return {
    hooks: {
      draw: [
        (u) => {
          const { left, top, width, height } = u.bbox;
          const ctx = u.ctx;
          const dpr = uPlot.pxRatio;
          ctx.save();
          ctx.font = `${11 * dpr}px system-ui, sans-serif`;
          let lastLabelX = -Infinity;
          for (const event of events()) {
            if (!kinds.includes(event.kind)) continue;
            const x = Math.round(u.valToPos(event.t / 1000, 'x', true));
            if (x < left || x > left + width) continue;
            const color = markerColor(event.kind, palette());
            ctx.strokeStyle = color;
            ctx.fillStyle = color;
            ctx.lineWidth = 2 * dpr;
            ctx.beginPath();
            if (event.kind === 'cpu-throttled') {
              ctx.moveTo(x, top + height - 7 * dpr);
              ctx.lineTo(x, top + height);
            } else {
              ctx.moveTo(x, top);
              ctx.lineTo(x, top + height);
            }
            ctx.stroke();
            if (event.kind !== 'cpu-throttled' && x - lastLabelX > 60 * dpr) {
              ctx.fillText(EVENT_LABELS[event.kind], Math.min(x + 3 * dpr, left + width - 80 * dpr), top + 11 * dpr);
              lastLabelX = x;
            }
          }
          ctx.restore();
        },
      ],
    },
  };
}

interface ChartInstance {
  spec: ChartSpec;
  plot: uPlot | null;
  host: HTMLElement;
  readout: HTMLOutputElement;
  limitText: HTMLElement;
  counter: HTMLElement;
}

export class Graphs {
  readonly element: HTMLElement;
  private readonly charts: ChartInstance[];
  private readonly eventLog: HTMLOListElement;
  private readonly emptyNote: HTMLElement;
  private readonly noEvents: HTMLElement;
  private readonly resizeObserver: ResizeObserver;
  private containerId: string | null = null;
  private cpusLimit: number | null = null;
  private width = 0;

  constructor(
    private readonly store: StatsStore,
    private palette: ChartPalette,
  ) {
    this.charts = CHARTS.map((spec) => {
      const readout = h('output', { class: 'readout-value', 'aria-label': spec.readoutLabel }, '–');
      const limitText = h('span', { class: 'readout-limit' });
      const counter = h('span', { class: 'readout-counter' });
      const host = h('div', {
        class: 'chart-host',
        role: 'img',
        'aria-label': `${spec.title} over the last ${WINDOW_SECONDS / 60} minutes`,
      });
      return { spec, plot: null, host, readout, limitText, counter };
    });
    this.eventLog = h('ol', { class: 'event-log', role: 'log', 'aria-label': 'Events', 'aria-live': 'polite' });
    this.emptyNote = h('p', { class: 'muted' }, 'Waiting for the first samples…');
    this.noEvents = h(
      'p',
      { class: 'muted small-note' },
      'None yet. OOM kills, refused forks and CPU throttling show up here and on the graphs.',
    );
    this.element = h(
      'section',
      { class: 'graphs', 'aria-label': 'Resource usage' },
      ...this.charts.map((c) =>
        h(
          'figure',
          { class: `chart chart-${c.spec.key}` },
          h(
            'figcaption',
            { class: 'chart-caption' },
            h('span', { class: 'chart-title' }, c.spec.title),
            c.readout,
            c.limitText,
            c.counter,
          ),
          c.host,
        ),
      ),
      h('h3', { class: 'panel-subtitle' }, 'Events'),
      this.emptyNote,
      this.noEvents,
      this.eventLog,
    );
    this.resizeObserver = new ResizeObserver(() => this.onResize());
    this.resizeObserver.observe(this.element);
    store.onChange((id) => {
      if (id === this.containerId) this.render();
    });
  }

  show(containerId: string | null, cpusLimit: number | null): void {
    const changed = containerId !== this.containerId;
    this.containerId = containerId;
    this.cpusLimit = cpusLimit;
    if (changed) replaceChildren(this.eventLog);
    this.render();
  }

  setPalette(palette: ChartPalette): void {
    this.palette = palette;
    for (const chart of this.charts) {
      chart.plot?.destroy();
      chart.plot = null;
    }
    this.render();
  }

  private onResize(): void {
    const width = Math.floor(this.charts[0]!.host.clientWidth);
    if (width === this.width || width <= 0) return;
    this.width = width;
    for (const chart of this.charts) chart.plot?.setSize({ width, height: CHART_HEIGHT_PX });
    this.render();
  }

  private render(): void {
    const id = this.containerId;
    const all = id ? this.store.samples(id) : [];
    const latest = all[all.length - 1];
    this.emptyNote.hidden = all.length > 0 || id === null;
    const since = latest ? latest.t - (WINDOW_SECONDS + 2) * 1000 : 0;
    const samples = all.filter((s) => s.t >= since);
    const xs = samples.map((s) => s.t / 1000);
    for (const chart of this.charts) {
      const { spec } = chart;
      const limitOf = spec.key === 'cpu' ? () => (this.cpusLimit === null ? null : this.cpusLimit * 100) : spec.limit;
      const data: uPlot.AlignedData = [xs, samples.map(spec.value), samples.map(limitOf)];
      this.renderReadout(chart, latest, limitOf);
      if (this.width <= 0) continue;
      if (!chart.plot) chart.plot = this.createPlot(spec, chart.host, data);
      else chart.plot.setData(data);
      if (xs.length === 0) {
        // Nothing to range over yet: show an empty, current window rather than a stale one.
        const now = Date.now() / 1000;
        chart.plot.setScale('x', { min: now - MIN_WINDOW_SECONDS, max: now });
      }
    }
    if (id) this.renderEventLog(this.store.episodes(id));
    if (all.length === 0) this.noEvents.hidden = true;
  }

  private renderReadout(
    chart: ChartInstance,
    latest: StatsSample | undefined,
    limitOf: (s: StatsSample) => number | null,
  ): void {
    const { spec } = chart;
    chart.readout.value = latest ? spec.format(spec.value(latest)) : '–';
    const limit = latest ? limitOf(latest) : null;
    chart.limitText.textContent = limit === null ? (latest ? 'no limit' : '') : `limit ${spec.format(limit)}`;
    if (!latest) {
      chart.counter.textContent = '';
    } else if (spec.key === 'memory') {
      chart.counter.textContent = `OOM kills: ${latest.oomKills}`;
    } else if (spec.key === 'pids') {
      chart.counter.textContent = `Limit hits: ${latest.pidsLimitHits}`;
    } else {
      chart.counter.textContent = `Throttled: ${latest.cpuThrottledPeriods}`;
    }
  }

  private createPlot(spec: ChartSpec, host: HTMLElement, data: uPlot.AlignedData): uPlot {
    const p = this.palette;
    const color = spec.color(p);
    const axis = (extra: Partial<uPlot.Axis>): uPlot.Axis => ({
      stroke: p.text,
      grid: { stroke: p.grid, width: 1 },
      ticks: { stroke: p.grid, width: 1 },
      font: '11px system-ui, sans-serif',
      ...extra,
    });
    const options: uPlot.Options = {
      width: this.width,
      height: CHART_HEIGHT_PX,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: {
        x: {
          time: true,
          // The last WINDOW_SECONDS, or less while the container is younger (a graph that
          // starts squeezed against the right edge shows nothing for two minutes).
          range: (_u, min, max) => {
            const end = max ?? Date.now() / 1000;
            const start = Math.max(end - WINDOW_SECONDS, min ?? end);
            return [Math.min(start, end - MIN_WINDOW_SECONDS), end];
          },
        },
        y: {
          range: (_u, _min, max) => [0, Math.max(spec.floor, (max ?? 0) * 1.15)],
        },
      },
      axes: [
        axis({ space: 60, values: (_u, ticks) => ticks.map((t) => clock(t * 1000)) }),
        axis({ size: 62, values: (_u, ticks) => ticks.map((t) => spec.format(t)) }),
      ],
      series: [
        {},
        { label: spec.valueLabel, stroke: color, fill: `${color}26`, width: 2, points: { show: false } },
        { label: 'Limit', stroke: p.limit, width: 1.5, dash: [6, 4], points: { show: false } },
      ],
      plugins: [
        markersPlugin(
          spec.markers,
          () => (this.containerId ? this.store.events(this.containerId) : []),
          () => this.palette,
        ),
      ],
    };
    return new uPlot(options, data, host);
  }

  private renderEventLog(episodes: readonly StatsEpisode[]): void {
    this.noEvents.hidden = episodes.length > 0;
    // Newest first; an episode still growing updates its row in place.
    const rows = episodes
      .slice(-50)
      .reverse()
      .map((e) => {
        const when = e.start === e.end ? clock(e.start) : `${clock(e.start)}–${clock(e.end)}`;
        return h(
          'li',
          { class: `event event-${e.kind}`, 'data-kind': e.kind },
          h('time', { datetime: new Date(e.start).toISOString() }, when),
          ' ',
          h('strong', {}, EVENT_LABELS[e.kind]),
          ` ${episodeDetail(e)}`,
        );
      });
    const signature = rows.map((r) => r.textContent).join('\n');
    if (this.eventLog.dataset.signature === signature) return;
    this.eventLog.dataset.signature = signature;
    replaceChildren(this.eventLog, ...rows);
  }
}

function episodeDetail(e: StatsEpisode): string {
  if (e.kind === 'oom') return e.count === 1 ? '— 1 process killed' : `— ${e.count} processes killed`;
  if (e.kind === 'pids-limit') return e.count === 1 ? '— 1 fork refused' : `— ${e.count} forks refused`;
  return e.count === 1 ? '— 1 period' : `— ${e.count} periods`;
}

function clock(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
