// The web UI: a few static files from src/web/, served as they are (no build
// step), and the one library it uses (markdown-it, for model cards) from its
// npm package as published — pinned in package.json, its licence in the
// package. They are open (access 'open'); the UI calls the API with the
// token the user enters. Only these exact files are served — nothing else on disk.
import type { Response } from 'express';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CairnError } from '../../errors.ts';
import { HTML, LOCATION, pathParam } from '../openapi.ts';
import { route } from '../route.ts';

const WEB_DIR = path.resolve(import.meta.dirname, '../../web');

const HTML_TYPE = 'text/html; charset=utf-8';
const JS_TYPE = 'text/javascript; charset=utf-8';

/** URL path → file and its content type. */
const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: path.join(WEB_DIR, 'index.html'), type: HTML_TYPE },
  '/ui/': { file: path.join(WEB_DIR, 'index.html'), type: HTML_TYPE },
  '/ui/app.js': { file: path.join(WEB_DIR, 'app.js'), type: JS_TYPE },
  '/ui/markdown.js': { file: path.join(WEB_DIR, 'markdown.js'), type: JS_TYPE },
  '/ui/style.css': { file: path.join(WEB_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  // the package's own browser build: one ES module, its dependencies bundled in
  '/ui/vendor/markdown-it.mjs': { file: fileURLToPath(import.meta.resolve('markdown-it/browser')), type: JS_TYPE },
};

// The page loads only its own script and styles and talks only to this server.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async function sendWebFile(res: Response, urlPath: string, head: boolean): Promise<void> {
  const entry = FILES[urlPath];
  if (!entry) throw new CairnError('ROUTE_NOT_FOUND', `no route GET ${urlPath}`);
  const body = await fs.readFile(entry.file);
  res.set({
    'Content-Type': entry.type,
    'Content-Length': String(body.length),
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': CSP,
    'Referrer-Policy': 'no-referrer',
  });
  if (head) res.end();
  else res.end(body);
}

function webPage(path: '/' | '/ui/' | '/ui/*rest', id: string, summary: string) {
  return route({
    method: 'get',
    path,
    access: 'open',
    doc: {
      id,
      tag: 'web',
      summary,
      ...(path === '/ui/*rest' ? { params: [pathParam('rest', 'a file of the UI, e.g. `app.js`, `style.css`')] } : {}),
      responses: { 200: { description: 'the file', content: path === '/ui/*rest' ? { 'text/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } } : HTML } },
      errors: path === '/ui/*rest' ? ['ROUTE_NOT_FOUND'] : [],
    },
    handle: () => (req, res) => sendWebFile(res, req.path, req.method === 'HEAD'),
  });
}

export const webRoutes = [
  webPage('/', 'webRoot', 'The web UI (static HTML; it calls the API with the token the user enters)'),
  route({
    method: 'get',
    path: '/ui',
    access: 'open',
    doc: { id: 'webRedirect', tag: 'web', summary: 'Redirects to /ui/', responses: { 301: { description: 'to /ui/', headers: LOCATION() } }, errors: [] },
    handle: () => (_req, res) => res.redirect(301, '/ui/'),
  }),
  webPage('/ui/', 'webIndex', 'The web UI (same page as /)'),
  webPage('/ui/*rest', 'webAsset', "The web UI's script and styles"),
];
