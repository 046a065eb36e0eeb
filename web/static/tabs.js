// The Test tab (send a request to the scoring URI) and the Logs tab (live tail of a
// deployment's containers).
import { h, fill, post, errorBox, enc } from './dom.js';

const SAMPLE = '{"data": [[1, 2, 3, 4]]}';

function select(id, options, value) {
  const el = h('select', { id }, options.map(([v, label]) => h('option', { value: v }, label)));
  if (value !== undefined) el.value = value;
  return el;
}

// credential is what the Test tab sends as Bearer: the primary key or the endpoint's token.
async function credential(ctx) {
  if (ctx.ep.local || ctx.ep.auth_mode === 'none') return '';
  const c = await post(`/endpoints/${enc(ctx.name)}/listkeys${ctx.q}`);
  return c.accessToken || c.primaryKey || '';
}

export function testTab(ctx, body) {
  const dep = select('test-deployment', [['', 'By traffic split'], ...ctx.deps.map(d => [d.name, d.name])]);
  const input = h('textarea', { id: 'test-body', spellcheck: 'false' });
  input.value = SAMPLE;
  const file = h('input', { type: 'file', id: 'test-file' });
  const ctype = h('input', { type: 'text', id: 'test-content-type', value: 'application/json', size: 30 });
  file.addEventListener('change', () => { if (file.files[0] && file.files[0].type) ctype.value = file.files[0].type; });
  const out = h('div', { id: 'test-result' });
  const send = h('button', { type: 'submit', class: 'primary', id: 'test-send' }, 'Send');
  const form = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    send.disabled = true;
    try {
      await sendRequest(ctx, { deployment: dep.value, body: file.files[0] || input.value, type: ctype.value }, out);
    } finally {
      send.disabled = false;
    }
  } },
  h('div', { class: 'row' }, h('label', { for: 'test-deployment' }, 'Deployment'), dep,
    h('label', { for: 'test-content-type' }, 'Content-Type'), ctype),
  h('label', { for: 'test-body' }, 'Request body (JSON)'), input,
  h('div', { class: 'row' }, h('label', { for: 'test-file' }, 'or send a file:'), file,
    h('button', { type: 'button', onclick: () => { file.value = ''; } }, 'Clear file')),
  h('div', { class: 'row' }, send, h('span', { class: 'muted' }, `POST /endpoints/${ctx.name}/score`)));
  fill(body, form, out);
}

async function sendRequest(ctx, req, out) {
  fill(out, h('p', { class: 'muted' }, 'Sending…'));
  const headers = { 'Content-Type': req.type || 'application/octet-stream' };
  try {
    const key = await credential(ctx);
    if (key) headers.Authorization = 'Bearer ' + key;
  } catch (err) {
    fill(out, errorBox(err));
    return;
  }
  if (req.deployment) headers['azureml-model-deployment'] = req.deployment;
  const started = performance.now();
  let r, text;
  try {
    r = await fetch(`/endpoints/${enc(ctx.name)}/score`, { method: 'POST', headers, body: req.body });
    text = await r.text();
  } catch (err) {
    fill(out, errorBox(err));
    return;
  }
  const ms = Math.round(performance.now() - started);
  let shown = text;
  try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON: as sent */ }
  const hdrs = [...r.headers.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  fill(out, h('div', { class: 'card' },
    h('div', { class: 'row' }, h('b', {}, 'Status '), h('span', { id: 'test-status', class: r.ok ? 'state Succeeded' : 'state Failed' }, `${r.status} ${r.statusText}`),
      h('span', { class: 'muted' }, `${ms} ms`)),
    h('h3', {}, 'Answer'), h('pre', { id: 'test-answer' }, shown),
    h('h3', {}, 'Response headers'),
    h('table', { id: 'test-headers' }, hdrs.map(([k, v]) => h('tr', {}, h('td', { class: 'mono' }, k), h('td', { class: 'mono' }, v))))));
}

export function logsTab(ctx, body) {
  const { p, deps } = ctx;
  if (!deps.length) {
    fill(body, h('p', { class: 'muted' }, 'No deployment, no logs.'));
    return;
  }
  const dep = select('logs-deployment', deps.map(d => [d.name, d.name]));
  const inst = h('select', { id: 'logs-instance' });
  const fillInstances = () => {
    const d = deps.find(x => x.name === dep.value) || {};
    fill(inst, h('option', { value: '' }, 'most telling'),
      (d.instances || []).map(i => h('option', { value: String(i.index) }, `instance ${i.index} (${i.state})`)));
  };
  fillInstances();
  const container = select('logs-container', [['InferenceServer', 'inference-server'], ['StorageInitializer', 'storage-initializer']]);
  const lines = select('logs-lines', [['200', 'last 200 lines'], ['1000', 'last 1000 lines'], ['5000', 'last 5000 lines']]);
  const live = h('input', { type: 'checkbox', id: 'logs-live', checked: true });
  const out = h('pre', { id: 'logs' }, '');
  const status = h('span', { class: 'muted', id: 'logs-status' });
  const load = async () => {
    const req = { tail: Number(lines.value), containerType: container.value };
    if (inst.value !== '') req.instance = Number(inst.value);
    try {
      const text = await post(`/endpoints/${enc(ctx.name)}/deployments/${enc(dep.value)}/getLogs${ctx.q}`, req);
      if (!p.alive) return;
      const atBottom = out.scrollTop + out.clientHeight >= out.scrollHeight - 8;
      out.textContent = String(text) || '(empty: the container has written nothing yet)';
      if (atBottom) out.scrollTop = out.scrollHeight;
      status.textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (err) {
      if (p.alive) fill(out, String(err.message || err));
    }
  };
  dep.addEventListener('change', () => { fillInstances(); load(); });
  for (const el of [inst, container, lines]) el.addEventListener('change', load);
  fill(body, h('div', { class: 'row' }, dep, inst, container, lines,
    h('label', {}, live, ' live tail'), h('button', { type: 'button', onclick: load }, 'Refresh'), status), out);
  p.every(2000, () => { if (live.checked || !out.textContent) load(); });
}
