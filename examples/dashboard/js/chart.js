// The progress chart: cumulative counts over time as step lines in an inline SVG (no library,
// no network), with a legend and a text summary for screen readers.

import { h } from './dom.js';
import { formatClock, formatTime } from './format.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 1000;
const H = 260;
const PAD = { left: 48, right: 16, top: 12, bottom: 28 };

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

function niceStep(max, ticks) {
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 5, 10]) if (m * mag >= raw) return Math.max(1, m * mag);
  return Math.max(1, 10 * mag);
}

/**
 * A chart of `series` ([{key, label, points: [[timeMs, value], ...]}], each a step function
 * holding its last value until `to`) between times `from` and `to`.
 */
export function progressChart(series, { from, to, yMax, title }) {
  const span = Math.max(1, to - from);
  const top = Math.max(1, yMax ?? 0, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const x = (t) => PAD.left + ((t - from) / span) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);

  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-labelledby': 'chart-title chart-desc' });
  const summary = series.map((s) => `${s.label}: ${s.points.length ? s.points[s.points.length - 1][1] : 0}`).join(', ');
  root.append(svg('title', { id: 'chart-title' }, document.createTextNode(title)));
  root.append(svg('desc', { id: 'chart-desc' }, document.createTextNode(`From ${formatTime(new Date(from).toISOString())} to ${formatTime(new Date(to).toISOString())}. ${summary}.`)));

  const grid = svg('g', { class: 'grid' });
  const step = niceStep(top, 4);
  for (let v = 0; v <= top; v += step) {
    grid.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }));
    grid.append(svg('text', { x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, document.createTextNode(String(v))));
  }
  const ticks = 5;
  for (let i = 0; i <= ticks; i++) {
    const t = from + (span * i) / ticks;
    grid.append(svg('text', { x: x(t), y: H - 8, 'text-anchor': i === 0 ? 'start' : i === ticks ? 'end' : 'middle' }, document.createTextNode(formatClock(new Date(t)))));
  }
  grid.append(svg('line', { class: 'axis', x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0) }));
  root.append(grid);

  for (const s of series) {
    let d = `M ${x(from)} ${y(0)}`;
    let last = 0;
    for (const [t, v] of s.points) {
      const tx = x(Math.min(Math.max(t, from), to));
      d += ` H ${tx} V ${y(v)}`;
      last = v;
    }
    d += ` H ${x(to)}`;
    root.append(svg('path', { d, class: `line line-${s.key}` }));
    root.append(svg('circle', { cx: x(to), cy: y(last), r: 3, class: `dot line-${s.key}` }));
  }

  const legend = h('ul', { class: 'legend' }, series.map((s) => h('li', {},
    h('span', { class: `swatch line-${s.key}`, 'aria-hidden': 'true' }),
    `${s.label}: ${s.points.length ? s.points[s.points.length - 1][1] : 0}`)));
  return h('figure', { class: 'chart-box' }, root, legend);
}

/**
 * Cumulative series per final state from a campaign's device updates (each counted at the
 * time it reached its state).
 */
export function seriesFromUpdates(updates, keys) {
  const out = [];
  for (const [key, label, states] of keys) {
    const times = updates.filter((u) => states.includes(u.state)).map((u) => new Date(u.state_changed_at).getTime()).sort((a, b) => a - b);
    out.push({ key, label, points: times.map((t, i) => [t, i + 1]) });
  }
  return out;
}

/** Series from samples of the statistics taken while the page was open. */
export function seriesFromSamples(samples, keys) {
  return keys.map(([key, label]) => ({ key, label, points: samples.map((s) => [s.at, s.total[key]]) }));
}
