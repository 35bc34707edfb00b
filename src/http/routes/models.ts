// Models, versions, files, archives and aliases. Handlers parse, call the
// registry, and answer; no logic of their own.
import type { Express, Request, Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { CairnError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { Services } from '../../registry/index.ts';
import type { ParentInput } from '../../registry/publish.ts';
import { actorOf } from '../actor.ts';
import { callerOf } from '../auth.ts';
import { multipartPublishBody, storedParts } from '../multipart.ts';
import { answerRange } from '../ranges.ts';
import { markPull } from '../request-log.ts';
import { jsonBodyParser } from '../json-body.ts';

const jsonBody = jsonBodyParser('2mb');

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

export function contentDisposition(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const ascii = base.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(base)}`;
}

/** Streams a body to the client; a failure after the headers cuts the connection. */
export async function send(res: Response, body: NodeJS.ReadableStream, log: Logger, what: string): Promise<void> {
  try {
    await pipeline(body, res);
  } catch (err) {
    if (!res.writableFinished) {
      log.warn('response cut', { what, error: (err as Error).message });
      res.destroy();
    }
  }
}

export function registerModelRoutes(app: Express, { services, log, maxUploadBytes }: { services: Services; log: Logger; maxUploadBytes?: number }): void {
  const { models, versions, publishing, aliases, history, lineage } = services;
  app.get('/v1/models', (req, res) => {
    // a token limited to name patterns sees only those models, in its pages and its cursors
    res.json(models.list(req.query, callerOf(req)));
  });

  app.get('/v1/models/:name', (req, res) => {
    res.json(models.get(req.params.name));
  });

  const multipart = multipartPublishBody(publishing, { maxFileBytes: maxUploadBytes });
  app.post('/v1/models/:name/versions', (req, res, next) => {
    if (req.is('multipart/form-data')) return multipart(req, res, next);
    if (req.is('application/json')) return jsonBody(req, res, next);
    next(new CairnError('UNSUPPORTED_MEDIA_TYPE', 'publish with multipart/form-data (file parts) or application/json (a manifest of uploaded blobs)'));
  }, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const multipartFiles = req.is('multipart/form-data') ? storedParts(req) : undefined;
    const files = multipartFiles ?? list(body.files).map((f) => {
      const file = f as { path?: unknown; digest?: unknown } | null;
      return { path: file?.path as string, digest: file?.digest as string };
    });
    const doc = await publishing.publish({
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
  });

  app.get('/v1/models/:name/versions', (req, res) => {
    res.json(versions.list(req.params.name, req.query));
  });

  app.get('/v1/models/:name/versions/:ref', (req, res) => {
    res.json(versions.get(req.params.name, req.params.ref, callerOf(req)));
  });

  app.get('/v1/models/:name/versions/:ref/files/*path', async (req: Request<{ name: string; ref: string; path: string[] }>, res) => {
    const { version, file } = versions.file(req.params.name, req.params.ref, req.params.path.join('/'), callerOf(req));
    markPull(res, version.name, version.version); // counted once a GET completes with 200 or 206
    const etag = `"${file.digest}"`;
    res.set({
      ETag: etag,
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/octet-stream',
      'Content-Disposition': contentDisposition(file.path),
      'X-Content-Digest': file.digest,
    });
    const ifNoneMatch = req.headers['if-none-match']?.split(',').map((t) => t.trim().replace(/^W\//, ''));
    if (ifNoneMatch?.includes('*') || ifNoneMatch?.includes(etag)) {
      res.status(304).end();
      return;
    }
    const ifRange = req.headers['if-range'];
    const { range, length } = answerRange(res, ifRange && ifRange !== etag ? undefined : req.headers.range, file.size);
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    const opened = await versions.open(file, range);
    await send(res, opened.stream, log, `${req.params.name}@${req.params.ref}/${file.path}`);
  });

  app.get('/v1/models/:name/versions/:ref/archive', async (req, res) => {
    const { version, stream } = await versions.archive(req.params.name, req.params.ref, callerOf(req));
    res.set({
      'Content-Type': 'application/x-tar',
      'Content-Disposition': `attachment; filename="${version.name}-${version.version}.tar"`,
      ETag: `"${version.digest}"`,
    });
    if (req.method === 'HEAD') {
      stream.destroy();
      res.end();
      return;
    }
    markPull(res, version.name, version.version);
    await send(res, stream, log, `${version.name}@${version.version} archive`);
  });

  // `:ref` only so that the path template matches the GET one (OpenAPI); a version string, not an alias
  app.delete('/v1/models/:name/versions/:ref', (req, res) => {
    publishing.delete(req.params.name, req.params.ref, actorOf(req));
    res.status(204).end();
  });

  app.put('/v1/models/:name/aliases/:alias', jsonBody, (req, res) => {
    const body = (req.body ?? {}) as { version?: unknown };
    res.json(aliases.set(req.params.name, req.params.alias, body.version, actorOf(req)));
  });

  app.delete('/v1/models/:name/aliases/:alias', (req, res) => {
    aliases.delete(req.params.name, req.params.alias, actorOf(req));
    res.status(204).end();
  });

  // ?from=<ref> (this model) or <name>@<ref> (any model the caller may read)
  app.get('/v1/models/:name/versions/:ref/diff', (req, res) => {
    res.json(versions.diff(req.params.name, req.params.ref, req.query.from, callerOf(req)));
  });

  app.get('/v1/models/:name/versions/:ref/lineage', (req, res) => {
    res.json(lineage.graph(req.params.name, req.params.ref, callerOf(req)));
  });

  app.get('/v1/models/:name/history', (req, res) => {
    res.json(history.page(req.params.name, req.query));
  });
}
