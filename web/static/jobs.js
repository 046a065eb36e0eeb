// Batch jobs: the list with progress bars, and a job's page with its counts, driver
// log and the files of its logs folder (Azure's layout).
import { h, fill, get, state, errorBox, enc, fmtTime, kv, empty, token } from './dom.js';
import { untar } from './tar.js';

export function progressBar(pr) {
  const total = pr.mini_batches || 0, done = pr.mini_batches_succeeded || 0, failed = pr.mini_batches_failed || 0;
  const pct = (n) => (total ? (100 * n / total) : 0) + '%';
  return h('div', { class: 'row' },
    h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': String(total), 'aria-valuenow': String(done + failed) },
      h('span', { class: 'done', style: { width: pct(done) } }), h('span', { class: 'failed', style: { width: pct(failed) } })),
    h('span', { class: 'muted' }, `${done + failed}/${total} mini-batches`));
}

export function jobsTable(jobs) {
  if (!jobs.length) return empty('No job yet: berth batch-endpoint invoke -n <endpoint> --input <folder>');
  return h('table', { id: 'jobs-table' },
    h('tr', {}, ['Name', 'Status', 'Endpoint', 'Deployment', 'Progress', 'Created'].map(c => h('th', {}, c))),
    jobs.map(j => h('tr', { 'data-job': j.name },
      h('td', {}, h('a', { href: `#/jobs/${enc(j.name)}` }, j.name)), h('td', {}, state(j.status)),
      h('td', {}, h('a', { href: `#/batch-endpoints/${enc(j.endpoint_name)}` }, j.endpoint_name)), h('td', {}, j.deployment_name),
      h('td', {}, progressBar(j.progress || {})), h('td', {}, fmtTime((j.creation_context || {}).created_at)))));
}

export async function jobsPage(p, main) {
  const box = h('div', {});
  fill(main, h('h1', {}, 'Jobs'), box);
  p.every(3000, async () => {
    const jobs = await get('/jobs').catch(err => err);
    if (p.alive) fill(box, jobs instanceof Error ? errorBox(jobs) : jobsTable(jobs));
  });
}

const TERMINAL = new Set(['Completed', 'Failed', 'Canceled']);

export async function jobPage(p, main, name) {
  const head = h('div', {}), log = h('pre', { id: 'driver-log' }, ''), files = h('div', { id: 'job-logs' });
  fill(main, head,
    h('h2', {}, 'Driver log ', h('span', { class: 'muted mono' }, 'azureml-logs/70_driver_log.txt')), log,
    h('h2', {}, 'Logs folder'), files);
  let offset = 0, ended = false, listed = false;
  p.every(2000, async () => {
    if (ended) return;
    let piece;
    try {
      piece = await get(`/jobs/${enc(name)}/log?offset=${offset}`);
    } catch (err) {
      if (p.alive) fill(head, errorBox(err));
      return;
    }
    if (!p.alive) return;
    offset = piece.next;
    log.append(piece.text || '');
    fill(head, jobHead(piece.job));
    ended = TERMINAL.has(piece.job.status);
    if (!listed) {
      listed = true;
      fill(files, h('button', { type: 'button', id: 'list-logs', onclick: () => listLogs(name, files) }, 'Show the files of the logs folder'));
    }
  });
}

function jobHead(j) {
  const pr = j.progress || {};
  return h('div', {},
    h('h1', {}, j.name, state(j.status)),
    h('div', { class: 'card' }, progressBar(pr), kv([
      ['Endpoint', h('a', { href: `#/batch-endpoints/${enc(j.endpoint_name)}` }, j.endpoint_name)], ['Deployment', j.deployment_name],
      ['Mini-batches', `${pr.mini_batches || 0} total, ${pr.mini_batches_succeeded || 0} succeeded, ${pr.mini_batches_failed || 0} failed`],
      ['Files', `${pr.files || 0} total, ${pr.files_succeeded || 0} succeeded, ${pr.files_failed || 0} failed`],
      ['Files per second', pr.files_per_second ? pr.files_per_second.toFixed(2) : ''], ['ETA', pr.eta_seconds ? Math.round(pr.eta_seconds) + ' s' : ''],
      ['Input', Object.values(j.inputs || {}).map(i => i.path).join(', ')],
      ['Output', Object.values(j.outputs || {}).map(o => o.path).join(', ')],
      ['Started', fmtTime(j.start_time)], ['Ended', fmtTime(j.end_time)]])),
    j.error ? errorBox(j.error) : null);
}

// listLogs fetches the job's logs folder (a tar) and lists its files; a click shows one.
async function listLogs(name, box) {
  fill(box, h('p', { class: 'muted' }, 'Loading…'));
  let entries;
  try {
    const r = await fetch(`/api/v1/jobs/${enc(name)}/outputs/logs`, { headers: { Authorization: 'Bearer ' + token() } });
    if (!r.ok) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
    entries = untar(new Uint8Array(await r.arrayBuffer()));
  } catch (err) {
    fill(box, errorBox(err));
    return;
  }
  const view = h('pre', { id: 'job-log-file' }, 'Pick a file.');
  const dec = new TextDecoder();
  fill(box, h('ul', { class: 'files' }, entries.map(e => h('li', {},
    h('button', { type: 'button', class: 'link', 'data-path': e.name, onclick: () => { view.textContent = dec.decode(e.data); } }, 'logs/' + e.name),
    h('span', { class: 'muted' }, ` ${e.data.length} bytes`)))), view);
}
