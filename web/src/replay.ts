/**
 * /teacher/classes/:id/replay/:containerId/:terminalId: a recorded terminal played back
 * beside the cgroup numbers of the same minutes. The asciicast v2 recording is played in
 * xterm.js, which the page ships anyway; asciinema-player would need 'wasm-unsafe-eval'
 * in the server's script-src, which stays 'self' only. Seeking backward resets the
 * terminal and writes everything up to the new time again: cheap, because a recording is
 * capped (--recording-max-size). Markers ("m" events: pids-limit, oom-kill,
 * recording-truncated) are ticks on the timeline and a list; a click seeks there.
 */
import { Terminal } from '@xterm/xterm';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { StatsSample } from '../../server/src/protocol/index';
import { api, recordingPath } from './api';
import { describeError } from './containers';
import { h } from './dom';
import { type ChartPalette, TERMINAL_FONT_FAMILY, chartPalette, terminalTheme } from './prefs';
import { pageShell } from './shell';
import { scaleFontToFit } from './terminal';
import { classPageUrl, clockDuration } from './teacher/widgets';

// ---- asciicast v2 ----------------------------------------------------------------------

interface CastHeader {
  version: number;
  width: number;
  height: number;
  /** recording start, epoch seconds */
  timestamp?: number;
}

type CastEvent =
  | { t: number; kind: 'o'; data: string }
  | { t: number; kind: 'r'; cols: number; rows: number }
  | { t: number; kind: 'm'; label: string };

export interface Cast {
  header: CastHeader;
  events: CastEvent[];
  markers: { t: number; label: string }[];
  duration: number;
}

/** Parses asciicast v2 text; lines that are not events (or input "i" events) are skipped. */
export function parseCast(text: string): Cast {
  const lines = text.split('\n');
  const header = JSON.parse(lines[0] ?? '') as CastHeader;
  if (header.version !== 2 || !(header.width > 0) || !(header.height > 0)) {
    throw new Error('not an asciicast v2 recording');
  }
  const events: CastEvent[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      continue; // a line cut by the size cap
    }
    if (!Array.isArray(raw) || typeof raw[0] !== 'number' || typeof raw[1] !== 'string' || typeof raw[2] !== 'string')
      continue;
    const [t, code, data] = raw as [number, string, string];
    if (code === 'o') events.push({ t, kind: 'o', data });
    else if (code === 'm') events.push({ t, kind: 'm', label: data });
    else if (code === 'r') {
      const match = /^(\d+)x(\d+)$/.exec(data);
      if (match) events.push({ t, kind: 'r', cols: Number(match[1]), rows: Number(match[2]) });
    }
  }
  events.sort((a, b) => a.t - b.t);
  const markers = events.flatMap((e) => (e.kind === 'm' ? [{ t: e.t, label: e.label }] : []));
  const duration = events.length > 0 ? events[events.length - 1]!.t : 0;
  return { header, events, markers, duration };
}

const MARKER_TEXT: Record<string, string> = {
  'pids-limit': 'pids limit hit: a fork was refused',
  'oom-kill': 'OOM kill: the kernel ended a process',
  'recording-truncated': 'recording cut: it reached its size cap',
};

function markerText(label: string): string {
  return MARKER_TEXT[label] ?? label;
}

// ---- the player ------------------------------------------------------------------------

const SPEEDS = [0.5, 1, 2, 4];
const IDLE_LIMIT_S = 2;
const CHART_HEIGHT_PX = 110;
const MIB = 1024 * 1024;

class CastPlayer {
  readonly term: Terminal;
  /** seconds into the recording */
  time = 0;
  playing = false;
  speed = 1;
  /** Play a silence longer than IDLE_LIMIT_S as IDLE_LIMIT_S (asciinema's idle_time_limit):
   * a student thinking for five minutes is not worth five minutes of a class's time. */
  skipIdle = true;
  private next = 0;
  private frame: number | null = null;
  private lastFrameAt = 0;

