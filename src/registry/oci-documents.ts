// The OCI documents of the /v2 front door: what Cairn builds for a version —
// a ModelPack artifact manifest with its config, and the image form's
// manifest and config — and what it accepts from a push (a manifest or an
// index, checked here, never rewritten: it is stored as the bytes it came in).
// Built documents are made once and stored as bytes (see Oci), so nothing
// here may depend on anything that changes after publish (aliases do).
import { createHash } from 'node:crypto';
import type { FileDoc, VersionDoc } from '../api/index.ts';
import { CairnError } from '../errors.ts';
import { isDigest } from '../identifiers.ts';

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  imageConfig: 'application/vnd.oci.image.config.v1+json',
  imageLayer: 'application/vnd.oci.image.layer.v1.tar',
  modelManifest: 'application/vnd.cncf.model.manifest.v1+json',
  modelConfig: 'application/vnd.cncf.model.config.v1+json',
  weight: 'application/vnd.cncf.model.weight.v1.raw',
  weightConfig: 'application/vnd.cncf.model.weight.config.v1.raw',
  doc: 'application/vnd.cncf.model.doc.v1.raw',
  code: 'application/vnd.cncf.model.code.v1.raw',
  dataset: 'application/vnd.cncf.model.dataset.v1.raw',
} as const;

export const ANNOTATION = {
  title: 'org.opencontainers.image.title',
  created: 'org.opencontainers.image.created',
  version: 'org.opencontainers.image.version',
  description: 'org.opencontainers.image.description',
  filepath: 'org.cncf.model.filepath',
  fileMetadata: 'org.cncf.model.file.metadata+json',
  untested: 'org.cncf.model.file.mediatype.untested',
  cairnDigest: 'dev.cairn.version.digest',
  cairnNumber: 'dev.cairn.version.number',
  cairnName: 'dev.cairn.model',
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  artifactType?: string;
}

/** A document as stored: its bytes and what they hash to. */
export interface Document {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function document(value: unknown, mediaType: string): Document {
  const bytes = Buffer.from(JSON.stringify(value), 'utf8');
  return { bytes, digest: sha256(bytes), mediaType };
}

export function descriptorOf(doc: Document, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType: doc.mediaType, digest: doc.digest, size: doc.bytes.length, ...extra };
}

// ---- the ModelPack artifact ---------------------------------------------------------

const DOC_NAME = /^(readme|license|licence|notice|copying|citation|authors|changelog|model[-_]?card)(\.[a-z0-9]+)?$/i;
const DOC_EXT = /\.(md|markdown|rst|pdf|html?)$/i;
const CODE_EXT = /\.(py|ipynb|sh|js|mjs|ts|go|rs|c|cc|cpp|h|hpp|java|rb|r|jl|lua|swift)$/i;
const DATASET_EXT = /\.(csv|tsv|parquet|arrow|jsonl|tfrecords?)$/i;

/**
 * The ModelPack layer type of a file: weights when format detection
 * recognised a model format; otherwise by its name — documentation, code,
 * datasets — and the rest as weight configuration (config.json, tokenizers,
 * vocabularies). `untested`: the type comes from the name alone.
 */
export function layerType(file: Pick<FileDoc, 'path' | 'format'>): { mediaType: string; untested: boolean } {
  if (file.format !== 'unknown') return { mediaType: MEDIA.weight, untested: false };
  const base = file.path.slice(file.path.lastIndexOf('/') + 1);
  if (DOC_NAME.test(base) || DOC_EXT.test(base)) return { mediaType: MEDIA.doc, untested: true };
  if (CODE_EXT.test(base)) return { mediaType: MEDIA.code, untested: true };
  if (DATASET_EXT.test(base)) return { mediaType: MEDIA.dataset, untested: true };
  return { mediaType: MEDIA.weightConfig, untested: true };
}

