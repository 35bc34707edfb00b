// Cairn web UI: a dependency-free single-page app over the REST API (/v1).
// Plain modern JS with JSDoc, served as-is (no build step). Hash routes:
//   #/                                   model list (search, filters, "Load more")
//   #/models/<name>                      model: aliases, versions, history
//   #/models/<name>/versions/<version>   version: files, summary, lineage, pull commands
// <name> is `resnet` or `acme/resnet`, its slash as is (as in the REST API's paths).
// The API token lives in localStorage and goes out as `Authorization: Bearer`.

const TOKEN_KEY = 'cairn.token';
const PAGE = 50;
/** Cards larger than this are not rendered (the API caps a model's own at 256 KiB). */
const CARD_MAX = 256 * 1024;
const FORMATS = ['safetensors', 'gguf', 'onnx', 'pytorch', 'pickle', 'joblib', 'savedmodel', 'tflite', 'keras', 'h5', 'tfjs', 'numpy', 'torchserve', 'unknown'];
const FRAMEWORKS = ['pytorch', 'safetensors', 'gguf', 'onnx', 'tensorflow', 'tflite', 'keras', 'tfjs', 'numpy', 'sklearn', 'pickle', 'torchserve'];
const SVG_NS = 'http://www.w3.org/2000/svg';

/** @type {HTMLElement} */
const main = /** @type {HTMLElement} */ (document.getElementById('main'));
/** @type {HTMLElement} */
const crumbs = /** @type {HTMLElement} */ (document.getElementById('crumbs'));

// ---- small DOM helpers -------------------------------------------------

/**
 * Creates an element. Text children are text nodes: API data never becomes HTML.
 * @param {string} tag  e.g. 'div.card' or 'a.btn'
 * @param {Record<string, any> | null} [attrs]
 * @param {...(Node | string | number | null | undefined | false | Array<Node | string | null | undefined | false>)} children
 * @returns {HTMLElement}
 */
function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = [el.className, v].filter(Boolean).join(' ');
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

/** @param {Element} el @param {any[]} children */
function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? String(c) : c);
  }
}

/**
 * @param {string} tag
 * @param {Record<string, string | number>} attrs
 * @returns {SVGElement}
 */
function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/**
 * Replaces the page. A form control that had focus (a filter, the search
 * box) keeps it in the new page, so typing or choosing goes on.
 * @param {...Node} nodes
 */
function render(...nodes) {
  const active = document.activeElement;
  const name = main.contains(active) && (active instanceof HTMLInputElement || active instanceof HTMLSelectElement) ? active.name : '';
  const caret = active instanceof HTMLInputElement && active.type === 'search' ? active.selectionStart : null;
  main.replaceChildren(...nodes);
  if (!name) return;
  const again = main.querySelector(`[name="${CSS.escape(name)}"]`);
  if (again instanceof HTMLInputElement || again instanceof HTMLSelectElement) {
    again.focus();
    if (again instanceof HTMLInputElement && caret !== null) again.setSelectionRange(caret, caret);
  }
}

/** @param {Array<[string, string?]>} parts  [label, href] */
function setCrumbs(parts) {
  crumbs.replaceChildren();
  parts.forEach(([label, href], i) => {
    if (i > 0) crumbs.append(h('span.sep', { 'aria-hidden': 'true' }, '/'));
    crumbs.append(href ? h('a', { href }, label) : h('span.here', null, label));
  });
}

// ---- formatting ------------------------------------------------------------

/** @param {number | null | undefined} n */
function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

/** @param {number | null | undefined} n */
function count(n) {
  if (n === null || n === undefined) return '—';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)} K`;
  return n.toLocaleString('en-US');
}

/** @param {string | null | undefined} iso */
function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** @param {string} digest */
function shortDigest(digest) {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

const enc = encodeURIComponent;
/** A model name in a path or an address: each part encoded, the namespace's '/' kept. @param {string} name */
const encName = (name) => name.split('/').map(enc).join('/');
/** @param {string} name */
const modelHref = (name) => `#/models/${encName(name)}`;
/** @param {string} name @param {string} version */
const versionHref = (name, version) => `#/models/${encName(name)}/versions/${enc(version)}`;

// ---- badges ----------------------------------------------------------------

/** @param {string} text @param {string} [kind] */
function badge(text, kind = 'neutral') {
  return h(`span.badge.badge-${kind}`, null, text);
}

/** @param {string} verdict */
function safetyBadge(verdict) {
  if (verdict === 'unsafe') return h('span.badge.badge-unsafe', { 'data-safety': 'unsafe', title: 'Loading this runs code' }, '⚠ unsafe');
  if (verdict === 'safe') return h('span.badge.badge-safe', { 'data-safety': 'safe' }, '✓ safe');
  return h('span.badge.badge-unknown', { 'data-safety': 'unknown', title: 'Safety could not be checked' }, 'unchecked');
}

// ---- API -------------------------------------------------------------------

class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function token() {
  return localStorage.getItem(TOKEN_KEY) ?? '';
}

/**
 * A JSON document from the API (GET, or `init.method` with a JSON body).
 * @param {string} path
 * @param {Record<string, string | number | null | undefined>} [query]
 * @param {{ method?: string, body?: unknown }} [init]
 * @returns {Promise<any>}
 */
async function api(path, query = {}, init = {}) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  const url = params.size ? `${path}?${params}` : path;
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (init.body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(url, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  } catch (err) {
    throw new ApiError(0, 'NETWORK', `could not reach the server: ${/** @type {Error} */ (err).message}`);
  }
  const text = await res.text();
  /** @type {any} */
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) throw new ApiError(res.status, body?.error?.code ?? `HTTP_${res.status}`, body?.error?.message ?? res.statusText);
  return body;
}

/**
 * A version's file as text, or undefined when it is larger than `max` bytes.
 * @param {string} name @param {string} version @param {string} filePath @param {number} max
 */
async function fileText(name, version, filePath, max) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (token()) headers.Authorization = `Bearer ${token()}`;
  const res = await fetch(`/v1/models/${encName(name)}/versions/${enc(version)}/files/${filePath.split('/').map(enc).join('/')}`, { headers });
  if (!res.ok) throw new ApiError(res.status, `HTTP_${res.status}`, `could not read ${filePath}`);
  if (Number(res.headers.get('content-length') ?? 0) > max) {
    await res.body?.cancel();
    return undefined;
  }
  return res.text();
}

/** Who the saved token is (GET /v1/whoami), or null without one that works. @type {any} */
let me = null;

/** @param {string} scope */
const mayDo = (scope) => Boolean(me?.scopes?.includes(scope));

// ---- copy to clipboard ------------------------------------------------------

/**
 * A block of copyable text with a Copy button. Uses the async clipboard API;
 * where that is refused (no permission, plain http), selects the text instead.
 * @param {string} text
 * @param {{ label?: string, inline?: boolean }} [opts]
 */
function copyBox(text, opts = {}) {
  const code = h(opts.inline ? 'code.copy-text' : 'pre.copy-text', { title: opts.inline ? text : null }, text);
  const button = h('button.btn.btn-small.copy-btn', { type: 'button', 'aria-label': `Copy ${opts.label ?? 'command'}` }, 'Copy');
  button.addEventListener('click', async () => {
    try {
      if (!navigator.clipboard) throw new Error('no clipboard API');
      await navigator.clipboard.writeText(text);
      flash(button, 'Copied', 'ok');
    } catch {
      const range = document.createRange();
      range.selectNodeContents(code);
      const sel = window.getSelection();
      sel?.removeAllRanges();
      sel?.addRange(range);
      flash(button, 'Press Ctrl+C', 'warn');
    }
  });
  return h(opts.inline ? 'span.copy.copy-inline' : 'div.copy', null, code, button);
}

/** @param {HTMLElement} button @param {string} text @param {string} kind */
function flash(button, text, kind) {
  button.textContent = text;
  button.dataset.state = kind;
  setTimeout(() => {
    button.textContent = 'Copy';
    delete button.dataset.state;
  }, 1600);
}

// ---- shared pieces -------------------------------------------------------

/** @param {unknown} err @param {() => void} retry */
function errorView(err, retry) {
  if (err instanceof ApiError && err.status === 401) return loginPrompt(err.message, retry);
  const e = err instanceof ApiError ? err : new ApiError(0, 'ERROR', String(/** @type {Error} */ (err)?.message ?? err));
  const title = e.status === 403 ? 'Not allowed' : e.status === 404 ? 'Not found' : 'Something went wrong';
  return h('section.card.error-card', { role: 'alert' },
    h('h2', null, title),
    h('p', null, e.message),
    h('p.muted.small', null, e.status ? `HTTP ${e.status} · ${e.code}` : e.code),
    h('p', null, h('button.btn', { type: 'button', onclick: retry }, 'Try again'), ' ', h('a.btn.btn-quiet', { href: '#/' }, 'All models')));
}

