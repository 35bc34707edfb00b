// Wire types of derived versions and the jobs that make them.
import { Digest, nullable, oneOf, Timestamp, Type, type Static } from './common.ts';

export const DERIVE_OPS = ['fp16', 'int8', 'cast', 'prune'] as const;
export type DeriveOp = (typeof DERIVE_OPS)[number];
export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

export const MeasureRequest = Type.Object(
  {
    count: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, description: 'inputs to generate (default 4)' })),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 4294967295, description: 'seed of the generator (default 0): floats standard normal, integers uniform in [0, 100)' })),
    shapes: Type.Optional(Type.Record(Type.String(), Type.Array(Type.Integer({ minimum: 1 })), { description: 'full shapes of inputs with symbolic dimensions (otherwise those are 1)' })),
    values: Type.Optional(Type.Record(Type.String(), Type.Number(), { description: 'a constant for an input (e.g. a sample rate)' })),
    repeat: Type.Optional(Type.Integer({ minimum: 1, maximum: 20, description: 'timed runs per model and input (default 3)' })),
  },
  { $id: 'MeasureRequest', additionalProperties: false, description: 'How ONNX results are measured when no samples file is named: inputs generated from the parent\'s input signature.' },
);
export type MeasureRequest = Static<typeof MeasureRequest>;

export const DeriveRequest = Type.Object(
  {
    op: oneOf(DERIVE_OPS, {
      description: '`fp16` (ONNX: float16 weights and activations, float32 kept where an operator needs it), `int8` (ONNX and safetensors: per-channel symmetric int8 weights), `cast` (safetensors: F32 tensors to BF16 or F16), `prune` (ONNX and safetensors: magnitude pruning, per tensor)',
    }),
    params: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description:
          'cast: `to` (`BF16` default, `F16`); prune: `sparsity` (0…1, default 0.5); fp16: `minPositive` (1e-7), `maxFinite` (1e4), `opBlockList`, `nodeBlockList` (kept in float32); int8: none. Anything else is 400.',
      }),
    ),
    to: Type.Optional(
      Type.String({
        description: '`name@version` of the derived version (write access to that model is needed), or a model name (the parent\'s version string is used). Default: the parent\'s model, version `<parent version>-<op>` (`-bf16`/`-f16` for cast, `-prune<percent>` for prune).',
      }),
    ),
    files: Type.Optional(Type.Array(Type.String(), { description: 'paths in the parent version to transform; default: every file of a format the op applies to (except the samples file)', maxItems: 1000 })),
    samples: Type.Optional(Type.String({ description: 'path in the parent version of a safetensors file of inputs: a tensor named after each model input is one sample; `<i>/<input>` is sample i' })),
    measure: Type.Optional(MeasureRequest),
    message: Type.Optional(Type.String()),
  },
  { $id: 'DeriveRequest', additionalProperties: false },
);
export type DeriveRequest = Static<typeof DeriveRequest>;

const VersionRef = Type.Object({ name: Type.String(), version: Type.String(), digest: Digest });

export const JobDoc = Type.Object(
  {
    id: Type.String(),
    kind: Type.Literal('derive'),
    state: oneOf(JOB_STATES),
    parent: Type.Object({ name: Type.String(), version: Type.String(), digest: Type.Union([Digest, Type.Literal('hidden')]) }, { description: 'a parent the caller may not read shows as `hidden`' }),
    target: Type.Object({ name: Type.String(), version: Type.String() }),
    op: oneOf(DERIVE_OPS),
    params: Type.Record(Type.String(), Type.Unknown(), { description: 'the transform\'s parameters, defaults filled in' }),
    files: Type.Array(Type.String(), { description: 'the parent files being transformed' }),
    progress: Type.Object({
      bytes: Type.Integer({ description: 'how much of `total` is done: the parent bytes transformed so far (a file in progress counts in proportion to its output written)' }),
      total: Type.Integer({ description: 'size of the parent files being transformed' }),
      phase: Type.String({ description: 'what runs now: `transform <path>`, `measure <path>`, `publish`; empty when not running' }),
    }),
    result: nullable(VersionRef, { description: 'the derived version, once published' }),
    error: nullable(Type.Object({ code: Type.String(), message: Type.String() }), { description: 'why the job failed' }),
    attempts: Type.Integer({ description: 'runs started; a run cut short by a crash is re-run from scratch, up to 3 runs' }),
    created_by: Type.String(),
    created_at: Timestamp(),
    updated_at: Timestamp(),
    started_at: nullable(Timestamp()),
    finished_at: nullable(Timestamp()),
  },
  { $id: 'Job' },
);
export type JobDoc = Static<typeof JobDoc>;
