// The OCI Distribution front door's service (/v2): a model is a repository,
// each version and alias a tag. A version's artifact manifest (ModelPack,
// oci-documents.ts) is built the first time it is asked for, then kept as
// exact bytes in the database and never rebuilt, so its digest never changes;
// a pushed manifest is kept as the bytes it came in. A push by tag is a
// publish: the layers become the version's files, named by their
// annotations. The image form (`<version>-image`) is oci-images.ts.
import { Readable } from 'node:stream';
import { type Caller, FULL_VIEW, mayRead } from '../access.ts';
import type { ChunkStore } from '../blobs/chunk-store.ts';
import { CairnError, isCairnError } from '../errors.ts';
import { checkName, checkNewName, checkVersion, isDigest } from '../identifiers.ts';
import type { Logger } from '../log.ts';
import type { VersionRow } from '../metadata/models.ts';
import type { NewManifest, OciManifestRow, OciQueries } from '../metadata/oci.ts';
import type { Catalog } from './catalog.ts';
import { ImageForms, openLayer } from './oci-images.ts';
import { type Document, IMAGE_SUFFIX, layerPath, MEDIA, modelConfig, modelManifest, parsePushed, type PushedManifest, sha256 } from './oci-documents.ts';
import type { Publishing } from './publish.ts';

/** A pushed manifest's description annotation becomes the version's message, cut to this many characters. */
const MAX_DESCRIPTION = 4096;
/** Larger annotations are not copied into the version's metadata (a manifest may hold megabytes of them). */
const MAX_METADATA_ANNOTATIONS = 16 * 1024;

export interface OciDeps {
  catalog: Catalog;
  chunks: ChunkStore;
  queries: OciQueries;
  publishing: Publishing;
  log: Logger;
  /** image forms of new versions are computed right after publish; false: on their first request only */
  imageJob: boolean;
}

/** A blob as /v2 serves it: its size, and its bytes (a range of them) on demand. */
export interface OciBlob {
  digest: string;
  size: number;
  open(range?: { start: number; end: number }): Promise<Readable>;
}

export interface TagPage {
  name: string;
  tags: string[];
  /** the last tag of this page, when more follow */
  more?: string;
}