/** @param {string} message @param {() => void} retry */
function loginPrompt(message, retry) {
  const input = /** @type {HTMLInputElement} */ (h('input', { type: 'password', id: 'login-token', placeholder: 'cairn_…', spellcheck: 'false', autocomplete: 'off', required: true }));
  const form = h('form.login-form', {
    onsubmit: (/** @type {Event} */ ev) => {
      ev.preventDefault();
      saveToken(input.value.trim());
      retry();
    },
  },
  h('label', { for: 'login-token' }, 'API token'),
  h('div.row', null, input, h('button.btn.btn-primary', { type: 'submit' }, 'Sign in')));
  setTimeout(() => input.focus(), 0);
  return h('section.card.login-card', { role: 'alert', 'data-view': 'login' },
    lockIcon(),
    h('h2', null, token() ? 'This token was not accepted' : 'This registry needs a token'),
    h('p', null, token() ? 'The server refused the saved token: it may be unknown, revoked or expired. Paste another one.' : 'Paste an API token to browse models. It is kept in this browser (localStorage) and sent as a Bearer token.'),
    form,
    h('p.muted.small', null, 'Server said: ', message),
    h('p.muted.small', null, 'An administrator creates tokens with ', h('code', null, 'cairn token create'), '; the first admin token is in ', h('code', null, '<data dir>/admin-token'), '.'));
}

function lockIcon() {
  const icon = svg('svg', { class: 'lock', viewBox: '0 0 24 24', width: 28, height: 28, 'aria-hidden': 'true' });
  icon.append(svg('rect', { x: 5, y: 11, width: 14, height: 10, rx: 2 }), svg('path', { d: 'M8 11V8a4 4 0 0 1 8 0v3' }));
  return icon;
}

/**
 * A "Load more" pager over a cursor-paginated endpoint.
 * @param {(cursor: string | null) => Promise<{ items: any[], next: string | null }>} fetchPage
 * @param {(item: any) => Node} row
 * @param {HTMLElement} container  where rows go
 * @param {HTMLElement} footer  where the button goes
 * @param {() => void} [onEmpty]
 */
async function paginate(fetchPage, row, container, footer, onEmpty) {
  /** @param {string | null} cursor */
  const load = async (cursor) => {
    footer.replaceChildren(h('span.muted.small', null, 'Loading…'));
    const page = await fetchPage(cursor);
    container.append(...page.items.map(row));
    if (!cursor && page.items.length === 0) onEmpty?.();
    footer.replaceChildren();
    if (page.next) {
      const more = h('button.btn.load-more', { type: 'button' }, 'Load more');
      more.addEventListener('click', () => load(page.next).catch(showError));
      footer.append(more);
    }
  };
  await load(null);
}

/** @param {unknown} err */
function showError(err) {
  render(errorView(err, route));
}

// ---- views -----------------------------------------------------------------

/**
 * A table cell that below 600 px becomes a labelled line of a card.
 * @param {string} label @param {string} cls e.g. '.num' @param {...any} children
 */
function cell(label, cls, ...children) {
  return h(`td${cls}`, { 'data-label': label }, ...children);
}

/** The marker of a model's list row: unsafe if any live version runs code when loaded. @param {any} m */
function listSafety(m) {
  if (m.unsafe) return h('span.badge.badge-unsafe', { 'data-safety': 'unsafe', title: 'A live version has files that run code when loaded' }, '⚠ unsafe');
  if (!m.latest) return h('span.muted', null, '—');
  return safetyBadge(m.latest.safety);
}

/** @param {URLSearchParams} params */
async function listView(params) {
  const mine = generation;
  setCrumbs([['Models']]);
  document.title = 'Models · Cairn';
  const q = params.get('q') ?? '';
  const format = params.get('format') ?? '';
  const framework = params.get('framework') ?? '';
  const unsafe = params.get('unsafe') ?? '';
  const sort = params.get('sort') ?? '';

  /** @param {string} name @param {string} label @param {Array<string | [string, string]>} options @param {string} value @param {string} [any] */
  const select = (name, label, options, value, any = 'Any') =>
    h('label.field', null, h('span', null, label),
      h('select', { name }, h('option', { value: '' }, any), ...options.map((o) => {
        const [v, text] = Array.isArray(o) ? o : [o, o];
        return h('option', { value: v, selected: v === value }, text);
      })));

  const search = /** @type {HTMLInputElement} */ (h('input', { type: 'search', name: 'q', value: q, placeholder: 'Search models by name or description', 'aria-label': 'Search models', autocomplete: 'off' }));
  const form = /** @type {HTMLFormElement} */ (h('form.filters', { role: 'search' },
    h('div.search-box', null, search),
    select('format', 'Format', FORMATS, format),
    select('framework', 'Framework', FRAMEWORKS, framework),
    select('unsafe', 'Safety', [['true', 'Has unsafe files'], ['false', 'No unsafe files']], unsafe),
    select('sort', 'Sort', [['updated', 'Recently updated']], sort, 'Name')));
  const apply = () => {
    const data = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) data.set(k, String(v));
    const next = data.size ? `#/?${data}` : '#/';
    if (location.hash !== next) location.hash = next;
  };
  /** @type {number | undefined} */
  let timer;
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    apply();
  });
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(apply, 300);
  });
  // A pick with the mouse applies at once; arrow keys only move through the
  // options (as a closed native select does) and apply on Enter or on leaving it.
  /** @type {Set<EventTarget>} */
  const keyed = new Set();
  form.addEventListener('keydown', (ev) => {
    if (!(ev.target instanceof HTMLSelectElement)) return;
    if (ev.key === 'Enter') {
      ev.preventDefault();
      apply();
    } else if (/^(Arrow|Home|End|Page)/.test(ev.key) || ev.key.length === 1) keyed.add(ev.target);
  });
  form.addEventListener('change', (ev) => {
    if (ev.target === search || !ev.target) return;
    if (keyed.has(ev.target)) return;
    apply();
  });
  form.addEventListener('focusout', (ev) => {
    if (ev.target && keyed.delete(ev.target)) apply();
  });

  const tbody = h('tbody');
  const footer = h('div.pager');
  const table = h('table.data.models-table.stack', null,
    h('thead', null, h('tr', null, h('th', null, 'Model'), h('th', null, 'Production'), h('th', null, 'Latest'), h('th', null, 'Format'), h('th.num', null, 'Size'), h('th', null, 'Safety'), h('th', null, 'Updated'))),
    tbody);
  const total = h('span.muted.count', { 'data-total': '' });
  const filtered = Boolean(q || format || framework || unsafe);
  if (mine !== generation) return;
  render(h('section.page-head', null, h('h1', null, 'Models ', total), h('p.muted', null, 'Versioned models in this registry. Search by name or description, or filter by what the files are.')),
    form, h('section.card.flush', null, table, footer));

  /** @param {any} m */
  const row = (m) => h('tr', { 'data-model': m.name },
    cell('Model', '.model-cell', h('a.model-link', { href: modelHref(m.name) }, m.name), m.description ? h('div.muted.small.desc', { title: m.description }, m.description) : null),
    cell('Production', '', m.production_version ? h('a.mono', { href: versionHref(m.name, m.production_version), 'data-production': m.production_version }, m.production_version) : h('span.muted', null, '—')),
    cell('Latest', '', m.latest_version ? h('a.mono', { href: versionHref(m.name, m.latest_version) }, m.latest_version) : h('span.muted', null, '—'), h('span.muted.small', null, ` · ${count(m.versions)} version${m.versions === 1 ? '' : 's'}`)),
    cell('Format', '.formats', ...formatBadges(m.latest?.formats ?? [], m.latest?.framework)),
    cell('Size', '.num', m.latest ? bytes(m.latest.size) : '—'),
    cell('Safety', '', listSafety(m)),
    cell('Updated', '.muted', when(m.updated_at)));
  await paginate(async (cursor) => {
    const page = await api('/v1/models', { q, format, framework, unsafe, sort, cursor, limit: PAGE });
    total.textContent = `${count(page.total)}${filtered ? ' matching' : ''}`;
    total.dataset.total = String(page.total);
    return { items: page.models, next: page.next_cursor };
  }, row, tbody, footer, () => {
    tbody.append(h('tr', null, h('td.empty', { colspan: 7 }, filtered ? 'No model matches these filters.' : 'No models yet. Publish one with cairn push name@version file…')));
  });
}

/**
 * Format badges without `unknown` (a README or a config says nothing about the model),
 * and the framework when no format names it.
 * @param {string[]} formats @param {string | null | undefined} [framework]
 */
