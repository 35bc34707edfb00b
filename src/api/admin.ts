// Wire types of uploads, tokens, webhooks, maintenance and operations.
import { Digest, nullable, oneOf, Timestamp, Type, type Static } from './common.ts';
import { EVENT_KINDS } from './versions.ts';

// ---- uploads and blobs --------------------------------------------------------

export const UploadDoc = Type.Object(
  {
    id: Type.String(),
    offset: Type.Integer({ description: 'bytes stored so far: the next PATCH starts here' }),
    created_at: Timestamp(),
    updated_at: Timestamp(),
  },
  { $id: 'UploadSession' },
);
export type UploadDoc = Static<typeof UploadDoc>;

export const BlobDoc = Type.Object({ digest: Digest, size: Type.Integer() }, { $id: 'Blob' });
export type BlobDoc = Static<typeof BlobDoc>;

// ---- direct pushes (README "Direct transfers") ---------------------------------

/** Chunk digests per request of a direct push. */
export const MAX_DIRECT_CHUNKS = 1024;

export const MissingChunksRequest = Type.Object(
  { digests: Type.Array(Digest, { maxItems: MAX_DIRECT_CHUNKS, description: 'sha256 of each chunk\'s raw bytes' }) },
  { $id: 'MissingChunksRequest' },
);
export type MissingChunksRequest = Static<typeof MissingChunksRequest>;

export const MissingChunks = Type.Object(
  {
    missing: Type.Array(Digest, {
      description: 'the digests asked about that the caller must upload: not stored, or stored only in content the caller may not read (tenancy: it cannot tell which)',
    }),
  },
  { $id: 'MissingChunks' },
);
export type MissingChunks = Static<typeof MissingChunks>;

export const StagingRequest = Type.Object(
  {
    chunks: Type.Array(
      Type.Object({
        digest: Digest,
        stored_size: Type.Integer({ minimum: 1, description: 'bytes of the encoded object (codec byte and payload) the client will PUT' }),
      }),
      { maxItems: MAX_DIRECT_CHUNKS },
    ),
  },
  { $id: 'StagingRequest' },
);
export type StagingRequest = Static<typeof StagingRequest>;

export const StagingUrls = Type.Object(
  {
    expires_at: Timestamp('when the URLs stop working'),
    urls: Type.Array(
      Type.Object({
        digest: Digest,
        url: Type.String({ description: 'a presigned S3 PUT of exactly `stored_size` bytes into the session\'s staging area; needs no other credential' }),
      }),
    ),
  },
  { $id: 'StagingUrls' },
);
export type StagingUrls = Static<typeof StagingUrls>;

export const ChunkListRequest = Type.Object(
  {
    offset: Type.Integer({ minimum: 0, description: 'where these chunks start in the file: must be the session\'s offset' }),
    chunks: Type.Array(
      Type.Object({ digest: Digest, size: Type.Integer({ minimum: 1, description: 'raw bytes' }) }),
      { minItems: 1, maxItems: MAX_DIRECT_CHUNKS, description: 'the next chunks of the file, in order' },
    ),
  },
  { $id: 'ChunkListRequest' },
);
export type ChunkListRequest = Static<typeof ChunkListRequest>;

// ---- tokens -------------------------------------------------------------------

export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** What `models` means on a token or a webhook (access.ts patternMatches). */
const MODEL_PATTERNS = 'model name patterns: `*` is any run of characters within one part of a name, never across the `/` (`acme/*`: every model of namespace acme; `*` alone: every model); empty: every model';

export const TokenDoc = Type.Object(
  {
    name: Type.String(),
    prefix: Type.String({ description: 'the first characters of the token, to tell tokens apart' }),
    scope: oneOf(SCOPES),
    scopes: Type.Array(oneOf(SCOPES), { description: 'the scopes held: admin implies write, write implies read' }),
    models: Type.Array(Type.String(), { description: MODEL_PATTERNS }),
    created_at: Timestamp(),
    created_by: Type.String(),
    expires_at: nullable(Timestamp()),
    last_used_at: nullable(Timestamp()),
  },
  { $id: 'Token' },
);
export type TokenDoc = Static<typeof TokenDoc>;

