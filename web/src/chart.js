// The time-series chart (uPlot): the selected series and, dashed, the same series one
// comparison period earlier, aligned period by period. A period without data is a gap (the
// API's null), never a zero; a partial period is a hollow ring; a dashed line marks where the
// panel starts.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatCompact, formatValue } from './api.js';

const DAY = 86400;

export class SeriesChart {
  constructor(container) {
    this.container = container;
    this.plot = null;
    this.unit = 'usd';
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(container);
  }

  size() {
    const width = Math.max(260, Math.floor(this.container.clientWidth));
    const height = width < 500 ? 220 : 300;
    return { width, height };
  }

  fit() {
    if (this.plot) this.plot.setSize(this.size());
  }

  /**
   * points: [{period_start, value}], previous: same length or null; restated: per point the
   * text saying how a correction changed it, or null; labels for the legend.
   */
  render({ points, previous, restated = null, unit, granularity, label, previousLabel, panelStart = null }) {
    this.unit = unit;
    const xs = points.map((p) => Date.parse(p.period_start + 'T00:00:00Z') / 1000);
    // A partial period is not joined to the line (a week with three days of data would read
    // as a drop): it is a hollow ring of its own series below.
    const ys = points.map((p) => (p.partial ? null : p.value));
    const data = [xs, ys];
    const series = [
      {
        label: 'Period',
        value: (u, v) => (v == null ? '—' : new Date(v * 1000).toISOString().slice(0, 10)),
      },
      {
        label,
        stroke: '#1f5fbf',
        width: 2,
        fill: 'rgba(31, 95, 191, 0.08)',
        points: { show: points.length <= 40, size: 5 },
        value: (u, v) => formatValue(v, this.unit),
      },
    ];
    if (previous) {
      data.push(previous.map((p) => (p ? p.value : null)));
      series.push({
        label: previousLabel,
        stroke: '#b5651d',
        width: 1.5,
        dash: [6, 4],
        points: { show: false },
        value: (u, v) => formatValue(v, this.unit),
      });
    }
    if (restated?.some(Boolean)) {
      // Restated points: a ring on the series, its legend value saying by how much and why.
      data.push(points.map((p, i) => (restated[i] ? p.value : null)));
      series.push({
        label: 'Restated',
        stroke: '#d1242f',
        width: 0,
        paths: () => null,
        points: { show: true, size: 10, width: 2, stroke: '#d1242f', fill: '#fff' },
        value: (u, v, s, i) => (i == null || !restated[i] ? '—' : restated[i]),
      });
    }
    if (points.some((p) => p.partial && p.value != null)) {
      data.push(points.map((p) => (p.partial ? p.value : null)));
      series.push({
        label: 'Partial period',
        stroke: '#6b6b6b',
        width: 0,
        paths: () => null,
        points: { show: true, size: 9, width: 2, stroke: '#6b6b6b', fill: '#fff' },
        value: (u, v, s, i) => (i == null || !points[i]?.partial ? '—' : `${points[i].counted.from} – ${points[i].counted.to} counted`),
      });
    }
    const panelX = panelStart ? Date.parse(panelStart + 'T00:00:00Z') / 1000 : null;
    const step = granularity === 'month' ? 30 * DAY : granularity === 'week' ? 7 * DAY : DAY;
    const options = {
      ...this.size(),
      scales: { x: { time: true }, y: { range: (u, min, max) => [Math.min(0, min ?? 0), (max ?? 1) * 1.08 || 1] } },
      axes: [
        { stroke: '#555', grid: { stroke: '#eee' }, space: 60, incrs: [DAY, 7 * DAY, 30 * DAY, 91 * DAY, 365 * DAY].filter((i) => i >= step) },
        { stroke: '#555', grid: { stroke: '#eee' }, size: 64, values: (u, ticks) => ticks.map((t) => formatCompact(t, this.unit)) },
      ],
      cursor: { drag: { x: false, y: false } },
      hooks: { draw: [(u) => drawPanelStart(u, panelX)] },
      legend: { live: true },
      series,
    };
    this.container.dataset.panelStart = panelStart ?? '';
    if (this.plot && this.plot.series.length === series.length && this.panelX === panelX) {
      // Same shape: swap data and labels without rebuilding the DOM.
      this.plot.batch(() => {
        series.forEach((s, i) => {
          if (i > 0) this.plot.series[i].label = s.label;
        });
        this.plot.setData(data);
      });
      this.container.querySelectorAll('.u-legend .u-series .u-label').forEach((el, i) => {
        if (series[i]) el.textContent = series[i].label;
      });
      return;
    }
    if (this.plot) this.plot.destroy();
    this.panelX = panelX;
    this.plot = new uPlot(options, data, this.container);
  }
}

/** A dashed vertical line where the panel starts, when it is inside the chart's range. */
function drawPanelStart(u, x) {
  if (x == null || x <= u.scales.x.min || x > u.scales.x.max) return;
  const left = Math.round(u.valToPos(x, 'x', true));
  const { ctx } = u;
  ctx.save();
  ctx.strokeStyle = '#6b6b6b';
  ctx.setLineDash([4, 4]);
  ctx.beginPath();
  ctx.moveTo(left, u.bbox.top);
  ctx.lineTo(left, u.bbox.top + u.bbox.height);
  ctx.stroke();
  ctx.fillStyle = '#444';
  ctx.font = `${Math.round(11 * devicePixelRatio)}px sans-serif`;
  ctx.fillText('data starts', left + 4, u.bbox.top + 12 * devicePixelRatio);
  ctx.restore();
}

/** Colours of the compared subjects, told apart also by their dash pattern. */
export const COMPARE_COLOURS = ['#1f5fbf', '#b5651d', '#1a7f37', '#8250df', '#cf222e'];
const COMPARE_DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3], [1, 5]];

/** Up to five series on one time axis: `series` [{label, values}] aligned with `starts`. */
export class CompareChart extends SeriesChart {
  renderMany({ starts, series, unit }) {
    this.unit = unit;
    const xs = starts.map((d) => Date.parse(d + 'T00:00:00Z') / 1000);
    const options = {
      ...this.size(),
      scales: { x: { time: true } },
      axes: [
        { stroke: '#555', grid: { stroke: '#eee' }, space: 60 },
        { stroke: '#555', grid: { stroke: '#eee' }, size: 64, values: (u, ticks) => ticks.map((t) => (unit === 'index' ? String(t) : formatCompact(t, unit))) },
      ],
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      series: [
        { label: 'Period', value: (u, v) => (v == null ? '—' : new Date(v * 1000).toISOString().slice(0, 10)) },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: COMPARE_COLOURS[i],
          dash: COMPARE_DASHES[i],
          width: 2,
          points: { show: starts.length <= 40, size: 5 },
          value: (u, v) => (unit === 'index' ? (v == null ? '—' : v.toFixed(1)) : formatValue(v, unit)),
        })),
      ],
    };
    if (this.plot) this.plot.destroy();
    this.plot = new uPlot(options, [xs, ...series.map((s) => s.values)], this.container);
  }
}
