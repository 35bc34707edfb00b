// Models, versions, aliases, lineage and history: parse, call a service, answer.
import type { RequestHandler } from 'express';
import { AliasRequest, AliasSet, History, LineageGraph, MODEL_SORTS, ModelDoc, ModelList, ModelPatch, PublishForm, PublishRequest, Version, VersionDiff, VersionDoc, VersionList } from '../../api/index.ts';
import { CairnError } from '../../errors.ts';
import { MAX_FILES_PER_VERSION } from '../../identifiers.ts';
import { MAX_JSON_BYTES } from '../../json-limits.ts';
import type { ParentInput } from '../../registry/publish.ts';
import { actorOf } from '../actor.ts';
import { callerOf } from '../auth.ts';
import { jsonBodyParser } from '../json-body.ts';
import { MAX_FIELDS, multipartPublishBody, storedParts } from '../multipart.ts';
import { CURSOR, LIMIT, LOCATION, pathParam, query, REF_ERRORS, STORAGE } from '../openapi.ts';
import { route } from '../route.ts';

const jsonBody = jsonBodyParser('2mb');
// a card of 256 KiB, escaped as JSON
const cardBody = jsonBodyParser('1mb');

function list(value: unknown): unknown[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * Parents come as JSON `parents: [{ref, relation, recipe}]` (or plain refs),
 * or as multipart fields: `parent` (repeatable), `relation` (one for all, or
 * one per parent) and `recipe` (JSON; falls back to metadata.recipe).
 */
function parentInputs(body: Record<string, unknown>): ParentInput[] {
  if (body.parents !== undefined) {
    return list(body.parents).map((p) => (typeof p === 'string' ? { ref: p } : ((p ?? {}) as ParentInput)));
  }
  const refs = list(body.parent);
  const relations = list(body.relation);
  let recipe: unknown = body.recipe;
  if (recipe === undefined && typeof body.metadata === 'string') {
    try {
      recipe = (JSON.parse(body.metadata) as { recipe?: unknown } | null)?.recipe;
    } catch {
      // invalid metadata is reported by publish itself
    }
  }
  return refs.map((ref, i) => ({ ref, relation: relations.length === 1 ? relations[0] : relations[i], recipe }));
}

/** multipart/form-data (file parts stream into storage) or application/json (a manifest of uploaded blobs). */
function publishBody(multipart: RequestHandler): RequestHandler {
  return function publishBodyParser(req, res, next) {
    if (req.is('multipart/form-data')) return multipart(req, res, next);
    if (req.is('application/json')) return jsonBody(req, res, next);
    next(new CairnError('UNSUPPORTED_MEDIA_TYPE', 'publish with multipart/form-data (file parts) or application/json (a manifest of uploaded blobs)'));
  };
}

const READ = { scope: 'read', model: 'name' } as const;
const WRITE = { scope: 'write', model: 'name' } as const;

export const modelRoutes = [
  route({
    method: 'get',
    path: '/v1/models',
    access: { scope: 'read' },
    doc: {
      id: 'listModels',
      tag: 'models',
      summary: 'List or search models, by name or description',
      description: 'A token limited to name patterns sees only those models (a page may be shorter than `limit`). `total` counts the matches on every page.',
      params: [
        query('q', 'substring of the model name (`acme/` finds the models of namespace acme, and any other name holding it)'),
        query('namespace', 'only the models of this namespace (`acme`: `acme/resnet`, not the flat `acme`)'),
        query('format', 'only models whose latest version has a file of this format'),
        query('framework', 'only models whose latest version has this framework'),
        query('unsafe', 'true: only models with a live version that is unsafe; false: only the others', { type: 'string', enum: ['true', 'false'] }),
        query('sort', '`name` (default) or `updated` (most recently changed first)', { type: 'string', enum: [...MODEL_SORTS] }),
        LIMIT,
        CURSOR,
      ],
      responses: { 200: { description: 'a page of models', schema: ModelList } },
      errors: ['INVALID_ARGUMENT'],
    },
    // a token limited to name patterns sees only those models, in its pages and its cursors
    handle: ({ services }) => (req, res) => {
      res.json(services.models.list(req.query, callerOf(req)));
    },
  }),
  route({
    method: 'get',
    path: '/v1/models/:name',
    access: READ,
    doc: { id: 'getModel', tag: 'models', summary: 'A model: aliases, latest version, counts', responses: { 200: { description: 'the model', schema: ModelDoc } }, errors: ['INVALID_NAME', 'MODEL_NOT_FOUND'] },
    handle: ({ services }) => (req, res) => {
      res.json(services.models.get(req.params.name));
    },
  }),
  route({
    method: 'patch',
    path: '/v1/models/:name',
    access: WRITE,
    doc: {
      id: 'describeModel',
      tag: 'models',
      summary: "Set a model's description and/or card (Markdown)",
      description:
        "Either field or both. The change is an event (`describe`) in the history and a commit in the lineage writing `models/<name>/model.json` (description) and `models/<name>/README.md` (the card; `''` removes it). Unchanged values make no event. Needs write on the model.",
      body: { required: true, content: { 'application/json': { schema: ModelPatch } } },
      responses: { 200: { description: 'the model', schema: ModelDoc } },
      errors: ['INVALID_NAME', 'INVALID_ARGUMENT', 'MODEL_NOT_FOUND', 'PAYLOAD_TOO_LARGE'],
    },
    before: () => [cardBody],
    handle: ({ services }) => (req, res) => {
      const body = (req.body ?? {}) as { description?: unknown; readme?: unknown };
      res.json(services.models.describe(req.params.name, { description: body.description, readme: body.readme }, actorOf(req)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/models/:name/versions',
    access: WRITE,
    doc: {
      id: 'publish',
      tag: 'versions',
      summary: 'Publish a version',
      description:
        'Either `multipart/form-data` (fields and file parts; each file streams into storage as it arrives) or `application/json` (a manifest naming blobs uploaded before through /v1/uploads). The version becomes visible at once and in full, or not at all. The model is created by its first publish. Needs write on the model, and read on the model of each parent (403 otherwise). A JSON manifest may name only blobs this token uploaded or that a live version it may read holds; any other digest is 400 UNKNOWN_BLOB, as if it were not stored.',
      body: {
        required: true,
        content: {
          'multipart/form-data': {
            schema: {
              ...PublishForm,
              description: `fields, then one or more file parts (at most ${MAX_FILES_PER_VERSION}; the next one is refused before it is stored): each part's filename is the path inside the version (any other field name works for file parts). At most ${MAX_FIELDS} fields of at most ${MAX_JSON_BYTES} bytes each.`,
            },
            encoding: { alias: { style: 'form', explode: true }, parent: { style: 'form', explode: true } },
          },
          'application/json': { schema: PublishRequest },
        },
      },
      responses: { 201: { description: 'published', headers: LOCATION('/v1/models/{name}/versions/{version}'), schema: VersionDoc } },
      errors: [
        'INVALID_NAME',
        'INVALID_VERSION',
        'INVALID_ALIAS',
        'INVALID_PATH',
        'INVALID_DIGEST',
        'INVALID_ARGUMENT',
        'INVALID_PARENT',
        'DUPLICATE_PATH',
        'UNKNOWN_BLOB',
        'VERSION_EXISTS',
        'PAYLOAD_TOO_LARGE',
        'UNSUPPORTED_MEDIA_TYPE',
        'INVALID_MODEL_FILE',
        'UNSAFE_MODEL',
        ...STORAGE,
      ],
    },
    before: ({ services, maxUploadBytes }) => [publishBody(multipartPublishBody(services.publishing, { maxFileBytes: maxUploadBytes }))],
    handle: ({ services }) => async (req, res) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const multipartFiles = req.is('multipart/form-data') ? storedParts(req) : undefined;
      const files =
        multipartFiles ??
        list(body.files).map((f) => {
          const file = f as { path?: unknown; digest?: unknown } | null;
          return { path: file?.path as string, digest: file?.digest as string };
        });
      const doc = await services.publishing.publish({
        name: req.params.name,
        version: body.version,
        files,
        message: body.message,
        aliases: list(body.aliases ?? body.alias),
        metadata: body.metadata,
        parents: parentInputs(body),
        actor: actorOf(req),
        caller: callerOf(req),
      });
      res.status(201).location(`/v1/models/${doc.name}/versions/${encodeURIComponent(doc.version)}`).json(doc);
    },
  }),
  route({
    method: 'get',
    path: '/v1/models/:name/versions',
    access: READ,
    doc: { id: 'listVersions', tag: 'versions', summary: 'Versions, newest first', params: [LIMIT, CURSOR], responses: { 200: { description: 'a page of versions', schema: VersionList } }, errors: ['INVALID_NAME', 'INVALID_ARGUMENT', 'MODEL_NOT_FOUND'] },
    handle: ({ services }) => (req, res) => {
      res.json(services.versions.list(req.params.name, req.query));
    },
  }),
  route({
    method: 'get',
    path: '/v1/models/:name/versions/:ref',
    access: READ,
    doc: { id: 'getVersion', tag: 'versions', summary: 'A version document', responses: { 200: { description: 'the version', schema: VersionDoc } }, errors: REF_ERRORS },
    handle: ({ services }) => (req, res) => {
      res.json(services.versions.get(req.params.name, req.params.ref, callerOf(req)));
    },
  }),
  // `:ref` only so that the path template matches the GET one; a version string, not an alias
  route({
    method: 'delete',
    path: '/v1/models/:name/versions/:ref',
    access: WRITE,
    doc: {
      id: 'deleteVersion',
      tag: 'versions',
      summary: 'Delete a version',
      description: '`ref` must be the version string itself (not an alias or digest). The version string stays taken. Aliases on it must be moved or removed first. Needs write on the model.',
      params: [pathParam('ref', 'the version to delete', Version)],
      responses: { 204: { description: 'deleted' } },
      errors: ['INVALID_NAME', 'INVALID_VERSION', 'MODEL_NOT_FOUND', 'VERSION_NOT_FOUND', 'VERSION_DELETED', 'VERSION_HAS_ALIASES'],
    },
    handle: ({ services }) => (req, res) => {
      services.publishing.delete(req.params.name, req.params.ref, actorOf(req));
      res.status(204).end();
    },
  }),
  route({
    method: 'get',
    path: '/v1/models/:name/versions/:ref/diff',
    access: READ,
    doc: {
      id: 'diffVersions',
      tag: 'versions',
      summary: 'What changed from another version to this one, and how many bytes their chunks share',
      description:
        'Per path: added, removed, changed or unchanged, and `shared_bytes` — the part of the file that lies in chunks the other version has (content-defined chunks: a shifted or partly changed file still shares most of them). The summary adds the stored bytes this version costs beyond the other.',
      params: [query('from', 'the base: a ref of this model, or `<name>@<ref>` of another (read access to it is needed)', { type: 'string' }, true)],
      responses: { 200: { description: 'the diff', schema: VersionDiff } },
      errors: [...REF_ERRORS, 'INVALID_ARGUMENT'],
    },
    handle: ({ services }) => (req, res) => {
      res.json(services.versions.diff(req.params.name, req.params.ref, req.query.from, callerOf(req)));
    },
  }),
  route({
    method: 'get',
    path: '/v1/models/:name/versions/:ref/lineage',
    access: READ,
    doc: {
      id: 'getLineage',
      tag: 'lineage',
      summary: 'Ancestors and descendants, across models, as a graph',
      description: 'Only versions of models the caller may read: another is left out with its edges (and their recipes), and the graph does not go on through it.',
      responses: { 200: { description: 'the graph', schema: LineageGraph } },
      errors: REF_ERRORS,
    },
    handle: ({ services }) => (req, res) => {
      res.json(services.lineage.graph(req.params.name, req.params.ref, callerOf(req)));
    },
  }),
  route({
    method: 'get',
    path: '/v1/models/:name/history',
    access: READ,
    doc: { id: 'getHistory', tag: 'lineage', summary: "A model's events, newest first", params: [LIMIT, CURSOR], responses: { 200: { description: 'a page of events', schema: History } }, errors: ['INVALID_NAME', 'INVALID_ARGUMENT', 'MODEL_NOT_FOUND'] },
    handle: ({ services }) => (req, res) => {
      res.json(services.history.page(req.params.name, req.query));
    },
  }),
  route({
    method: 'put',
    path: '/v1/models/:name/aliases/:alias',
    access: WRITE,
    doc: {
      id: 'setAlias',
      tag: 'aliases',
      summary: 'Set or move an alias',
      description: 'Needs write on the model.',
      body: { required: true, content: { 'application/json': { schema: AliasRequest } } },
      responses: { 200: { description: 'set', schema: AliasSet } },
      errors: ['INVALID_NAME', 'INVALID_ALIAS', 'INVALID_VERSION', 'MODEL_NOT_FOUND', 'VERSION_NOT_FOUND', 'VERSION_DELETED'],
    },
    before: () => [jsonBody],
    handle: ({ services }) => (req, res) => {
      const body = (req.body ?? {}) as { version?: unknown };
      res.json(services.aliases.set(req.params.name, req.params.alias, body.version, actorOf(req)));
    },
  }),
  route({
    method: 'delete',
    path: '/v1/models/:name/aliases/:alias',
    access: WRITE,
    doc: { id: 'deleteAlias', tag: 'aliases', summary: 'Remove an alias', responses: { 204: { description: 'removed' } }, errors: ['INVALID_NAME', 'INVALID_ALIAS', 'MODEL_NOT_FOUND', 'ALIAS_NOT_FOUND'] },
    handle: ({ services }) => (req, res) => {
      services.aliases.delete(req.params.name, req.params.alias, actorOf(req));
      res.status(204).end();
    },
  }),
];
