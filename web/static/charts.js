// Charts drawn as inline SVG: line charts over time and the deploy phase waterfall.
import { h, s } from './dom.js';

const W = 460, H = 170, L = 52, R = 10, T = 10, B = 22;

function hhmm(ms) {
  const d = new Date(ms);
  return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
}

/**
 * lineChart draws series of [time ms, value] over [from, to] with a legend. The svg
 * carries data-max (the largest value) so that a reader (or a test) sees whether it
 * has data without reading pixels.
 */
export function lineChart({ id, title, series, from, to, fmt = (v) => v.toFixed(2) }) {
  let max = 0;
  for (const se of series) for (const [, v] of se.points) if (v > max) max = v;
  const top = max > 0 ? max * 1.1 : 1;
  const x = (t) => L + (W - L - R) * (to > from ? (t - from) / (to - from) : 0);
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title,
    'data-max': String(max), 'data-series': String(series.length) });
  for (const f of [0, 0.5, 1]) {
    const v = top * f;
    svg.append(s('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }),
      s('text', { x: L - 4, y: y(v) + 3, 'text-anchor': 'end' }, fmt(v)));
  }
  svg.append(s('text', { x: L, y: H - 6 }, hhmm(from)), s('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, hhmm(to)));
  series.forEach((se, i) => {
    const pts = [...se.points].sort((a, b) => a[0] - b[0]);
    if (!pts.length) return;
    const d = pts.map(([t, v], j) => (j ? 'L' : 'M') + x(t).toFixed(1) + ' ' + y(v).toFixed(1)).join(' ');
    svg.append(s('path', { class: 'line s' + (i % 6), d }, s('title', {}, se.name)));
    if (pts.length === 1) svg.append(s('circle', { class: 's' + (i % 6), cx: x(pts[0][0]), cy: y(pts[0][1]), r: 2.5 }));
  });
  const legend = h('div', { class: 'legend' }, series.map((se, i) => {
    const vals = se.points.map(p => p[1]);
    const last = vals.length ? vals[vals.length - 1] : 0;
    return h('span', { 'data-series': se.name }, h('i', { class: 's' + (i % 6) }), `${se.name}: ${fmt(last)} (max ${fmt(Math.max(0, ...vals))})`);
  }));
  return h('div', { class: 'card', 'data-chart': id }, h('h3', {}, title), svg, legend);
}

/**
 * waterfall draws phases [{name, start, end}] (times in ms from any origin) as bars on
 * one time axis, each labelled with its duration.
 */
export function waterfall(phases) {
  const t0 = Math.min(...phases.map(p => p.start));
  const t1 = Math.max(...phases.map(p => p.end));
  const span = Math.max(t1 - t0, 1);
  const rowH = 22, lw = 130, w = 620, right = 70;
  const svg = s('svg', { class: 'chart waterfall', viewBox: `0 0 ${w} ${phases.length * rowH + 6}`, role: 'img', 'aria-label': 'deploy phases' });
  phases.forEach((p, i) => {
    const x = lw + (w - lw - right) * (p.start - t0) / span;
    const bw = Math.max(2, (w - lw - right) * (p.end - p.start) / span);
    const yy = 3 + i * rowH;
    svg.append(
      s('text', { x: 0, y: yy + 14 }, p.name),
      s('rect', { class: 's' + (i % 6), x, y: yy + 3, width: bw, height: rowH - 8, rx: 2 }),
      s('text', { x: x + bw + 4, y: yy + 14 }, fmtMs(p.end - p.start)));
  });
  return h('div', { class: 'phases', 'data-phases': phases.map(p => p.name).join(',') }, svg);
}

export function fmtMs(ms) {
  if (ms >= 10000) return (ms / 1000).toFixed(1) + ' s';
  if (ms >= 1000) return (ms / 1000).toFixed(2) + ' s';
  return Math.round(ms) + ' ms';
}

/**
 * deployPhases turns what the API offers into waterfall rows: the deployment's
 * phases [{name, start, end}] when it has them, else the start phases of its first
 * instance that timed them (durations in ms, ready_ms counted from the start).
 */
export function deployPhases(dep) {
  if (Array.isArray(dep.phases) && dep.phases.length) {
    const rows = dep.phases.map(p => ({ name: p.name, start: Date.parse(p.start), end: Date.parse(p.end || p.start) }))
      .filter(p => !isNaN(p.start) && !isNaN(p.end));
    if (rows.length) return rows;
  }
  const inst = (dep.instances || []).find(i => i.phases && Object.keys(i.phases).length);
  if (!inst) return null;
  const ph = inst.phases;
  const rows = [];
  let t = 0;
  for (const [key, name] of [['artifact_copy_ms', 'artifact copy'], ['environment_ms', 'environment'], ['import_ms', 'import score.py'], ['init_ms', 'init()']]) {
    const d = ph[key] || 0;
    rows.push({ name, start: t, end: t + d });
    t += d;
  }
  if (ph.ready_ms) rows.push({ name: 'readiness', start: t, end: Math.max(t, ph.ready_ms) });
  return rows;
}
