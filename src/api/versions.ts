// Wire types of models, versions and their files, lineage and history.
import { MAX_FILES_PER_VERSION, MAX_PARENTS } from '../identifiers.ts';
import { MAX_JSON_BYTES, MAX_JSON_DEPTH } from '../json-limits.ts';
import { AliasName, AnyJson, Digest, Name, NextCursor, nullable, oneOf, page, Timestamp, Type, Version, type Static, type TSchema } from './common.ts';

export const VERDICTS = ['safe', 'unsafe', 'unknown'] as const;
export const EVENT_KINDS = ['publish', 'alias', 'unalias', 'delete', 'describe'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];
export const RELATIONS = ['fine-tuned-from', 'quantized-from', 'pruned-from', 'distilled-from', 'converted-from', 'derived-from'] as const;
export type Relation = (typeof RELATIONS)[number];

const USER_JSON = `any JSON, nested at most ${MAX_JSON_DEPTH} levels, at most ${MAX_JSON_BYTES} bytes (400 INVALID_ARGUMENT otherwise)`;
export const FILE_PATH_RULES =
  'path inside the version: relative, `/`-separated, no `..`, `.` or empty segments, at most 1024 bytes; stored in Unicode NFC. ' +
  'Refused (400 INVALID_PATH): control, format (zero-width, bidi) and U+FFFD characters (invalid UTF-8 in a multipart filename decodes to U+FFFD), a backslash, a drive letter (`C:x`), a segment ending in `.` or space. ' +
  'Refused (400 DUPLICATE_PATH): two paths equal ignoring case, a path that is also the directory of another (`a` and `a/b`).';

export const Tensor = Type.Object({ name: Type.String(), dtype: Type.String(), shape: Type.Array(Type.Union([Type.Integer(), Type.String()])) }, { $id: 'Tensor' });
export type Tensor = Static<typeof Tensor>;

export const Safety = Type.Object(
  {
    verdict: oneOf(VERDICTS),
    findings: Type.Array(Type.Object({ global: Type.String(), reason: Type.String() })),
    globals: Type.Optional(Type.Array(Type.String())),
    incomplete: Type.Optional(
      Type.Array(Type.String(), { description: 'what was not checked and why (a budget or depth limit, a member too large to read); never present on a `safe` verdict' }),
    ),
  },
  { $id: 'Safety' },
);
export type Safety = Static<typeof Safety>;

export const FileDoc = Type.Object(
  {
    path: Type.String({ description: 'relative, `/`-separated, at most 1024 bytes' }),
    size: Type.Integer(),
    digest: Digest,
    format: Type.String({ description: 'onnx, safetensors, gguf, pytorch, pickle, joblib, numpy, tflite, keras, h5, savedmodel, tfjs, torchserve, unknown' }),
    framework: Type.Optional(Type.String()),
    parameters: Type.Optional(Type.Integer()),
    dtypes: Type.Optional(Type.Record(Type.String(), Type.Integer())),
    inputs: Type.Optional(Type.Array(Tensor)),
    outputs: Type.Optional(Type.Array(Tensor)),
    safety: Safety,
    details: Type.Record(Type.String(), Type.Unknown(), { description: 'format-specific details' }),
  },
  { $id: 'File' },
);
export type FileDoc = Static<typeof FileDoc>;

export const CODECS = ['raw', 'zstd', 'zstd-bg2', 'zstd-bg4'] as const;

export const ChunkMapEntry = Type.Object(
  {
    offset: Type.Integer({ description: 'where the chunk starts in the file' }),
    size: Type.Integer({ description: 'raw bytes' }),
    digest: Type.String({ description: 'sha256 of the raw bytes: check it after decoding', pattern: '^sha256:[0-9a-f]{64}$' }),
    codec: oneOf(CODECS, { description: 'how the object is encoded; its first byte says the same (README "Storage format")' }),
    stored_size: Type.Integer({ description: 'bytes of the object, codec byte included' }),
    url: Type.String({ description: 'a presigned S3 GET of the object, valid until `expires_at`; needs no other credential' }),
  },
  { $id: 'ChunkMapEntry' },
);
export type ChunkMapEntry = Static<typeof ChunkMapEntry>;