  constructor(
    readonly cast: Cast,
    private readonly onTime: (time: number) => void,
  ) {
    this.term = new Terminal({
      cols: cast.header.width,
      rows: cast.header.height,
      disableStdin: true,
      cursorBlink: false,
      scrollback: 0,
      fontFamily: TERMINAL_FONT_FAMILY,
      fontSize: 16,
      allowProposedApi: true,
    });
  }

  play(): void {
    if (this.playing) return;
    if (this.time >= this.cast.duration) this.seek(0);
    this.playing = true;
    this.lastFrameAt = performance.now();
    this.frame = requestAnimationFrame((now) => this.tick(now));
    this.onTime(this.time);
  }

  pause(): void {
    this.playing = false;
    if (this.frame !== null) cancelAnimationFrame(this.frame);
    this.frame = null;
    this.onTime(this.time);
  }

  /** Backward: reset and write again from the start; forward: write what lies between. */
  seek(time: number): void {
    const target = Math.max(0, Math.min(this.cast.duration, time));
    if (target < this.time || this.next === 0) {
      this.term.reset();
      this.term.resize(this.cast.header.width, this.cast.header.height);
      this.next = 0;
    }
    this.time = target;
    this.applyUntil(target);
    this.onTime(this.time);
  }

  dispose(): void {
    this.pause();
    this.term.dispose();
  }

  private tick(now: number): void {
    if (!this.playing) return;
    const elapsed = (now - this.lastFrameAt) / 1000;
    this.lastFrameAt = now;
    let advanced = this.time + elapsed * this.speed;
    const upcoming = this.cast.events[this.next];
    if (this.skipIdle && upcoming && upcoming.t - this.time > IDLE_LIMIT_S && advanced < upcoming.t) {
      // Inside a long silence: jump to IDLE_LIMIT_S before its end.
      advanced = Math.max(advanced, upcoming.t - IDLE_LIMIT_S);
    }
    this.time = Math.min(this.cast.duration, advanced);
    this.applyUntil(this.time);
    this.onTime(this.time);
    if (this.time >= this.cast.duration) {
      this.pause();
      return;
    }
    this.frame = requestAnimationFrame((n) => this.tick(n));
  }

  /** Writes output events up to `time`, batching consecutive output into one write. */
  private applyUntil(time: number): void {
    let batch = '';
    const events = this.cast.events;
    while (this.next < events.length && events[this.next]!.t <= time) {
      const e = events[this.next]!;
      this.next += 1;
      if (e.kind === 'o') batch += e.data;
      else if (e.kind === 'r') {
        if (batch) this.term.write(batch);
        batch = '';
        this.term.resize(e.cols, e.rows);
      }
    }
    if (batch) this.term.write(batch);
  }
}

// ---- the page --------------------------------------------------------------------------

