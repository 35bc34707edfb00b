// Queries for the OCI front door: manifests kept as exact bytes, the blobs
// they name, which manifests are a version's, and the image-form layers
// (migrations/015_oci.sql). A manifest is reachable while a live version maps
// to it or it stands on its own (view oci_live_manifests).
import type { Database } from './db.ts';

export interface OciManifestRow {
  repository: string;
  digest: string;
  media_type: string;
  content: Buffer;
  standalone: number;
  subject: string | null;
  artifact_type: string | null;
  annotations: string | null;
  created_at: string;
}

export type ManifestForm = 'artifact' | 'image';

export interface ImageLayerRow {
  version_id: number;
  digest: string;
  size: number;
  mtime: number;
  /** the layout's fingerprint (image-layer.ts layoutFingerprint) when the digest was computed */
  layout: string;
}

export interface NewManifest {
  repository: string;
  digest: string;
  media_type: string;
  content: Buffer;
  subject: string | null;
  artifact_type: string | null;
  annotations: string | null;
  /** config and layers: kept by gc while the manifest is reachable */
  blobs: string[];
}

const LIVE = 'EXISTS (SELECT 1 FROM oci_live_manifests l WHERE l.repository = m.repository AND l.digest = m.digest)';

export class OciQueries {
  constructor(private readonly db: Database) {}

  /** A reachable manifest of the repository. */
  liveManifest(repository: string, digest: string): OciManifestRow | undefined {
    return this.db.first<OciManifestRow>(`SELECT m.* FROM oci_manifests m WHERE m.repository = ? AND m.digest = ? AND ${LIVE}`, [repository, digest]);
  }

  /** Stores a manifest (its bytes stay as first stored); `standalone` marks it as pushed by digest. */
  addManifest(m: NewManifest, standalone: boolean, now: string): void {
    this.db.transaction(() => {
      this.db.run(
        `INSERT INTO oci_manifests (repository, digest, media_type, content, standalone, subject, artifact_type, annotations, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (repository, digest) DO UPDATE SET standalone = max(standalone, excluded.standalone)`,
        [m.repository, m.digest, m.media_type, m.content, standalone ? 1 : 0, m.subject, m.artifact_type, m.annotations, now],
      );
      for (const blob of new Set(m.blobs)) {
        this.db.run('INSERT OR IGNORE INTO oci_manifest_blobs (repository, manifest, blob_digest) VALUES (?, ?, ?)', [m.repository, m.digest, blob]);
      }
    });
  }

  /** Makes `digest` the version's manifest of this form (call inside the transaction that needs it). */
  linkVersion(versionId: number, form: ManifestForm, repository: string, digest: string): void {
    this.db.run('INSERT OR IGNORE INTO oci_version_manifests (version_id, form, repository, digest) VALUES (?, ?, ?, ?)', [versionId, form, repository, digest]);
  }

  /** The version's manifest of this form, when it has been made. */
  versionManifest(versionId: number, form: ManifestForm): OciManifestRow | undefined {
    return this.db.first<OciManifestRow>(
      `SELECT m.* FROM oci_version_manifests vm JOIN oci_manifests m ON m.repository = vm.repository AND m.digest = vm.digest
        WHERE vm.version_id = ? AND vm.form = ?`,
      [versionId, form],
    );
  }

  /** Live versions of the repository whose manifest of this form is `digest`. */
  versionsWithManifest(repository: string, digest: string, form: ManifestForm): Array<{ id: number; version: string }> {
    return this.db.all(
      `SELECT v.id, v.version FROM oci_version_manifests vm JOIN versions v ON v.id = vm.version_id
        WHERE vm.repository = ? AND vm.digest = ? AND vm.form = ? AND v.deleted_at IS NULL ORDER BY v.number`,
      [repository, digest, form],
    );
  }

  /** Ends a manifest's standing on its own; whether it stood. */
  unsetStandalone(repository: string, digest: string): boolean {
    return this.db.run('UPDATE oci_manifests SET standalone = 0 WHERE repository = ? AND digest = ? AND standalone = 1', [repository, digest]).changes > 0;
  }

  /** The manifest a tag that is not a version points at (oci_tags). */
  taggedManifest(repository: string, tag: string): OciManifestRow | undefined {
    return this.db.first<OciManifestRow>(
      'SELECT m.* FROM oci_tags t JOIN oci_manifests m ON m.repository = t.repository AND m.digest = t.digest WHERE t.repository = ? AND t.tag = ?',
      [repository, tag],
    );
  }