export const ChunkMap = Type.Object(
  {
    path: Type.String(),
    size: Type.Integer({ description: 'of the whole file' }),
    digest: Digest,
    start: Type.Integer({ description: 'first byte of the range asked for (the first chunk may begin before it)' }),
    end: Type.Integer({ description: 'last byte of the range asked for, inclusive; -1 for an empty file' }),
    expires_at: Timestamp('when the URLs stop working: ask again for a fresh map'),
    chunks: Type.Array(ChunkMapEntry, { description: 'in file order, every chunk that overlaps [start, end]' }),
  },
  { $id: 'ChunkMap', description: "A file's chunks and where to fetch each one straight from storage (README \"Direct transfers\")." },
);
export type ChunkMap = Static<typeof ChunkMap>;

export const ParentDoc = Type.Object(
  {
    name: Type.String(),
    version: Type.String(),
    digest: Type.Union([Digest, Type.Literal('hidden')]),
    relation: Type.String(),
    recipe: AnyJson(),
    hidden: Type.Optional(Type.Literal(true, { description: 'present only on a redacted parent' })),
  },
  { $id: 'Parent', description: 'A parent version. One of a model the caller may not read is redacted: `hidden: true`, name, version and digest `"hidden"`, recipe null.' },
);
export type ParentDoc = Static<typeof ParentDoc>;

export const FormatSummary = Type.Object(
  {
    framework: nullable(Type.String()),
    formats: Type.Array(Type.String()),
    parameters: nullable(Type.Integer()),
    dtypes: Type.Record(Type.String(), Type.Integer()),
    inputs: Type.Array(Tensor),
    outputs: Type.Array(Tensor),
    safety: Type.Object({
      verdict: oneOf(VERDICTS),
      unsafe_files: Type.Array(Type.Object({ path: Type.String(), findings: Type.Array(Type.Object({ global: Type.String(), reason: Type.String() })) })),
      unchecked_files: Type.Array(Type.String()),
    }),
  },
  { $id: 'FormatSummary', description: 'framework, parameters, dtypes, inputs/outputs and safety across the files' },
);
export type FormatSummary = Static<typeof FormatSummary>;

const versionFields = {
  version: Version,
  number: Type.Integer({ description: '1, 2, 3… per model in publish order, never reused' }),
  digest: Type.String({ pattern: Digest.pattern, description: 'sha256 of the canonical manifest' }),
  size: Type.Integer({ description: 'sum of the file sizes' }),
  created_at: Timestamp(),
  created_by: Type.String(),
  message: Type.String(),
  aliases: Type.Array(Type.String()),
};

export const VersionSummary = Type.Object(versionFields, { $id: 'VersionSummary' });
export type VersionSummary = Static<typeof VersionSummary>;

export const VersionDoc = Type.Object(
  {
    name: Name,
    ...versionFields,
    files: Type.Array(FileDoc),
    parents: Type.Array(ParentDoc),
    metadata: Type.Record(Type.String(), Type.Unknown()),
    summary: FormatSummary,
  },
  { $id: 'VersionDocument' },
);
export type VersionDoc = Static<typeof VersionDoc>;

export const ModelDoc = Type.Object(
  {
    name: Name,
    description: Type.String(),
    created_at: Timestamp(),
    updated_at: Timestamp(),
    readme: Type.String({ description: "the model's card, Markdown, set with PATCH; '' = none (a version's own README.md is that version's card)" }),
    aliases: Type.Record(Type.String(), Type.String(), { description: 'alias → version' }),
    latest: nullable(VersionSummary),
    counts: Type.Object({ versions: Type.Integer() }),
  },
  { $id: 'Model' },
);
export type ModelDoc = Static<typeof ModelDoc>;

export const MODEL_SORTS = ['name', 'updated'] as const;