/** ModelPack's precision names; other dtypes (GGUF's q4_k, …) are quantizations. */
const PRECISIONS = new Set(['float32', 'float64', 'float16', 'bfloat16', 'float8_e4m3', 'float8_e5m2', 'complex32', 'complex64', 'complex128', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'bool']);
const FORMAT_NAMES: Record<string, string> = { pytorch: 'pt' };

/** `<count><scale>` with one decimal at most: 6.7B, 110M, 1.2K; undefined below 100. */
export function paramSize(parameters: number | null): string | undefined {
  if (parameters === null || parameters < 100) return undefined;
  for (const [scale, n] of [['Q', 1e15], ['T', 1e12], ['B', 1e9], ['M', 1e6], ['K', 1e3]] as const) {
    if (parameters >= n / 10) return `${Number((parameters / n).toFixed(1))}${scale}`;
  }
  return undefined;
}

function stringField(metadata: Record<string, unknown>, key: string): string | undefined {
  const v = metadata[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function stringsField(metadata: Record<string, unknown>, ...keys: string[]): string[] | undefined {
  for (const key of keys) {
    const v = metadata[key];
    if (typeof v === 'string' && v !== '') return [v];
    if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) return v as string[];
  }
  return undefined;
}

/** Only what never changes after publish: the version's own fields, files, analysis and metadata. */
export type BuildInput = Pick<VersionDoc, 'name' | 'version' | 'number' | 'digest' | 'created_at' | 'message' | 'files' | 'summary' | 'metadata'>;

/**
 * The ModelPack config (application/vnd.cncf.model.config.v1+json; its
 * schema allows no other fields): name, version and time of the version,
 * what format analysis found (format, parameters, precisions,
 * quantization), a few well-known metadata keys, and a DiffID per layer
 * (raw layers: the file's digest).
 */
export function modelConfig(v: BuildInput): Document {
  const dtypes = Object.entries(v.summary.dtypes).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const precision = dtypes.filter(([d]) => PRECISIONS.has(d)).map(([d]) => d);
  const quantization = dtypes.filter(([d]) => !PRECISIONS.has(d)).map(([d]) => d);
  const format = v.summary.framework ?? undefined;
  return document(
    {
      descriptor: {
        createdAt: v.created_at,
        ...(stringsField(v.metadata, 'authors', 'author') ? { authors: stringsField(v.metadata, 'authors', 'author') } : {}),
        ...(stringField(v.metadata, 'vendor') ? { vendor: stringField(v.metadata, 'vendor') } : {}),
        ...(stringField(v.metadata, 'family') ? { family: stringField(v.metadata, 'family') } : {}),
        name: v.name,
        version: v.version,
        ...(v.message || stringField(v.metadata, 'description') ? { description: stringField(v.metadata, 'description') ?? v.message } : {}),
        ...(stringsField(v.metadata, 'licenses', 'license') ? { licenses: stringsField(v.metadata, 'licenses', 'license') } : {}),
      },
      config: {
        ...(stringField(v.metadata, 'architecture') ? { architecture: stringField(v.metadata, 'architecture') } : {}),
        ...(format ? { format: FORMAT_NAMES[format] ?? format } : {}),
        ...(paramSize(v.summary.parameters) ? { paramSize: paramSize(v.summary.parameters) } : {}),
        ...(precision.length > 0 ? { precision: precision.join(',') } : {}),
        ...(quantization.length > 0 ? { quantization: quantization.join(',') } : {}),
      },
      modelfs: { type: 'layers', diffIds: v.files.map((f) => f.digest) },
    },
    MEDIA.modelConfig,
  );
}

function fileLayer(file: FileDoc, createdAt: string): Descriptor {
  const { mediaType, untested } = layerType(file);
  const base = file.path.slice(file.path.lastIndexOf('/') + 1);
  return {
    mediaType,
    digest: file.digest,
    size: file.size,
    annotations: {
      [ANNOTATION.title]: file.path,
      [ANNOTATION.filepath]: file.path,
      [ANNOTATION.fileMetadata]: JSON.stringify({ name: base, mode: 0o644, uid: 0, gid: 0, size: file.size, mtime: createdAt, typeflag: 48 }),
      [ANNOTATION.untested]: String(untested),
    },
  };
}

function versionAnnotations(v: BuildInput): Record<string, string> {
  return {
    [ANNOTATION.created]: v.created_at,
    [ANNOTATION.version]: v.version,
    [ANNOTATION.cairnName]: v.name,
    [ANNOTATION.cairnDigest]: v.digest,
    [ANNOTATION.cairnNumber]: String(v.number),
  };
}

/** The version as a ModelPack artifact: its config, then one raw layer per file (path order), each titled with its path (oras skips untitled layers). */
export function modelManifest(v: BuildInput, config: Document): Document {
  return document(
    {
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      artifactType: MEDIA.modelManifest,
      config: descriptorOf(config),
      layers: v.files.map((f) => fileLayer(f, v.created_at)),
      annotations: versionAnnotations(v),
    },
    MEDIA.ociManifest,
  );
}

// ---- the image form -------------------------------------------------------------------

export const IMAGE_SUFFIX = '-image';
/** The title of the image form's layer: what `oras pull` writes it as. */
const IMAGE_LAYER_TITLE = 'models.tar';

/**
 * The image form's config: a Linux image (amd64: a data-only image runs
 * nowhere, and a fixed value keeps the bytes the same on every server) whose
 * one layer is the tar of the files under /models.
 */
export function imageConfig(v: BuildInput, layerDigest: string): Document {
  return document(
    {
      created: v.created_at,
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: versionAnnotations(v), WorkingDir: '/models' },
      rootfs: { type: 'layers', diff_ids: [layerDigest] },
      history: [{ created: v.created_at, created_by: `cairn: the files of ${v.name}@${v.version} under /models` }],
    },
    MEDIA.imageConfig,
  );
}

