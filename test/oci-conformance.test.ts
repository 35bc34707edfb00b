// The OCI distribution-spec conformance checks, reproduced (the Go suite
// cannot be built here: no Go module proxy). Each test cites the function of
// github.com/opencontainers/distribution-spec conformance/ (run.go and api.go,
// at commit 967efdc, the "Conformance redesign") whose requests and expected
// answers it repeats, and the spec.md section behind them. Plus what oras
// expects of an artifact (oras-go content/file/file.go).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { randomBytesFor } from './support/bytes.ts';
import { bearer, createToken, startAuthServer, type AuthServer } from './support/auth-server.ts';
import { MALICIOUS } from './support/fixtures-pickle-zip.ts';

const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const OCTETS = { 'content-type': 'application/octet-stream' };
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';

interface Answer {
  status: number;
  headers: Headers;
  bytes: Buffer;
  json(): any;
}

describe('distribution-spec conformance, reproduced (/v2)', () => {
  let srv: AuthServer;
  let token: string;

  async function req(method: string, path: string, body?: Uint8Array | string, headers: Record<string, string> = {}): Promise<Answer> {
    const url = path.startsWith('http') ? path : `${srv.url}${path}`;
    const res = await fetch(url, { method, headers: { ...bearer(token), ...headers }, body: body === undefined ? undefined : typeof body === 'string' ? body : new Uint8Array(body) });
    const bytes = Buffer.from(await res.arrayBuffer());
    return { status: res.status, headers: res.headers, bytes, json: () => JSON.parse(bytes.toString()) };
  }
  const loc = (a: Answer) => new URL(a.headers.get('location')!, srv.url).toString();
  const withDigest = (location: string, digest: string) => `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;

  /** api.go BlobVerifyLocation + TestHeadBlob + TestPullBlob: the Location serves the bytes, HEAD gives the size. */
  async function verifyBlob(repo: string, created: Answer, data: Buffer): Promise<void> {
    assert.equal(created.status, 201, created.bytes.toString());
    assert.equal(created.headers.get('docker-content-digest'), sha(data));
    const at = await req('GET', loc(created));
    assert.equal(at.status, 200);
    assert.ok(at.bytes.equals(data));
    const head = await req('HEAD', `/v2/${repo}/blobs/${sha(data)}`);
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(data.length));
    assert.equal(head.headers.get('docker-content-digest'), sha(data));
    const got = await req('GET', `/v2/${repo}/blobs/${sha(data)}`);
    assert.ok(got.bytes.equals(data));
  }

  /** api.go BlobPostPut */
  async function postPut(repo: string, data: Buffer, digest = sha(data)): Promise<Answer> {
    const started = await req('POST', `/v2/${repo}/blobs/uploads/`, undefined, { 'content-length': '0' });
    assert.equal(started.status, 202);
    return req('PUT', withDigest(loc(started), digest), data, OCTETS);
  }

  /** api.go BlobPatchChunked: three chunks with `Content-Range: a-b`, optionally the last one by PUT, optionally out of order first. */
  async function chunked(repo: string, data: Buffer, options: { putLast?: boolean; outOfOrder?: boolean; digest?: string } = {}): Promise<Answer> {
    const started = await req('POST', `/v2/${repo}/blobs/uploads/`, undefined, { 'content-length': '0' });
    assert.equal(started.status, 202);
    assert.ok(started.headers.get('oci-chunk-min-length') !== null);
    let location = loc(started);
    const size = Math.ceil(data.length / 3);
    let last = -1;
    let answer: Answer | undefined;
    while (last < data.length - 1) {
      if (options.outOfOrder) {
        const badStart = last + 1 + size >= data.length ? 0 : last + 1 + size;
        const badEnd = Math.min(badStart + size - 1, data.length - 1);
        const bad = await req('PATCH', location, data.subarray(badStart, badEnd + 1), { ...OCTETS, 'content-range': `${badStart}-${badEnd}` });
        assert.equal(bad.status, 416, `out of order chunk ${badStart}-${badEnd}`);
        // recover with GET: 204, Range 0-<last byte>
        const status = await req('GET', location);
        assert.equal(status.status, 204);
        const range = status.headers.get('range')!;
        assert.match(range, /^0-\d+$/);
        if (last >= 0) assert.equal(range, `0-${last}`);
        location = loc(status);
      }
      const start = last + 1;
      last = Math.min(start + size - 1, data.length - 1);
      const isLast = last === data.length - 1;
      if (options.putLast && isLast) {
        answer = await req('PUT', withDigest(location, options.digest ?? sha(data)), data.subarray(start, last + 1), { ...OCTETS, 'content-range': `${start}-${last}` });
      } else {
        const patched = await req('PATCH', location, data.subarray(start, last + 1), { ...OCTETS, 'content-range': `${start}-${last}` });
        assert.equal(patched.status, 202, patched.bytes.toString());
        assert.equal(patched.headers.get('range'), `0-${last}`);
        location = loc(patched);
      }
    }
    return answer ?? req('PUT', withDigest(location, options.digest ?? sha(data)), undefined, { ...OCTETS, 'content-length': '0' });
  }

  /** api.go BlobPatchStream: one PATCH without Content-Range, then PUT. */
  async function stream(repo: string, data: Buffer, digest = sha(data)): Promise<Answer> {
    const started = await req('POST', `/v2/${repo}/blobs/uploads/`, undefined, { 'content-length': '0' });
    const patched = await req('PATCH', loc(started), data, OCTETS);
    assert.equal(patched.status, 202);
    return req('PUT', withDigest(loc(patched), digest), undefined, { 'content-length': '0' });
  }

  /** An image manifest of a config and layers (testdata.go genManifestFull: tar+gzip layers, no titles). */
  function imageManifest(config: Buffer, layers: Buffer[], extra: Record<string, unknown> = {}): Buffer {
    return Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
        layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(l), size: l.length })),
        ...extra,
      }),
    );
  }

  /** An artifact as oras makes one (oras-go pack): the empty config `{}`, an artifactType, the given layers. */
  function artifactManifest(artifactType: string, layers: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}): Buffer {
    const empty = Buffer.from('{}');
    return Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST,
        artifactType,
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha(empty), size: 2 },
        layers,
        ...extra,
      }),
    );
  }

  before(async () => {
    srv = await startAuthServer();
    token = await createToken(srv, { name: 'conformance', scope: 'write' });
  });
  after(async () => {
    await srv?.stop();
  });

  test('run.go TestPing (spec "Determining support"): GET /v2/ is 200 with registry/2.0', async () => {
    const ping = await req('GET', '/v2/');
    assert.equal(ping.status, 200);
    assert.equal(ping.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });

  test('run.go TestBlobAPIs get-missing (spec "Pulling blobs"): a blob never pushed is 404 BLOB_UNKNOWN', async () => {
    const missing = await req('GET', `/v2/conf/blobs/${sha(randomBytesFor('never', 512))}`);
    assert.equal(missing.status, 404);
    assert.equal(missing.json().errors[0].code, 'BLOB_UNKNOWN');
  });

  test('run.go TestBlobAPIs "post only" and "post+put" (spec "Pushing a blob monolithically"): 201, Location serves the bytes', async () => {
    const a = randomBytesFor('post-only', 512);
    await verifyBlob('conf', await req('POST', `/v2/conf/blobs/uploads/?digest=${sha(a)}`, a, OCTETS), a);
    const b = randomBytesFor('post-put', 512);
    await verifyBlob('conf', await postPut('conf', b), b);
  });

  test('run.go TestBlobAPIs "chunked single/multi", "and put chunk", "out-of-order" (spec "Pushing a blob in chunks"): 202 per chunk with Range, 416 for a chunk out of order, GET 204 to recover', async () => {
    for (const options of [{}, { putLast: true }, { outOfOrder: true }, { outOfOrder: true, putLast: true }]) {
      const data = randomBytesFor(`chunked-${JSON.stringify(options)}`, 3 * 1024 * 1024 - 5);
      await verifyBlob('conf', await chunked('conf', data, options), data);
    }
  });

  test('run.go TestBlobAPIs "stream" (api.go BlobPatchStream): one PATCH without Content-Range, then PUT', async () => {
    const data = randomBytesFor('stream', 700_000);
    await verifyBlob('conf', await stream('conf', data), data);
  });

  test('run.go TestBlobAPIs bad digests (api.go ExpectBadDigest): post only, post+put, chunked, chunked and put chunk, stream are 400 DIGEST_INVALID', async () => {
    const data = randomBytesFor('bad', 30_000);
    const wrong = sha(Buffer.concat([data, Buffer.from('oh no')]));
    const answers = [
      await req('POST', `/v2/conf/blobs/uploads/?digest=${wrong}`, data, OCTETS),
      await postPut('conf', data, wrong),
      await chunked('conf', data, { digest: wrong }),
      await chunked('conf', data, { digest: wrong, putLast: true }),
      await stream('conf', data, wrong),
    ];
    for (const a of answers) {
      assert.equal(a.status, 400);
      assert.equal(a.json().errors[0].code, 'DIGEST_INVALID');
      assert.equal(a.headers.get('location'), null);
    }
  });

  test('run.go TestBlobAPIs "post cancel" (api.go BlobPostCancel, spec "Deleting an upload"): DELETE the session is 204, then it is unknown', async () => {
    const started = await req('POST', '/v2/conf/blobs/uploads/', undefined, { 'content-length': '0' });
    const cancelled = await req('DELETE', loc(started));
    assert.equal(cancelled.status, 204);
    const gone = await req('GET', loc(started));
    assert.equal(gone.status, 404);
    assert.equal(gone.json().errors[0].code, 'BLOB_UPLOAD_UNKNOWN');
  });

  test('run.go TestBlobAPIs "mount", "mount anonymous", "mount missing" (spec "Mounting a blob from another repository"): 201 with the blob, 202 (a session) when there is none to mount', async () => {
    const data = randomBytesFor('mount', 512);
    await verifyBlob('conf2', await postPut('conf2', data), data);
    const mounted = await req('POST', `/v2/conf/blobs/uploads/?mount=${sha(data)}&from=conf2`);
    await verifyBlob('conf', mounted, data);
    const anonymous = await req('POST', `/v2/conf/blobs/uploads/?mount=${sha(data)}`);
    await verifyBlob('conf', anonymous, data);
    const missing = await req('POST', `/v2/conf/blobs/uploads/?mount=${sha(randomBytesFor('not pushed', 512))}&from=conf2`);
    assert.equal(missing.status, 202);
    assert.ok(missing.headers.get('location'));
  });

  test('run.go TestBlobAPIs "range requests": 206 with Content-Range and Content-Length; a backwards or outside range is 416', async () => {
    const data = randomBytesFor('range', 2048);
    await verifyBlob('conf', await postPut('conf', data), data);
    const cases: Array<[string, number, number]> = [['bytes=500-1499', 500, 1500], ['bytes=500-', 500, 2048], ['bytes=-500', 1548, 2048], ['bytes=2000-5000', 2000, 2048]];
    for (const [range, from, to] of cases) {
      const part = await req('GET', `/v2/conf/blobs/${sha(data)}`, undefined, { range });
      assert.equal(part.status, 206, range);
      assert.ok(part.bytes.equals(data.subarray(from, to)), range);
      assert.equal(part.headers.get('content-length'), String(to - from), range);
      assert.equal(part.headers.get('content-range'), `bytes ${from}-${to - 1}/2048`, range);
    }
    for (const range of ['bytes=500-0', 'bytes=5000-10000']) {
      assert.equal((await req('GET', `/v2/conf/blobs/${sha(data)}`, undefined, { range })).status, 416, range);
    }
  });

  test('run.go TestBlobAPIs well-known contents: the empty JSON blob `{}` and the empty blob', async () => {
    for (const data of [Buffer.from('{}'), Buffer.alloc(0)]) {
      await verifyBlob('conf', await req('POST', `/v2/conf/blobs/uploads/?digest=${sha(data)}`, data, OCTETS), data);
    }
  });

  let tagged: { manifest: Buffer; layers: Buffer[] };

  test('run.go TestPushManifestTag / TestPullManifestTag / TestHeadManifestTag (spec "Pushing Manifests", "Pulling manifests"): by tag, stored and served byte-identical; tar+gzip layers kept as given', async () => {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    const layers = [randomBytesFor('layer-a', 4000), randomBytesFor('layer-b', 9000)];
    for (const b of [config, ...layers]) assert.equal((await postPut('conf', b)).status, 201);
    const manifest = imageManifest(config, layers);
    const put = await req('PUT', '/v2/conf/manifests/tagtest0', manifest, { 'content-type': MANIFEST });
    assert.equal(put.status, 201, put.bytes.toString());
    assert.equal(put.headers.get('docker-content-digest'), sha(manifest));
    for (const at of [loc(put), `${srv.url}/v2/conf/manifests/tagtest0`, `${srv.url}/v2/conf/manifests/${sha(manifest)}`]) {
      const got = await req('GET', at, undefined, { accept: `${MANIFEST}, ${INDEX}` });
      assert.equal(got.status, 200);
      assert.ok(got.bytes.equals(manifest));
      assert.equal(got.headers.get('content-type'), MANIFEST);
      assert.equal(got.headers.get('content-length'), String(manifest.length));
      assert.equal(got.headers.get('docker-content-digest'), sha(manifest));
      const head = await req('HEAD', at);
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('docker-content-digest'), sha(manifest));
    }
    // the tag is a Cairn version whose files are the layers, as given
    const version = await req('GET', '/v1/models/conf/versions/tagtest0');
    assert.deepEqual(
      version.json().files.map((f: any) => [f.path, f.digest]).sort(),
      layers.map((l) => [`layers/${sha(l).slice(7)}.tar.gz`, sha(l)]).sort(),
    );
    tagged = { manifest, layers };
  });

  test('run.go GenerateData "large-manifest": 390 annotations of 10000 bytes (~3.9 MB) push by tag and come back identical', async () => {
    const config = Buffer.from('{}');
    const layer = randomBytesFor('large-manifest-layer', 100);
    for (const b of [config, layer]) await postPut('large', b);
    const annotations = Object.fromEntries(Array.from({ length: 390 }, (_, i) => [`large-annotation-${i}`, 'A'.repeat(10000)]));
    const manifest = imageManifest(config, [layer], { annotations });
    assert.ok(manifest.length > 3_900_000);
    const put = await req('PUT', '/v2/large/manifests/large-manifest', manifest, { 'content-type': MANIFEST });
    assert.equal(put.status, 201, put.bytes.toString().slice(0, 500));
    assert.ok((await req('GET', '/v2/large/manifests/large-manifest')).bytes.equals(manifest));
    const version = (await req('GET', '/v1/models/large/versions/large-manifest')).json();
    assert.equal(version.metadata.oci.manifest, sha(manifest));
    assert.equal(version.metadata.oci.annotations, undefined);
  });

  test('run.go TestList (spec "Listing Tags"): every tag listed; `last` gives those after it; an unknown repository is 404', async () => {
    const config = Buffer.from('{}');
    const layer = randomBytesFor('list-layer', 100);
    await postPut('conf', layer);
    for (const tag of ['tagtest1', 'tagtest2']) {
      const m = imageManifest(config, [layer], { annotations: { tag } });
      assert.equal((await req('PUT', `/v2/conf/manifests/${tag}`, m, { 'content-type': MANIFEST })).status, 201);
    }
    const list = (await req('GET', '/v2/conf/tags/list')).json();
    assert.deepEqual(list, { name: 'conf', tags: ['tagtest0', 'tagtest1', 'tagtest2'] });
    assert.deepEqual((await req('GET', '/v2/conf/tags/list?last=tagtest0')).json().tags, ['tagtest1', 'tagtest2']);
    const none = await req('GET', '/v2/no-such-repo/tags/list');
    assert.equal(none.status, 404);
    assert.equal(none.json().errors[0].code, 'NAME_UNKNOWN');
  });

  test('a version with `+` (not allowed in OCI tags) is listed and pulled with `_` for it, as Helm does', async () => {
    const data = randomBytesFor('plus-version', 64);
    await postPut('plus', data);
    const published = await req('POST', '/v1/models/plus/versions', JSON.stringify({ version: '1.0.0+build.5', files: [{ path: 'w.bin', digest: sha(data) }] }), { 'content-type': 'application/json' });
    assert.equal(published.status, 201, published.bytes.toString());
    assert.deepEqual((await req('GET', '/v2/plus/tags/list')).json().tags, ['1.0.0_build.5']);
    const m = await req('GET', '/v2/plus/manifests/1.0.0_build.5');
    assert.equal(m.status, 200);
    assert.equal(m.json().annotations['org.opencontainers.image.version'], '1.0.0+build.5');
  });

  test('run.go TestManifestErrors (spec "Pulling manifests", "Pushing Manifests"): unknown digest and tag are 404 MANIFEST_UNKNOWN; PUT to sha256:baddigeststring is 400; a manifest naming a blob never pushed is MANIFEST_BLOB_UNKNOWN', async () => {
    const byDigest = await req('GET', `/v2/conf/manifests/${sha(randomBytesFor('nothing', 1024))}`);
    assert.equal(byDigest.status, 404);
    assert.equal(byDigest.json().errors[0].code, 'MANIFEST_UNKNOWN');
    const byTag = await req('GET', '/v2/conf/manifests/missing-abcdefghijklmnopqrst');
    assert.equal(byTag.status, 404);
    assert.equal(byTag.json().errors[0].code, 'MANIFEST_UNKNOWN');
    const badRef = await req('PUT', '/v2/conf/manifests/sha256:baddigeststring', tagged.manifest, { 'content-type': MANIFEST });
    assert.equal(badRef.status, 400);
    assert.ok([400, 404].includes((await req('GET', '/v2/conf/manifests/sha256:baddigeststring')).status));
    const wrongDigest = await req('PUT', `/v2/conf/manifests/${sha(Buffer.from('other'))}`, tagged.manifest, { 'content-type': MANIFEST });
    assert.equal(wrongDigest.status, 400);
    assert.equal(wrongDigest.json().errors[0].code, 'DIGEST_INVALID');
    const orphan = imageManifest(Buffer.from('{}'), [randomBytesFor('never pushed', 64)]);
    const refused = await req('PUT', '/v2/conf/manifests/orphan', orphan, { 'content-type': MANIFEST });
    assert.equal(refused.status, 400);
    assert.equal(refused.json().errors[0].code, 'MANIFEST_BLOB_UNKNOWN');
  });

  test('run.go TestPushManifestDigest + TestReferrers (spec "Pushing Manifests with Subject", "Listing Referrers"): by digest with OCI-Subject; listed by the referrers API, filtered by artifactType', async () => {
    const empty = Buffer.from('{}');
    const subject = { mediaType: MANIFEST, digest: sha(tagged.manifest), size: tagged.manifest.length };
    const sbom = artifactManifest('application/vnd.example.sbom', [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: sha(empty), size: 2 }], { subject, annotations: { 'org.example.kind': 'sbom' } });
    const sig = imageManifest(empty, [tagged.layers[0]!], { subject });
    for (const m of [sbom, sig]) {
      const put = await req('PUT', `/v2/conf/manifests/${sha(m)}`, m, { 'content-type': MANIFEST });
      assert.equal(put.status, 201, put.bytes.toString());
      assert.equal(put.headers.get('oci-subject'), subject.digest);
      assert.ok((await req('GET', loc(put))).bytes.equals(m));
    }
    // the version's image form names the version's manifest as its subject too (built by then: asking for it waits)
    const imageForm = await req('GET', '/v2/conf/manifests/tagtest0-image');
    assert.equal(imageForm.status, 200, imageForm.bytes.toString());
    const all = await req('GET', `/v2/conf/referrers/${subject.digest}`);
    assert.equal(all.status, 200);
    assert.equal(all.headers.get('content-type'), INDEX);
    const index = all.json();
    assert.equal(index.schemaVersion, 2);
    assert.equal(index.mediaType, INDEX);
    assert.deepEqual(index.manifests.map((d: any) => d.digest).sort(), [sha(sbom), sha(sig), sha(imageForm.bytes)].sort());
    const described = index.manifests.find((d: any) => d.digest === sha(sbom));
    assert.deepEqual(described, { mediaType: MANIFEST, digest: sha(sbom), size: sbom.length, artifactType: 'application/vnd.example.sbom', annotations: { 'org.example.kind': 'sbom' } });
    assert.equal(index.manifests.find((d: any) => d.digest === sha(sig)).artifactType, 'application/vnd.oci.image.config.v1+json');
    const filtered = await req('GET', `/v2/conf/referrers/${subject.digest}?artifactType=application/vnd.example.sbom`);
    assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
    assert.deepEqual(filtered.json().manifests.map((d: any) => d.digest), [sha(sbom)]);
    // run.go TestEmptyReferrers: an unknown subject is an empty index, not 404
    const none = await req('GET', `/v2/conf/referrers/${sha(Buffer.from('nobody'))}`);
    assert.equal(none.status, 200);
    assert.deepEqual(none.json().manifests, []);
  });

  test('run.go GenerateData "index", "nested-index", "empty-index" (spec "Pushing Manifests"): an index by tag points at it, its children pushed by digest first; set once', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const layer = randomBytesFor('index-layer', 300);
    for (const b of [config, layer]) await postPut('conf', b);
    const children = ['amd64', 'arm64'].map((arch) => imageManifest(config, [layer], { annotations: { arch } }));
    for (const c of children) assert.equal((await req('PUT', `/v2/conf/manifests/${sha(c)}`, c, { 'content-type': MANIFEST })).status, 201);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: INDEX,
        manifests: children.map((c, i) => ({ mediaType: MANIFEST, digest: sha(c), size: c.length, platform: { os: 'linux', architecture: ['amd64', 'arm64'][i] } })),
      }),
    );
    const put = await req('PUT', '/v2/conf/manifests/index', index, { 'content-type': INDEX });
    assert.equal(put.status, 201, put.bytes.toString());
    const got = await req('GET', '/v2/conf/manifests/index');
    assert.ok(got.bytes.equals(index));
    assert.equal(got.headers.get('content-type'), INDEX);
    assert.ok((await req('GET', '/v2/conf/tags/list')).json().tags.includes('index'));
    const nested = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [{ mediaType: INDEX, digest: sha(index), size: index.length }] }));
    assert.equal((await req('PUT', '/v2/conf/manifests/index-of-index', nested, { 'content-type': INDEX })).status, 201);
    // the same bytes again: fine; other bytes under the tag: 409 (tags are set once)
    assert.equal((await req('PUT', '/v2/conf/manifests/index', index, { 'content-type': INDEX })).status, 201);
    const empty = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [] }));
    const moved = await req('PUT', '/v2/conf/manifests/index', empty, { 'content-type': INDEX });
    assert.equal(moved.status, 409);
    assert.equal(moved.json().errors[0].detail.cairn_code, 'VERSION_EXISTS');
    assert.equal((await req('PUT', '/v2/conf/manifests/empty-index', empty, { 'content-type': INDEX })).status, 201);
    // an index naming a manifest never pushed is refused
    const dangling = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [{ mediaType: MANIFEST, digest: sha(Buffer.from('x')), size: 1 }] }));
    assert.equal((await req('PUT', '/v2/conf/manifests/dangling', dangling, { 'content-type': INDEX })).status, 400);
    // an index in a repository that has no model yet: its tags are listed too
    for (const c of children) assert.equal((await req('PUT', `/v2/images-only/manifests/${sha(c)}`, c, { 'content-type': MANIFEST })).status, 201);
    assert.equal((await req('PUT', '/v2/images-only/manifests/multi', index, { 'content-type': INDEX })).status, 201);
    assert.deepEqual((await req('GET', '/v2/images-only/tags/list')).json(), { name: 'images-only', tags: ['multi'] });
  });

  test('run.go TestDelete / TestDeleteManifest / TestDeleteTag / TestDeleteBlob (spec "Content Management"): a manifest pushed by digest is deleted (202, then 404); tags and blobs are 405 UNSUPPORTED', async () => {
    const empty = Buffer.from('{}');
    const m = imageManifest(empty, [tagged.layers[1]!], { annotations: { delete: 'me' } });
    assert.equal((await req('PUT', `/v2/conf/manifests/${sha(m)}`, m, { 'content-type': MANIFEST })).status, 201);
    assert.equal((await req('DELETE', `/v2/conf/manifests/${sha(m)}`)).status, 202);
    assert.equal((await req('GET', `/v2/conf/manifests/${sha(m)}`)).status, 404);
    const tag = await req('DELETE', '/v2/conf/manifests/tagtest2');
    assert.equal(tag.status, 405);
    assert.equal(tag.json().errors[0].code, 'UNSUPPORTED');
    assert.equal((await req('DELETE', `/v2/conf/blobs/${sha(tagged.layers[0]!)}`)).status, 405);
    // the version's manifest is still there
    assert.equal((await req('GET', '/v2/conf/manifests/tagtest2')).status, 200);
  });

  test('oras push, as oras-go does it (empty config, artifactType, titled layers): a version with files named by their titles; oras pull finds a title on every layer, none twice (content/file/file.go Store.push)', async () => {
    const empty = Buffer.from('{}');
    const files = { 'model.bin': randomBytesFor('oras-model', 10_000), 'docs/README.md': Buffer.from('# model\n') };
    for (const b of [empty, ...Object.values(files)]) {
      // oras-go registry/remote: HEAD first to skip a blob the registry has
      const head = await req('HEAD', `/v2/team/oras-model/blobs/${sha(b)}`);
      if (head.status !== 200) assert.equal((await postPut('team/oras-model', b)).status, 201);
    }
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST,
        artifactType: 'application/vnd.example.model',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha(empty), size: 2, data: 'e30=' },
        layers: Object.entries(files).map(([p, b]) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(b), size: b.length, annotations: { 'org.opencontainers.image.title': p } })),
        annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
      }),
    );
    // oras gives plain files a tar media type: the title is the name, as it is
    const put = await req('PUT', '/v2/team/oras-model/manifests/v1', manifest, { 'content-type': MANIFEST });
    assert.equal(put.status, 201, put.bytes.toString());
    const version = (await req('GET', '/v1/models/team/oras-model/versions/v1')).json();
    assert.deepEqual(version.files.map((f: any) => [f.path, f.digest]).sort(), Object.entries(files).map(([p, b]) => [p, sha(b)]).sort());
    assert.ok((await req('GET', '/v2/team/oras-model/manifests/v1')).bytes.equals(manifest));
    // a version published through /v1: every layer of its built manifest titled, no title twice
    const published = await req('POST', '/v1/models/team/built/versions', JSON.stringify({ version: '1', files: [...Object.keys(files), 'copy/model.bin'].map((p) => ({ path: p, digest: sha(files[p as keyof typeof files] ?? files['model.bin']) })) }), { 'content-type': 'application/json' });
    assert.equal(published.status, 201, published.bytes.toString());
    const built = (await req('GET', '/v2/team/built/manifests/1')).json();
    const titles = built.layers.map((l: any) => l.annotations['org.opencontainers.image.title']);
    assert.deepEqual([...titles].sort(), ['copy/model.bin', 'docs/README.md', 'model.bin']);
    assert.equal(new Set(titles).size, titles.length);
  });
  test('a push is a publish: format detection and the safety policy apply (an unsafe pickle is flagged under warn, refused 422 under reject), and the lineage records it', async () => {
    const empty = Buffer.from('{}');
    const pickle = Buffer.from(MALICIOUS['GLOBAL os.system (protocol 0)']!.bytes);
    const manifest = artifactManifest('application/vnd.example.model', [
      { mediaType: 'application/vnd.cncf.model.weight.v1.raw', digest: sha(pickle), size: pickle.length, annotations: { 'org.opencontainers.image.title': 'model.pkl' } },
    ]);
    for (const b of [empty, pickle]) await postPut('unsafe', b);
    const flagged = await req('PUT', '/v2/unsafe/manifests/1', manifest, { 'content-type': MANIFEST });
    assert.equal(flagged.status, 201, flagged.bytes.toString());
    const version = (await req('GET', '/v1/models/unsafe/versions/1')).json();
    assert.equal(version.files[0].safety.verdict, 'unsafe');
    let history: any;
    for (let i = 0; i < 100; i++) {
      history = (await req('GET', '/v1/models/unsafe/history')).json();
      if (history.events[0]?.commit) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(history.events[0].event, 'publish');
    assert.match(history.events[0].commit, /^[0-9a-f]{40}$/);

    const strict = await startAuthServer({ unsafePolicy: 'reject' });
    try {
      const put = async (path: string, body: Buffer, headers: Record<string, string>) => {
        const res = await fetch(`${strict.url}${path}`, { method: 'PUT', headers: { ...bearer(strict.adminToken), ...headers }, body: new Uint8Array(body) });
        return { status: res.status, body: (await res.text()) || '{}' };
      };
      for (const b of [empty, pickle]) {
        const started = await fetch(`${strict.url}/v2/unsafe/blobs/uploads/`, { method: 'POST', headers: bearer(strict.adminToken) });
        const at = new URL(started.headers.get('location')!, strict.url);
        assert.equal((await put(`${at.pathname}?digest=${sha(b)}`, b, OCTETS)).status, 201);
      }
      const refused = await put('/v2/unsafe/manifests/1', manifest, { 'content-type': MANIFEST });
      assert.equal(refused.status, 422, refused.body);
      const error = JSON.parse(refused.body).errors[0];
      assert.equal(error.code, 'DENIED');
      assert.equal(error.detail.cairn_code, 'UNSAFE_MODEL');
    } finally {
      await strict.stop();
    }
  });
  test('gc keeps what a reachable manifest names (a built config, a standalone manifest\'s blobs), and lets it go with the version', async () => {
    const admin = { authorization: `Bearer ${srv.adminToken}` };
    const gc = async () => {
      const res = await req('POST', '/v1/admin/gc', JSON.stringify({ grace_seconds: 0 }), { ...admin, 'content-type': 'application/json' });
      assert.equal(res.status, 200, res.bytes.toString());
    };
    const manifest = await req('GET', '/v2/team/built/manifests/1');
    const config = manifest.json().config.digest as string;
    const index = (await req('GET', '/v2/conf/manifests/index')).json();
    await gc();
    const kept = await req('GET', `/v2/team/built/blobs/${config}`);
    assert.equal(kept.status, 200);
    assert.equal(sha(kept.bytes), config);
    // an index tag's children (standalone manifests) and their blobs survive too
    for (const child of index.manifests) {
      const m = await req('GET', `/v2/conf/manifests/${child.digest}`);
      assert.equal(m.status, 200);
      for (const d of [m.json().config, ...m.json().layers]) assert.equal((await req('HEAD', `/v2/conf/blobs/${d.digest}`)).status, 200, d.digest);
    }
    // the version goes: its manifest is unreachable, and gc takes its config
    assert.equal((await req('DELETE', '/v1/models/team/built/versions/1', undefined, admin)).status, 204);
    assert.equal((await req('GET', `/v2/team/built/manifests/${sha(manifest.bytes)}`)).status, 404);
    await gc();
    assert.equal((await req('GET', `/v2/team/built/blobs/${config}`)).status, 404);
  });
  test('with CAIRN_ANONYMOUS_READ a client without credentials pulls (no challenge), and is challenged for a push', async () => {
    const open = await startAuthServer({ anonymousRead: true });
    try {
      const data = randomBytesFor('anonymous', 128);
      const form = new FormData();
      form.append('version', '1');
      form.append('file', new Blob([new Uint8Array(data)]), 'w.bin');
      assert.equal((await fetch(`${open.url}/v1/models/anon/versions`, { method: 'POST', body: form, headers: bearer(open.adminToken) })).status, 201);
      assert.equal((await fetch(`${open.url}/v2/`)).status, 200);
      const m = await fetch(`${open.url}/v2/anon/manifests/1`);
      assert.equal(m.status, 200);
      const blob = await fetch(`${open.url}/v2/anon/blobs/${sha(data)}`);
      assert.ok(Buffer.from(await blob.arrayBuffer()).equals(data));
      const push = await fetch(`${open.url}/v2/anon/blobs/uploads/`, { method: 'POST' });
      assert.equal(push.status, 401);
      assert.equal(push.headers.get('www-authenticate'), `Bearer realm="${open.url}/v2/token",service="cairn",scope="repository:anon:pull,push"`);
    } finally {
      await open.stop();
    }
  });
});
