// The admin dashboard's bitrate and packet-loss charts: sparklines drawn as inline SVG from
// samples `{t (ms), v}` over the last minute. Builds markup and fills the chart elements it is
// given; it never fetches and never decides what to show (admin-participants.js does).

import { escapeHtml } from './admin-format.js';

export const CHART_WINDOW_SECONDS = 60;

/** The smallest 1, 2 or 5 × 10^n that is at least `value` (and at least `floor`). */
export function niceMax(value, floor = 1) {
  const v = Math.max(Number.isFinite(value) ? value : 0, floor);
  const exp = Math.floor(Math.log10(v));
  const base = 10 ** exp;
  for (const m of [1, 2, 5, 10]) {
    const candidate = m * base;
    if (candidate >= v * (1 - 1e-9)) return Number(candidate.toPrecision(12));
  }
  return 10 * base;
}

const CHART_W = 280;
const CHART_H = 76;
const PLOT = { left: 4, right: CHART_W - 4, top: 20, bottom: CHART_H - 14 };

/**
 * The inside of a chart's `<svg>`: the area and line of the samples over the last
 * `windowSeconds` ending at `now` (ms), the axis max (top left) and the current value (top
 * right). `max` is computed with niceMax from the samples and `floor`. A gap over `gapSeconds`
 * between samples breaks the line.
 */
export function sparklineContent({
  points = [], now, windowSeconds = CHART_WINDOW_SECONDS, floor = 1, format = String,
  title = '', gapSeconds = 7,
}) {
  const end = now ?? (points.length ? points[points.length - 1].t : 0);
  const start = end - windowSeconds * 1000;
  const visible = points.filter((p) => p.t >= start && p.t <= end && Number.isFinite(p.v));
  const peak = visible.reduce((m, p) => Math.max(m, p.v), 0);
  const max = niceMax(peak, floor);
  const current = visible.length ? visible[visible.length - 1].v : null;
  const x = (t) => PLOT.left + ((t - start) / (end - start || 1)) * (PLOT.right - PLOT.left);
  const y = (v) => PLOT.bottom - (Math.min(v, max) / max) * (PLOT.bottom - PLOT.top);
  const r = (n) => Math.round(n * 10) / 10;

  // Split into runs at gaps; each run becomes one polyline and one filled area.
  const runs = [];
  let run = [];
  for (const p of visible) {
    if (run.length && p.t - run[run.length - 1].t > gapSeconds * 1000) {
      runs.push(run);
      run = [];
    }
    run.push(p);
  }
  if (run.length) runs.push(run);

  const parts = [];
  const label = title
    ? `${title}: ${current == null ? 'no data yet' : `now ${format(current)}`}, axis max ${format(max)}, last ${windowSeconds} s`
    : '';
  if (label) parts.push(`<title>${escapeHtml(label)}</title>`);
  parts.push(`<rect class="chart-bg" x="0" y="0" width="${CHART_W}" height="${CHART_H}" rx="8"></rect>`);
  parts.push(`<line class="chart-grid" x1="${PLOT.left}" y1="${PLOT.top}" x2="${PLOT.right}" y2="${PLOT.top}"></line>`);
  const mid = r((PLOT.top + PLOT.bottom) / 2);
  parts.push(`<line class="chart-grid mid" x1="${PLOT.left}" y1="${mid}" x2="${PLOT.right}" y2="${mid}"></line>`);
  parts.push(`<line class="chart-axis" x1="${PLOT.left}" y1="${PLOT.bottom}" x2="${PLOT.right}" y2="${PLOT.bottom}"></line>`);
  for (const seg of runs) {
    const coords = seg.map((p) => `${r(x(p.t))},${r(y(p.v))}`);
    if (seg.length === 1) {
      parts.push(`<circle class="chart-dot" cx="${r(x(seg[0].t))}" cy="${r(y(seg[0].v))}" r="2"></circle>`);
      continue;
    }
    const area = [`${r(x(seg[0].t))},${PLOT.bottom}`, ...coords, `${r(x(seg[seg.length - 1].t))},${PLOT.bottom}`];
    parts.push(`<polygon class="chart-area" points="${area.join(' ')}"></polygon>`);
    parts.push(`<polyline class="chart-line" points="${coords.join(' ')}"></polyline>`);
  }
  parts.push(`<text class="chart-max" x="${PLOT.left + 2}" y="13">max ${escapeHtml(format(max))}</text>`);
  parts.push(`<text class="chart-now" x="${PLOT.right - 2}" y="13" text-anchor="end">${current == null ? 'no data yet' : escapeHtml(format(current))}</text>`);
  parts.push(`<text class="chart-tick" x="${PLOT.left + 2}" y="${CHART_H - 3}">−${windowSeconds} s</text>`);
  parts.push(`<text class="chart-tick" x="${PLOT.right - 2}" y="${CHART_H - 3}" text-anchor="end">now</text>`);
  return { svg: parts.join(''), label, max, current };
}

/** A whole `<svg data-chart=…>` element as a string (see sparklineContent). */
export function renderSparkline(opts) {
  const { svg, label } = sparklineContent(opts);
  const kind = escapeHtml(opts.chart || 'chart');
  return `<svg class="chart" data-chart="${kind}" viewBox="0 0 ${CHART_W} ${CHART_H}" role="img" aria-label="${escapeHtml(label)}" preserveAspectRatio="xMidYMid meet">${svg}</svg>`;
}

/** An empty chart `<svg>` element of one kind (`bitrate`, `loss`), filled later by drawChart. */
export function createChartSvg(kind) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('data-chart', kind);
  svg.setAttribute('viewBox', `0 0 ${CHART_W} ${CHART_H}`);
  svg.setAttribute('role', 'img');
  return svg;
}

/** Fills a chart element from sparklineContent(opts), touching it only when the drawing changed. */
export function drawChart(svg, opts) {
  const { svg: inner, label } = sparklineContent(opts);
  if (svg.__inner !== inner) {
    svg.innerHTML = inner;
    svg.__inner = inner;
    svg.setAttribute('aria-label', label);
  }
}