  /** Stores a manifest and points a tag that is not a version at it, in one transaction; false when the tag points elsewhere already. */
  addTagged(m: NewManifest, tag: string, now: string): boolean {
    return this.db.transaction(() => {
      const current = this.db.first<{ digest: string }>('SELECT digest FROM oci_tags WHERE repository = ? AND tag = ?', [m.repository, tag]);
      if (current) return current.digest === m.digest;
      this.addManifest(m, false, now);
      this.db.run('INSERT INTO oci_tags (repository, tag, digest, created_at) VALUES (?, ?, ?, ?)', [m.repository, tag, m.digest, now]);
      return true;
    });
  }

  /** Reachable manifests of the repository whose subject is `digest`, oldest first. */
  referrers(repository: string, digest: string): OciManifestRow[] {
    return this.db.all<OciManifestRow>(`SELECT m.* FROM oci_manifests m WHERE m.repository = ? AND m.subject = ? AND ${LIVE} ORDER BY m.created_at, m.digest`, [repository, digest]);
  }

  /** Whether a reachable manifest of the repository names this blob. */
  repositoryHoldsBlob(repository: string, blob: string): boolean {
    return (
      this.db.first(
        `SELECT 1 FROM oci_manifest_blobs b JOIN oci_live_manifests l ON l.repository = b.repository AND l.digest = b.manifest
          WHERE b.repository = ? AND b.blob_digest = ? LIMIT 1`,
        [repository, blob],
      ) !== undefined ||
      this.db.first(
        `SELECT 1 FROM version_files f JOIN versions v ON v.id = f.version_id JOIN models m ON m.id = v.model_id
          WHERE m.name = ? AND f.blob_digest = ? AND v.deleted_at IS NULL LIMIT 1`,
        [repository, blob],
      ) !== undefined
    );
  }

  /** The image layer with this digest of a live version of the repository. */
  imageLayer(repository: string, digest: string): ImageLayerRow | undefined {
    return this.db.first<ImageLayerRow>(
      `SELECT il.version_id, il.digest, il.size, il.mtime, il.layout FROM oci_image_layers il JOIN versions v ON v.id = il.version_id JOIN models m ON m.id = v.model_id
        WHERE m.name = ? AND il.digest = ? AND v.deleted_at IS NULL LIMIT 1`,
      [repository, digest],
    );
  }

  imageLayerOf(versionId: number): ImageLayerRow | undefined {
    return this.db.first<ImageLayerRow>('SELECT version_id, digest, size, mtime, layout FROM oci_image_layers WHERE version_id = ?', [versionId]);
  }

  /** Records a version's image form: its layer and its manifest, in one transaction. */
  addImageForm(versionId: number, layer: Omit<ImageLayerRow, 'version_id'>, manifest: NewManifest, now: string): void {
    this.db.transaction(() => {
      this.addManifest(manifest, false, now);
      this.db.run('INSERT OR IGNORE INTO oci_image_layers (version_id, digest, size, mtime, layout, created_at) VALUES (?, ?, ?, ?, ?, ?)', [
        versionId,
        layer.digest,
        layer.size,
        layer.mtime,
        layer.layout,
        now,
      ]);
      this.linkVersion(versionId, 'image', manifest.repository, manifest.digest);
    });
  }

  /** Live versions after `afterId` without an image form yet, oldest first. */
  versionsWithoutImage(afterId: number, limit: number): number[] {
    return this.db
      .all<{ id: number }>(
        `SELECT v.id FROM versions v WHERE v.id > ? AND v.deleted_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM oci_version_manifests vm WHERE vm.version_id = v.id AND vm.form = 'image')
          ORDER BY v.id LIMIT ?`,
        [afterId, limit],
      )
      .map((r) => r.id);
  }

  /** The name of the model a version belongs to. */
  repositoryOf(versionId: number): string | undefined {
    return this.db.first<{ name: string }>('SELECT m.name FROM versions v JOIN models m ON m.id = v.model_id WHERE v.id = ?', [versionId])?.name;
  }

  /** The newest version's id (0: none yet). */
  lastVersionId(): number {
    return this.db.first<{ id: number | null }>('SELECT max(id) AS id FROM versions')!.id ?? 0;
  }

  /** The tags of a repository: its live versions, its aliases and its tags that are not versions (`latest` and image forms are not listed). */
  tagNames(repository: string): Array<{ name: string; kind: 'version' | 'alias' | 'manifest' }> {
    return this.db.all(
      `SELECT v.version AS name, 'version' AS kind FROM versions v JOIN models m ON m.id = v.model_id WHERE m.name = ? AND v.deleted_at IS NULL
       UNION ALL
       SELECT a.alias AS name, 'alias' AS kind FROM aliases a JOIN models m ON m.id = a.model_id WHERE m.name = ?
       UNION ALL
       SELECT tag AS name, 'manifest' AS kind FROM oci_tags WHERE repository = ?`,
      [repository, repository, repository],
    );
  }
}
