// Endpoint pages: the list of online and batch endpoints, an online endpoint's page
// with its tabs, and a batch endpoint's page.
import { h, fill, get, post, state, errorBox, copyButton, enc, fmtTime, kv, empty, ApiError } from './dom.js';
import { waterfall, deployPhases } from './charts.js';
import { testTab, logsTab } from './tabs.js';
import { metricsTab } from './metrics.js';
import { jobsTable } from './jobs.js';

export async function endpointsPage(p, main) {
  const [managed, local, batch] = await Promise.all([
    get('/endpoints'), get('/endpoints?local=true').catch(() => []), get('/batch-endpoints').catch(() => []),
  ]);
  const online = [...managed, ...local];
  fill(main,
    h('h1', {}, 'Endpoints'),
    h('h2', {}, 'Online endpoints'),
    online.length ? h('table', { id: 'online-endpoints' },
      h('tr', {}, ['Name', 'State', 'Auth', 'Traffic', 'Scoring URI', 'Updated'].map(c => h('th', {}, c))),
      online.map(e => h('tr', { 'data-endpoint': e.name },
        h('td', {}, h('a', { href: `#/endpoints/${enc(e.name)}` }, e.name), e.local ? h('span', { class: 'muted' }, ' (local)') : null),
        h('td', {}, state(e.provisioning_state)),
        h('td', {}, e.auth_mode),
        h('td', {}, Object.entries(e.traffic || {}).map(([d, w]) => `${d} ${w}%`).join(', ')),
        h('td', { class: 'mono' }, e.scoring_uri),
        h('td', {}, fmtTime(e.updated_at)))))
      : empty('No online endpoint yet: berth online-endpoint create -f endpoint.yml'),
    h('h2', {}, 'Batch endpoints'),
    batch.length ? h('table', { id: 'batch-endpoints' },
      h('tr', {}, ['Name', 'State', 'Default deployment', 'Scoring URI'].map(c => h('th', {}, c))),
      batch.map(e => h('tr', { 'data-endpoint': e.name },
        h('td', {}, h('a', { href: `#/batch-endpoints/${enc(e.name)}` }, e.name)),
        h('td', {}, state(e.provisioning_state)),
        h('td', {}, (e.defaults || {}).deployment_name || ''),
        h('td', { class: 'mono' }, e.scoring_uri))))
      : empty('No batch endpoint yet: berth batch-endpoint create -f endpoint.yml'));
}

// getEndpoint finds an endpoint in the managed namespace, else among local ones; q is
// the query string every later call on it needs.
async function getEndpoint(name) {
  try {
    return { ep: await get(`/endpoints/${enc(name)}`), q: '' };
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    return { ep: await get(`/endpoints/${enc(name)}?local=true`), q: '?local=true' };
  }
}

const TABS = [['overview', 'Details'], ['test', 'Test'], ['logs', 'Logs'], ['metrics', 'Metrics']];

export async function endpointPage(p, main, name, tab) {
  const { ep, q } = await getEndpoint(name);
  const deps = await get(`/endpoints/${enc(name)}/deployments${q}`);
  const body = h('div', { id: 'tab-' + tab });
  fill(main,
    h('h1', {}, h('span', { id: 'endpoint-name' }, ep.name), state(ep.provisioning_state)),
    h('div', { class: 'tabs' }, TABS.map(([t, label]) =>
      h('a', { href: `#/endpoints/${enc(name)}/${t}`, class: t === tab ? 'active' : '', 'data-tab': t }, label))),
    body);
  const ctx = { p, ep, q, deps, name };
  if (tab === 'test') return testTab(ctx, body);
  if (tab === 'logs') return logsTab(ctx, body);
  if (tab === 'metrics') return metricsTab(ctx, body);
  return overview(ctx, body);
}