export const TokenCreated = Type.Composite([TokenDoc, Type.Object({ token: Type.String({ description: 'the secret: shown once, never again' }) })], { $id: 'TokenCreated' });
export type TokenCreated = Static<typeof TokenCreated>;

export const TokenRequest = Type.Object(
  {
    name: Type.String(),
    scope: Type.Optional(oneOf(SCOPES)),
    scopes: Type.Optional(Type.Array(oneOf(SCOPES), { description: 'the highest counts' })),
    models: Type.Optional(Type.Array(Type.String())),
    expires_in_days: Type.Optional(Type.Number()),
  },
  { $id: 'TokenRequest' },
);
export type TokenRequest = Static<typeof TokenRequest>;

export const TokenList = Type.Object({ tokens: Type.Array(TokenDoc) }, { $id: 'TokenList' });
export type TokenList = Static<typeof TokenList>;

// ---- webhooks -----------------------------------------------------------------

export const WebhookDoc = Type.Object(
  {
    id: Type.Integer(),
    url: Type.String({ format: 'uri' }),
    events: Type.Array(oneOf(EVENT_KINDS), { description: 'empty: every kind' }),
    models: Type.Array(Type.String(), { description: MODEL_PATTERNS }),
    created_by: Type.String(),
    created_at: Timestamp(),
  },
  { $id: 'Webhook' },
);
export type WebhookDoc = Static<typeof WebhookDoc>;

export const WebhookCreated = Type.Composite(
  [WebhookDoc, Type.Object({ secret: Type.String({ description: 'the HMAC-SHA256 key of X-Cairn-Signature-256: shown once, never again' }) })],
  { $id: 'WebhookCreated' },
);
export type WebhookCreated = Static<typeof WebhookCreated>;

export const WebhookRequest = Type.Object(
  {
    url: Type.String({ format: 'uri', description: 'an HTTP or HTTPS URL without credentials in it' }),
    events: Type.Optional(Type.Array(oneOf(EVENT_KINDS))),
    models: Type.Optional(Type.Array(Type.String())),
  },
  { $id: 'WebhookRequest' },
);
export type WebhookRequest = Static<typeof WebhookRequest>;

export const WebhookDelivery = Type.Object(
  {
    id: Type.Integer({ description: 'also sent as X-Cairn-Delivery: receivers dedupe on it (delivery is at least once)' }),
    webhook_id: Type.Integer(),
    event_id: Type.Integer(),
    state: oneOf(['pending', 'delivered', 'failed'] as const),
    attempts: Type.Integer(),
    next_at: Timestamp(),
    last_status: nullable(Type.Integer()),
    last_error: nullable(Type.String()),
    delivered_at: nullable(Timestamp()),
  },
  { $id: 'WebhookDelivery' },
);
export type WebhookDelivery = Static<typeof WebhookDelivery>;

export const WebhookList = Type.Object({ webhooks: Type.Array(WebhookDoc) }, { $id: 'WebhookList' });
export type WebhookList = Static<typeof WebhookList>;
export const DeliveryList = Type.Object({ deliveries: Type.Array(WebhookDelivery) }, { $id: 'DeliveryList' });
export type DeliveryList = Static<typeof DeliveryList>;
export const PingResult = Type.Object(
  { delivered: Type.Boolean({ description: 'a 2xx answer' }), status: nullable(Type.Integer()), error: nullable(Type.String()) },
  { $id: 'PingResult' },
);
export type PingResult = Static<typeof PingResult>;
export const RedeliverResult = Type.Object({ requeued: Type.Integer(), deliveries: Type.Array(WebhookDelivery) }, { $id: 'RedeliverResult' });
export type RedeliverResult = Static<typeof RedeliverResult>;

// ---- maintenance ----------------------------------------------------------------

