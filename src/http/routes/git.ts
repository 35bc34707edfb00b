// The lineage repository over git's smart HTTP, read-only. git sends the
// token as the Basic password; the whole lineage is every model's, so it
// needs read on every model.
import { BINARY, pathParam, query } from '../openapi.ts';
import { route, type Method } from '../route.ts';

function gitRoute(method: Extract<Method, 'get' | 'post'>) {
  return route({
    method,
    path: '/git/lineage.git/*rest',
    access: { scope: 'read', model: '*' },
    doc: {
      id: `git${method}`,
      tag: 'lineage',
      summary: `git smart HTTP (read-only), ${method === 'get' ? 'ref advertisement' : 'upload-pack'}`,
      description:
        'The lineage repository for `git clone http://HOST:PORT/git/lineage.git` (git-http-backend). Needs read on every model; git sends the token as Basic password. git uses GET `info/refs?service=git-upload-pack` and POST `git-upload-pack`. Pushes are refused.',
      params: [pathParam('rest', 'path inside the repository, e.g. `info/refs` or `git-upload-pack` (may contain `/`)'), query('service', 'e.g. git-upload-pack')],
      ...(method === 'post' ? { body: { required: true, content: { 'application/x-git-upload-pack-request': { schema: { type: 'string', format: 'binary' } } } } } : {}),
      responses: { 200: { description: 'git protocol data', content: BINARY } },
      errors: ['ROUTE_NOT_FOUND'],
    },
    handle: ({ services }) => async (req, res) => {
      const q = req.originalUrl.indexOf('?');
      await services.lineage.serveGit({ method: req.method, path: req.params.rest.join('/'), query: q >= 0 ? req.originalUrl.slice(q + 1) : '', req, res });
    },
  });
}

export const gitRoutes = [gitRoute('get'), gitRoute('post')];
