// The image form of a version (tag `<version>-image`): an OCI image whose one
// layer is an uncompressed tar of the version's files under /models — what
// `podman pull`, Kubernetes image volumes and KServe modelcars mount. The
// layer is never stored (image-layer.ts lays it out over the files' chunks);
// its digest takes reading every byte once, which a job does in the
// background: for each version published while the server runs, and for an
// older one the first time its image form is asked for. Built once, then
// stored like any manifest and never rebuilt.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { FULL_VIEW } from '../access.ts';
import type { BlobStream, ChunkStore } from '../blobs/chunk-store.ts';
import { CairnError, isCairnError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { VersionRow } from '../metadata/models.ts';
import type { ImageLayerRow, OciManifestRow, OciQueries } from '../metadata/oci.ts';
import type { Catalog } from './catalog.ts';
import { type LayerLayout, layerLayout, layoutFingerprint, segmentsInRange } from './image-layer.ts';
import { type Document, imageConfig, imageManifest, MEDIA } from './oci-documents.ts';

/** How long a request for an image form waits for its build before answering IMAGE_PENDING. */
export const IMAGE_WAIT_MS = 20_000;
/** After a failed build, how long before the version is tried again. */
const RETRY_FAILED_MS = 60_000;

/**
 * Streams the inclusive byte range of a layer: headers and padding from the
 * layout, file bytes from the chunk store (each chunk verified). Resolves
 * once the first file piece is open, so a broken start is still an error
 * status; later failures destroy the stream. The files are held against gc
 * until it closes.
 */
export async function openLayer(chunks: ChunkStore, layout: LayerLayout, range?: { start: number; end: number }): Promise<Readable> {
  const parts = segmentsInRange(layout, range?.start ?? 0, range?.end ?? layout.size - 1);
  const release = chunks.hold(parts.flatMap((p) => ('file' in p.segment ? [p.segment.file.digest] : [])));
  const openPart = (p: (typeof parts)[number]) => {
    const s = p.segment as Extract<typeof p.segment, { file: unknown }>;
    return chunks.open(s.file.digest, { start: p.from, end: p.to - 1 });
  };
  const firstFile = parts.find((p) => 'file' in p.segment);
  let pending: BlobStream | undefined;
  try {
    pending = firstFile ? await openPart(firstFile) : undefined;
  } catch (err) {
    release();
    throw err;
  }
  async function* body(): AsyncGenerator<Buffer> {
    let current: BlobStream | undefined;
    try {
      for (const p of parts) {
        if ('bytes' in p.segment) {
          yield p.segment.bytes.subarray(p.from, p.to);
          continue;
        }
        current = p === firstFile ? pending! : await openPart(p);
        pending = undefined;
        for await (const piece of current.stream) yield piece as Buffer;
        current = undefined;
      }
    } finally {
      current?.stream.destroy();
      pending?.stream.destroy();
    }
  }
  const stream = Readable.from(body(), { objectMode: false, highWaterMark: 1 });
  stream.once('close', release);
  return stream;
}

export interface ImageFormsDeps {
  catalog: Catalog;
  chunks: ChunkStore;
  queries: OciQueries;
  log: Logger;
  /** build each new version's image form after publish; false: only those asked for */
  afterPublish: boolean;
  /** the version's artifact manifest (built if need be): the image form's subject */
  artifactOf: (repository: string, row: VersionRow) => Promise<OciManifestRow>;
  /** stores a built document (a config) as a blob */
  storeDocument: (doc: Document) => Promise<void>;
}

interface Waiter {
  promise: Promise<OciManifestRow>;
  resolve: (row: OciManifestRow) => void;
  reject: (err: unknown) => void;
}

export class ImageForms {
  /** Versions up to this id (published before this process started) get theirs on demand only. */
  private readonly startId: number;
  private readonly urgent: number[] = [];
  private readonly waiting = new Map<number, Waiter>();
  private readonly failed = new Map<number, { until: number; error: unknown }>();
  private current: { versionId: number; hashed: number; size: number } | undefined;
  private loop: Promise<void> | undefined;
  private kicked = false;
  private stopped = false;

  constructor(private readonly deps: ImageFormsDeps) {
    this.startId = deps.queries.lastVersionId();
  }

  /** Something was published (or asked for): build what is missing, one version at a time. */
  kick(): void {
    if (this.stopped) return;
    this.kicked = true;
    this.loop ??= this.run().finally(() => {
      this.loop = undefined;
      if (this.kicked) this.kick();
    });
  }

  /** Stops after the build in progress (which is abandoned at its next piece). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /**
   * The version's image-form manifest: at once when built; otherwise its
   * build goes first and is waited for up to `waitMs`, then IMAGE_PENDING
   * (how far it got) — the client retries.
   */
  async manifestOf(row: VersionRow, name: string, waitMs = IMAGE_WAIT_MS): Promise<OciManifestRow> {
    const built = this.deps.queries.versionManifest(row.id, 'image');
    if (built) return built;
    const failed = this.failed.get(row.id);
    if (failed && failed.until > Date.now()) throw failed.error;
    let waiter = this.waiting.get(row.id);
    if (!waiter) {
      let resolve!: Waiter['resolve'];
      let reject!: Waiter['reject'];
      const promise = new Promise<OciManifestRow>((res, rej) => ((resolve = res), (reject = rej)));
      promise.catch(() => {}); // a waiter may have given up
      waiter = { promise, resolve, reject };
      this.waiting.set(row.id, waiter);
      if (this.current?.versionId !== row.id) this.urgent.unshift(row.id);
      this.kick();
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const progress = this.current?.versionId === row.id ? ` (${Math.floor((100 * this.current.hashed) / Math.max(this.current.size, 1))}% read)` : ' (queued)';
        reject(new CairnError('IMAGE_PENDING', `the image form of ${name}@${row.version} is being built${progress}; try again shortly`, { retry_after: 10 }));
      }, waitMs);
    });
    try {
      return await Promise.race([waiter.promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The layer with this digest of a live version of the repository, and its layout (checked against the one its digest was computed over). */
  layer(repository: string, digest: string): { row: ImageLayerRow; layout: LayerLayout } | undefined {
    const row = this.deps.queries.imageLayer(repository, digest);
    if (!row) return undefined;
    const layout = layerLayout(this.filesOf(row.version_id), row.mtime);
    if (layout.size !== row.size || layoutFingerprint(layout) !== row.layout) {
      this.deps.log.error('image layer refused: its layout is not the one its digest was computed over', { repository, digest, version_id: row.version_id });
      throw new CairnError('CONTENT_CORRUPT', `the image layer ${digest} can no longer be made as it was: not served`);
    }
    return { row, layout };
  }

  private filesOf(versionId: number) {
    return this.deps.catalog.models.files(versionId).map((f) => ({ path: f.path, size: f.size, digest: f.blob_digest }));
  }

  private next(): number | undefined {
    const urgent = this.urgent.shift();
    if (urgent !== undefined) return urgent;
    if (!this.deps.afterPublish) return undefined;
    const now = Date.now();
    return this.deps.queries.versionsWithoutImage(this.startId, 64).find((id) => !((this.failed.get(id)?.until ?? 0) > now));
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      this.kicked = false;
      const id = this.next();
      if (id === undefined) return;
      try {
        const row = await this.build(id);
        this.failed.delete(id);
        if (row) this.waiting.get(id)?.resolve(row);
        else this.waiting.get(id)?.reject(new CairnError('MANIFEST_NOT_FOUND', `version ${id} is gone`));
      } catch (err) {
        if (!isCairnError(err)) this.deps.log.error('image form build failed', { version_id: id, error: (err as Error)?.stack ?? String(err) });
        else this.deps.log.warn('image form build failed', { version_id: id, code: err.code, error: err.message });
        this.failed.set(id, { until: Date.now() + RETRY_FAILED_MS, error: err });
        this.waiting.get(id)?.reject(err);
      }
      this.waiting.delete(id);
    }
  }

  /** Reads the version's layer once for its digest, then stores config, manifest and layer record; undefined when the version is gone. */
  private async build(versionId: number): Promise<OciManifestRow | undefined> {
    const { catalog, queries } = this.deps;
    const existing = queries.versionManifest(versionId, 'image');
    if (existing) return existing;
    const row = catalog.models.versionById(versionId);
    const repository = row && !row.deleted_at ? queries.repositoryOf(versionId) : undefined;
    if (!row || !repository) return undefined;
    const model = catalog.requireModel(repository);
    const doc = catalog.versionDoc(model, row, FULL_VIEW);
    const artifact = await this.deps.artifactOf(repository, row);
    const mtime = Math.floor(Date.parse(row.created_at) / 1000);
    const layout = layerLayout(this.filesOf(versionId), mtime);
    this.current = { versionId, hashed: 0, size: layout.size };
    try {
      const hash = createHash('sha256');
      const stream = await openLayer(this.deps.chunks, layout);
      for await (const piece of stream) {
        if (this.stopped) {
          stream.destroy();
          return undefined;
        }
        hash.update(piece as Buffer);
        this.current.hashed += (piece as Buffer).length;
      }
      const digest = `sha256:${hash.digest('hex')}`;
      const config = imageConfig(doc, digest);
      await this.deps.storeDocument(config);
      const manifest = imageManifest(doc, config, { digest, size: layout.size }, { mediaType: artifact.media_type, digest: artifact.digest, size: artifact.content.length });
      queries.addImageForm(
        versionId,
        { digest, size: layout.size, mtime, layout: layoutFingerprint(layout) },
        {
          repository,
          digest: manifest.digest,
          media_type: MEDIA.ociManifest,
          content: manifest.bytes,
          subject: artifact.digest,
          artifact_type: MEDIA.imageConfig,
          annotations: JSON.stringify((JSON.parse(manifest.bytes.toString('utf8')) as { annotations: unknown }).annotations),
          blobs: [config.digest],
        },
        catalog.now().toISOString(),
      );
      return queries.versionManifest(versionId, 'image');
    } finally {
      this.current = undefined;
    }
  }
}