export function startReplayPage(classId: string, containerId: string, terminalId: number): void {
  const shell = pageShell({
    subtitle: 'replay',
    pageClass: 'page-teacher page-replay',
    title: 'Replay · mdocker',
    controls: [h('a', { class: 'button small', href: classPageUrl(classId) }, 'Back to the class')],
  });
  const title = h('h2', { class: 'replay-title' }, `Terminal ${terminalId} of ${containerId.slice(0, 12)}`);
  const status = h('p', { class: 'muted', role: 'status' }, 'Loading the recording…');
  const download = h(
    'a',
    {
      class: 'button small',
      href: recordingPath(containerId, terminalId),
      download: `${containerId.slice(0, 12)}-${terminalId}.cast`,
    },
    'Download .cast',
  );
  const body = h('div', { class: 'replay-body' });
  shell.main.append(
    h('div', { class: 'replay-page' }, h('div', { class: 'replay-head' }, title, download), status, body),
  );

  api
    .getClass(classId)
    .then((c) => {
      const student = c.students.find(
        (s) => s.containers.some((x) => x.id === containerId) || Object.hasOwn(s.latest, containerId),
      );
      if (student) {
        title.textContent = `${student.name} · terminal ${terminalId} · ${containerId.slice(0, 12)}`;
        document.title = `Replay: ${student.name} · mdocker`;
      }
    })
    .catch(() => {
      /* the container id names it well enough */
    });

  void Promise.all([
    api.recording(containerId, terminalId),
    api.recordingStats(containerId).catch(() => ({ containerId, samples: [] as StatsSample[] })),
  ])
    .then(([text, stats]) => {
      const cast = parseCast(text);
      const start = cast.header.timestamp ?? (stats.samples[0] ? stats.samples[0].t / 1000 : Date.now() / 1000);
      status.textContent = `Recorded ${new Date(start * 1000).toLocaleString()} · ${clockDuration(cast.duration)} · ${cast.header.width}×${cast.header.height}${cast.markers.length ? ` · ${cast.markers.length} marker${cast.markers.length === 1 ? '' : 's'}` : ''}`;
      new ReplayView(body, cast, start, stats.samples, shell.theme());
    })
    .catch((err: unknown) => {
      status.textContent = `Cannot load the recording: ${describeError(err)}`;
      status.classList.add('form-error');
    });
}

class ReplayView {
  private readonly player: CastPlayer;
  private readonly slider: HTMLInputElement;
  private readonly clock: HTMLOutputElement;
  private readonly playButton: HTMLButtonElement;
  private readonly host: HTMLElement;
  private readonly plots: uPlot[] = [];
  private readonly palette: ChartPalette;
  private lastChartRedraw = 0;
  private fitFrame: number | null = null;
  private readonly skipIdleField: HTMLElement;