/** The image form's manifest; its subject is the artifact manifest, so it is listed among that one's referrers. */
export function imageManifest(v: BuildInput, config: Document, layer: { digest: string; size: number }, artifact: Descriptor): Document {
  return document(
    {
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config: descriptorOf(config),
      layers: [{ mediaType: MEDIA.imageLayer, digest: layer.digest, size: layer.size, annotations: { [ANNOTATION.title]: IMAGE_LAYER_TITLE } }],
      subject: { mediaType: artifact.mediaType, digest: artifact.digest, size: artifact.size },
      annotations: versionAnnotations(v),
    },
    MEDIA.ociManifest,
  );
}

// ---- what a push brings -------------------------------------------------------------------

const MANIFEST_TYPES = new Set<string>([MEDIA.ociManifest, MEDIA.dockerManifest]);
const INDEX_TYPES = new Set<string>([MEDIA.ociIndex, MEDIA.dockerList]);

export interface PushedManifest {
  mediaType: string;
  kind: 'manifest' | 'index';
  config?: Descriptor;
  layers: Descriptor[];
  /** an index's manifests */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** as the referrers API lists it: the artifactType, else (a manifest) the config's media type */
  artifactType?: string;
  annotations?: Record<string, string>;
}

function invalid(message: string): CairnError {
  return new CairnError('INVALID_MANIFEST', message);
}

function annotationsOf(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!value || typeof value !== 'object' || Array.isArray(value) || !Object.values(value).every((x) => typeof x === 'string')) {
    throw invalid(`${where}.annotations must be an object of strings`);
  }
  return value as Record<string, string>;
}

function descriptor(value: unknown, where: string): Descriptor {
  const d = value as Record<string, unknown> | null;
  if (!d || typeof d !== 'object' || Array.isArray(d)) throw invalid(`${where} must be a descriptor object`);
  if (typeof d.mediaType !== 'string' || d.mediaType === '') throw invalid(`${where}.mediaType must be a string`);
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) {
    throw new CairnError('INVALID_DIGEST', `${where}.digest ${JSON.stringify(d.digest)}: expected sha256:<64 lowercase hex> (the only algorithm this registry takes)`);
  }
  if (!Number.isSafeInteger(d.size) || (d.size as number) < 0) throw invalid(`${where}.size must be a non-negative integer`);
  if (d.artifactType !== undefined && typeof d.artifactType !== 'string') throw invalid(`${where}.artifactType must be a string`);
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size as number,
    ...(d.annotations !== undefined ? { annotations: annotationsOf(d.annotations, where) } : {}),
    ...(typeof d.artifactType === 'string' ? { artifactType: d.artifactType } : {}),
  };
}

