// The route table is the one list of routes: each declares who may call it
// and what it answers, and /openapi.json and the access checks are derived
// from it (test/openapi.test.ts holds the app's routes to the document).
// These checks need no server.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SCOPES } from '../../src/access.ts';
import { isReservedWord } from '../../src/identifiers.ts';
import { ROUTES } from '../../src/http/app.ts';
import { openApiDocument, templatePath } from '../../src/http/openapi.ts';
import { modelParam, type Route } from '../../src/http/route.ts';

const label = (r: Route) => `${r.method.toUpperCase()} ${r.path}`;

describe('route table', () => {
  test('every route declares its access: open, or a scope on a model named by one of its path parameters, on every model, or on none', () => {
    assert.ok(ROUTES.length > 30, `${ROUTES.length} routes`);
    for (const r of ROUTES) {
      assert.ok(r.access !== undefined, `${label(r)}: no access`);
      if (r.access === 'open') continue;
      assert.ok((SCOPES as readonly string[]).includes(r.access.scope), `${label(r)}: scope ${String(r.access.scope)}`);
      const params = [...templatePath(r.path).matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      if (r.access.model !== undefined && r.access.model !== '*') assert.ok(params.includes(r.access.model), `${label(r)}: the model is read from :${r.access.model}, which is not in the path`);
    }
  });

  test('a model name in a path is followed by a reserved word or by nothing, so that `acme/resnet` and a sub-resource never read alike (README "Namespaces")', () => {
    const withModel = ROUTES.filter((r) => modelParam(r) !== undefined);
    assert.ok(withModel.length >= 14, `${withModel.length} routes take a model name`);
    for (const r of ROUTES) {
      const segments = r.path.split('/');
      assert.ok(!segments.includes(':namespace'), `${label(r)}: :namespace is the two-segment form's own parameter`);
      const param = modelParam(r);
      if (param === undefined) {
        // a model route without a model access check would read the name one segment only
        assert.ok(!/^\/(v1\/models|hf)\/.*:name\b/.test(r.path), `${label(r)}: names a model without access on it`);
        continue;
      }
      // `:name.git` (git LFS under /hf) ends with its own delimiter: what follows cannot be read as part of a name
      const gitSuffixed = segments.indexOf(`:${param}.git`);
      if (gitSuffixed > 0 && r.path.startsWith('/hf/')) continue;
      const at = segments.indexOf(`:${param}`);
      assert.ok(at > 0, `${label(r)}: :${param} is a whole segment`);
      const next = segments[at + 1];
      assert.ok(next === undefined || isReservedWord(next), `${label(r)}: :${param} is followed by ${next}, which is not a reserved word`);
    }
  });

  test('every route declares its schema: an operation id, a summary, its success responses with their bodies, its error codes', () => {
    for (const r of ROUTES) {
      assert.match(r.doc?.id ?? '', /^[a-zA-Z]+$/, `${label(r)}: operation id`);
      assert.ok(r.doc.summary, `${label(r)}: summary`);
      assert.ok(Array.isArray(r.doc.errors), `${label(r)}: errors`);
      const ok = Object.entries(r.doc.responses).filter(([status]) => Number(status) < 400);
      assert.ok(ok.length > 0, `${label(r)}: no success response`);
      for (const [status, res] of ok) {
        if (status === '204' || status === '304' || status === '301' || r.method === 'head') continue;
        assert.ok(res.schema ?? res.content, `${label(r)} ${status}: no body schema`);
      }
    }
  });

  test('a JSON answer of the REST API is a wire type of src/api/ (a named schema), so routes, client and document share it', () => {
    for (const r of ROUTES.filter((x) => x.path.startsWith('/v1/'))) {
      for (const [status, res] of Object.entries(r.doc.responses)) {
        if (res.content?.['application/json']) assert.fail(`${label(r)} ${status}: a JSON body declared inline, not as a wire type`);
        if (res.schema) assert.equal(typeof (res.schema as { $id?: unknown }).$id, 'string', `${label(r)} ${status}: the schema is not a named wire type`);
      }
    }
  });

  test('the document is generated without a clash: one operation per method and path, one schema per name', () => {
    const doc = openApiDocument(ROUTES);
    const operations = Object.values(doc.paths as Record<string, object>).reduce((n, item) => n + Object.keys(item).length, 0);
    assert.equal(operations, ROUTES.length);
    assert.ok(Object.keys(doc.components.schemas).length > 30);
  });

  test('a declaration that leaves a path parameter undescribed is refused', () => {
    const undescribed = { ...ROUTES[0]!, path: '/v1/things/:thing', doc: { ...ROUTES[0]!.doc, params: [] } } as Route;
    assert.throws(() => openApiDocument([undescribed]), /describe the path parameter thing/);
  });
});