/** A referrer as the referrers API lists it: a descriptor. */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export class Oci {
  readonly images: ImageForms;
  private readonly catalog: Catalog;
  private readonly chunks: ChunkStore;
  private readonly queries: OciQueries;
  private readonly publishing: Publishing;

  constructor(deps: OciDeps) {
    this.catalog = deps.catalog;
    this.chunks = deps.chunks;
    this.queries = deps.queries;
    this.publishing = deps.publishing;
    this.images = new ImageForms({
      catalog: deps.catalog,
      chunks: deps.chunks,
      queries: deps.queries,
      log: deps.log,
      afterPublish: deps.imageJob,
      artifactOf: (repository, row) => this.artifactOf(repository, row),
      storeDocument: (doc) => this.storeDocument(doc),
    });
  }

  /** A manifest of the repository by tag (a version, an alias, `latest`, `<version>-image`) or by digest. */
  async manifest(name: string, reference: string, caller: Caller): Promise<OciManifestRow> {
    const model = this.readableModel(name, caller);
    if (isDigest(reference)) {
      const row = this.queries.liveManifest(model?.name ?? checkName(name), reference);
      if (!row) throw new CairnError('MANIFEST_NOT_FOUND', `${name} has no manifest ${reference}`);
      return row;
    }
    const version = model && this.versionAtTag(model, reference);
    if (version) return this.artifactOf(model.name, version);
    if (model && reference.endsWith(IMAGE_SUFFIX)) {
      const base = this.versionAtTag(model, reference.slice(0, -IMAGE_SUFFIX.length));
      if (base) return this.images.manifestOf(base, model.name);
    }
    const tagged = this.queries.taggedManifest(checkName(name), reference);
    if (tagged) return tagged;
    if (!model && this.queries.tagNames(name).length === 0) throw new CairnError('MODEL_NOT_FOUND', `repository ${name} does not exist`);
    throw new CairnError('MANIFEST_NOT_FOUND', `${name} has no tag ${reference}`);
  }

  /**
   * A blob of the repository: one a reachable manifest or live version of it
   * names, the layer of one of its image forms, or content the caller itself
   * uploaded (a push in progress names its blobs before its manifest).
   */
  blob(name: string, digest: string, caller: Caller): OciBlob {
    const repository = checkName(name);
    if (!isDigest(digest)) throw new CairnError('INVALID_DIGEST', `${JSON.stringify(digest)}: expected sha256:<64 lowercase hex>`);
    if (this.queries.repositoryHoldsBlob(repository, digest) || this.uploadedBy(digest, caller)) {
      const stored = this.catalog.blobs.getBlob(digest);
      if (stored) return { digest, size: stored.size, open: async (range) => (await this.chunks.open(digest, range)).stream };
    }
    const layer = this.images.layer(repository, digest);
    if (layer) return { digest, size: layer.row.size, open: (range) => openLayer(this.chunks, layer.layout, range) };
    throw new CairnError('BLOB_NOT_FOUND', `${name} has no blob ${digest}`);
  }

  /**
   * Whether the caller may mount `digest` into a repository (cross-repository
   * mount): `from` holds it and the caller reads `from`, or the caller pushed
   * those bytes itself (a mount without `from` too).
   */
  mountable(digest: string, from: string | undefined, caller: Caller): boolean {
    if (!isDigest(digest) || !this.catalog.blobs.getBlob(digest)) return false;
    if (this.uploadedBy(digest, caller)) return true;
    if (from === undefined || !mayRead(caller, from)) return false;
    try {
      return this.queries.repositoryHoldsBlob(checkName(from), digest);
    } catch {
      return false;
    }
  }

  /** The tags of a repository in lexical order, `n` at most, after `last`. */
  tags(name: string, caller: Caller, n: number | undefined, last: string | undefined): TagPage {
    const repository = this.readableModel(name, caller)?.name ?? checkName(name);
    const names = this.queries.tagNames(repository);
    if (names.length === 0 && !this.catalog.models.model(repository)) throw new CairnError('MODEL_NOT_FOUND', `repository ${name} does not exist`);
    const all = [...new Set(names.map((t) => t.name.replaceAll('+', '_')))].sort(); // OCI tags cannot hold `+` (see versionAtTag)
    const after = last === undefined ? all : all.filter((t) => t > last);
    const tags = n === undefined ? after : after.slice(0, n);
    return { name: repository, tags, ...(n !== undefined && after.length > n && tags.length > 0 ? { more: tags[tags.length - 1] } : {}) };
  }

  /** The reachable manifests of the repository whose subject is `digest`, optionally of one artifact type. */
  referrers(name: string, digest: string, caller: Caller, artifactType?: string): ReferrerDescriptor[] {
    if (!isDigest(digest)) throw new CairnError('INVALID_DIGEST', `${JSON.stringify(digest)}: expected sha256:<64 lowercase hex>`);
    const model = this.readableModel(name, caller);
    return this.queries
      .referrers(model?.name ?? checkName(name), digest)
      .filter((m) => artifactType === undefined || m.artifact_type === artifactType)
      .map((m) => ({
        mediaType: m.media_type,
        digest: m.digest,
        size: m.content.length,
        ...(m.artifact_type ? { artifactType: m.artifact_type } : {}),
        ...(m.annotations ? { annotations: JSON.parse(m.annotations) as Record<string, string> } : {}),
      }));
  }

  /**
   * Stores a pushed manifest. By digest: kept as it is (a referrer, an
   * index's child). By tag: the tag is a new version whose files are the
   * layers — or, for an index or a manifest without layers (no files), a tag
   * that points at it; either is set once (idempotent when pushed again with
   * these very bytes; VERSION_EXISTS with other bytes).
   */
  async putManifest(input: { name: string; reference: string; bytes: Buffer; contentType: string | undefined; caller: Caller; actor: string }): Promise<{ digest: string; created: boolean }> {
    const name = checkName(input.name);
    const pushed = parsePushed(input.bytes, input.contentType);
    const digest = sha256(input.bytes);
    this.checkReferences(name, pushed, input.caller);
    const record = (): NewManifest => ({
      repository: name,
      digest,
      media_type: pushed.mediaType,
      content: input.bytes,
      subject: pushed.subject?.digest ?? null,
      artifact_type: pushed.artifactType ?? null,
      annotations: pushed.annotations ? JSON.stringify(pushed.annotations) : null,
      blobs: [...(pushed.config ? [pushed.config.digest] : []), ...pushed.layers.map((l) => l.digest)],
    });
    if (isDigest(input.reference)) {
      if (input.reference !== digest) throw new CairnError('DIGEST_MISMATCH', `the manifest's bytes have digest ${digest}, not ${input.reference}`, { actual: digest });
      if (!this.catalog.models.model(name)) checkNewName(name); // a new repository: its name must be one a model may take
      this.queries.addManifest(record(), true, this.catalog.now().toISOString());
      return { digest, created: true };
    }
    const version = checkVersion(input.reference);
    const model = this.catalog.models.model(name);
    const existing = model && this.catalog.models.versionByString(model.id, version);
    if (existing && !existing.deleted_at) {
      const current = await this.artifactOf(name, existing);
      if (current.digest === digest) return { digest, created: false };
    }
    const tagged = this.queries.taggedManifest(name, version);
    if (tagged?.digest === digest) return { digest, created: false };
    if (tagged) throw new CairnError('VERSION_EXISTS', `tag ${version} of ${name} is set to ${tagged.digest}; tags are set once`);
    this.publishing.assertCanPublish(name, version); // VERSION_EXISTS, a tombstone, an alias of that name
    if (pushed.kind === 'index' || pushed.layers.length === 0) {
      // no files: not a version, a tag that points at the manifest (oci_tags)
      if (!this.queries.addTagged(record(), version, this.catalog.now().toISOString())) {
        throw new CairnError('VERSION_EXISTS', `tag ${version} of ${name} was set to other bytes meanwhile; tags are set once`);
      }
      return { digest, created: true };
    }
    const paths = new Map<string, string>();
    const files = pushed.layers.map((layer) => {
      const path = layerPath(layer);
      const other = paths.get(path);
      if (other !== undefined && other !== layer.digest) throw new CairnError('INVALID_MANIFEST', `two layers are titled ${path}`);
      paths.set(path, layer.digest);
      return { path, digest: layer.digest };
    });
    const unique = files.filter((f, i) => files.findIndex((g) => g.path === f.path) === i);
    const description = pushed.annotations?.['org.opencontainers.image.description']?.slice(0, MAX_DESCRIPTION);
    // the annotations stay in the manifest; the version's metadata gets them when they are small
    const annotations = pushed.annotations && JSON.stringify(pushed.annotations).length <= MAX_METADATA_ANNOTATIONS ? { annotations: pushed.annotations } : {};
    await this.publishing.publish({
      name,
      version,
      files: unique,
      message: description || `pushed through /v2 (${pushed.artifactType ?? pushed.mediaType})`,
      metadata: { oci: { manifest: digest, ...(pushed.artifactType ? { artifactType: pushed.artifactType } : {}), ...annotations } },
      actor: input.actor,
      caller: input.caller,
      inTransaction: (versionId) => {
        this.queries.addManifest(record(), false, this.catalog.now().toISOString());
        this.queries.linkVersion(versionId, 'artifact', name, digest);
      },
    });
    this.images.kick();
    return { digest, created: true };
  }

  /** Deletes a manifest pushed by digest; a version's manifest goes with its version only (DELETE /v1/…/versions/{version}). */
  deleteManifest(name: string, reference: string): void {
    const repository = checkName(name);
    if (!isDigest(reference)) throw new CairnError('UNSUPPORTED_OPERATION', `tags of ${name} are versions and aliases: delete them through /v1`);
    if (this.queries.unsetStandalone(repository, reference)) return;
    if (this.queries.liveManifest(repository, reference)) throw new CairnError('UNSUPPORTED_OPERATION', `${reference} is the manifest of a version or a tag of ${name}: tags are set once, versions are deleted through /v1`);
    throw new CairnError('MANIFEST_NOT_FOUND', `${name} has no manifest ${reference}`);
  }

  /** A version was published or deleted: image forms to build. */
  kick(): void {
    this.images.kick();
  }

  stop(): Promise<void> {
    return this.images.stop();
  }

  /** The version's artifact manifest: built and stored the first time, then always the same bytes. */
  async artifactOf(repository: string, row: VersionRow): Promise<OciManifestRow> {
    const stored = this.queries.versionManifest(row.id, 'artifact');
    if (stored) return stored;
    const model = this.catalog.requireModel(repository);
    const doc = this.catalog.versionDoc(model, row, FULL_VIEW);
    const config = modelConfig(doc);
    await this.storeDocument(config);
    const manifest = modelManifest(doc, config);
    this.catalog.db.transaction(() => {
      this.queries.addManifest(
        {
          repository,
          digest: manifest.digest,
          media_type: MEDIA.ociManifest,
          content: manifest.bytes,
          subject: null,
          artifact_type: MEDIA.modelManifest,
          annotations: JSON.stringify((JSON.parse(manifest.bytes.toString('utf8')) as { annotations: unknown }).annotations),
          blobs: [config.digest, ...doc.files.map((f) => f.digest)],
        },
        false,
        this.catalog.now().toISOString(),
      );
      this.queries.linkVersion(row.id, 'artifact', repository, manifest.digest);
    });
    return this.queries.versionManifest(row.id, 'artifact')!; // a build that raced this one may have won: its bytes are the ones kept
  }

  private async storeDocument(doc: Document): Promise<void> {
    if (this.catalog.blobs.getBlob(doc.digest)) return;
    const content = await this.chunks.store(Readable.from([doc.bytes]));
    this.catalog.db.transaction(() => this.catalog.blobs.addBlob(content.digest, content.size, content.chunks));
  }

  /** The model (undefined: none of that name), when the caller may read it. */
  private readableModel(name: string, caller: Caller) {
    const model = this.catalog.models.model(checkName(name));
    if (model && !mayRead(caller, model.name)) throw new CairnError('FORBIDDEN', `this token may not read ${name}`);
    return model;
  }

  /**
   * The live version a tag names (a version, an alias, `latest`), or
   * undefined. OCI tags cannot hold `+`: as Helm does, `_` stands for it
   * (`1.0.0_build.5` is version `1.0.0+build.5`) unless a version is named
   * with the `_` itself.
   */
  private versionAtTag(model: { id: number; name: string }, tag: string): VersionRow | undefined {
    for (const ref of tag.includes('_') ? [tag, tag.replaceAll('_', '+')] : [tag]) {
      try {
        return this.catalog.resolve(model as Parameters<Catalog['resolve']>[0], ref);
      } catch (err) {
        if (!(isCairnError(err) && ['VERSION_NOT_FOUND', 'INVALID_REF'].includes(err.code))) throw err;
      }
    }
    return undefined;
  }

  private uploadedBy(digest: string, caller: Caller): boolean {
    return caller.principal === undefined ? this.catalog.blobs.getBlob(digest) !== undefined : this.catalog.blobs.hasGrant(digest, caller.principal);
  }

  /** Every blob (a manifest) or manifest (an index) the pushed document names must be here, and each blob of the size its descriptor says. */
  private checkReferences(name: string, pushed: PushedManifest, caller: Caller): void {
    for (const d of [...(pushed.config ? [pushed.config] : []), ...pushed.layers]) {
      const usable = this.queries.repositoryHoldsBlob(name, d.digest) || this.catalog.usableBlob(d.digest, caller) !== undefined ? this.catalog.blobs.getBlob(d.digest) : undefined;
      if (!usable) throw new CairnError('INVALID_MANIFEST', `the manifest names blob ${d.digest}, which was not pushed to ${name}`, { blob: d.digest });
      if (usable.size !== d.size) throw new CairnError('INVALID_MANIFEST', `the manifest gives blob ${d.digest} size ${d.size}; it holds ${usable.size} bytes`);
    }
    for (const m of pushed.manifests) {
      if (!this.queries.liveManifest(name, m.digest)) throw new CairnError('INVALID_MANIFEST', `the index names manifest ${m.digest}, which was not pushed to ${name}`, { manifest: m.digest });
    }
  }
}
