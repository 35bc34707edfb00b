// Cairn web UI: a dependency-free single-page app over the REST API (/v1).
// Plain modern JS with JSDoc, served as-is (no build step). Hash routes:
//   #/                                   model list (search, filters, "Load more")
//   #/models/<name>                      model: aliases, versions, history
//   #/models/<name>/versions/<version>   version: files, summary, lineage, pull commands
// <name> is `resnet` or `acme/resnet`, its slash as is (as in the REST API's paths).
// The API token lives in localStorage and goes out as `Authorization: Bearer`.

const TOKEN_KEY = 'cairn.token';
const PAGE = 50;
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

/** @param {...Node} nodes */
function render(...nodes) {
  main.replaceChildren(...nodes);
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
 * GET a JSON document from the API.
 * @param {string} path
 * @param {Record<string, string | number | null | undefined>} [query]
 * @returns {Promise<any>}
 */
async function api(path, query = {}) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  const url = params.size ? `${path}?${params}` : path;
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  let res;
  try {
    res = await fetch(url, { headers });
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

/** @param {URLSearchParams} params */
async function listView(params) {
  setCrumbs([['Models']]);
  document.title = 'Models · Cairn';
  const q = params.get('q') ?? '';
  const format = params.get('format') ?? '';
  const framework = params.get('framework') ?? '';
  const unsafe = params.get('unsafe') ?? '';

  /** @param {string} name @param {string} label @param {string[]} options @param {string} value */
  const select = (name, label, options, value) =>
    h('label.field', null, h('span', null, label),
      h('select', { name }, h('option', { value: '' }, 'Any'), ...options.map((o) => h('option', { value: o, selected: o === value }, o))));

  const search = /** @type {HTMLInputElement} */ (h('input', { type: 'search', name: 'q', value: q, placeholder: 'Search models by name or description', 'aria-label': 'Search models', autocomplete: 'off' }));
  const unsafeSelect = h('label.field', null, h('span', null, 'Safety'),
    h('select', { name: 'unsafe' },
      h('option', { value: '' }, 'Any'),
      h('option', { value: 'true', selected: unsafe === 'true' }, 'Has unsafe files'),
      h('option', { value: 'false', selected: unsafe === 'false' }, 'No unsafe files')));
  const form = /** @type {HTMLFormElement} */ (h('form.filters', { role: 'search' },
    h('div.search-box', null, search),
    select('format', 'Format', FORMATS, format),
    select('framework', 'Framework', FRAMEWORKS, framework),
    unsafeSelect));
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
  form.addEventListener('change', (ev) => {
    if (ev.target !== search) apply();
  });

  const tbody = h('tbody');
  const footer = h('div.pager');
  const table = h('table.data.models-table', null,
    h('thead', null, h('tr', null, h('th', null, 'Model'), h('th', null, 'Latest'), h('th.num', null, 'Versions'), h('th', null, 'Updated'))),
    tbody);
  const filtered = Boolean(q || format || framework || unsafe);
  render(h('section.page-head', null, h('h1', null, 'Models'), h('p.muted', null, 'Versioned models in this registry. Search by name or description, or filter by what the files are.')),
    form, h('section.card.flush', null, table, footer));
  if (!search.value) search.focus();

  /** @param {any} m */
  const row = (m) => h('tr', { 'data-model': m.name },
    h('td', null, h('a.model-link', { href: modelHref(m.name) }, m.name), m.description ? h('div.muted.small.desc', null, m.description) : null),
    h('td', null, m.latest_version ? h('a.mono', { href: versionHref(m.name, m.latest_version) }, m.latest_version) : h('span.muted', null, '—')),
    h('td.num', null, count(m.versions)),
    h('td.muted', null, when(m.updated_at)));
  await paginate(async (cursor) => {
    const page = await api('/v1/models', { q, format, framework, unsafe, cursor, limit: PAGE });
    return { items: page.models, next: page.next_cursor };
  }, row, tbody, footer, () => {
    tbody.append(h('tr', null, h('td.empty', { colspan: 4 }, filtered ? 'No model matches these filters.' : 'No models yet. Publish one with cairn push name@version file…')));
  });
}

/** @param {string} name */
async function modelView(name) {
  setCrumbs([['Models', '#/'], [name]]);
  document.title = `${name} · Cairn`;
  const model = await api(`/v1/models/${encName(name)}`);

  const aliases = Object.entries(model.aliases ?? {});
  const aliasList = h('div.chips', null,
    model.latest ? h('a.chip', { href: versionHref(name, model.latest.version), title: 'the most recently published version' }, h('span.chip-key', null, 'latest'), h('span.chip-val', null, model.latest.version)) : null,
    ...aliases.map(([alias, version]) => h('a.chip', { href: versionHref(name, String(version)), 'data-alias': alias }, h('span.chip-key', null, alias), h('span.chip-val', null, String(version)))));

  const versionRows = h('tbody');
  const versionFooter = h('div.pager');
  const versions = h('section.card.flush', null,
    h('h2.card-title', null, 'Versions ', h('span.muted.count', null, String(model.counts?.versions ?? ''))),
    h('table.data.versions-table', null,
      h('thead', null, h('tr', null, h('th', null, 'Version'), h('th', null, 'Published'), h('th.num', null, 'Size'), h('th', null, 'Message'))),
      versionRows),
    versionFooter);

  const events = h('ol.timeline');
  const historyFooter = h('div.pager');
  const cloneUrl = `${location.origin}/git/lineage.git`;
  const history = h('section.card', null,
    h('h2.card-title', null, 'History'),
    h('p.muted.small', null, 'Every change is a commit in the lineage repository. Clone it, then inspect any commit:'),
    copyBox(`git clone ${cloneUrl}`, { label: 'clone command' }),
    events, historyFooter);

  render(
    h('section.page-head', null,
      h('h1', null, name),
      model.description ? h('p', null, model.description) : null,
      h('p.muted.small', null, `${count(model.counts?.versions)} version${model.counts?.versions === 1 ? '' : 's'} · created ${when(model.created_at)} · updated ${when(model.updated_at)}`),
      aliasList),
    h('div.columns', null, h('div.col-main', null, versions), h('div.col-side', null, history)));

  /** @param {any} v */
  const versionRow = (v) => h('tr', { 'data-version': v.version },
    h('td', null, h('a.mono.version-link', { href: versionHref(name, v.version) }, v.version), ' ', h('span.muted.small', null, `#${v.number}`), ...(v.aliases ?? []).map((/** @type {string} */ a) => h('span', null, ' ', badge(a, 'alias')))),
    h('td', null, h('div', null, when(v.created_at)), h('div.muted.small', null, v.created_by)),
    h('td.num', null, bytes(v.size)),
    h('td.msg', null, v.message || h('span.muted', null, '—')));

  /** @param {any} e */
  const eventRow = (e) => h('li.event', { 'data-event': e.event, 'data-commit': e.commit ?? '' },
    h('span.dot', { class: `dot-${e.event}`, 'aria-hidden': 'true' }),
    h('div.event-body', null,
      h('div.event-subject', null, e.version && e.event === 'publish' ? h('a', { href: versionHref(name, e.version) }, e.subject) : e.subject),
      h('div.muted.small', null, `${e.author} · ${when(e.time)}`),
      e.message && e.event !== 'publish' ? h('div.small', null, e.message) : null,
      e.commit
        ? h('div.commit', null,
          h('code.commit-id', { title: e.commit }, e.commit.slice(0, 7)),
          copyBox(`git show ${e.commit}`, { inline: true, label: `git show ${e.commit.slice(0, 7)}` }))
        : h('div.commit.muted.small', null, 'commit pending (the git mirror has not written it yet)')));

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

/** @param {string} name @param {string} ref */
async function versionView(name, ref) {
  setCrumbs([['Models', '#/'], [name, modelHref(name)], [ref]]);
  document.title = `${name}@${ref} · Cairn`;
  const [doc, lineage] = await Promise.all([
    api(`/v1/models/${encName(name)}/versions/${enc(ref)}`),
    api(`/v1/models/${encName(name)}/versions/${enc(ref)}/lineage`),
  ]);
  const s = doc.summary ?? {};
  const verdict = s.safety?.verdict ?? 'unknown';

  const head = h('section.page-head', null,
    h('h1', null, h('a.plain', { href: modelHref(name) }, name), h('span.at', null, '@'), h('span.mono', null, doc.version)),
    h('div.badges', null, safetyBadge(verdict), ...(s.formats ?? []).map((/** @type {string} */ f) => badge(f, 'format')), s.framework && !(s.formats ?? []).includes(s.framework) ? badge(s.framework, 'framework') : null, ...(doc.aliases ?? []).map((/** @type {string} */ a) => badge(a, 'alias'))),
    doc.message ? h('p.message', null, doc.message) : null,
    h('p.muted.small', null, `#${doc.number} · published ${when(doc.created_at)} by ${doc.created_by} · ${bytes(doc.size)} in ${doc.files.length} file${doc.files.length === 1 ? '' : 's'} · `, h('code', { title: doc.digest }, shortDigest(doc.digest))));

  const warning = verdict === 'unsafe'
    ? h('section.card.danger-card', { role: 'note' },
      h('strong', null, 'Loading this version runs code. '),
      'These files run code when loaded: ',
      ...(s.safety.unsafe_files ?? []).map((/** @type {any} */ u, /** @type {number} */ i) => h('span', null, i ? ', ' : '', h('code', null, u.path), ` (${u.findings.map((/** @type {any} */ f) => f.global).join(', ')})`)),
      '. Only load them if you trust who published them.')
    : null;

  const origin = location.origin;
  const pullRef = `${name}@${doc.version}`;
  const curls = doc.files.map((/** @type {any} */ f) =>
    `curl -fL -H "Authorization: Bearer $CAIRN_TOKEN" -o ${shellQuote(f.path.split('/').pop())} \\\n  ${origin}/v1/models/${encName(name)}/versions/${enc(doc.version)}/files/${f.path.split('/').map(enc).join('/')}`);
  const pull = h('section.card', { 'data-section': 'pull' },
    h('h2.card-title', null, 'Pull'),
    h('p.muted.small', null, 'With the CLI (', h('code', null, `CAIRN_URL=${origin}`), ' and ', h('code', null, 'CAIRN_TOKEN'), ' set):'),
    copyBox(`cairn pull ${pullRef}`, { label: 'pull command' }),
    h('p.muted.small', null, 'Or each file with curl:'),
    ...curls.map((/** @type {string} */ c, /** @type {number} */ i) => copyBox(c, { label: `curl ${doc.files[i].path}` })),
    h('p.muted.small', null, 'Everything as one tar: ', h('code', null, `…/versions/${doc.version}/archive`)),
    h('p.muted.small', null, 'With Hugging Face libraries (the Hub API under ', h('code', null, '/hf'), '):'),
    copyBox(
      `HF_ENDPOINT=${origin}/hf HF_TOKEN=$CAIRN_TOKEN python -c \\\n  'from huggingface_hub import snapshot_download; print(snapshot_download(${JSON.stringify(name)}, revision=${JSON.stringify(doc.version)}))'`,
      { label: 'Hugging Face snapshot_download' },
    ));

  const files = h('section.card.flush', null,
    h('h2.card-title', null, 'Files'),
    h('table.data.files-table', null,
      h('thead', null, h('tr', null, h('th', null, 'Path'), h('th', null, 'Format'), h('th.num', null, 'Size'), h('th.num', null, 'Parameters'), h('th', null, 'Digest'), h('th', null, 'Safety'))),
      h('tbody', null, ...doc.files.map((/** @type {any} */ f) => h('tr', { 'data-file': f.path },
        h('td.mono.path', null, f.path),
        h('td', null, badge(f.format, f.format === 'unknown' ? 'muted' : 'format')),
        h('td.num', null, bytes(f.size)),
        h('td.num', null, f.parameters !== undefined ? count(f.parameters) : h('span.muted', null, '—')),
        h('td', null, h('code.digest', { title: f.digest }, shortDigest(f.digest))),
        h('td', null, safetyBadge(f.safety?.verdict ?? 'unknown'),
          f.safety?.findings?.length ? h('ul.findings', null, ...f.safety.findings.map((/** @type {any} */ x) => h('li', null, h('code', null, x.global), x.reason ? h('span.muted', null, ` — ${x.reason}`) : ''))) : null))))));

  /** @param {any[]} tensors */
  const tensorList = (tensors) => tensors?.length
    ? h('ul.tensors', null, ...tensors.map((t) => h('li', null, h('code', null, t.name), ' ', h('span.muted', null, `${t.dtype ?? ''} [${(t.shape ?? []).join(', ')}]`))))
    : h('span.muted', null, '—');
  const dtypes = Object.entries(s.dtypes ?? {});
  const summary = h('section.card', null,
    h('h2.card-title', null, 'Summary'),
    h('dl.facts', null,
      h('dt', null, 'Framework'), h('dd', null, s.framework ?? h('span.muted', null, 'unknown')),
      h('dt', null, 'Parameters'), h('dd', null, s.parameters !== null && s.parameters !== undefined ? `${count(s.parameters)} (${s.parameters.toLocaleString('en-US')})` : h('span.muted', null, '—')),
      h('dt', null, 'Dtypes'), h('dd', null, dtypes.length ? dtypes.map(([k, v]) => `${k} × ${count(Number(v))}`).join(', ') : h('span.muted', null, '—')),
      h('dt', null, 'Inputs'), h('dd', null, tensorList(s.inputs)),
      h('dt', null, 'Outputs'), h('dd', null, tensorList(s.outputs)),
      h('dt', null, 'Unchecked'), h('dd', null, s.safety?.unchecked_files?.length ? s.safety.unchecked_files.join(', ') : h('span.muted', null, 'none'))));

  const meta = Object.keys(doc.metadata ?? {}).length
    ? h('pre.json', null, JSON.stringify(doc.metadata, null, 2))
    : h('p.muted.small', null, 'No metadata.');
  const metadata = h('section.card', null, h('h2.card-title', null, 'Metadata'), meta);

  const parents = doc.parents?.length
    ? h('ul.parents', null, ...doc.parents.map((/** @type {any} */ p) => h('li', null, badge(p.relation, 'relation'), ' ',
      p.hidden ? h('span.muted', null, 'a version you may not read') : h('a.mono', { href: versionHref(p.name, p.version) }, `${p.name}@${p.version}`))))
    : null;
  const graph = h('section.card', { 'data-section': 'lineage' },
    h('h2.card-title', null, 'Lineage'),
    parents,
    lineage.edges.length ? lineageGraph(lineage) : h('p.muted.small', null, 'No parents or descendants recorded.'));

  const changes = await changesCard(name, doc);

  render(head, warning ?? '', h('div.columns', null,
    h('div.col-main', null, files, derivedCard(doc) ?? '', changes ?? '', graph, metadata),
    h('div.col-side', null, pull, serveCard(name, doc) ?? '', summary)));
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
    h('table.data', null,
      h('thead', null, h('tr', null, h('th', null, 'Path'), h('th.num', null, 'Size'), h('th.num', null, 'Stored'), h('th', null, 'Measured against the parent'))),
      h('tbody', null, ...(r.results.files ?? []).map((/** @type {any} */ f) => h('tr', { 'data-derived': f.path },
        h('td.mono.path', null, f.path),
        h('td.num', null, sizes(f.size)),
        h('td.num', null, sizes(f.stored)),
        h('td', null, measured(f)))))));
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
 * What changed from the version this one came from — its first parent the user may read, else
 * the model's previous version — with the bytes their chunks share.
 * @param {string} name @param {any} doc
 */
async function changesCard(name, doc) {
  const parent = doc.parents?.find((/** @type {any} */ p) => !p.hidden);
  let base = parent ? `${parent.name}@${parent.version}` : undefined;
  if (!base) {
    const page = await api(`/v1/models/${encName(name)}/versions`, { limit: 100 });
    const at = page.versions.findIndex((/** @type {any} */ v) => v.version === doc.version);
    if (at >= 0 && page.versions[at + 1]) base = `${name}@${page.versions[at + 1].version}`;
  }
  if (!base) return undefined;
  const diff = await api(`/v1/models/${encName(name)}/versions/${enc(doc.version)}/diff`, { from: base });
  const s = diff.summary;
  const pct = (/** @type {number} */ part, /** @type {number} */ whole) => (whole ? `${((100 * part) / whole).toFixed(1)}%` : '—');
  const changed = diff.files.filter((/** @type {any} */ f) => f.status !== 'unchanged');
  return h('section.card', { 'data-section': 'changes' },
    h('h2.card-title', null, 'Changes from ', h('a.mono', { href: versionHref(diff.from.name, diff.from.version) }, `${diff.from.name}@${diff.from.version}`)),
    h('p.small', null, `${s.changed} changed, ${s.added} added, ${s.removed} removed, ${s.unchanged} unchanged · `,
      h('strong', null, pct(s.shared_bytes, s.to_bytes)), ` of ${bytes(s.to_bytes)} already stored with it · ${bytes(s.new_stored_bytes)} stored for the rest`),
    changed.length
      ? h('table.data', null,
        h('thead', null, h('tr', null, h('th', null, 'Path'), h('th', null, 'Change'), h('th.num', null, 'Size'), h('th.num', null, 'Shared'))),
        h('tbody', null, ...changed.map((/** @type {any} */ f) => h('tr', { 'data-change': f.path },
          h('td.mono.path', null, f.path),
          h('td', null, badge(f.status, f.status === 'removed' ? 'muted' : 'format')),
          h('td.num', null, f.to ? bytes(f.to.size) : '—'),
          h('td.num', null, f.to ? pct(f.shared_bytes, f.to.size) : '—')))))
      : null);
}

/** @param {string} s */
function shellQuote(s) {
  return /^[\w./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

// ---- lineage graph -------------------------------------------------------------

/**
 * A layered drawing of a lineage graph: the root in the middle row,
 * ancestors above (one row per generation), descendants below; each edge
 * runs from parent down to child, labelled with its relation.
 * @param {{ root: { name: string, version: string }, nodes: any[], edges: Array<{ from: string, to: string, relation: string }> }} g
 */
function lineageGraph(g) {
  const key = (/** @type {{name: string, version: string}} */ n) => `${n.name}@${n.version}`;
  const rootKey = key(g.root);
  /** @type {Map<string, any>} */
  const nodes = new Map(g.nodes.map((n) => [key(n), n]));
  /** @type {Map<string, number>} */
  const layer = new Map([[rootKey, 0]]);
  // edges go child (from) → parent (to): ancestors are layers -1, -2…, descendants 1, 2…
  for (const [dir, step] of /** @type {const} */ ([['up', -1], ['down', 1]])) {
    const queue = [rootKey];
    const seen = new Set(queue);
    while (queue.length) {
      const at = /** @type {string} */ (queue.shift());
      for (const e of g.edges) {
        const [here, other] = dir === 'up' ? [e.from, e.to] : [e.to, e.from];
        if (here !== at || seen.has(other)) continue;
        seen.add(other);
        if (!layer.has(other)) layer.set(other, /** @type {number} */ (layer.get(at)) + step);
        queue.push(other);
      }
    }
  }
  for (const k of nodes.keys()) if (!layer.has(k)) layer.set(k, 0);
  const min = Math.min(...layer.values());
  const max = Math.max(...layer.values());
  /** @type {string[][]} */
  const rows = [];
  for (let l = min; l <= max; l++) rows.push([...layer].filter(([, v]) => v === l).map(([k]) => k).sort());

  const W = 200, H = 46, GAP_X = 36, GAP_Y = 64, PAD = 16;
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
  const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
  marker.append(svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow-head' }));
  defs.append(marker);
  root.append(defs);

  for (const e of g.edges) {
    const parent = pos.get(e.to);
    const child = pos.get(e.from);
    if (!parent || !child) continue;
    const x1 = parent.x + W / 2, y1 = parent.y + H;
    const x2 = child.x + W / 2, y2 = child.y;
    const my = (y1 + y2) / 2;
    const group = svg('g', { class: 'edge', 'data-from': e.from, 'data-to': e.to, 'data-relation': e.relation });
    group.append(svg('path', { d: `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2 - 2}`, 'marker-end': 'url(#arrow)' }));
    const label = svg('text', { x: (x1 + x2) / 2, y: my + 4, 'text-anchor': 'middle', class: 'edge-label' });
    label.textContent = e.relation;
    const bgW = e.relation.length * 6.6 + 12;
    group.append(svg('rect', { x: (x1 + x2) / 2 - bgW / 2, y: my - 9, width: bgW, height: 18, rx: 9, class: 'edge-label-bg' }), label);
    root.append(group);
  }

  for (const [k, p] of pos) {
    const n = nodes.get(k) ?? { name: k.split('@')[0], version: k.split('@').slice(1).join('@'), deleted: false };
    const l = /** @type {number} */ (layer.get(k));
    const kind = k === rootKey ? 'root' : l < 0 ? 'ancestor' : 'descendant';
    const link = svg('a', { href: n.deleted ? '' : versionHref(n.name, n.version), class: `node node-${kind}${n.deleted ? ' node-deleted' : ''}`, 'data-node': k, 'data-kind': kind });
    const title = svg('title');
    title.textContent = `${k}${n.deleted ? ' (deleted)' : ''} — ${kind}`;
    link.append(title, svg('rect', { x: p.x, y: p.y, width: W, height: H, rx: 8 }));
    const nameText = svg('text', { x: p.x + W / 2, y: p.y + 19, 'text-anchor': 'middle', class: 'node-name' });
    nameText.textContent = ellipsis(n.name, 26);
    const versionText = svg('text', { x: p.x + W / 2, y: p.y + 35, 'text-anchor': 'middle', class: 'node-version' });
    versionText.textContent = `@${ellipsis(n.version, 22)}${n.deleted ? ' · deleted' : ''}`;
    link.append(nameText, versionText);
    root.append(link);
  }
  return h('div.graph-wrap', null, root, h('p.muted.small.legend', null, 'Ancestors above, descendants below; arrows point from parent to child.'));
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

function syncTokenForm() {
  const input = /** @type {HTMLInputElement} */ (document.getElementById('token-input'));
  input.value = token();
  document.body.dataset.signedIn = token() ? 'yes' : 'no';
}

function setupTokenForm() {
  const form = /** @type {HTMLFormElement} */ (document.getElementById('token-form'));
  const input = /** @type {HTMLInputElement} */ (document.getElementById('token-input'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    saveToken(input.value.trim());
    route();
  });
  document.getElementById('token-clear')?.addEventListener('click', () => {
    saveToken('');
    route();
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
  try {
    if (parts.length === 0) await listView(new URLSearchParams(query));
    else if (page?.view === 'model') await modelView(page.name);
    else if (page?.view === 'version') await versionView(page.name, page.ref);
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