function formatBadges(formats, framework) {
  const known = formats.filter((f) => f !== 'unknown');
  return [...known.map((f) => badge(f, 'format')), framework && !known.includes(framework) ? badge(framework, 'framework') : null];
}

/**
 * A message: its first line, the rest (paragraphs kept) behind a toggle.
 * @param {string} message
 */
function messageView(message) {
  const text = message.trim();
  if (!text) return h('span.muted', null, '—');
  const [first, ...rest] = text.split('\n');
  const more = rest.join('\n').trim();
  if (!more && first.length <= 120) return h('span.msg-text', null, first);
  return h('details.msg-more', null, h('summary', { title: 'Show the whole message' }, h('span.msg-first', null, first)), more ? h('div.msg-full', null, more) : null);
}

/**
 * The model card: Markdown rendered and sanitized (src/web/markdown.js).
 * @param {string} markdown @param {string} source  where it comes from
 * @param {HTMLElement | null} [editor]
 */
async function modelCard(markdown, source, editor) {
  const { renderMarkdown } = await import('/ui/markdown.js');
  return h('section.card.model-card', { 'data-section': 'card' },
    h('h2.card-title', null, 'Model card ', h('span.muted.count', null, source)),
    h('div.markdown', null, renderMarkdown(markdown)),
    editor ?? null);
}

/**
 * With write scope: edit the model's description and card (PATCH /v1/models/{name}).
 * @param {string} name @param {any} model
 */
function cardEditor(name, model) {
  if (!mayDo('write')) return null;
  const description = /** @type {HTMLInputElement} */ (h('input', { name: 'description', value: model.description ?? '', maxlength: 2048, 'aria-label': 'Description' }));
  const readme = /** @type {HTMLTextAreaElement} */ (h('textarea', { name: 'readme', rows: 10, 'aria-label': 'Model card (Markdown)', spellcheck: 'false' }));
  readme.value = model.readme ?? '';
  const status = h('span.muted.small', { role: 'status' });
  const form = h('form.card-editor', {
    onsubmit: async (/** @type {Event} */ ev) => {
      ev.preventDefault();
      status.textContent = 'Saving…';
      try {
        await api(`/v1/models/${encName(name)}`, {}, { method: 'PATCH', body: { description: description.value, readme: readme.value } });
        route();
      } catch (err) {
        status.textContent = `Not saved: ${/** @type {Error} */ (err).message}`;
      }
    },
  },
  h('label.field', null, h('span', null, 'Description (one paragraph)'), description),
  h('label.field', null, h('span', null, 'Model card (Markdown; a version’s own README.md takes its place on that version)'), readme),
  h('div.row', null, h('button.btn.btn-primary', { type: 'submit' }, 'Save'), status));
  return h('details.edit-card', null, h('summary', null, 'Edit description and card'), form);
}

/** @param {string} name */
async function modelView(name) {
  const mine = generation;
  setCrumbs([['Models', '#/'], [name]]);
  document.title = `${name} · Cairn`;
  const model = await api(`/v1/models/${encName(name)}`);

  const aliases = Object.entries(model.aliases ?? {});
  const aliasList = h('div.chips', null,
    model.latest ? h('a.chip', { href: versionHref(name, model.latest.version), title: 'the most recently published version' }, h('span.chip-key', null, 'latest'), h('span.chip-val', null, model.latest.version)) : null,
    ...aliases.map(([alias, version]) => h('a.chip', { href: versionHref(name, String(version)), 'data-alias': alias }, h('span.chip-key', null, alias), h('span.chip-val', null, String(version)))));

  const versionRows = h('tbody');
  const versionFooter = h('div.pager');
  const versions = h('section.card.flush', { 'data-section': 'versions' },
    h('h2.card-title', null, 'Versions ', h('span.muted.count', null, String(model.counts?.versions ?? ''))),
    h('table.data.versions-table.stack', null,
      h('thead', null, h('tr', null, h('th', null, 'Version'), h('th', null, 'Published'), h('th.num', null, 'Size'), h('th', null, 'Message'))),
      versionRows),
    versionFooter);

  const events = h('ol.timeline');
  const historyFooter = h('div.pager');
  const cloneUrl = `${location.origin}/git/lineage.git`;
  const history = h('section.card', { 'data-section': 'history' },
    h('h2.card-title', null, 'History'),
    h('p.muted.small', null, 'Every change is a commit in the lineage repository. Clone it, then inspect any commit:'),
    copyBox(`git clone ${cloneUrl}`, { label: 'clone command' }),
    events, historyFooter);

  // the card: the model's own, else the latest version's README.md
  let card = null;
  const editor = cardEditor(name, model);
  if (model.readme) card = await modelCard(model.readme, 'set for the model', editor);
  else if (model.latest) {
    const latest = await api(`/v1/models/${encName(name)}/versions/${enc(model.latest.version)}`);
    const readme = latest.files.find((/** @type {any} */ f) => /^readme\.md$/i.test(f.path));
    const text = readme ? await fileText(name, latest.version, readme.path, CARD_MAX) : undefined;
    if (text !== undefined) card = await modelCard(text, `README.md of ${latest.version}`, editor);
  }

  if (mine !== generation) return;
  render(
    h('section.page-head', null,
      h('h1', null, name),
      model.description ? h('p.description', null, model.description) : null,
      h('p.muted.small', null, `${count(model.counts?.versions)} version${model.counts?.versions === 1 ? '' : 's'} · created ${when(model.created_at)} · updated ${when(model.updated_at)}`),
      aliasList),
    h('div.columns', null,
      h('div.col-main', null, card ?? '', versions, card ? '' : editor ?? ''),
      h('div.col-side', null, history)));

  /** @param {any} v */
  const versionRow = (v) => h('tr', { 'data-version': v.version },
    cell('Version', '', h('a.mono.version-link', { href: versionHref(name, v.version) }, v.version), ' ', h('span.muted.small', null, `#${v.number}`), ...(v.aliases ?? []).map((/** @type {string} */ a) => h('span', null, ' ', badge(a, 'alias')))),
    cell('Published', '', h('div', null, when(v.created_at)), h('div.muted.small', null, v.created_by)),
    cell('Size', '.num', bytes(v.size)),
    cell('Message', '.msg', messageView(v.message ?? '')));

  // history is newest first: a version's delete comes before its publish
  /** @type {Set<string>} */
  const deleted = new Set();
  /** @param {any} e */
  const eventRow = (e) => {
    if (e.event === 'delete' && e.version) deleted.add(e.version);
    const linked = e.version && e.event === 'publish' && !deleted.has(e.version);
    return h('li.event', { 'data-event': e.event, 'data-commit': e.commit ?? '', 'data-version': e.version ?? null, 'data-alias': e.alias ?? null },
      h('span.dot', { class: `dot-${e.event}`, 'aria-hidden': 'true' }),
      h('div.event-body', null,
        h('div.event-subject', null, linked ? h('a', { href: versionHref(name, e.version) }, e.subject) : e.subject,
          e.event === 'publish' && deleted.has(e.version) ? h('span.muted.small', null, ' (deleted since)') : null),
        h('div.muted.small', null, `${e.author} · ${when(e.time)}`),
        e.message && e.event !== 'publish' ? h('div.small.event-message', null, e.message) : null,
        e.commit
          ? h('div.commit', null,
            h('code.commit-id', { title: e.commit }, e.commit.slice(0, 7)),
            copyBox(`git show ${e.commit}`, { inline: true, label: `git show ${e.commit.slice(0, 7)}` }))
          : h('div.commit.muted.small', null, 'commit pending (the git mirror has not written it yet)')));
  };

  await Promise.all([
    paginate(async (cursor) => {
      const page = await api(`/v1/models/${encName(name)}/versions`, { cursor, limit: 20 });
      return { items: page.versions, next: page.next_cursor };
    }, versionRow, versionRows, versionFooter, () => versionRows.append(h('tr', null, h('td.empty', { colspan: 4 }, 'No live versions.')))),
    paginate(async (cursor) => {
      const page = await api(`/v1/models/${encName(name)}/history`, { cursor, limit: 20 });
      return { items: page.events, next: page.next_cursor };
    }, eventRow, events, historyFooter),
  ]);
}

/**
 * A table of the first `fold` items, the rest behind a "Show all" button
 * (a version may have thousands of files).
 * @param {any[]} items @param {number} fold @param {string} what @param {HTMLElement} thead
 * @param {(item: any) => HTMLElement} row @param {string} [cls]
 */