export const ModelSummary = Type.Object(
  {
    name: Name,
    description: Type.String(),
    created_at: Timestamp(),
    updated_at: Timestamp(),
    latest_version: nullable(Type.String()),
    versions: Type.Integer(),
    production_version: nullable(Type.String(), { description: 'the version the `production` alias points at' }),
    latest: nullable(
      Type.Object({
        formats: Type.Array(Type.String()),
        framework: nullable(Type.String()),
        size: Type.Integer(),
        safety: oneOf(VERDICTS),
      }),
      { description: 'what the latest version is: its formats, framework, size and safety verdict' },
    ),
    unsafe: Type.Boolean({ description: 'a live version has a file that runs code when loaded (what `unsafe=true` selects)' }),
  },
  { $id: 'ModelListItem' },
);
export type ModelSummary = Static<typeof ModelSummary>;

export const ModelList = Type.Object(
  {
    models: Type.Array(ModelSummary),
    next_cursor: NextCursor,
    total: Type.Integer({ description: 'models matching the query and filters, on all pages' }),
  },
  { $id: 'ModelList' },
);
export type ModelList = Static<typeof ModelList>;

export const ModelPatch = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 2048, description: 'one paragraph of plain text, at most 2048 characters' })),
    readme: Type.Optional(Type.String({ description: "the model card, Markdown, at most 256 KiB; '' removes it" })),
  },
  { $id: 'ModelPatch', additionalProperties: false },
);
export type ModelPatch = Static<typeof ModelPatch>;
export const VersionList = page('versions', VersionSummary, 'VersionList');
export type VersionList = Static<typeof VersionList>;

export const HistoryEntry = Type.Object(
  {
    id: Type.Integer(),
    commit: nullable(Type.String(), { description: 'the lineage commit (40 hex) once mirrored' }),
    event: oneOf(EVENT_KINDS),
    version: nullable(Type.String()),
    alias: nullable(Type.String()),
    author: Type.String(),
    time: Timestamp(),
    subject: Type.String(),
    message: Type.String(),
  },
  { $id: 'HistoryEvent' },
);
export type HistoryEntry = Static<typeof HistoryEntry>;
export const History = page('events', HistoryEntry, 'History');
export type History = Static<typeof History>;

const NameVersion = Type.Object({ name: Type.String(), version: Type.String() });
export const LineageGraph = Type.Object(
  {
    root: NameVersion,
    nodes: Type.Array(Type.Object({ name: Type.String(), version: Type.String(), number: Type.Integer(), digest: Digest, deleted: Type.Boolean() })),
    edges: Type.Array(Type.Object({ from: Type.String(), to: Type.String(), relation: Type.String(), recipe: AnyJson() }), {
      description: '`from` is the child, `to` the parent; both `name@version`',
    }),
  },
  { $id: 'LineageGraph' },
);
export type LineageGraph = Static<typeof LineageGraph>;

const VersionRefDoc = Type.Object({ name: Type.String(), version: Type.String(), digest: Type.String() });
const SizeDigest = nullable(Type.Object({ size: Type.Integer(), digest: Type.String() }));
const Change = <T extends TSchema>(value: T) => Type.Object({ from: value, to: value });
export const DIFF_STATUSES = ['added', 'removed', 'changed', 'renamed', 'unchanged'] as const;
export const VersionDiff = Type.Object(
  {
    from: VersionRefDoc,
    to: VersionRefDoc,
    files: Type.Array(
      Type.Object({
        path: Type.String({ description: 'the path in `to` (in `from` for a removed file)' }),
        status: oneOf(DIFF_STATUSES, { description: '`renamed`: the same content (digest) as a file of `from` under another path, which is then not listed as removed' }),
        from_path: Type.Optional(Type.String({ description: 'renamed: the path in `from`' })),
        from: SizeDigest,
        to: SizeDigest,
        shared_bytes: Type.Integer({ description: 'bytes of the file (as in `to`) in chunks the `from` version also has' }),
        delta: Type.Optional(
          Type.Object(
            {
              size: Type.Integer({ description: 'to.size − from.size' }),
              format: Type.Optional(Change(Type.String())),
              parameters: Type.Optional(Change(nullable(Type.Integer()))),
              dtypes: Type.Optional(Type.Record(Type.String(), Change(Type.Integer()), { description: 'dtype → tensor element counts before and after (0: none), only those that differ' })),
            },
            { description: 'a changed file: what its format analysis says changed' },
          ),
        ),
      }),
    ),
    metadata: Type.Array(
      Type.Object({
        key: Type.String({ description: 'a dotted path into the metadata object (`training.lr`); arrays are compared whole' }),
        status: oneOf(['added', 'removed', 'changed'] as const),
        from: Type.Optional(AnyJson('the value in `from` (absent when added)')),
        to: Type.Optional(AnyJson('the value in `to` (absent when removed)')),
      }),
      { description: 'metadata keys that differ' },
    ),
    summary: Type.Object({
      added: Type.Integer(),
      removed: Type.Integer(),
      changed: Type.Integer(),
      renamed: Type.Integer(),
      unchanged: Type.Integer(),
      from_bytes: Type.Integer({ description: 'size of the `from` version' }),
      to_bytes: Type.Integer({ description: 'size of the `to` version' }),
      from_parameters: nullable(Type.Integer()),
      to_parameters: nullable(Type.Integer()),
      shared_bytes: Type.Integer({ description: 'bytes of `to` in chunks the `from` version has' }),
      new_stored_bytes: Type.Integer({ description: 'stored (compressed) bytes of the chunks `to` has and `from` does not' }),
    }),
  },
  { $id: 'VersionDiff', description: 'What changed from one version to another (of the same model or not): files (renames found by digest, format deltas), metadata, and the bytes their chunks share.' },
);
export type VersionDiff = Static<typeof VersionDiff>;