async function overview(ctx, body) {
  const { p, ep, q, name } = ctx;
  const depsBox = h('div', { id: 'deployments' });
  // One colour per deployment in both bars.
  const names = [...new Set([...ctx.deps.map(d => d.name), ...Object.keys(ep.traffic || {}), ...Object.keys(ep.mirror_traffic || {})])].sort();
  const colors = Object.fromEntries(names.map((n, i) => [n, 's' + (i % 6)]));
  fill(body,
    h('div', { class: 'card' }, kv([
      ['Scoring URI', h('span', { class: 'row' }, h('span', { class: 'mono', id: 'scoring-uri' }, ep.scoring_uri), copyButton(() => ep.scoring_uri))],
      ['OpenAPI', ep.openapi_uri ? h('span', { class: 'mono' }, ep.openapi_uri) : ''],
      ['Auth mode', ep.auth_mode],
      ['Description', ep.description],
      ['Created', fmtTime(ep.created_at)],
    ])),
    await keysCard(ep, q),
    h('div', { class: 'card', id: 'traffic' },
      h('h3', {}, 'Traffic'), splitBar(ep.traffic, 'traffic', colors),
      Object.keys(ep.mirror_traffic || {}).length ? [h('h3', {}, 'Mirror traffic'), splitBar(ep.mirror_traffic, 'mirror', colors)] : null),
    ep.error ? errorBox(ep.error) : null,
    h('h2', {}, 'Deployments'),
    depsBox);
  const codes = await errorCodes();
  let first = true;
  p.every(4000, async () => {
    const deps = first ? ctx.deps : await get(`/endpoints/${enc(name)}/deployments${q}`).catch(() => null);
    first = false;
    if (!deps || !p.alive) return;
    const cards = await Promise.all(deps.map(d => deploymentCard(ep, q, d, codes)));
    fill(depsBox, cards.length ? cards : empty('No deployment yet: berth online-deployment create -f deployment.yml'));
  });
}

// keysCard shows the endpoint's credentials masked, each with Show and Copy.
async function keysCard(ep, q) {
  if (ep.local || ep.auth_mode === 'none') return h('div', { class: 'card' }, h('h3', {}, 'Keys'), h('p', { class: 'muted' }, 'A local endpoint takes requests without a key.'));
  let creds;
  try {
    creds = await post(`/endpoints/${enc(ep.name)}/listkeys${q}`);
  } catch (err) {
    return h('div', { class: 'card' }, h('h3', {}, 'Keys'), errorBox(err));
  }
  const rows = creds.accessToken
    ? [['Access token', creds.accessToken, 'token'], ['Expires', null, null]]
    : [['Primary key', creds.primaryKey, 'primary'], ['Secondary key', creds.secondaryKey, 'secondary']];
  return h('div', { class: 'card', id: 'keys' }, h('h3', {}, 'Keys'), kv(rows.map(([label, secret, id]) => {
    if (!id) return [label, creds.expiryTimeUtc ? new Date(creds.expiryTimeUtc * 1000).toLocaleString() : ''];
    const shown = h('span', { class: 'secret', 'data-key': id }, mask(secret));
    let visible = false;
    const toggle = h('button', { type: 'button', onclick: () => {
      visible = !visible;
      shown.textContent = visible ? secret : mask(secret);
      toggle.textContent = visible ? 'Hide' : 'Show';
    } }, 'Show');
    return [label, h('span', { class: 'row' }, shown, toggle, copyButton(() => secret))];
  })));
}

function mask(secret) { return '•'.repeat(Math.min(String(secret || '').length, 24)); }

/** splitBar draws percentages by deployment as one bar. */
function splitBar(split, kind, colors) {
  const entries = Object.entries(split || {}).filter(([, w]) => w > 0);
  const total = entries.reduce((a, [, w]) => a + w, 0);
  if (!entries.length) return h('p', { class: 'muted', 'data-split': kind }, kind === 'traffic' ? 'No deployment takes traffic.' : 'No mirror.');
  return h('div', {},
    h('div', { class: 'bar' + (kind === 'mirror' ? ' mirror' : ''), 'data-split': kind },
      entries.map(([d, w]) => h('span', { class: colors[d], style: { width: w + '%' }, title: `${d} ${w}%`, 'data-deployment': d }, `${d} ${w}%`))),
    kind === 'traffic' && total < 100 ? h('div', { class: 'muted' }, `${100 - total}% unassigned`) : null);
}

// errorCodes is the catalogue that `berth diagnose` reads, by code.
async function errorCodes() {
  try {
    const list = await get('/error-codes');
    return Object.fromEntries(list.map(e => [e.code, e]));
  } catch {
    return {};
  }
}

