// The studio's entry: sign-in, the hash router (#/endpoints/<name>/<tab>, #/jobs/<name>,
// #/assets/<kind>) and the lifecycle of a page's timers.
import { h, fill, get, token, setToken, clearToken, errorBox } from './dom.js';
import { endpointsPage, endpointPage, batchEndpointPage } from './endpoints.js';
import { jobsPage, jobPage } from './jobs.js';
import { assetsPage } from './assets.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');

// page is what the current route owns: its timers stop when the route changes.
let page = { timers: [], alive: true };

function newPage() {
  page.alive = false;
  page.timers.forEach(clearInterval);
  page = {
    timers: [], alive: true,
    // every calls fn now and each ms while the page is shown.
    every(ms, fn) { fn(); this.timers.push(setInterval(() => { if (this.alive) fn(); }, ms)); },
  };
  return page;
}

function signIn(message) {
  newPage();
  nav.hidden = true;
  const input = h('input', { type: 'password', id: 'token', autocomplete: 'off', placeholder: 'admin token', required: true });
  const status = h('div', { id: 'signin-status' }, message ? errorBox(message) : null);
  const form = h('form', { class: 'card signin', id: 'signin', onsubmit: async (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    try {
      await get('/endpoints');
      route();
    } catch (err) {
      clearToken();
      fill(status, errorBox(err));
    }
  } },
  h('h1', {}, 'Sign in'),
  h('p', { class: 'muted' }, 'Paste the admin token of this server: ', h('code', {}, 'token'), ' in ',
    h('code', {}, '<data-dir>/server.json'), ' (or ', h('code', {}, 'berth account get-access-token'), '). It is kept in this tab only.'),
  input,
  h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
  status);
  fill(main, form);
  input.focus();
}

const routes = [
  [/^#\/endpoints\/([^/]+)(?:\/(overview|test|logs|metrics))?$/, (p, m) => endpointPage(p, main, decodeURIComponent(m[1]), m[2] || 'overview'), 'endpoints'],
  [/^#\/batch-endpoints\/([^/]+)$/, (p, m) => batchEndpointPage(p, main, decodeURIComponent(m[1])), 'endpoints'],
  [/^#\/jobs\/([^/]+)$/, (p, m) => jobPage(p, main, decodeURIComponent(m[1])), 'jobs'],
  [/^#\/jobs$/, (p) => jobsPage(p, main), 'jobs'],
  [/^#\/assets(?:\/(model|environment|data))?$/, (p, m) => assetsPage(p, main, m[1] || 'model'), 'assets'],
  [/^(#\/?|#\/endpoints)?$/, (p) => endpointsPage(p, main), 'endpoints'],
];

async function route() {
  if (!token()) return signIn();
  const p = newPage();
  nav.hidden = false;
  const hash = location.hash;
  for (const [re, render, section] of routes) {
    const m = hash.match(re);
    if (!m) continue;
    nav.querySelectorAll('a').forEach(a => a.classList.toggle('active', a.dataset.nav === section));
    fill(main, h('p', { class: 'muted' }, 'Loading…'));
    try {
      await render(p, m);
    } catch (err) {
      if (p.alive) fill(main, errorBox(err));
    }
    return;
  }
  fill(main, errorBox(`No page ${hash}`));
}

window.addEventListener('hashchange', route);
window.addEventListener('berth-unauthorized', (e) => {
  clearToken();
  signIn(e.detail || 'The server refused the token: sign in again.');
});
document.getElementById('signout').addEventListener('click', () => { clearToken(); signIn(); });
route();
