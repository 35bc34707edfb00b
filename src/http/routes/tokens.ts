// API tokens (admin only; the secret is in the answer to POST and nowhere
// else), and who the presented token is (any token).
import { impliedScopes } from '../../access.ts';
import { TokenCreated, TokenList, TokenRequest, Whoami } from '../../api/index.ts';
import { CairnError } from '../../errors.ts';
import { actorOf } from '../actor.ts';
import { identityOf } from '../auth.ts';
import { jsonBodyParser } from '../json-body.ts';
import { LOCATION, pathParam } from '../openapi.ts';
import { route } from '../route.ts';

const jsonBody = jsonBodyParser('64kb');
const ADMIN = { scope: 'admin' } as const;

export const tokenRoutes = [
  route({
    method: 'get',
    path: '/v1/whoami',
    access: { scope: 'read' },
    doc: {
      id: 'whoami',
      tag: 'tokens',
      summary: 'Who the presented token is: name, scopes, model patterns',
      description: 'Any token (or none, with CAIRN_ANONYMOUS_READ or CAIRN_AUTH=off: `anonymous`). The web UI shows it and offers only what the token may do.',
      responses: { 200: { description: 'the caller', schema: Whoami } },
      errors: [],
    },
    handle: ({ services }) => (req, res) => {
      const { name, scope, models } = identityOf(req);
      // the access check let it through: it holds read at least
      if (scope === undefined) throw new CairnError('UNAUTHORIZED', 'this request needs a token (Authorization: Bearer <token>)');
      res.json({ name, scope, scopes: impliedScopes(scope), models, auth: services.tokens.enabled });
    },
  }),
  route({
    method: 'get',
    path: '/v1/tokens',
    access: ADMIN,
    doc: { id: 'listTokens', tag: 'tokens', summary: 'Active tokens (admin)', responses: { 200: { description: 'tokens, without secrets', schema: TokenList } }, errors: ['INVALID_ARGUMENT'] },
    handle: ({ services }) => (_req, res) => {
      res.json(services.tokens.list());
    },
  }),
  route({
    method: 'post',
    path: '/v1/tokens',
    access: ADMIN,
    doc: {
      id: 'createToken',
      tag: 'tokens',
      summary: 'Create a token (admin); the secret is in this answer only',
      body: { required: true, content: { 'application/json': { schema: TokenRequest } } },
      responses: { 201: { description: 'created', headers: LOCATION(), schema: TokenCreated } },
      errors: ['TOKEN_EXISTS'],
    },
    before: () => [jsonBody],
    handle: ({ services }) => (req, res) => {
      const created = services.tokens.create((req.body ?? {}) as Record<string, unknown>, actorOf(req));
      res.status(201).location(`/v1/tokens/${created.name}`).set('Cache-Control', 'no-store').json(created);
    },
  }),
  route({
    method: 'delete',
    path: '/v1/tokens/:name',
    access: ADMIN,
    doc: { id: 'revokeToken', tag: 'tokens', summary: 'Revoke a token (admin)', params: [pathParam('name', 'token name')], responses: { 204: { description: 'revoked' } }, errors: ['INVALID_ARGUMENT', 'TOKEN_NOT_FOUND'] },
    handle: ({ services }) => (req, res) => {
      services.tokens.revoke(req.params.name, actorOf(req));
      res.status(204).end();
    },
  }),
];