  constructor(
    root: HTMLElement,
    private readonly cast: Cast,
    /** epoch seconds of the recording's t = 0 */
    private readonly start: number,
    samples: StatsSample[],
    theme: 'dark' | 'light',
  ) {
    this.palette = chartPalette(theme);
    this.player = new CastPlayer(cast, (t) => this.onTime(t));
    this.player.term.options.theme = terminalTheme(theme);
    this.host = h('div', {
      class: 'replay-terminal',
      tabindex: 0,
      role: 'group',
      'aria-label': 'Replayed terminal (read-only)',
    });

    this.playButton = h('button', { type: 'button', class: 'button primary', onClick: () => this.toggle() }, 'Play');
    const durationMs = Math.max(1, Math.round(cast.duration * 1000));
    this.slider = h('input', {
      type: 'range',
      class: 'replay-slider',
      min: 0,
      max: durationMs,
      step: 10,
      value: 0,
      'aria-label': 'Position in the recording',
    });
    this.slider.addEventListener('input', () => this.player.seek(Number(this.slider.value) / 1000));
    this.clock = h('output', { class: 'replay-clock mono', 'aria-label': 'Time' });
    const speed = h(
      'select',
      { id: 'replay-speed' },
      ...SPEEDS.map((s) => h('option', { value: String(s), selected: s === 1 }, `${s}×`)),
    );
    const skipIdle = h('input', { type: 'checkbox', id: 'replay-skip-idle', checked: true });
    skipIdle.addEventListener('change', () => {
      this.player.skipIdle = skipIdle.checked;
    });
    this.skipIdleField = h(
      'label',
      {
        class: 'inline-field',
        for: 'replay-skip-idle',
        title: `Pauses longer than ${IDLE_LIMIT_S} s play as ${IDLE_LIMIT_S} s`,
      },
      skipIdle,
      'Skip pauses',
    );
    speed.addEventListener('change', () => {
      this.player.speed = Number(speed.value);
    });
    const ticks = h(
      'div',
      { class: 'replay-ticks', 'aria-label': 'Markers on the timeline' },
      ...cast.markers.map((m) => {
        const tick = h('button', {
          type: 'button',
          class: `replay-tick tick-${m.label}`,
          title: `${clockDuration(m.t)} ${markerText(m.label)}`,
          'aria-label': `Seek to ${clockDuration(m.t)}: ${markerText(m.label)}`,
          onClick: () => this.seekTo(m.t),
        });
        tick.style.left = `${(m.t / Math.max(cast.duration, 0.001)) * 100}%`;
        return tick;
      }),
    );
    const markerList = h(
      'ol',
      { class: 'marker-list', 'aria-label': 'Markers' },
      ...cast.markers.map((m) =>
        h(
          'li',
          { class: `marker marker-${m.label}` },
          h(
            'button',
            { type: 'button', class: 'button small', onClick: () => this.seekTo(m.t) },
            h('span', { class: 'mono' }, clockDuration(m.t)),
            ' ',
            markerText(m.label),
          ),
        ),
      ),
    );
    const charts = h('div', { class: 'replay-charts' });
    root.append(
      h(
        'div',
        { class: 'replay-layout' },
        h(
          'div',
          { class: 'replay-main' },
          this.host,
          h(
            'div',
            { class: 'replay-controls' },
            this.playButton,
            h('div', { class: 'replay-timeline' }, ticks, this.slider),
            this.clock,
            h('label', { class: 'inline-field', for: 'replay-speed' }, 'Speed'),
            speed,
            this.skipIdleField,
          ),
        ),
        h(
          'aside',
          { class: 'replay-side' },
          h('h3', { class: 'panel-subtitle' }, 'Markers'),
          cast.markers.length
            ? markerList
            : h('p', { class: 'muted small-note' }, 'None: no refused fork, OOM kill or size cut in this recording.'),
          h('h3', { class: 'panel-subtitle' }, 'Cgroup numbers'),
          samples.length ? charts : h('p', { class: 'muted small-note' }, 'No samples were kept with this recording.'),
        ),
      ),
    );
    this.player.term.open(this.host);
    this.player.term.textarea?.setAttribute('aria-label', 'Replayed terminal (read-only)');
    new ResizeObserver(() => this.scheduleFit()).observe(this.host);
    this.scheduleFit();
    if (samples.length) this.buildCharts(charts, samples);
    this.player.seek(0);
    this.host.addEventListener('keydown', (event) => {
      if (event.key === ' ') {
        event.preventDefault();
        this.toggle();
      }
    });
  }

  private seekTo(t: number): void {
    this.player.pause();
    this.player.seek(t);
  }

  private toggle(): void {
    if (this.player.playing) this.player.pause();
    else this.player.play();
  }

  private onTime(t: number): void {
    this.slider.value = String(Math.round(t * 1000));
    const text = `${clockDuration(t)} / ${clockDuration(this.cast.duration)}`;
    this.clock.value = text;
    this.slider.setAttribute('aria-valuetext', text);
    this.playButton.textContent = this.player.playing ? 'Pause' : 'Play';
    const now = performance.now();
    if (!this.player.playing || now - this.lastChartRedraw > 100) {
      this.lastChartRedraw = now;
      for (const plot of this.plots) plot.redraw(false, false);
    }
  }

  private scheduleFit(): void {
    if (this.fitFrame !== null) return;
    this.fitFrame = requestAnimationFrame(() => {
      this.fitFrame = null;
      if (scaleFontToFit(this.player.term, this.host, 22)) this.scheduleFit();
    });
  }

