// DOM and API helpers of the studio. Every value from the server reaches the page as
// text (textContent or attribute values), never as HTML.

const TOKEN_KEY = 'berth.token';

/** h builds an element: h('a', {href: '#/x', class: 'c', onclick: fn}, 'text', child). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

/** s builds an SVG element, as h does. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** clear empties el and appends children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
export function setToken(t) { sessionStorage.setItem(TOKEN_KEY, t); }
export function clearToken() { sessionStorage.removeItem(TOKEN_KEY); }

/** ApiError is a control-plane error answer: status and the {code, message, details} body. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? `${body.code}: ${body.message}` : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** api calls the control plane with the signed-in token; JSON in, JSON (or text) out. */
export async function api(method, path, body) {
  const headers = { Authorization: 'Bearer ' + token() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch('/api/v1' + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const type = r.headers.get('Content-Type') || '';
  if (!r.ok) {
    let err = null;
    try { err = (await r.json()).error; } catch { /* not JSON */ }
    if (r.status === 401) window.dispatchEvent(new CustomEvent('berth-unauthorized', { detail: err }));
    throw new ApiError(r.status, err);
  }
  if (type.includes('json')) return r.json();
  if (type.includes('text')) return r.text();
  return r.arrayBuffer();
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body);

/** state renders a provisioning state or job status as a badge. */
export function state(v) {
  return h('span', { class: 'state ' + String(v || '').replace(/[^A-Za-z]/g, '') }, v || 'Unknown');
}

/** errorBox renders a failed call or an error body. */
export function errorBox(err) {
  const b = err instanceof ApiError ? err.body : err;
  if (b && b.code) return h('div', { class: 'error' }, h('span', { class: 'code' }, b.code), ' ', b.message || '');
  return h('div', { class: 'error' }, String(err && err.message ? err.message : err));
}

/** copyText puts text on the clipboard, with a fallback for browsers without the API. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const ta = h('textarea', { class: 'offscreen' });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    document.execCommand('copy');
    ta.remove();
  }
  toast('Copied');
}

export function toast(msg) {
  const t = h('div', { class: 'toast', role: 'status' }, msg);
  document.body.append(t);
  setTimeout(() => t.remove(), 1500);
}

/** copyButton copies what get() returns when clicked. */
export function copyButton(get, label = 'Copy') {
  return h('button', { type: 'button', onclick: () => copyText(get()) }, label);
}

export function enc(v) { return encodeURIComponent(v); }

export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(p => p[1] !== undefined && p[1] !== null && p[1] !== '')
    .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

export function empty(msg) { return h('div', { class: 'empty' }, msg); }