function foldedTable(items, fold, what, thead, row, cls) {
  const body = h('tbody', null, ...items.slice(0, fold).map(row));
  const more = items.length > fold
    ? h('div.pager', null, h('button.btn.load-more', {
      type: 'button',
      onclick: (/** @type {Event} */ ev) => {
        body.append(...items.slice(fold).map(row));
        /** @type {HTMLElement} */ (ev.currentTarget).parentElement?.remove();
      },
    }, `Show all ${items.length} ${what}`))
    : null;
  return h('div.folded', null, h('table.data.stack', { class: cls }, thead, body), more);
}

/**
 * A recipe (any JSON) as key/value chips; a value that is not an object as one chip.
 * @param {unknown} recipe
 */
function recipeView(recipe) {
  if (recipe === null || recipe === undefined) return null;
  const entries = typeof recipe === 'object' && !Array.isArray(recipe) ? Object.entries(/** @type {Record<string, unknown>} */ (recipe)) : [['recipe', recipe]];
  if (entries.length === 0) return null;
  // a measured recipe (cairn derive) can hold long lists: each value on one short line, whole in its tooltip
  return h('span.recipe', { 'data-recipe': '' }, ...entries.map(([k, v]) => {
    const value = typeof v === 'string' ? v : JSON.stringify(v);
    return h('span.chip.chip-static', { title: value.length > 48 ? value.slice(0, 4000) : null }, h('span.chip-key', null, k), h('span.chip-val', null, ellipsis(value, 48)));
  }));
}

/** A recipe on one line, for the lineage graph. @param {unknown} recipe */
function recipeText(recipe) {
  if (recipe === null || recipe === undefined) return '';
  if (typeof recipe !== 'object' || Array.isArray(recipe)) return JSON.stringify(recipe);
  return Object.entries(recipe).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
}

/**
 * The safety of one file: red if it runs code, green if proven not to, amber
 * only if it could hold code and was not checked; text and data files get a
 * neutral label.
 * @param {any} f @param {Set<string>} unchecked
 */
function fileSafety(f, unchecked) {
  const verdict = f.safety?.verdict ?? 'unknown';
  if (verdict !== 'unknown' || unchecked.has(f.path)) return safetyBadge(verdict);
  return h('span.badge.badge-neutral', { 'data-safety': 'data', title: 'A text or data file: nothing here runs when loaded' }, 'data');
}

/** @param {string} name @param {string} ref @param {URLSearchParams} params */
async function versionView(name, ref, params) {
  const mine = generation;
  setCrumbs([['Models', '#/'], [name, modelHref(name)], [ref]]);
  document.title = `${name}@${ref} · Cairn`;
  const base = `/v1/models/${encName(name)}/versions/${enc(ref)}`;
  // the version must load; everything else fails in its own card
  const [doc, lineage, model] = await Promise.all([
    api(base),
    api(`${base}/lineage`).catch((/** @type {unknown} */ err) => err),
    api(`/v1/models/${encName(name)}`).catch((/** @type {unknown} */ err) => err),
  ]);
  const s = doc.summary ?? {};
  const verdict = s.safety?.verdict ?? 'unknown';
  const unchecked = new Set(/** @type {string[]} */ (s.safety?.unchecked_files ?? []));

  const head = h('section.page-head', null,
    h('h1', null, h('a.plain', { href: modelHref(name) }, name), h('span.at', null, '@'), h('span.mono', null, doc.version)),
    h('div.badges', null, safetyBadge(verdict), ...formatBadges(s.formats ?? [], s.framework), ...(doc.aliases ?? []).map((/** @type {string} */ a) => badge(a, 'alias'))),
    doc.message ? h('p.message', null, doc.message) : null,
    h('p.muted.small', null, `#${doc.number} · published ${when(doc.created_at)} by ${doc.created_by} · ${bytes(doc.size)} in ${doc.files.length} file${doc.files.length === 1 ? '' : 's'} · `, h('code', { title: doc.digest }, shortDigest(doc.digest))));

  const warning = verdict === 'unsafe'
    ? h('section.card.danger-card', { role: 'note' },
      h('strong', null, 'Loading this version runs code. '),
      'These files run code when loaded: ',
      ...(s.safety.unsafe_files ?? []).map((/** @type {any} */ u, /** @type {number} */ i) => h('span', null, i ? ', ' : '', h('code', null, u.path), ` (${u.findings.map((/** @type {any} */ f) => f.global).join(', ')})`)),
      '. Only load them if you trust who published them.')
    : null;

  /** @param {any} f */
  const fileRow = (f) => h('tr', { 'data-file': f.path },
    cell('Path', '.mono.path', f.path),
    cell('Format', '', f.format === 'unknown' ? h('span.muted.small', null, 'other') : badge(f.format, 'format')),
    cell('Size', '.num', bytes(f.size)),
    cell('Parameters', '.num', f.parameters !== undefined ? count(f.parameters) : h('span.muted', null, '—')),
    cell('Digest', '', h('code.digest', { title: f.digest }, shortDigest(f.digest))),
    cell('Safety', '', fileSafety(f, unchecked),
      f.safety?.findings?.length ? h('ul.findings', null, ...f.safety.findings.map((/** @type {any} */ x) => h('li', null, h('code', null, x.global), x.reason ? h('span.muted', null, ` — ${x.reason}`) : ''))) : null));
  // unsafe and unchecked files first, so that a long list does not hide them
  const rank = (/** @type {any} */ f) => (f.safety?.verdict === 'unsafe' ? 0 : unchecked.has(f.path) ? 1 : 2);
  const ordered = doc.files.length > 200 ? [...doc.files].sort((a, b) => rank(a) - rank(b)) : doc.files;
  const files = h('section.card.flush', { 'data-section': 'files' },
    h('h2.card-title', null, 'Files ', h('span.muted.count', null, String(doc.files.length))),
    foldedTable(ordered, 200, 'files',
      h('thead', null, h('tr', null, h('th', null, 'Path'), h('th', null, 'Format'), h('th.num', null, 'Size'), h('th.num', null, 'Parameters'), h('th', null, 'Digest'), h('th', null, 'Safety'))),
      fileRow, 'files-table'));

  /** @param {any[]} tensors */
  const tensorList = (tensors) => tensors?.length
    ? h('ul.tensors', null, ...tensors.map((t) => h('li', null, h('code', null, t.name), ' ', h('span.muted', null, `${t.dtype ?? ''} [${(t.shape ?? []).join(', ')}]`))))
    : h('span.muted', null, '—');
  const dtypes = Object.entries(s.dtypes ?? {});
  const summary = h('section.card', { 'data-section': 'summary' },
    h('h2.card-title', null, 'Summary'),
    h('dl.facts', null,
      h('dt', null, 'Framework'), h('dd', null, s.framework ?? h('span.muted', null, 'unknown')),
      h('dt', null, 'Parameters'), h('dd', null, s.parameters !== null && s.parameters !== undefined ? `${count(s.parameters)} (${s.parameters.toLocaleString('en-US')})` : h('span.muted', null, '—')),
      h('dt', null, 'Dtypes'), h('dd', null, dtypes.length ? dtypes.map(([k, v]) => `${k} × ${count(Number(v))}`).join(', ') : h('span.muted', null, '—')),
      h('dt', null, 'Inputs'), h('dd', null, tensorList(s.inputs)),
      h('dt', null, 'Outputs'), h('dd', null, tensorList(s.outputs)),
      h('dt', null, 'Unchecked'), h('dd', { 'data-unchecked': '' }, unchecked.size ? [...unchecked].join(', ') : h('span.muted', null, 'none'))));

  const meta = Object.keys(doc.metadata ?? {}).length
    ? h('pre.json', null, JSON.stringify(doc.metadata, null, 2))
    : h('p.muted.small', null, 'No metadata.');
  const metadata = h('section.card', { 'data-section': 'metadata' }, h('h2.card-title', null, 'Metadata'), meta);

  const graphError = lineage instanceof Error ? lineage : null;
  const deletedNodes = new Set(graphError ? [] : lineage.nodes.filter((/** @type {any} */ n) => n.deleted).map((/** @type {any} */ n) => `${n.name}@${n.version}`));
  const parents = doc.parents?.length
    ? h('ul.parents', null, ...doc.parents.map((/** @type {any} */ p) => {
      const key = `${p.name}@${p.version}`;
      return h('li', { 'data-parent': p.hidden ? 'hidden' : key }, badge(p.relation, 'relation'), ' ',
        p.hidden ? h('span.muted', null, 'a version you may not read')
          : deletedNodes.has(key) ? h('span', null, h('span.mono.deleted', null, key), h('span.muted.small', null, ' (deleted)'))
            : h('a.mono', { href: versionHref(p.name, p.version) }, key),
        ' ', recipeView(p.recipe));
    }))
    : null;
  const graph = h('section.card', { 'data-section': 'lineage' },
    h('h2.card-title', null, 'Lineage'),
    parents,
    graphError ? h('p.muted.small.card-error', null, `The lineage graph could not be loaded: ${graphError.message}`)
      : lineage.edges.length ? lineageGraph(lineage) : h('p.muted.small', null, 'No parents or descendants recorded.'));

  const [changes, card, aliases] = await Promise.all([
    changesCard(name, doc, params.get('compare') ?? ''),
    versionCard(name, doc, model),
    aliasCard(name, doc, model),
  ]);

  if (mine !== generation) return;
  render(head, warning ?? '', h('div.columns.version-columns', null,
    h('div.col-main', null, files, card ?? '', derivedCard(doc) ?? '', changes, graph, metadata),
    h('div.col-side', null, pullCard(name, doc, verdict), aliases ?? '', serveCard(name, doc) ?? '', summary)));
}

