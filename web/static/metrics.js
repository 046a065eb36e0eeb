// The Metrics tab: request rate by status class, latency p50/p99, CPU and memory per
// instance over the last hour, from GET /endpoints/{name}/metrics?minutes=60.
import { h, fill, get, errorBox, enc, ApiError, empty } from './dom.js';
import { lineChart } from './charts.js';

const MINUTES = 60;

export function metricsTab(ctx, body) {
  const { p, name } = ctx;
  const box = h('div', { id: 'metrics' });
  fill(body, h('p', { class: 'muted' }, `Last ${MINUTES} minutes, from the server's own in-memory history; refreshed every 10 s.`), box);
  p.every(10000, async () => {
    let m;
    try {
      m = await get(`/endpoints/${enc(name)}/metrics?minutes=${MINUTES}`);
    } catch (err) {
      if (!p.alive) return;
      if (err instanceof ApiError && err.status === 404 && !(err.body && err.body.code === 'EndpointNotFound')) {
        fill(box, empty('No metrics yet.'));
      } else {
        fill(box, errorBox(err));
      }
      return;
    }
    if (p.alive) fill(box, charts(m));
  });
}

function charts(m) {
  const deps = m.deployments || [];
  if (!deps.length || deps.every(d => !(d.points || []).length)) return empty('No metrics yet.');
  const step = m.step_seconds || 10;
  const to = Date.now(), from = to - MINUTES * 60 * 1000;
  return deps.map(d => {
    const pts = (d.points || []).map(pt => ({ ...pt, ms: Date.parse(pt.t) })).filter(pt => !isNaN(pt.ms));
    const classes = ['2xx', '3xx', '4xx', '5xx'].filter(c => c !== '3xx' || pts.some(pt => (pt.requests || {})[c]));
    const instances = [...new Set(pts.flatMap(pt => Object.keys(pt.instances || {})))].sort((a, b) => Number(a) - Number(b));
    const per = (key, f) => instances.map(i => ({ name: `instance ${i}`,
      points: pts.filter(pt => (pt.instances || {})[i]).map(pt => [pt.ms, f(pt.instances[i][key] || 0)]) }));
    return h('section', { class: 'deployment-metrics', 'data-deployment': d.name },
      h('h2', {}, d.name),
      h('div', { class: 'charts' },
        lineChart({ id: 'requests', title: 'Requests per second by status class', from, to,
          series: classes.map(c => ({ name: c, points: pts.map(pt => [pt.ms, ((pt.requests || {})[c] || 0) / step]) })) }),
        lineChart({ id: 'latency', title: 'Latency (ms)', from, to,
          series: [['p50', 'latency_p50_ms'], ['p99', 'latency_p99_ms']].map(([n, k]) => ({ name: n,
            points: pts.filter(pt => pt[k] !== undefined && pt[k] !== null).map(pt => [pt.ms, pt[k]]) })) }),
        lineChart({ id: 'cpu', title: 'CPU (%) per instance', from, to, series: per('cpu_percent', v => v), fmt: v => v.toFixed(1) }),
        lineChart({ id: 'memory', title: 'Memory (MiB) per instance', from, to, series: per('memory_bytes', v => v / (1 << 20)), fmt: v => v.toFixed(1) })));
  });
}
