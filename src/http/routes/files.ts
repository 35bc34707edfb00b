// A version's bytes: one file (ranges, conditional requests) or all of them as a tar stream.
import { Digest } from '../../api/index.ts';
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

export const fileRoutes = [
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