export const AliasRequest = Type.Object({ version: Version }, { $id: 'AliasRequest' });
export type AliasRequest = Static<typeof AliasRequest>;
export const AliasSet = Type.Object({ alias: Type.String(), version: Type.String(), previous: nullable(Type.String()) }, { $id: 'AliasSet' });
export type AliasSet = Static<typeof AliasSet>;

export const ParentRequest = Type.Object({
  ref: Type.String({ description: '`name@ref`' }),
  relation: Type.Optional(oneOf(RELATIONS, { description: 'default `derived-from`' })),
  recipe: Type.Optional(AnyJson(USER_JSON)),
});
export type ParentRequest = Static<typeof ParentRequest>;
export const ParentInput = Type.Union([Type.String({ description: '`name@ref`' }), ParentRequest], { $id: 'ParentInput' });

/** The JSON form of a publish: a manifest naming blobs uploaded before. */
export const PublishRequest = Type.Object(
  {
    version: Version,
    files: Type.Array(Type.Object({ path: Type.String({ description: FILE_PATH_RULES }), digest: Digest }), {
      minItems: 1,
      maxItems: MAX_FILES_PER_VERSION,
      description: 'blobs uploaded before (POST /v1/uploads)',
    }),
    message: Type.Optional(Type.String()),
    aliases: Type.Optional(Type.Array(AliasName)),
    parents: Type.Optional(Type.Array(ParentInput, { maxItems: MAX_PARENTS })),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: `a JSON object, nested at most ${MAX_JSON_DEPTH} levels, at most ${MAX_JSON_BYTES} bytes` })),
  },
  { $id: 'PublishManifest' },
);
export type PublishRequest = Static<typeof PublishRequest>;

/** The multipart form of a publish (fields; file parts described by the route). */
export const PublishForm = Type.Object(
  {
    version: Version,
    message: Type.Optional(Type.String()),
    alias: Type.Optional(Type.Array(AliasName, { description: 'repeatable field' })),
    parent: Type.Optional(Type.Array(Type.String(), { description: 'repeatable field, `name@ref`' })),
    relation: Type.Optional(Type.Array(Type.String(), { description: 'one for every parent, or one per parent' })),
    recipe: Type.Optional(Type.String({ description: `JSON; falls back to metadata.recipe; ${USER_JSON}` })),
    metadata: Type.Optional(Type.String({ description: `a JSON object, nested at most ${MAX_JSON_DEPTH} levels, at most ${MAX_JSON_BYTES} bytes` })),
    file: Type.Array(Type.String({ contentMediaType: 'application/octet-stream' }), { description: `the filename of each part: ${FILE_PATH_RULES}` }),
  },
  { $id: 'PublishForm' },
);
