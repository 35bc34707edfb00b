// The API description tells the truth: the routes the express app registers
// and the paths of /openapi.json agree both ways, every error code it lists
// maps to the same status in the one error table, and it looks like valid
// OpenAPI 3.1. /docs renders it.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Express } from 'express';
import { STATUS_OF } from '../src/http/error-status.ts';
import { createLogger } from '../src/log.ts';
import { startServer } from '../src/main.ts';
import { startTestServer, type TestServer } from './support/server.ts';

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

interface RouteLayer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
}

/** Every route of the app as `{path with {params}}` → methods (`*` for app.all). */
function appRoutes(app: Express): Map<string, Set<string>> {
  const stack = (app.router as unknown as { stack: RouteLayer[] }).stack;
  const out = new Map<string, Set<string>>();
  for (const layer of stack) {
    if (!layer.route) continue; // middleware and the access-policy router
    const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
    for (const p of paths) {
      // a model route's two-segment form (`acme/resnet`) is the same operation: `{name}` may hold one '/'
      const templated = p.replace(/[:*]([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}').replace('{namespace}/{name}', '{name}');
      const methods = out.get(templated) ?? new Set<string>();
      const held = Object.entries(layer.route.methods).filter(([, on]) => on).map(([m]) => m);
      // app.all: express 5 registers every method node knows, one by one (older: `_all`)
      const all = held.includes('_all') || http.METHODS.every((m) => held.includes(m.toLowerCase()));
      for (const m of all ? ['*'] : held) methods.add(m);
      out.set(templated, methods);
    }
  }
  return out;
}

function appOf(server: TestServer): Express {
  const listener = server.server.listeners('request')[0];
  assert.equal(typeof listener, 'function');
  return listener as unknown as Express;
}

describe('OpenAPI document', () => {
  let server: TestServer;
  let doc: any;

  before(async () => {
    server = await startTestServer('fs');
    const res = await fetch(`${server.url}/openapi.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    doc = await res.json();
  });

  after(async () => {
    await server?.stop();
  });

  test('looks like OpenAPI 3.1: version, info, paths, components, bearer security', () => {
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    assert.equal(typeof doc.info?.title, 'string');
    assert.equal(typeof doc.info?.version, 'string');
    assert.ok(Object.keys(doc.paths).length > 20);
    assert.deepEqual(doc.components.securitySchemes.bearer, { ...doc.components.securitySchemes.bearer, type: 'http', scheme: 'bearer' });
    assert.deepEqual(doc.security, [{ bearer: [] }]);
    const ids = new Set<string>();
    for (const [p, item] of Object.entries<any>(doc.paths)) {
      assert.ok(p.startsWith('/'), p);
      const templated = [...p.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries<any>(item)) {
        assert.ok(METHODS.includes(method), `${p}: ${method} is not an HTTP method`);
        assert.equal(typeof op.operationId, 'string', `${method} ${p}: operationId`);
        assert.ok(!ids.has(op.operationId), `operationId ${op.operationId} is used twice`);
        ids.add(op.operationId);
        assert.equal(typeof op.summary, 'string', `${method} ${p}: summary`);
        assert.ok(Object.keys(op.responses).length > 0, `${method} ${p}: responses`);
        for (const status of Object.keys(op.responses)) assert.match(status, /^[1-5]\d\d$/, `${method} ${p}: status ${status}`);
        // every template segment is a required path parameter, and nothing else is
        const pathParams = (op.parameters ?? []).filter((x: any) => x.in === 'path');
        assert.deepEqual(pathParams.map((x: any) => x.name).sort(), [...templated].sort(), `${method} ${p}: path parameters`);
        for (const x of pathParams) assert.equal(x.required, true, `${method} ${p}: ${x.name} must be required`);
        for (const x of op.parameters ?? []) assert.ok(['path', 'query', 'header', 'cookie'].includes(x.in), `${method} ${p}: ${x.name} in ${x.in}`);
        // every operation says how it fails: with the error schema
        for (const [status, r] of Object.entries<any>(op.responses)) {
          // under /hf in the Hub's shape (its clients read a string `error`)
          const errorSchema = p.startsWith('/hf/') ? '#/components/schemas/HubError' : '#/components/schemas/Error';
          if (Number(status) >= 400 && r.content) assert.ok(r.content['application/json']?.schema?.$ref === errorSchema || status === '503', `${method} ${p} ${status}: error body`);
        }
      }
    }
  });

  test('every $ref resolves', () => {
    const refs: string[] = [];
    const walk = (v: unknown) => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (k === '$ref') refs.push(String(x));
          else walk(x);
        }
      }
    };
    walk(doc);
    assert.ok(refs.length > 50);
    for (const r of new Set(refs)) {
      assert.match(r, /^#\/components\/schemas\/[A-Za-z]+$/, r);
      assert.ok(doc.components.schemas[r.split('/').pop()!], `${r} does not resolve`);
    }
  });

  test('the app routes and the document paths agree, both ways', () => {
    const routes = appRoutes(appOf(server));
    assert.ok(routes.size > 20, `found only ${routes.size} routes: how express 5 exposes them changed?`);
    const missing: string[] = [];
    for (const [p, methods] of routes) {
      const item = doc.paths[p];
      if (!item) {
        missing.push(`${[...methods].join(',')} ${p}`);
        continue;
      }
      for (const m of methods) {
        if (m === '*') assert.ok(Object.keys(item).length > 0, `${p}: app.all route with no documented method`);
        else if (!item[m]) missing.push(`${m} ${p}`);
      }
    }
    assert.deepEqual(missing, [], 'routes the document does not describe');
    const extra: string[] = [];
    for (const [p, item] of Object.entries<any>(doc.paths)) {
      const methods = routes.get(p);
      for (const m of Object.keys(item)) {
        if (!methods || !(methods.has(m) || methods.has('*') || (m === 'head' && methods.has('get')))) extra.push(`${m} ${p}`);
      }
    }
    assert.deepEqual(extra, [], 'documented operations with no route');
  });

  test('every error code listed exists in STATUS_OF, under its status', () => {
    let listed = 0;
    for (const [p, item] of Object.entries<any>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(item)) {
        const inResponses: string[] = [];
        for (const [status, r] of Object.entries<any>(op.responses)) {
          for (const code of r['x-error-codes'] ?? []) {
            assert.ok(code in STATUS_OF, `${method} ${p}: unknown error code ${code}`);
            assert.equal(STATUS_OF[code as keyof typeof STATUS_OF], Number(status), `${method} ${p}: ${code} is listed under ${status}`);
            inResponses.push(code);
            listed++;
          }
        }
        assert.deepEqual([...(op['x-error-codes'] ?? [])].sort(), inResponses.sort(), `${method} ${p}: x-error-codes`);
      }
    }
    assert.ok(listed > 100);
    // the error schema's code enum is exactly the table
    assert.deepEqual([...doc.components.schemas.Error.properties.error.properties.code.enum].sort(), Object.keys(STATUS_OF).sort());
  });

  test('the codes the API is known to answer with are documented where they happen', () => {
    const codes = (method: string, p: string): string[] => doc.paths[p][method]['x-error-codes'];
    assert.ok(codes('post', '/v1/models/{name}/versions').includes('VERSION_EXISTS'));
    assert.ok(codes('post', '/v1/models/{name}/versions').includes('UNSAFE_MODEL'));
    assert.ok(codes('put', '/v1/uploads/{id}').includes('DIGEST_MISMATCH'));
    assert.ok(codes('patch', '/v1/uploads/{id}').includes('UPLOAD_OFFSET_MISMATCH'));
    assert.ok(codes('get', '/v1/models/{name}/versions/{ref}/files/{path}').includes('RANGE_NOT_SATISFIABLE'));
    assert.ok(codes('delete', '/v1/models/{name}/versions/{ref}').includes('VERSION_HAS_ALIASES'));
    assert.ok(codes('get', '/v1/models/{name}').includes('MODEL_NOT_FOUND'));
  });

  test('GET /docs renders every operation, its parameters and error codes as HTML', async () => {
    const res = await fetch(`${server.url}/docs`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    const html = await res.text();
    assert.match(html, /^<!doctype html>/i);
    assert.doesNotMatch(html, /<script/i, 'self-contained: no scripts');
    assert.doesNotMatch(html, /https?:\/\/(?!HOST)/, 'no external loads');
    for (const [p, item] of Object.entries<any>(doc.paths)) {
      for (const method of Object.keys(item)) assert.ok(html.includes(`id="op-${item[method].operationId}"`), `${method} ${p} missing from /docs`);
      assert.ok(html.includes(`<code>${p}</code>`), `${p} missing from /docs`);
    }
    for (const text of ['Range', 'Content-Range', 'VERSION_EXISTS', 'DIGEST_MISMATCH', 'multipart/form-data', 'id="schema-VersionDocument"', 'next_cursor']) {
      assert.ok(html.includes(text), `/docs: ${text}`);
    }
  });
});

describe('API description and metrics with access control on', () => {
  let dataDir: string;
  let running: Awaited<ReturnType<typeof startServer>>;

  before(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-openapi-'));
    running = await startServer({ dataDir, host: '127.0.0.1', port: 0, s3: undefined, auth: true, unsafePolicy: 'warn' }, createLogger({ silent: true }));
  });

  after(async () => {
    await running?.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  test('/openapi.json and /docs need no token; /metrics needs one that reads every model', async () => {
    assert.equal((await fetch(`${running.url}/openapi.json`)).status, 200);
    assert.equal((await fetch(`${running.url}/docs`)).status, 200);
    const anonymous = await fetch(`${running.url}/metrics`);
    assert.equal(anonymous.status, 401);
    assert.equal(((await anonymous.json()) as any).error.code, 'UNAUTHORIZED');
    const admin = (await fs.readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
    const created = await fetch(`${running.url}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'limited', scope: 'read', models: ['team-*'] }),
    });
    assert.equal(created.status, 201);
    const limited = ((await created.json()) as any).token as string;
    assert.equal((await fetch(`${running.url}/metrics`, { headers: { authorization: `Bearer ${limited}` } })).status, 403);
    const scraped = await fetch(`${running.url}/metrics`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(scraped.status, 200);
    assert.match(await scraped.text(), /cairn_http_requests_total\{method="GET",route="\/openapi.json",status="200"\} 1/);
  });
});