async function deploymentCard(ep, q, d, codes) {
  const phases = deployPhases(d);
  const model = typeof d.model === 'string' ? d.model : (d.model && (d.model.name || d.model.path)) || '';
  const env = typeof d.environment === 'string' ? d.environment : (d.environment && (d.environment.name || d.environment.image)) || '';
  return h('div', { class: 'card deployment', 'data-deployment': d.name },
    h('h3', {}, d.name, ' ', state(d.provisioning_state), ' ',
      h('a', { href: `#/endpoints/${enc(ep.name)}/logs`, class: 'muted' }, 'logs')),
    kv([['Instance type', d.instance_type], ['Instances', String(d.instance_count ?? '')], ['Model', model], ['Environment', env],
      ['Progress', d.progress], ['Warnings', (d.warnings || []).join('; ')], ['Updated', fmtTime(d.updated_at)]]),
    (d.instances || []).length ? h('table', { class: 'instances' },
      h('tr', {}, ['Instance', 'State', 'Restarts'].map(c => h('th', {}, c))),
      d.instances.map(i => h('tr', {}, h('td', {}, String(i.index)), h('td', {}, state(i.state)), h('td', {}, String(i.restarts))))) : null,
    phases ? [h('h3', {}, 'Deploy phases'), waterfall(phases)] : null,
    d.error ? await diagnosis(ep, q, d, codes) : null);
}

// diagnosis is what `berth diagnose` prints for a failed deployment: the error, its
// causes, what happened and the fix (from the most specific code), and the log's tail.
async function diagnosis(ep, q, d, codes) {
  const e = d.error;
  let code = e.code;
  for (const det of e.details || []) if (det.code && det.code !== 'BadArgument') code = det.code;
  const entry = codes[code];
  let tail = '';
  try {
    tail = await post(`/endpoints/${enc(ep.name)}/deployments/${enc(d.name)}/getLogs${q}`, { tail: 20, containerType: 'InferenceServer' });
  } catch { /* the log is a bonus */ }
  return h('div', { class: 'diagnose', 'data-code': code },
    h('div', { class: 'error' },
      h('div', {}, 'Error: ', h('span', { class: 'code' }, e.code), ' ', h('span', { class: 'message' }, e.message)),
      (e.details || []).map(det => h('div', { class: 'cause' }, 'Cause: ', h('span', { class: 'code' }, det.code), ' ', det.message))),
    entry ? h('div', { class: 'fix' },
      h('div', {}, h('b', {}, 'What happened: '), entry.reason),
      h('div', { 'data-fix': entry.code }, h('b', {}, 'Fix: '), entry.fix)) : null,
    String(tail).trim() ? [h('div', { class: 'muted' }, 'inference-server log (last 20 lines):'), h('pre', {}, tail)] : null);
}

export async function batchEndpointPage(p, main, name) {
  const [ep, deps] = await Promise.all([get(`/batch-endpoints/${enc(name)}`), get(`/batch-endpoints/${enc(name)}/deployments`)]);
  const jobsBox = h('div', { id: 'jobs' });
  fill(main,
    h('h1', {}, ep.name, state(ep.provisioning_state)),
    h('div', { class: 'card' }, kv([
      ['Scoring URI', h('span', { class: 'row' }, h('span', { class: 'mono' }, ep.scoring_uri), copyButton(() => ep.scoring_uri))],
      ['Default deployment', (ep.defaults || {}).deployment_name], ['Description', ep.description], ['Created', fmtTime(ep.created_at)]])),
    h('h2', {}, 'Deployments'),
    deps.length ? h('table', {}, h('tr', {}, ['Name', 'State', 'Compute', 'Model'].map(c => h('th', {}, c))),
      deps.map(d => h('tr', {}, h('td', {}, d.name), h('td', {}, state(d.provisioning_state)), h('td', {}, d.compute || ''),
        h('td', {}, typeof d.model === 'string' ? d.model : ((d.model || {}).name || (d.model || {}).path || '')))))
      : empty('No deployment yet'),
    h('h2', {}, 'Jobs'), jobsBox);
  p.every(3000, async () => {
    const jobs = await get(`/jobs?endpoint=${enc(name)}`).catch((err) => err);
    if (p.alive) fill(jobsBox, jobs instanceof Error ? errorBox(jobs) : jobsTable(jobs));
  });
}