  private buildCharts(root: HTMLElement, samples: StatsSample[]): void {
    const p = this.palette;
    const xs = samples.map((s) => s.t / 1000);
    const end = this.start + this.cast.duration;
    const min = Math.min(this.start, xs[0] ?? this.start);
    const max = Math.max(end, xs[xs.length - 1] ?? end, min + 10);
    const specs: {
      title: string;
      color: string;
      values: number[];
      limit: (number | null)[];
      fmt: (v: number) => string;
    }[] = [
      {
        title: 'CPU %',
        color: p.cpu,
        values: samples.map((s) => s.cpuPercent),
        limit: samples.map(() => null),
        fmt: (v) => `${v.toFixed(0)}%`,
      },
      {
        title: 'Memory',
        color: p.memory,
        values: samples.map((s) => s.memoryBytes / MIB),
        limit: samples.map((s) => (s.memoryLimitBytes === null ? null : s.memoryLimitBytes / MIB)),
        fmt: (v) => `${v.toFixed(0)} MiB`,
      },
      {
        title: 'Pids',
        color: p.pids,
        values: samples.map((s) => s.pids),
        limit: samples.map((s) => s.pidsLimit),
        fmt: (v) => String(Math.round(v)),
      },
    ];
    const width = Math.max(240, Math.floor(root.clientWidth || 360));
    for (const spec of specs) {
      const host = h('div', { class: 'chart-host', role: 'img', 'aria-label': `${spec.title} during the recording` });
      root.append(
        h(
          'figure',
          { class: 'chart' },
          h('figcaption', { class: 'chart-caption' }, h('span', { class: 'chart-title' }, spec.title)),
          host,
        ),
      );
      const axis = (extra: Partial<uPlot.Axis>): uPlot.Axis => ({
        stroke: p.text,
        grid: { stroke: p.grid, width: 1 },
        ticks: { stroke: p.grid, width: 1 },
        font: '11px system-ui, sans-serif',
        ...extra,
      });
      const plot = new uPlot(
        {
          width,
          height: CHART_HEIGHT_PX,
          legend: { show: false },
          cursor: { show: false },
          scales: {
            x: { time: false, range: () => [min, max] },
            y: { range: (_u, _lo, hi) => [0, Math.max(spec.title === 'CPU %' ? 100 : 5, (hi ?? 0) * 1.15)] },
          },
          axes: [
            axis({ space: 50, values: (_u, ticks) => ticks.map((t) => clockDuration(t - this.start)) }),
            axis({ size: 58, space: 20, values: (_u, ticks) => ticks.map((t) => spec.fmt(t)) }),
          ],
          series: [
            {},
            { stroke: spec.color, fill: `${spec.color}26`, width: 2, points: { show: false } },
            { stroke: p.limit, width: 1.5, dash: [6, 4], points: { show: false } },
          ],
          plugins: [{ hooks: { draw: [(u) => this.drawOverlay(u)] } }],
        },
        [xs, spec.values, spec.limit],
        host,
      );
      this.plots.push(plot);
    }
    new ResizeObserver(() => {
      const w = Math.floor(root.clientWidth);
      if (w > 0) for (const plot of this.plots) plot.setSize({ width: w, height: CHART_HEIGHT_PX });
    }).observe(root);
  }

  /** The markers as thin lines, and the player's position as the cursor line. */
  private drawOverlay(u: uPlot): void {
    const { top, height, left, width } = u.bbox;
    const ctx = u.ctx;
    const dpr = uPlot.pxRatio;
    ctx.save();
    for (const m of this.cast.markers) {
      const x = Math.round(u.valToPos(this.start + m.t, 'x', true));
      if (x < left || x > left + width) continue;
      ctx.strokeStyle = m.label === 'oom-kill' ? this.palette.oom : this.palette.pidsHit;
      ctx.lineWidth = 1 * dpr;
      ctx.setLineDash([3 * dpr, 3 * dpr]);
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    const x = Math.round(u.valToPos(this.start + this.player.time, 'x', true));
    ctx.strokeStyle = this.palette.text;
    ctx.lineWidth = 2 * dpr;
    ctx.beginPath();
    ctx.moveTo(x, top);
    ctx.lineTo(x, top + height);
    ctx.stroke();
    ctx.restore();
  }
}