export const VerifyRequest = Type.Object({ quick: Type.Optional(Type.Boolean({ description: 'check records and object presence only, read no bytes' })) }, { $id: 'VerifyRequest' });
export type VerifyRequest = Static<typeof VerifyRequest>;

export const VerifyReport = Type.Object(
  {
    ok: Type.Boolean(),
    quick: Type.Boolean(),
    versions_checked: Type.Integer(),
    files_checked: Type.Integer(),
    chunks_checked: Type.Integer(),
    bytes_read: Type.Integer(),
    problems: Type.Array(
      Type.Object({
        model: Type.String(),
        version: Type.String(),
        path: Type.String(),
        chunk: nullable(Type.String()),
        problem: oneOf(['missing', 'corrupt', 'size_mismatch'] as const),
      }),
    ),
    seconds: Type.Number(),
  },
  { $id: 'VerifyReport' },
);
export type VerifyReport = Static<typeof VerifyReport>;

export const GcRequest = Type.Object(
  {
    dry_run: Type.Optional(Type.Boolean()),
    grace_seconds: Type.Optional(Type.Number({ minimum: 0 })),
    upload_ttl_seconds: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { $id: 'GcRequest' },
);
export type GcRequest = Static<typeof GcRequest>;

export const GcReport = Type.Object(
  {
    dry_run: Type.Boolean(),
    grace_seconds: Type.Number(),
    upload_ttl_seconds: Type.Number(),
    chunks_deleted: Type.Integer({ description: 'chunk records removed, with their objects' }),
    bytes_freed: Type.Integer({ description: 'stored bytes returned: chunk objects plus orphan objects' }),
    orphan_objects_deleted: Type.Integer({ description: 'objects deleted that had no record' }),
    orphan_bytes_freed: Type.Integer(),
    orphan_objects_pending: Type.Integer({ description: 'unrecorded objects seen, waiting for the grace period to pass' }),
    staged_objects_deleted: Type.Integer({ description: 'objects clients put into staging/ for a direct push whose upload session is gone' }),
    blobs_deleted: Type.Integer(),
    uploads_expired: Type.Integer(),
    seconds: Type.Number(),
  },
  { $id: 'GcReport' },
);
export type GcReport = Static<typeof GcReport>;

// ---- operations -----------------------------------------------------------------

export const Health = Type.Object({ status: Type.Literal('ok') }, { $id: 'Health' });
export type Health = Static<typeof Health>;

export const MirrorStatus = Type.Object(
  {
    pending: Type.Integer(),
    oldest_pending: nullable(Type.String()),
    last_error: nullable(Type.String()),
    mismatched_commits: Type.Integer({ description: 'events whose recorded commit id the git writer could not reproduce (it stops there until `cairn lineage rebuild`); 0 normally' }),
  },
  { $id: 'MirrorStatus' },
);
export type MirrorStatus = Static<typeof MirrorStatus>;

export const Readiness = Type.Object(
  {
    status: oneOf(['ready', 'not ready'] as const),
    storage: Type.String({ description: 'the storage driver: fs, s3, memory' }),
    checks: Type.Record(Type.String(), Type.String(), { description: '`ok` or `error: …` for db and storage' }),
    mirror: MirrorStatus,
  },
  { $id: 'Readiness' },
);
export type Readiness = Static<typeof Readiness>;

/** Who the presented token is (GET /v1/whoami): what the web UI shows and offers. */
export const Whoami = Type.Object(
  {
    name: Type.String({ description: "the token's name (`anonymous` without one)" }),
    scope: oneOf(SCOPES, { description: 'the highest scope held' }),
    scopes: Type.Array(oneOf(SCOPES)),
    models: Type.Array(Type.String(), { description: MODEL_PATTERNS }),
    auth: Type.Boolean({ description: 'false: the server runs with CAIRN_AUTH=off' }),
  },
  { $id: 'Whoami' },
);
export type Whoami = Static<typeof Whoami>;
