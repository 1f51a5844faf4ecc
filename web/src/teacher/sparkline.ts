/**
 * A tiny line chart on a canvas: a class of 60 students draws 180 of these once a second,
 * so no chart library, no axes, no DOM per point; the readout beside it carries the number.
 */

export interface SparklineSpec {
  /** the value's ceiling: the limit when there is one, else the window's own maximum */
  max: (values: readonly number[]) => number;
  color: string;
}

const WIDTH_PX = 84;
const HEIGHT_PX = 22;

export class Sparkline {
  readonly canvas: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D | null;

  constructor(
    label: string,
    private spec: SparklineSpec,
  ) {
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'sparkline';
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', label);
    const dpr = Math.min(2, window.devicePixelRatio || 1);
    this.canvas.width = WIDTH_PX * dpr;
    this.canvas.height = HEIGHT_PX * dpr;
    this.ctx = this.canvas.getContext('2d');
    this.ctx?.scale(dpr, dpr);
  }

  setColor(color: string): void {
    this.spec = { ...this.spec, color };
  }

  draw(values: readonly number[], slots: number): void {
    const ctx = this.ctx;
    if (!ctx) return;
    ctx.clearRect(0, 0, WIDTH_PX, HEIGHT_PX);
    if (values.length === 0) return;
    const max = Math.max(1e-9, this.spec.max(values));
    const step = WIDTH_PX / Math.max(1, slots - 1);
    const x0 = WIDTH_PX - (values.length - 1) * step;
    const y = (v: number): number => HEIGHT_PX - 1 - Math.min(1, Math.max(0, v / max)) * (HEIGHT_PX - 2);
    ctx.beginPath();
    values.forEach((v, i) => {
      if (i === 0) ctx.moveTo(x0 + i * step, y(v));
      else ctx.lineTo(x0 + i * step, y(v));
    });
    ctx.strokeStyle = this.spec.color;
    ctx.lineWidth = 1.5;
    ctx.stroke();
    ctx.lineTo(x0 + (values.length - 1) * step, HEIGHT_PX);
    ctx.lineTo(x0, HEIGHT_PX);
    ctx.closePath();
    ctx.globalAlpha = 0.18;
    ctx.fillStyle = this.spec.color;
    ctx.fill();
    ctx.globalAlpha = 1;
  }
}