/**
 * The version's card: its README.md, else the model's card. A card that
 * cannot be read says so; the page stands without it.
 * @param {string} name @param {any} doc @param {any} model  the model document, or the error reading it
 */
async function versionCard(name, doc, model) {
  try {
    const readme = doc.files.find((/** @type {any} */ f) => /^readme\.md$/i.test(f.path));
    if (readme) {
      const text = await fileText(name, doc.version, readme.path, CARD_MAX);
      if (text !== undefined) return await modelCard(text, 'README.md');
    }
    if (model instanceof Error) throw model;
    return model.readme ? await modelCard(model.readme, 'the model’s card') : null;
  } catch (err) {
    return h('section.card', { 'data-section': 'card' }, h('h2.card-title', null, 'Model card'), h('p.muted.small.card-error', null, `Not shown: ${/** @type {Error} */ (err).message}`));
  }
}

/**
 * With write scope: point an alias (new or existing) of this model at this version, after a confirm.
 * @param {string} name @param {any} doc @param {any} model  the model document, or the error reading it
 */
async function aliasCard(name, doc, model) {
  if (!mayDo('write') || model instanceof Error) return null;
  const current = /** @type {Record<string, string>} */ (model.aliases ?? {});
  const input = /** @type {HTMLInputElement} */ (h('input', { name: 'alias', list: 'alias-options', placeholder: 'production', required: true, autocomplete: 'off', 'aria-label': 'Alias' }));
  const status = h('p.muted.small', { role: 'status' });
  const form = h('form.alias-form', {
    onsubmit: async (/** @type {Event} */ ev) => {
      ev.preventDefault();
      const alias = input.value.trim();
      const from = current[alias];
      if (from === doc.version) {
        status.textContent = `${alias} already points here.`;
        return;
      }
      const question = from ? `Move ${alias} of ${name} from ${from} to ${doc.version}?` : `Point the new alias ${alias} of ${name} at ${doc.version}?`;
      if (!window.confirm(question)) return;
      status.textContent = 'Saving…';
      try {
        await api(`/v1/models/${encName(name)}/aliases/${enc(alias)}`, {}, { method: 'PUT', body: { version: doc.version } });
        route();
      } catch (err) {
        status.textContent = `Not moved: ${/** @type {Error} */ (err).message}`;
      }
    },
  },
  h('div.row', null, input, h('button.btn', { type: 'submit' }, 'Point here')),
  h('datalist', { id: 'alias-options' }, ...['production', 'staging', ...Object.keys(current)].filter((a, i, all) => all.indexOf(a) === i).map((a) => h('option', { value: a }, current[a] ? `now ${current[a]}` : 'new'))));
  return h('section.card', { 'data-section': 'aliases' },
    h('h2.card-title', null, 'Aliases'),
    h('p.small', null, Object.keys(current).length
      ? Object.entries(current).map(([a, v]) => `${a} → ${v}`).join(' · ')
      : h('span.muted', null, 'This model has no aliases yet.')),
    form, status);
}

/**
 * How to get this version: tabs for the CLI, Hugging Face libraries and curl
 * (the archive; each file folded away), with a warning first on an unsafe version.
 * @param {string} name @param {any} doc @param {string} verdict
 */
function pullCard(name, doc, verdict) {
  const origin = location.origin;
  const versionUrl = `${origin}/v1/models/${encName(name)}/versions/${enc(doc.version)}`;
  const auth = '-H "Authorization: Bearer $CAIRN_TOKEN"';
  const fileName = (/** @type {string} */ p) => shellQuote(p.split('/').pop() ?? p);
  const tarName = shellQuote(`${name.replace(/\//g, '-')}-${doc.version}.tar`);
  const tabs = [
    ['cli', 'CLI', [
      h('p.muted.small', null, h('code', null, `CAIRN_URL=${origin}`), ' and ', h('code', null, 'CAIRN_TOKEN'), ' set:'),
      copyBox(`cairn pull ${name}@${doc.version}`, { label: 'pull command' }),
      ...(doc.aliases ?? []).map((/** @type {string} */ a) => copyBox(`cairn pull ${name}@${a}`, { label: `pull ${a}` })),
    ]],
    ['hf', 'Hugging Face', [
      h('p.muted.small', null, 'The Hub API under ', h('code', null, '/hf'), ':'),
      copyBox(
        `HF_ENDPOINT=${origin}/hf HF_TOKEN=$CAIRN_TOKEN python -c \\\n  'from huggingface_hub import snapshot_download; print(snapshot_download(${JSON.stringify(name)}, revision=${JSON.stringify(doc.version)}))'`,
        { label: 'Hugging Face snapshot_download' },
      ),
    ]],
    ['curl', 'curl', [
      h('p.muted.small', null, 'Every file as one tar:'),
      copyBox(`curl -fL ${auth} -o ${tarName} \\\n  ${versionUrl}/archive`, { label: 'archive command' }),
      copyBox(`${versionUrl}/archive`, { label: 'archive URL' }),
      h('details.each-file', null, h('summary', null, `Each file (${doc.files.length})`),
        ...doc.files.slice(0, 200).map((/** @type {any} */ f) => copyBox(`curl -fL ${auth} -o ${fileName(f.path)} \\\n  ${versionUrl}/files/${f.path.split('/').map(enc).join('/')}`, { label: `curl ${f.path}` })),
        doc.files.length > 200 ? h('p.muted.small', null, `The first 200 of ${doc.files.length}; the archive holds them all.`) : null),
    ]],
  ];
  const bar = h('div.tabs', { role: 'tablist', 'aria-label': 'How to pull' });
  const panels = tabs.map(([id, label, body], i) => {
    const tab = h('button.tab', { type: 'button', role: 'tab', id: `pull-tab-${id}`, 'aria-controls': `pull-${id}`, 'aria-selected': i === 0 ? 'true' : 'false', 'data-tab': id }, label);
    bar.append(tab);
    return h('div.tab-panel', { role: 'tabpanel', id: `pull-${id}`, 'aria-labelledby': `pull-tab-${id}`, hidden: i !== 0 }, ...body);
  });
  bar.addEventListener('click', (ev) => {
    const tab = /** @type {HTMLElement} */ (ev.target).closest('[role="tab"]');
    if (!tab) return;
    for (const t of bar.children) t.setAttribute('aria-selected', String(t === tab));
    for (const p of panels) p.hidden = p.id !== tab.getAttribute('aria-controls');
  });
  return h('section.card', { 'data-section': 'pull' },
    h('h2.card-title', null, 'Pull'),
    verdict === 'unsafe' ? h('p.pull-warning', { role: 'note' }, '⚠ This version has files that run code when loaded. Pull it only if you trust who published it.') : null,
    bar, ...panels);
}

/**
 * For a version made by `cairn derive`: what was done to which parent, and what was measured
 * (sizes raw and stored; per file, agreement with the parent and latency, or the round-trip error).
 * @param {any} doc
 */
