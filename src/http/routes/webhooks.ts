// Webhooks (admin only). The signing secret is in the answer to POST and nowhere else.
import { DeliveryList, PingResult, RedeliverResult, WebhookCreated, WebhookDoc, WebhookList, WebhookRequest } from '../../api/index.ts';
import { actorOf } from '../actor.ts';
import { jsonBodyParser } from '../json-body.ts';
import { LIMIT, LOCATION, pathParam } from '../openapi.ts';
import { route } from '../route.ts';

const jsonBody = jsonBodyParser('64kb');
const ADMIN = { scope: 'admin' } as const;
const HOOK_ID = pathParam('id', 'webhook id');

export const webhookRoutes = [
  route({
    method: 'get',
    path: '/v1/webhooks',
    access: ADMIN,
    doc: { id: 'listWebhooks', tag: 'webhooks', summary: 'Webhooks (admin)', responses: { 200: { description: 'hooks, without secrets', schema: WebhookList } }, errors: [] },
    handle: ({ services }) => (_req, res) => {
      res.json(services.webhooks.list());
    },
  }),
  route({
    method: 'post',
    path: '/v1/webhooks',
    access: ADMIN,
    doc: {
      id: 'createWebhook',
      tag: 'webhooks',
      summary: 'Create a webhook (admin): a signed POST per event from now on; the secret is in this answer only',
      description:
        'Each delivery is a JSON POST `{delivery, event, event_id, model, version, alias, actor, time, subject, message}` with `X-Cairn-Event`, `X-Cairn-Delivery` and `X-Cairn-Signature-256: sha256=<HMAC-SHA256 of the body with the secret>`. A 2xx answer delivers it; anything else is retried with exponential backoff, then marked failed. The URL must be, and resolve to, a public address (400 for loopback, private, link-local and the like, unless the server runs with CAIRN_WEBHOOK_ALLOW_PRIVATE=true); every delivery checks again after resolving the name and connects to the address checked.',
      body: { required: true, content: { 'application/json': { schema: WebhookRequest } } },
      responses: { 201: { description: 'created', headers: LOCATION(), schema: WebhookCreated } },
      errors: [],
    },
    before: () => [jsonBody],
    handle: ({ services }) => async (req, res) => {
      const created = await services.webhooks.create((req.body ?? {}) as Record<string, unknown>, actorOf(req));
      res.status(201).location(`/v1/webhooks/${created.id}`).set('Cache-Control', 'no-store').json(created);
    },
  }),
  route({
    method: 'get',
    path: '/v1/webhooks/:id',
    access: ADMIN,
    doc: { id: 'getWebhook', tag: 'webhooks', summary: 'A webhook (admin)', params: [HOOK_ID], responses: { 200: { description: 'the hook', schema: WebhookDoc } }, errors: ['WEBHOOK_NOT_FOUND'] },
    handle: ({ services }) => (req, res) => {
      res.json(services.webhooks.get(req.params.id));
    },
  }),
  route({
    method: 'delete',
    path: '/v1/webhooks/:id',
    access: ADMIN,
    doc: { id: 'deleteWebhook', tag: 'webhooks', summary: 'Delete a webhook and its deliveries (admin)', params: [HOOK_ID], responses: { 204: { description: 'deleted' } }, errors: ['WEBHOOK_NOT_FOUND'] },
    handle: ({ services }) => (req, res) => {
      services.webhooks.delete(req.params.id);
      res.status(204).end();
    },
  }),
  route({
    method: 'get',
    path: '/v1/webhooks/:id/deliveries',
    access: ADMIN,
    doc: { id: 'listWebhookDeliveries', tag: 'webhooks', summary: "A webhook's deliveries, newest first (admin)", params: [HOOK_ID, LIMIT], responses: { 200: { description: 'deliveries', schema: DeliveryList } }, errors: ['INVALID_ARGUMENT', 'WEBHOOK_NOT_FOUND'] },
    handle: ({ services }) => (req, res) => {
      res.json(services.webhooks.deliveries(req.params.id, req.query.limit));
    },
  }),
  route({
    method: 'post',
    path: '/v1/webhooks/:id/ping',
    access: ADMIN,
    doc: {
      id: 'pingWebhook',
      tag: 'webhooks',
      summary: 'Sends a signed `ping` event to a webhook now and answers with what the receiver said (admin)',
      description:
        'Outside the delivery log: nothing is recorded or retried. The body is `{delivery: null, event: "ping", webhook, time}`, signed like every delivery. A URL that resolves to a non-public address (see createWebhook) is refused without a connection: `delivered: false` with the reason.',
      params: [HOOK_ID],
      responses: { 200: { description: 'the receiver answered, or did not', schema: PingResult } },
      errors: ['WEBHOOK_NOT_FOUND'],
    },
    handle: ({ services }) => async (req, res) => {
      res.json(await services.webhooks.ping(req.params.id));
    },
  }),
  // sends what is due now (a retry need not wait for its backoff)
  route({
    method: 'post',
    path: '/v1/webhooks/:id/redeliver',
    access: ADMIN,
    doc: { id: 'redeliverWebhook', tag: 'webhooks', summary: "Sends a webhook's pending and failed deliveries now (admin)", params: [HOOK_ID], responses: { 200: { description: 'how many were requeued, and the newest deliveries after trying', schema: RedeliverResult } }, errors: ['WEBHOOK_NOT_FOUND'] },
    handle: ({ services }) => async (req, res) => {
      res.json(await services.webhooks.redeliver(req.params.id));
    },
  }),
];