/**
 * Checks a pushed manifest or index (the bytes themselves are kept as they
 * came): JSON, schemaVersion 2, a media type this registry stores — from the
 * document, else from Content-Type, the two agreeing when both are given —
 * and well-formed descriptors.
 */
export function parsePushed(bytes: Buffer, contentType: string | undefined): PushedManifest {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw invalid('the manifest is not JSON');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw invalid('the manifest must be a JSON object');
  if (doc.schemaVersion !== 2) throw invalid(`schemaVersion must be 2, got ${JSON.stringify(doc.schemaVersion)}`);
  const declared = contentType?.split(';')[0]!.trim().toLowerCase() || undefined;
  if (doc.mediaType !== undefined && typeof doc.mediaType !== 'string') throw invalid('mediaType must be a string');
  const mediaType = (doc.mediaType as string | undefined) ?? declared;
  if (doc.mediaType !== undefined && declared !== undefined && declared !== doc.mediaType) {
    throw invalid(`Content-Type ${declared} differs from the manifest's mediaType ${doc.mediaType as string}`);
  }
  if (!mediaType || (!MANIFEST_TYPES.has(mediaType) && !INDEX_TYPES.has(mediaType))) {
    throw invalid(`unsupported manifest media type ${JSON.stringify(mediaType ?? null)}: expected one of ${[...MANIFEST_TYPES, ...INDEX_TYPES].join(', ')}`);
  }
  if (doc.artifactType !== undefined && typeof doc.artifactType !== 'string') throw invalid('artifactType must be a string');
  const subject = doc.subject === undefined ? undefined : descriptor(doc.subject, 'subject');
  const annotations = annotationsOf(doc.annotations, 'manifest');
  if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw invalid('an index needs a manifests array');
    return {
      mediaType,
      kind: 'index',
      layers: [],
      manifests: doc.manifests.map((m, i) => descriptor(m, `manifests[${i}]`)),
      subject,
      artifactType: doc.artifactType as string | undefined,
      annotations,
    };
  }
  const config = descriptor(doc.config, 'config');
  if (!Array.isArray(doc.layers)) throw invalid('a manifest needs a layers array');
  return {
    mediaType,
    kind: 'manifest',
    config,
    layers: doc.layers.map((l, i) => descriptor(l, `layers[${i}]`)),
    manifests: [],
    subject,
    artifactType: (doc.artifactType as string | undefined) || config.mediaType,
    annotations,
  };
}

/** A tar layer's file name ending, from its media type; '' for anything else. */
function tarSuffix(mediaType: string): string {
  if (/tar[.+]gzip$/.test(mediaType)) return '.tar.gz';
  if (/tar[.+]zstd$/.test(mediaType)) return '.tar.zst';
  if (/[.+]tar$/.test(mediaType)) return '.tar';
  return '';
}

/**
 * The path a pushed layer is stored under in the version: its
 * `org.cncf.model.filepath`, else its `org.opencontainers.image.title`, as
 * given (oras pushes plain files with a tar media type, so the type says
 * nothing of the name). An untitled layer is `layers/<hex>`, with the
 * archive's ending when its media type names one (a KitOps or image layer:
 * its bytes are kept as given, Cairn does not unpack them).
 */
export function layerPath(layer: Descriptor): string {
  const named = layer.annotations?.[ANNOTATION.filepath] || layer.annotations?.[ANNOTATION.title];
  return named || `layers/${layer.digest.slice('sha256:'.length)}${tarSuffix(layer.mediaType)}`;
}
