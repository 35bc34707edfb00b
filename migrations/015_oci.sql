-- The OCI front door (/v2): manifests as exact bytes, stored once and never
-- rebuilt, so that a manifest's digest (sha256 of its bytes) never changes.
--
-- A manifest belongs to a repository (a model name). It is reachable while a
-- live version maps to it (oci_version_manifests: the version's artifact
-- manifest, built by Cairn or pushed under the version's tag, and its image
-- form), or while it stands on its own (`standalone`: pushed by digest, such
-- as a referrer or an index's child, until deleted by digest).
CREATE TABLE oci_manifests (
  repository    TEXT NOT NULL,
  digest        TEXT NOT NULL,            -- sha256:<hex> of content
  media_type    TEXT NOT NULL,
  content       BLOB NOT NULL,            -- the exact bytes served
  standalone    INTEGER NOT NULL DEFAULT 0,
  subject       TEXT,                     -- the `subject` descriptor's digest (referrers API)
  artifact_type TEXT,                     -- as the referrers API lists it
  annotations   TEXT,                     -- the manifest's annotations, JSON (referrers API)
  created_at    TEXT NOT NULL,
  PRIMARY KEY (repository, digest)
) WITHOUT ROWID;
CREATE INDEX oci_manifests_by_subject ON oci_manifests (repository, subject) WHERE subject IS NOT NULL;

-- The blobs a manifest names (config and layers): stored in the chunk store,
-- kept by gc while the manifest is reachable (view oci_live_blobs).
CREATE TABLE oci_manifest_blobs (
  repository  TEXT NOT NULL,
  manifest    TEXT NOT NULL,
  blob_digest TEXT NOT NULL,
  PRIMARY KEY (repository, manifest, blob_digest),
  FOREIGN KEY (repository, manifest) REFERENCES oci_manifests (repository, digest) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX oci_manifest_blobs_by_blob ON oci_manifest_blobs (blob_digest);

-- A version's manifests: `artifact` (what its tag serves) and `image` (its
-- image form, the tag `<version>-image`).
CREATE TABLE oci_version_manifests (
  version_id INTEGER NOT NULL REFERENCES versions(id),
  form       TEXT NOT NULL CHECK (form IN ('artifact', 'image')),
  repository TEXT NOT NULL,
  digest     TEXT NOT NULL,
  PRIMARY KEY (version_id, form),
  FOREIGN KEY (repository, digest) REFERENCES oci_manifests (repository, digest)
) WITHOUT ROWID;
CREATE INDEX oci_version_manifests_by_digest ON oci_version_manifests (repository, digest);

-- The one layer of a version's image form: a tar of its files under models/,
-- never stored — streamed from the files' chunks, laid out deterministically
-- from the file list and `mtime`; its digest and size computed once by a job.
CREATE TABLE oci_image_layers (
  version_id INTEGER PRIMARY KEY REFERENCES versions(id),
  digest     TEXT NOT NULL,
  size       INTEGER NOT NULL,
  mtime      INTEGER NOT NULL,            -- seconds since the epoch, every entry's
  layout     TEXT NOT NULL,               -- sha256 of the headers and file digests in order: the layout the digest was computed over
  created_at TEXT NOT NULL
);
CREATE INDEX oci_image_layers_by_digest ON oci_image_layers (digest);

-- Tags that are not versions: a pushed index (a multi-platform image, an
-- artifact list) or a manifest without layers names no files, so it cannot be
-- a version; its tag points at it here. Like a version string, such a tag is
-- set once (409 when pushed again with other bytes).
CREATE TABLE oci_tags (
  repository TEXT NOT NULL,
  tag        TEXT NOT NULL,
  digest     TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (repository, tag),
  FOREIGN KEY (repository, digest) REFERENCES oci_manifests (repository, digest)
) WITHOUT ROWID;

CREATE VIEW oci_live_manifests AS
  SELECT repository, digest FROM oci_manifests WHERE standalone = 1
  UNION
  SELECT repository, digest FROM oci_tags
  UNION
  SELECT vm.repository, vm.digest FROM oci_version_manifests vm JOIN versions v ON v.id = vm.version_id
   WHERE v.deleted_at IS NULL;

-- Blobs gc must keep for the OCI front door (and verify must check).
CREATE VIEW oci_live_blobs AS
  SELECT DISTINCT b.blob_digest FROM oci_manifest_blobs b
    JOIN oci_live_manifests l ON l.repository = b.repository AND l.digest = b.manifest;
