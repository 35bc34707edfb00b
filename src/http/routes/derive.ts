// Derived versions: a derive request becomes a job; the job is read back by id.
import { DeriveRequest, JobDoc } from '../../api/index.ts';
import { actorOf } from '../actor.ts';
import { callerOf, requireScope } from '../auth.ts';
import { jsonBodyParser } from '../json-body.ts';
import { LOCATION, pathParam, REF_ERRORS } from '../openapi.ts';
import { route } from '../route.ts';

const jsonBody = jsonBodyParser('256kb');

export const deriveRoutes = [
  route({
    method: 'post',
    path: '/v1/models/:name/versions/:ref/derive',
    // read on the parent here; write on the target (named in the body) in the handler
    access: { scope: 'read', model: 'name' },
    doc: {
      id: 'deriveVersion',
      tag: 'derive',
      summary: 'Derive a new version from this one by a named transform (a job)',
      description:
        'Queues a job that transforms the files of a format the op applies to (or those named by `files`), carries every other file over by reference, measures the result against the parent (ONNX: ONNX Runtime on both models with the samples file or generated inputs — max/mean absolute error and cosine per output, median latency; safetensors: per-tensor error of the round trip; sizes raw and stored) and publishes it like any version, with the parent edge `quantized-from` (int8), `converted-from` (fp16, cast) or `pruned-from` (prune) whose recipe holds the transform, its parameters, the tool versions and those numbers. Needs read on this model and write on the target model (403 otherwise). `202` + the job; the same transform with the same parameters on the same parent answers with the job that made it — `200` once its version is published — instead of a new one.',
      body: { required: true, content: { 'application/json': { schema: DeriveRequest } } },
      responses: {
        200: { description: 'this derivation was done before: its job, with the version (`result`)', schema: JobDoc },
        202: { description: 'queued (or already queued or running): the job; poll GET /v1/jobs/{id}', headers: LOCATION('/v1/jobs/{id}'), schema: JobDoc },
      },
      errors: [...REF_ERRORS, 'INVALID_ARGUMENT', 'INVALID_VERSION', 'VERSION_EXISTS'],
    },
    before: () => [jsonBody],
    handle: ({ services }) => (req, res) => {
      const caller = callerOf(req);
      const plan = services.derive.plan(req.params.name, req.params.ref, req.body, caller);
      requireScope(req, 'write', plan.target.name);
      const { job } = services.derive.submit(plan, caller, actorOf(req));
      res.status(job.state === 'succeeded' ? 200 : 202).location(`/v1/jobs/${job.id}`).json(job);
    },
  }),
  route({
    method: 'get',
    path: '/v1/jobs/:id',
    access: { scope: 'read' },
    doc: {
      id: 'getJob',
      tag: 'derive',
      summary: 'A job: state, progress, the version it made or why it failed',
      description: 'For the token that created the job, or one that may read its target model; to any other it does not exist (404).',
      params: [pathParam('id', 'the job id (24 hex)')],
      responses: { 200: { description: 'the job', schema: JobDoc } },
      errors: ['JOB_NOT_FOUND'],
    },
    handle: ({ services }) => (req, res) => {
      res.json(services.derive.job(req.params.id, callerOf(req)));
    },
  }),
];