function derivedCard(doc) {
  const edge = (doc.parents ?? []).find((/** @type {any} */ p) => p.recipe?.tool?.name === 'cairn derive' && p.recipe.results);
  if (!edge) return null;
  const r = edge.recipe;
  const num = (/** @type {any} */ x, digits = 4) => (typeof x === 'number' && Number.isFinite(x) ? String(Number(x.toPrecision(digits))) : 'n/a');
  const sizes = (/** @type {any} */ s) => (s ? `${bytes(s.before)} → ${bytes(s.after)}${typeof s.ratio === 'number' ? ` (${num(s.ratio)}×)` : ''}` : '—');
  const measured = (/** @type {any} */ f) => {
    const m = f.measured ?? {};
    if (f.format === 'onnx') {
      return h('span', null, ...(m.outputs ?? []).map((/** @type {any} */ o, /** @type {number} */ i) => h('span', { 'data-output': o.name }, i ? '; ' : '', h('code', null, o.name), ` cosine ${num(o.cosine, 7)}, max |err| ${num(o.max_abs_error, 3)}, mean |err| ${num(o.mean_abs_error, 3)}`)),
        m.latency_ms ? ` · median latency ${num(m.latency_ms.parent, 3)} → ${num(m.latency_ms.derived, 3)} ms` : '',
        m.samples ? h('span.muted', null, ` (${m.samples.count} ${m.samples.source === 'file' ? 'samples' : 'generated inputs'})`) : '');
    }
    return h('span', null, `round-trip max |err| ${num(m.max_abs_error, 3)} over ${(m.tensors ?? []).length} tensors`,
      typeof f.transform?.min_sparsity === 'number' ? ` · at least ${num(f.transform.min_sparsity)} zeros per pruned tensor` : '');
  };
  return h('section.card', { 'data-section': 'derived' },
    h('h2.card-title', null, 'Derived ', badge(edge.relation, 'relation'), ' ', h('span.muted', null, 'from '),
      edge.hidden ? h('span.muted', null, 'a version you may not read') : h('a.mono', { href: versionHref(edge.name, edge.version) }, `${edge.name}@${edge.version}`)),
    h('p.small', null, h('code', null, `${r.transform}${Object.keys(r.params ?? {}).length ? ` ${JSON.stringify(r.params)}` : ''}`),
      ` · size ${sizes(r.results.size)} · stored ${sizes(r.results.stored)}`, h('span.muted', null, ` · cairn derive ${r.tool.derive_version}, ${r.tool.onnxruntime ?? ''}`)),
    h('table.data.stack', null,
      h('thead', null, h('tr', null, h('th', null, 'Path'), h('th.num', null, 'Size'), h('th.num', null, 'Stored'), h('th', null, 'Measured against the parent'))),
      h('tbody', null, ...(r.results.files ?? []).map((/** @type {any} */ f) => h('tr', { 'data-derived': f.path },
        cell('Path', '.mono.path', f.path),
        cell('Size', '.num', sizes(f.size)),
        cell('Stored', '.num', sizes(f.stored)),
        cell('Measured', '', measured(f)))))));
}

const OIP_DATATYPES = /** @type {Record<string, string>} */ ({ float32: 'FP32', float64: 'FP64', float16: 'FP16', int8: 'INT8', uint8: 'UINT8', int16: 'INT16', uint16: 'UINT16', int32: 'INT32', uint32: 'UINT32', int64: 'INT64', uint64: 'UINT64', bool: 'BOOL', string: 'BYTES' });

/**
 * For a version with an ONNX model: how to serve it with `cairn infer`, and
 * a predict request (TF Serving REST and the Open Inference Protocol) with
 * the model's input names, zeros standing in for the data.
 * @param {string} name @param {any} doc
 */
function serveCard(name, doc) {
  const inputs = doc.summary?.inputs ?? [];
  if (!(doc.summary?.formats ?? []).includes('onnx') || inputs.length === 0) return null;
  // symbolic dims (batch, length …) as 1: placeholders to replace with real data
  const shapes = inputs.map((/** @type {any} */ t) => (t.shape ?? []).map((/** @type {number|string} */ d) => (typeof d === 'number' && d >= 0 ? d : 1)));
  const zero = (/** @type {string} */ dtype) => (dtype === 'bool' ? 'false' : dtype === 'string' ? '""' : '0');
  const tf = `{inputs:{${inputs.map((/** @type {any} */ t, /** @type {number} */ i) => `${JSON.stringify(t.name)}:z(${JSON.stringify(shapes[i])},${zero(t.dtype)})`).join(',')}}}`;
  const oip = `{inputs:[${inputs.map((/** @type {any} */ t, /** @type {number} */ i) => `{name:${JSON.stringify(t.name)},shape:${JSON.stringify(shapes[i])},datatype:${JSON.stringify(OIP_DATATYPES[t.dtype] ?? t.dtype)},data:z([${shapes[i].reduce((/** @type {number} */ a, /** @type {number} */ b) => a * b, 1)}],${zero(t.dtype)})}`).join(',')}]}`;
  const body = (/** @type {string} */ doc) => `node -e 'const z=(s,v)=>s.length?Array.from({length:s[0]},()=>z(s.slice(1),v)):v; console.log(JSON.stringify(${doc}))'`;
  return h('section.card', { 'data-section': 'serve' },
    h('h2.card-title', null, 'Serve'),
    h('p.muted.small', null, 'Serve this version with ', h('code', null, 'cairn infer'), ' (port 8500; ', h('code', null, 'CAIRN_URL'), ' and ', h('code', null, 'CAIRN_TOKEN'), ' set):'),
    copyBox(`cairn infer ${name}@${doc.version}`, { label: 'infer command' }),
    h('p.muted.small', null, 'Predict (TF Serving REST); zeros stand in for your data, dims that vary as 1:'),
    copyBox(`${body(tf)} |\n  curl -s -d @- http://127.0.0.1:8500/v1/models/${encName(name)}:predict`, { label: 'predict command' }),
    h('p.muted.small', null, 'The same with the Open Inference Protocol:'),
    copyBox(`${body(oip)} |\n  curl -s -d @- http://127.0.0.1:8500/v2/models/${encName(name)}/infer`, { label: 'infer request' }));
}

/**
 * What changed from another version: `compare` (any `<name>@<ref>` the user
 * picked), else the first parent the user may read, else the model's previous
 * version. Files (renames by digest; size, format, parameter and dtype deltas),
 * metadata keys, and the bytes the two share. A base that is gone or refused
 * is said in this card; the page stands.
 * @param {string} name @param {any} doc @param {string} compare
 */
async function changesCard(name, doc, compare) {
  const parent = doc.parents?.find((/** @type {any} */ p) => !p.hidden);
  let base = compare || (parent ? `${parent.name}@${parent.version}` : undefined);
  const section = (/** @type {any[]} */ ...body) => h('section.card', { 'data-section': 'changes' }, ...body, comparePicker(name, doc, compare));
  try {
    if (!base) {
      const page = await api(`/v1/models/${encName(name)}/versions`, { limit: 100 });
      const at = page.versions.findIndex((/** @type {any} */ v) => v.version === doc.version);
      if (at >= 0 && page.versions[at + 1]) base = `${name}@${page.versions[at + 1].version}`;
    }
    if (!base) return section(h('h2.card-title', null, 'Changes'), h('p.muted.small', null, 'The first version: nothing earlier to compare with.'));
    const diff = await api(`/v1/models/${encName(name)}/versions/${enc(doc.version)}/diff`, { from: base });
    return section(...diffView(diff, !compare && parent ? 'parent' : compare ? 'picked' : 'previous'));
  } catch (err) {
    if (!(err instanceof ApiError) || err.status === 401) throw err;
    const gone = err.code === 'VERSION_DELETED';
    const what = compare ? base : parent ? `the parent ${base}` : base;
    return section(
      h('h2.card-title', null, 'Changes'),
      h('p.small.card-error', { 'data-base-error': err.code }, gone && !compare && parent ? `Parent deleted: ${base} is gone, so there is nothing to compare with. ` : `${what} cannot be compared: ${err.message}. `, 'Pick another version below.'));
  }
}

/**
 * @param {any} diff @param {'parent' | 'previous' | 'picked'} basis
 * @returns {Node[]}
 */
