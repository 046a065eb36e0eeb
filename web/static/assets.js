// Models, environments and data assets, each with its versions.
import { h, fill, get, enc, fmtTime, empty, state } from './dom.js';

const KINDS = [['model', 'Models'], ['environment', 'Environments'], ['data', 'Data']];

// newestFirst orders versions newest first: by creation time, then by version (numbers
// as numbers).
function newestFirst(a, b) {
  return String(b.created_at || '').localeCompare(String(a.created_at || '')) ||
    String(b.version).localeCompare(String(a.version), undefined, { numeric: true });
}

export async function assetsPage(p, main, kind) {
  const list = await get(`/assets/${enc(kind)}`);
  const byName = new Map();
  for (const a of list) {
    if (!byName.has(a.name)) byName.set(a.name, []);
    byName.get(a.name).push(a);
  }
  const detail = (a) => kind === 'model' ? (a.type || '') + (a.path ? ' · ' + a.path : '')
    : kind === 'environment' ? (a.image || '') + (a.conda_file ? ' · conda' : '')
      : (a.type || '') + (a.path ? ' · ' + a.path : '');
  fill(main,
    h('h1', {}, 'Assets'),
    h('div', { class: 'tabs' }, KINDS.map(([k, label]) => h('a', { href: `#/assets/${k}`, class: k === kind ? 'active' : '', 'data-tab': k }, label))),
    byName.size ? h('table', { id: 'assets' },
      h('tr', {}, ['Name', 'Versions', 'Latest', 'Details', 'Created'].map(c => h('th', {}, c))),
      [...byName.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([name, versions]) => {
        versions.sort(newestFirst);
        const latest = versions[0];
        return h('tr', { 'data-asset': name },
          h('td', {}, name),
          h('td', {}, versions.map(v => h('span', { class: 'version', title: v.stage }, v.version, v.stage === 'Archived' ? ' (archived)' : '', ' '))),
          h('td', {}, latest.version, ' ', latest.stage === 'Archived' ? state('Archived') : null),
          h('td', { class: 'mono' }, detail(latest)),
          h('td', {}, fmtTime(latest.created_at)));
      }))
      : empty(`No ${kind} registered yet: berth ${kind} create -f <file>`));
}
