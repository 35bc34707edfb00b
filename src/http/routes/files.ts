// A version's bytes: one file (ranges, conditional requests) or all of them as a tar stream.
import { ChunkMap, Digest } from '../../api/index.ts';
import { CairnError } from '../../errors.ts';
import { callerOf } from '../auth.ts';
import { send, sendFile } from '../file-response.ts';
import { BINARY, header, REF_ERRORS, STORAGE } from '../openapi.ts';
import { markPull } from '../request-log.ts';
import { route } from '../route.ts';

const READ = { scope: 'read', model: 'name' } as const;

const fileHeaders = {
  ETag: { schema: { type: 'string' }, description: 'the file digest, quoted' },
  'X-Content-Digest': { schema: Digest },
  'Accept-Ranges': { schema: { type: 'string', const: 'bytes' } },
  'Content-Disposition': { schema: { type: 'string' } },
  'Content-Length': { schema: { type: 'integer' } },
};

/** `?range=<first>-<last>` or `<first>-` (inclusive byte offsets); absent: the whole file. */
function rangeQuery(value: unknown): { start: number; end?: number } | undefined {
  if (value === undefined) return undefined;
  const m = typeof value === 'string' ? /^(\d{1,15})-(\d{0,15})$/.exec(value) : null;
  if (!m) throw new CairnError('INVALID_ARGUMENT', 'range must be <first>-<last> or <first>- (inclusive byte offsets)');
  return { start: Number(m[1]), end: m[2] === '' ? undefined : Number(m[2]) };
}

export const fileRoutes = [
  // before getFile, whose *path would take `…/chunks` as a file path
  route({
    method: 'get',
    path: '/v1/models/:name/versions/:ref/files/*path/chunks',
    access: READ,
    doc: {
      id: 'getChunkMap',
      tag: 'versions',
      summary: "A file's chunk map, with presigned S3 URLs (S3 storage only)",
      description:
        "For Cairn's own clients: every chunk of the file (or of `range`) with its offset, raw size, codec, stored size, sha256 and a short-lived presigned GET of its stored object (`CAIRN_PRESIGN_SECONDS`, default 300). The client fetches the objects straight from the bucket, decodes them (the first byte of an object is its codec) and must check every chunk's sha256 and the whole file's digest itself: the server verifies nothing on this path. Same read access as the file; a file whose own path ends in `/chunks` is served by getFile instead. With fs storage: 409 DIRECT_UNAVAILABLE (download the file itself).",
      params: [{ name: 'range', in: 'query', description: '`<first>-<last>` or `<first>-`, inclusive byte offsets: the chunks overlapping it', schema: { type: 'string' } }],
      responses: { 200: { description: 'the chunk map', schema: ChunkMap } },
      errors: [...REF_ERRORS, 'INVALID_PATH', 'FILE_NOT_FOUND', 'INVALID_ARGUMENT', 'RANGE_NOT_SATISFIABLE', 'DIRECT_UNAVAILABLE', 'STORAGE_UNAVAILABLE'],
    },
    handle: ({ services }) => async (req, res, next) => {
      const segments = req.params.path;
      const caller = callerOf(req);
      // a file that is itself called …/chunks wins: it is served as a file
      if (services.versions.hasFile(req.params.name, req.params.ref, [...segments, 'chunks'].join('/'))) {
        next('route');
        return;
      }
      const { file } = services.versions.file(req.params.name, req.params.ref, segments.join('/'), caller);
      res.set('Cache-Control', 'no-store');
      res.json(await services.versions.chunkMap(file, rangeQuery(req.query.range)));
    },
  }),
  route({
    method: 'get',
    path: '/v1/models/:name/versions/:ref/files/*path',
    access: READ,
    doc: {
      id: 'getFile',
      tag: 'versions',
      summary: "A file's bytes (HEAD: headers only)",
      description:
        'Streams the file; every chunk is checked against its digest, and a mismatch is never served (the connection is cut if streaming has begun). A single byte range is honoured; several ranges get the whole file.',
      params: [
        header('Range', '`bytes=<first>-<last>`, `bytes=<first>-` or `bytes=-<suffix>`'),
        header('If-Range', 'the ETag: the Range applies only while it matches'),
        header('If-None-Match', 'the ETag (or `*`): 304 when it matches'),
      ],
      responses: {
        200: { description: 'the whole file', headers: fileHeaders, content: BINARY },
        206: { description: 'the requested range', headers: { ...fileHeaders, 'Content-Range': { schema: { type: 'string' }, description: '`bytes <first>-<last>/<size>`' } }, content: BINARY },
        304: { description: 'If-None-Match matched', headers: fileHeaders },
      },
      errors: [...REF_ERRORS, 'INVALID_PATH', 'FILE_NOT_FOUND', 'RANGE_NOT_SATISFIABLE', ...STORAGE],
    },
    handle: ({ services, log }) => async (req, res) => {
      const { version, file } = services.versions.file(req.params.name, req.params.ref, req.params.path.join('/'), callerOf(req));
      await sendFile(req, res, { version, file, etag: `"${file.digest}"` }, { versions: services.versions, log });
    },
  }),
  route({
    method: 'get',
    path: '/v1/models/:name/versions/:ref/archive',
    access: READ,
    doc: {
      id: 'getArchive',
      tag: 'versions',
      summary: 'All files of a version as one tar stream',
      responses: {
        200: {
          description: 'a tar archive, files in path order',
          headers: { ETag: { schema: { type: 'string' }, description: 'the version digest, quoted' }, 'Content-Disposition': { schema: { type: 'string' } } },
          content: { 'application/x-tar': { schema: { type: 'string', format: 'binary' } } },
        },
      },
      errors: [...REF_ERRORS, ...STORAGE],
    },
    handle: ({ services, log }) => async (req, res) => {
      const { version, stream } = await services.versions.archive(req.params.name, req.params.ref, callerOf(req));
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
    },
  }),
];