function diffView(diff, basis) {
  const s = diff.summary;
  const pct = (/** @type {number} */ part, /** @type {number} */ whole) => (whole ? `${((100 * part) / whole).toFixed(1)}%` : '—');
  const signed = (/** @type {number} */ n, /** @type {(n: number) => string} */ fmt) => (n > 0 ? `+${fmt(n)}` : n < 0 ? `−${fmt(-n)}` : '±0');
  const changed = diff.files.filter((/** @type {any} */ f) => f.status !== 'unchanged');
  const FOLD = 100;
  const fromKey = `${diff.from.name}@${diff.from.version}`;
  const paramsLine = s.from_parameters !== null || s.to_parameters !== null
    ? ` · parameters ${count(s.from_parameters)} → ${count(s.to_parameters)}`
    : '';
  /** @param {any} f */
  const details = (f) => {
    const d = f.delta;
    if (f.status === 'renamed') return h('span.small', null, 'from ', h('code', null, f.from_path), ' (same content)');
    if (!d) return null;
    const parts = [
      d.format ? h('span', { 'data-delta': 'format' }, `format ${d.format.from} → ${d.format.to}`) : null,
      d.parameters ? h('span', { 'data-delta': 'parameters' }, `parameters ${count(d.parameters.from)} → ${count(d.parameters.to)}`) : null,
      ...Object.entries(d.dtypes ?? {}).map(([dtype, c]) => h('span', { 'data-delta': 'dtype', 'data-dtype': dtype }, `${dtype} ${count(/** @type {any} */ (c).from)} → ${count(/** @type {any} */ (c).to)}`)),
    ].filter((p) => p !== null);
    if (parts.length === 0) return h('span.muted.small', null, 'content');
    return h('span.delta.small', null, ...parts.flatMap((p, i) => (i ? ['; ', p] : [p])));
  };
  const metaValue = (/** @type {unknown} */ v) => (v === undefined ? h('span.muted', null, '—') : h('code', null, typeof v === 'string' ? v : JSON.stringify(v)));
  return [
    h('h2.card-title', null, basis === 'parent' ? 'Changes from the parent ' : basis === 'previous' ? 'Changes from the previous version ' : 'Compared with ',
      h('a.mono', { href: versionHref(diff.from.name, diff.from.version), 'data-base': fromKey }, fromKey)),
    h('p.small.diff-summary', null, `${s.changed} changed, ${s.renamed} renamed, ${s.added} added, ${s.removed} removed, ${s.unchanged} unchanged · size ${bytes(s.from_bytes)} → ${bytes(s.to_bytes)} (${signed(s.to_bytes - s.from_bytes, bytes)})${paramsLine} · `,
      h('strong', null, pct(s.shared_bytes, s.to_bytes)), ` already stored with it, ${bytes(s.new_stored_bytes)} new`),
    changed.length ? foldedTable(changed, FOLD, 'changed files',
      h('thead', null, h('tr', null, h('th', null, 'Path'), h('th', null, 'Change'), h('th.num', null, 'Size'), h('th', null, 'What changed'))),
      (/** @type {any} */ f) => h('tr', { 'data-change': f.path, 'data-status': f.status },
        cell('Path', '.mono.path', f.path),
        cell('Change', '', badge(f.status, f.status === 'removed' ? 'muted' : f.status === 'renamed' ? 'relation' : 'format')),
        cell('Size', '.num', f.from && f.to && f.from.size !== f.to.size ? `${bytes(f.from.size)} → ${bytes(f.to.size)}` : bytes((f.to ?? f.from)?.size)),
        cell('What changed', '', details(f))))
      : h('p.muted.small', null, 'The same files.'),
    diff.metadata.length
      ? h('div.meta-diff', null, h('h3', null, 'Metadata'),
        h('table.data.stack', null,
          h('thead', null, h('tr', null, h('th', null, 'Key'), h('th', null, 'Change'), h('th', null, 'Before'), h('th', null, 'After'))),
          h('tbody', null, ...diff.metadata.map((/** @type {any} */ m) => h('tr', { 'data-meta': m.key, 'data-status': m.status },
            cell('Key', '.mono', m.key), cell('Change', '', badge(m.status, 'muted')), cell('Before', '.value', metaValue(m.from)), cell('After', '.value', metaValue(m.to)))))))
      : h('p.muted.small', null, 'Metadata: the same.'),
  ];
}

/**
 * "Compare with…": any version or alias of any model the user can read.
 * The model field offers models as one types; the ref field that model's
 * versions and aliases.
 * @param {string} name @param {any} doc @param {string} compare
 */
function comparePicker(name, doc, compare) {
  const at = compare.lastIndexOf('@');
  const modelInput = /** @type {HTMLInputElement} */ (h('input', { name: 'compare-model', list: 'compare-models', value: at > 0 ? compare.slice(0, at) : name, autocomplete: 'off', 'aria-label': 'Model to compare with', required: true }));
  const refInput = /** @type {HTMLInputElement} */ (h('input', { name: 'compare-ref', list: 'compare-refs', value: at > 0 ? compare.slice(at + 1) : '', placeholder: 'version or alias', autocomplete: 'off', 'aria-label': 'Version or alias to compare with', required: true }));
  const models = h('datalist', { id: 'compare-models' });
  const refs = h('datalist', { id: 'compare-refs' });
  const loadRefs = async () => {
    const model = modelInput.value.trim();
    if (!model) return;
    try {
      const [versions, info] = await Promise.all([api(`/v1/models/${encName(model)}/versions`, { limit: 100 }), api(`/v1/models/${encName(model)}`)]);
      refs.replaceChildren(
        ...Object.entries(info.aliases ?? {}).map(([a, v]) => h('option', { value: a }, `alias → ${v}`)),
        ...versions.versions.filter((/** @type {any} */ v) => !(model === name && v.version === doc.version)).map((/** @type {any} */ v) => h('option', { value: v.version }, (v.message ?? '').split('\n')[0].slice(0, 60))));
    } catch {
      refs.replaceChildren();
    }
  };
  /** @type {number | undefined} */
  let timer;
  modelInput.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const page = await api('/v1/models', { q: modelInput.value.trim(), limit: 20 }).catch(() => ({ models: [] }));
      models.replaceChildren(...page.models.map((/** @type {any} */ m) => h('option', { value: m.name })));
      loadRefs();
    }, 250);
  });
  refInput.addEventListener('focus', () => {
    if (!refs.children.length) loadRefs();
  }, { once: true });
  return h('form.compare', {
    'aria-label': 'Compare with another version',
    onsubmit: (/** @type {Event} */ ev) => {
      ev.preventDefault();
      const target = `${modelInput.value.trim()}@${refInput.value.trim()}`;
      location.hash = `${versionHref(name, doc.version)}?compare=${enc(target)}`;
    },
  },
  h('span.small.compare-label', null, 'Compare with…'),
  modelInput, h('span.at', null, '@'), refInput, models, refs,
  h('button.btn', { type: 'submit' }, 'Compare'));
}

