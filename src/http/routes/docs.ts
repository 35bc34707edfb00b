// The API description: GET /openapi.json (OpenAPI 3.1) and GET /docs, the
// same document as one self-contained HTML page (no scripts, no CDN).
import { HTML } from '../openapi.ts';
import { route } from '../route.ts';

type Json = Record<string, any>;

const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** `code` spans for backticks, nothing else. */
const prose = (s: unknown): string => (s === undefined ? '' : esc(s).replace(/`([^`]+)`/g, '<code>$1</code>'));

function schemaText(schema: Json | undefined): string {
  if (!schema) return '';
  if (schema.$ref) {
    const name = String(schema.$ref).split('/').pop()!;
    return `<a href="#schema-${esc(name)}">${esc(name)}</a>`;
  }
  if (schema.oneOf) return schema.oneOf.map(schemaText).join(' | ');
  if (schema.allOf) return schema.allOf.map(schemaText).join(' &amp; ');
  const type = Array.isArray(schema.type) ? schema.type.join(' | ') : schema.type;
  if (type === 'array') return `array of ${schemaText(schema.items) || 'any'}`;
  const bits = [type ?? 'any'];
  if (schema.enum) bits.push(`one of ${schema.enum.map((e: unknown) => `<code>${esc(e)}</code>`).join(', ')}`);
  if (schema.const !== undefined) bits.push(`<code>${esc(schema.const)}</code>`);
  if (schema.pattern) bits.push(`<code>${esc(schema.pattern)}</code>`);
  if (schema.format) bits.push(`(${esc(schema.format)})`);
  return bits.join(' ');
}

function propertiesTable(schema: Json): string {
  const props = schema.properties as Json | undefined;
  if (!props) return `<p>${schemaText(schema)}${schema.description ? ` — ${prose(schema.description)}` : ''}</p>`;
  const required = new Set<string>(schema.required ?? []);
  const rows = Object.entries(props)
    .map(([k, v]) => `<tr><td><code>${esc(k)}</code>${required.has(k) ? ' <b>*</b>' : ''}</td><td>${schemaText(v)}</td><td>${prose((v as Json).description)}</td></tr>`)
    .join('');
  return `${schema.description ? `<p>${prose(schema.description)}</p>` : ''}<table><tr><th>field</th><th>type</th><th></th></tr>${rows}</table>`;
}

function content(c: Json | undefined): string {
  if (!c) return '';
  return Object.entries(c)
    .map(([type, media]) => `<div><code>${esc(type)}</code> ${schemaText((media as Json).schema)}</div>`)
    .join('');
}

function operation(path: string, method: string, o: Json): string {
  const id = `op-${esc(o.operationId ?? `${method}-${path}`)}`;
  const params = (o.parameters ?? []) as Json[];
  const paramRows = params
    .map((p) => `<tr><td><code>${esc(p.name)}</code>${p.required ? ' <b>*</b>' : ''}</td><td>${esc(p.in)}</td><td>${schemaText(p.schema)}</td><td>${prose(p.description)}</td></tr>`)
    .join('');
  const responses = Object.entries(o.responses as Json)
    .map(([status, r]) => {
      const codes = (r['x-error-codes'] ?? []) as string[];
      const headers = Object.keys(r.headers ?? {}).filter((h) => h !== 'X-Request-Id');
      return `<tr><td><b>${esc(status)}</b></td><td>${codes.length ? codes.map((c) => `<code>${esc(c)}</code>`).join(' ') : prose(r.description)}</td><td>${content(r.content)}</td><td>${headers.map((h) => `<code>${esc(h)}</code>`).join(' ')}</td></tr>`;
    })
    .join('');
  const open = Array.isArray(o.security) && o.security.length === 0;
  return `<section class="op" id="${id}">
<h3><span class="m ${esc(method)}">${esc(method.toUpperCase())}</span> <code>${esc(path)}</code></h3>
<p>${prose(o.summary)}${open ? ' <span class="open">no token needed</span>' : ''}</p>
${o.description ? `<p>${prose(o.description)}</p>` : ''}
${paramRows ? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th></th></tr>${paramRows}</table>` : ''}
${o.requestBody ? `<h4>Request body${o.requestBody.required ? '' : ' (optional)'}</h4>${content(o.requestBody.content)}` : ''}
<h4>Responses</h4><table><tr><th>status</th><th>meaning / error codes</th><th>body</th><th>headers</th></tr>${responses}</table>
</section>`;
}

export function renderDocs(doc: Json): string {
  const ops: string[] = [];
  const toc: string[] = [];
  for (const [path, item] of Object.entries(doc.paths as Json)) {
    for (const [method, o] of Object.entries(item as Json)) {
      ops.push(operation(path, method, o as Json));
      toc.push(`<li><a href="#op-${esc((o as Json).operationId)}"><span class="m ${esc(method)}">${esc(method.toUpperCase())}</span> ${esc(path)}</a></li>`);
    }
  }
  const schemas = Object.entries(doc.components.schemas as Json)
    .map(([name, s]) => `<section id="schema-${esc(name)}"><h3>${esc(name)}</h3>${propertiesTable(s as Json)}</section>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(doc.info.title)} API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
code{font:13px ui-monospace,monospace;background:#f3f3f3;padding:0 .2em;border-radius:3px}
table{border-collapse:collapse;width:100%;margin:.3rem 0 1rem}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#fafafa}
.op{border-top:1px solid #ccc;padding-top:.5rem}.m{display:inline-block;min-width:4.2em;font:bold 12px ui-monospace,monospace;color:#fff;border-radius:3px;padding:.1em .3em;text-align:center}
.get{background:#2b7bb9}.post{background:#3a9a3a}.put{background:#b97d2b}.patch{background:#8a5ab9}.delete{background:#b92b2b}.head{background:#666}
.open{font-size:12px;background:#e6f4e6;padding:0 .4em;border-radius:3px}ul.toc{columns:2;list-style:none;padding:0}ul.toc a{text-decoration:none}
</style></head><body>
<h1>${esc(doc.info.title)} API <small>${esc(doc.info.version)}</small></h1>
<p>${prose(doc.info.description)}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${esc(doc.openapi)}).</p>
<h2>Routes</h2><ul class="toc">${toc.join('')}</ul>
${ops.join('\n')}
<h2>Schemas</h2>
${schemas}
</body></html>
`;
}

export const docsRoutes = [
  route({
    method: 'get',
    path: '/openapi.json',
    access: 'open',
    doc: { id: 'openapi', tag: 'operations', summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } }, errors: [] },
    handle: ({ openapi }) => {
      const body = JSON.stringify(openapi);
      return (_req, res) => {
        res.type('application/json').send(body);
      };
    },
  }),
  route({
    method: 'get',
    path: '/docs',
    access: 'open',
    doc: { id: 'docs', tag: 'operations', summary: 'This document as a readable HTML page', responses: { 200: { description: 'HTML', content: HTML } }, errors: [] },
    handle: ({ openapi }) => {
      const html = renderDocs(openapi);
      return (_req, res) => {
        res.type('text/html').set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'").send(html);
      };
    },
  }),
];