/** @param {string} s */
function shellQuote(s) {
  return /^[\w./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

// ---- lineage graph -------------------------------------------------------------

/**
 * A layered drawing of a lineage graph. A node's row is its generation: the
 * longest path from a node with no parent, so every parent sits above all its
 * children even when a model has several paths back. Each edge runs from
 * parent down to child, labelled in that direction (`quantized` for
 * quantized-from) with its recipe; deleted versions are drawn but not links.
 * @param {{ root: { name: string, version: string }, nodes: any[], edges: Array<{ from: string, to: string, relation: string, recipe?: unknown }> }} g
 */
function lineageGraph(g) {
  const key = (/** @type {{name: string, version: string}} */ n) => `${n.name}@${n.version}`;
  const rootKey = key(g.root);
  /** @type {Map<string, any>} */
  const nodes = new Map(g.nodes.map((n) => [key(n), n]));
  for (const e of g.edges) for (const k of [e.from, e.to]) if (!nodes.has(k)) nodes.set(k, { name: k.slice(0, k.lastIndexOf('@')), version: k.slice(k.lastIndexOf('@') + 1), deleted: false });
  // edges go child (from) → parent (to)
  /** @type {Map<string, string[]>} */
  const parentsOf = new Map();
  /** @type {Map<string, string[]>} */
  const childrenOf = new Map();
  for (const e of g.edges) {
    parentsOf.set(e.from, [...(parentsOf.get(e.from) ?? []), e.to]);
    childrenOf.set(e.to, [...(childrenOf.get(e.to) ?? []), e.from]);
  }
  /** @type {Map<string, number>} */
  const generation = new Map();
  /** @param {string} k @param {Set<string>} path @returns {number} */
  const genOf = (k, path) => {
    const known = generation.get(k);
    if (known !== undefined) return known;
    if (path.has(k)) return 0; // a cycle cannot be recorded; never loop on one
    path.add(k);
    const gen = Math.max(-1, ...(parentsOf.get(k) ?? []).map((p) => genOf(p, path))) + 1;
    path.delete(k);
    generation.set(k, gen);
    return gen;
  };
  for (const k of nodes.keys()) genOf(k, new Set());
  /** @param {string} start @param {Map<string, string[]>} next */
  const reach = (start, next) => {
    const seen = new Set();
    const queue = [start];
    while (queue.length) for (const k of next.get(/** @type {string} */ (queue.shift())) ?? []) if (!seen.has(k)) queue.push(k), seen.add(k);
    return seen;
  };
  const ancestors = reach(rootKey, parentsOf);
  const descendants = reach(rootKey, childrenOf);

  const depth = Math.max(...generation.values());
  /** @type {string[][]} */
  const rows = Array.from({ length: depth + 1 }, () => []);
  for (const [k, gen] of generation) rows[gen].push(k);
  // order each row by where its parents are (fewer crossings), then by name
  /** @type {Map<string, number>} */
  const order = new Map();
  for (const row of rows) {
    const at = (/** @type {string} */ k) => {
      const ps = (parentsOf.get(k) ?? []).map((p) => order.get(p) ?? 0);
      return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : 0;
    };
    row.sort((a, b) => at(a) - at(b) || a.localeCompare(b));
    row.forEach((k, i) => order.set(k, i - (row.length - 1) / 2));
  }

  const W = 200, H = 46, GAP_X = 36, GAP_Y = 78, PAD = 16;
  const widest = Math.max(...rows.map((r) => r.length));
  const width = PAD * 2 + widest * W + (widest - 1) * GAP_X;
  const height = PAD * 2 + rows.length * H + (rows.length - 1) * GAP_Y;
  /** @type {Map<string, {x: number, y: number}>} */
  const pos = new Map();
  rows.forEach((row, i) => {
    const rowWidth = row.length * W + (row.length - 1) * GAP_X;
    const x0 = (width - rowWidth) / 2;
    row.forEach((k, j) => pos.set(k, { x: x0 + j * (W + GAP_X), y: PAD + i * (H + GAP_Y) }));
  });

  const root = svg('svg', { class: 'lineage', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': `Lineage of ${rootKey}` });
  const defs = svg('defs');
  const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' });
  marker.append(svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow-head' }));
  defs.append(marker);
  root.append(defs);

  for (const e of g.edges) {
    const parent = pos.get(e.to);
    const child = pos.get(e.from);
    if (!parent || !child) continue;
    const x1 = parent.x + W / 2, y1 = parent.y + H;
    const x2 = child.x + W / 2, y2 = child.y;
    // the label sits in the gap just above the child, where no node is
    const ly = y2 - GAP_Y / 2;
    const lx = x1 + ((x2 - x1) * (ly - y1)) / (y2 - y1 || 1);
    const group = svg('g', { class: 'edge', 'data-parent': e.to, 'data-child': e.from, 'data-relation': e.relation });
    const title = svg('title');
    const recipe = recipeText(e.recipe);
    title.textContent = `${e.to} → ${e.from}: ${e.relation}${recipe ? ` (${recipe})` : ''}`;
    group.append(title, svg('path', { d: `M${x1},${y1} L${x2},${y2 - 1}`, 'marker-end': 'url(#arrow)', 'data-y1': y1, 'data-y2': y2 }));
    const text = e.relation.replace(/-from$/, '');
    const bgW = Math.max(text.length + 2, Math.min(recipe.length, 40)) * 6.2 + 14;
    const bgH = recipe ? 30 : 18;
    group.append(svg('rect', { x: lx - bgW / 2, y: ly - 9, width: bgW, height: bgH, rx: 9, class: 'edge-label-bg' }));
    const label = svg('text', { x: lx, y: ly + 4, 'text-anchor': 'middle', class: 'edge-label' });
    label.textContent = `${text} ↓`;
    group.append(label);
    if (recipe) {
      const r = svg('text', { x: lx, y: ly + 16, 'text-anchor': 'middle', class: 'edge-recipe' });
      r.textContent = ellipsis(recipe, 40);
      group.append(r);
    }
    root.append(group);
  }

  for (const [k, p] of pos) {
    const n = nodes.get(k);
    const kind = k === rootKey ? 'root' : ancestors.has(k) ? 'ancestor' : descendants.has(k) ? 'descendant' : 'related';
    const attrs = { class: `node node-${kind}${n.deleted ? ' node-deleted' : ''}`, 'data-node': k, 'data-kind': kind, 'data-generation': generation.get(k) ?? 0 };
    // a deleted version has no page: drawn, not a link
    const el = n.deleted || k === rootKey ? svg('g', attrs) : svg('a', { ...attrs, href: versionHref(n.name, n.version) });
    const title = svg('title');
    title.textContent = `${k}${n.deleted ? ' (deleted)' : ''} — ${kind}`;
    el.append(title, svg('rect', { x: p.x, y: p.y, width: W, height: H, rx: 8 }));
    const nameText = svg('text', { x: p.x + W / 2, y: p.y + 19, 'text-anchor': 'middle', class: 'node-name' });
    nameText.textContent = ellipsis(n.name, 26);
    const versionText = svg('text', { x: p.x + W / 2, y: p.y + 35, 'text-anchor': 'middle', class: 'node-version' });
    versionText.textContent = `@${ellipsis(n.version, 22)}${n.deleted ? ' · deleted' : ''}`;
    el.append(nameText, versionText);
    root.append(el);
  }
  return h('div.graph-wrap', null, root, h('p.muted.small.legend', null, 'Parents above their children; arrows point from parent to child. Dashed: deleted.'));
}

/** @param {string} s @param {number} n */
function ellipsis(s, n) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

// ---- token ------------------------------------------------------------------

/** @param {string} value */
function saveToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
  syncTokenForm();
}

/** The token `me` describes: whoami is asked again only when it changes. */
let meFor = /** @type {string | null} */ (null);

/** Asks the server who the saved token is; shows it in the account menu. */
async function loadMe() {
  if (meFor === token()) return;
  meFor = token();
  try {
    me = await api('/v1/whoami');
  } catch {
    me = null;
  }
  const who = /** @type {HTMLElement} */ (document.getElementById('who'));
  const detail = /** @type {HTMLElement} */ (document.getElementById('who-detail'));
  who.textContent = me ? me.name : 'Token';
  detail.replaceChildren(...(me
    ? [me.auth ? 'Token ' : 'No authentication on this server: ', h('strong', null, me.name), h('br'),
      'Scopes: ', me.scopes.join(', '), h('br'),
      'Models: ', me.models.length ? me.models.join(', ') : 'all']
    : [token() ? 'The saved token was not accepted.' : 'No token saved.']));
  document.body.dataset.scope = me?.scope ?? '';
}

function syncTokenForm() {
  const input = /** @type {HTMLInputElement} */ (document.getElementById('token-input'));
  input.value = '';
  input.placeholder = token() ? 'paste another token' : 'cairn_…';
  document.body.dataset.signedIn = token() ? 'yes' : 'no';
}

function setupTokenForm() {
  const form = /** @type {HTMLFormElement} */ (document.getElementById('token-form'));
  const input = /** @type {HTMLInputElement} */ (document.getElementById('token-input'));
  const account = /** @type {HTMLDetailsElement} */ (document.getElementById('account'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    saveToken(input.value.trim());
    account.open = false;
    route();
  });
  document.getElementById('token-clear')?.addEventListener('click', () => {
    saveToken('');
    account.open = false;
    route();
  });
  // the menu closes on a click elsewhere and on Escape
  document.addEventListener('click', (ev) => {
    if (account.open && !account.contains(/** @type {Node} */ (ev.target))) account.open = false;
  });
  account.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') account.open = false;
  });
  syncTokenForm();
}

// ---- router -------------------------------------------------------------------

let generation = 0;

/**
 * `<name>` or `<name>/versions/<ref>`, the name one segment or two: two when
 * the second is not `versions` — the server's rule (no part of a model name
 * is a reserved word such as `versions`).
 * @param {string[]} parts decoded segments after `models`
 * @returns {{view: 'model', name: string} | {view: 'version', name: string, ref: string} | undefined}
 */
function modelPage(parts) {
  const n = parts.length >= 2 && parts[1] !== 'versions' ? 2 : 1;
  const name = parts.slice(0, n).join('/');
  const rest = parts.slice(n);
  if (name === '') return undefined;
  if (rest.length === 0) return { view: 'model', name };
  if (rest.length === 2 && rest[0] === 'versions') return { view: 'version', name, ref: rest[1] };
  return undefined;
}

async function route() {
  const mine = ++generation;
  const hash = location.hash;
  const raw = hash.replace(/^#/, '') || '/';
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  const page = parts[0] === 'models' ? modelPage(parts.slice(1)) : undefined;
  main.setAttribute('aria-busy', 'true');
  // another page: the old one goes at once (a filter change on the list keeps its form)
  if (!(parts.length === 0 && main.dataset.route === 'list')) render(h('p.muted.loading', { role: 'status' }, 'Loading…'));
  try {
    await loadMe();
    if (mine !== generation) return;
    if (parts.length === 0) await listView(new URLSearchParams(query));
    else if (page?.view === 'model') await modelView(page.name);
    else if (page?.view === 'version') await versionView(page.name, page.ref, new URLSearchParams(query));
    else throw new ApiError(404, 'NOT_FOUND', `no page ${raw}`);
  } catch (err) {
    if (mine === generation) showError(err);
  } finally {
    if (mine === generation) {
      main.removeAttribute('aria-busy');
      main.dataset.route = page?.view ?? (parts[0] === 'models' ? 'model' : 'list');
      main.dataset.loaded = hash; // which address the page shows (tests wait on it)
    }
  }
}

setupTokenForm();
window.addEventListener('hashchange', () => {
  route();
  window.scrollTo(0, 0);
});
route();
