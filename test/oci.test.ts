// The OCI Distribution front door (/v2) driven by real clients — skopeo (pull
// to oci: and dir: layouts, push back under another name, inspect --raw) and
// podman (pull, create and cp of a version's image form) — against a real
// server with access control on, plus the token flow and the checks a client
// relies on (digests stable across restarts, Range, tag paging).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { safetensorsStream, modelSpec } from './support/tensors.ts';
import { digestOf, MiB, randomBytesFor } from './support/bytes.ts';
import { bearer, createToken, startAuthServer, type AuthServer } from './support/auth-server.ts';
import { startServer, type RunningServer } from '../src/main.ts';
import { hasClient, ok, registryHost, run } from './support/oci-clients.ts';
import { recordingLogger } from './support/auth-server.ts';
import { s3TestConfig, storageKinds } from './support/server.ts';

const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('OCI Distribution (/v2) with real clients', { skip: !hasClient('skopeo') && 'skopeo is not installed' }, () => {
  let srv: AuthServer;
  let restarted: RunningServer | undefined;
  let url: string;
  let tmp: string;
  let writer: string;
  let reader: string;
  let teamA: string;
  const weights = Buffer.concat([...safetensorsStream(modelSpec(3 * MiB, 'F32', { seed: 'oci' }))]);
  const files: Record<string, Buffer> = {
    'model.safetensors': weights,
    'config.json': Buffer.from('{"architectures":["ResNet"],"model_type":"resnet"}\n'),
    'README.md': Buffer.from('# resnet\n\nA test model.\n'),
    'tokenizer/vocab.txt': randomBytesFor('oci-vocab', 70_001),
  };
  const host = () => registryHost(url);
  const creds = (token: string) => ['--creds', `cairn:${token}`];

  async function publishVersion(name: string, version: string, parts: Record<string, Buffer>, token = writer): Promise<void> {
    const form = new FormData();
    form.append('version', version);
    for (const [p, data] of Object.entries(parts)) form.append('file', new Blob([new Uint8Array(data)]), p);
    const res = await fetch(`${url}/v1/models/${name}/versions`, { method: 'POST', body: form, headers: bearer(token) });
    assert.equal(res.status, 201, await res.text());
  }

  async function get(p: string, headers: Record<string, string> = {}, method = 'GET') {
    const res = await fetch(`${url}${p}`, { method, headers });
    return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
  }

  before(async () => {
    srv = await startAuthServer({ ociImageJob: true });
    url = srv.url;
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-oci-'));
    writer = await createToken(srv, { name: 'writer', scope: 'write' });
    reader = await createToken(srv, { name: 'reader', scope: 'read' });
    teamA = await createToken(srv, { name: 'team-a', scope: 'write', models: ['team-a/*'] });
    await publishVersion('acme/resnet', '1.0.0', files);
    await publishVersion('acme/resnet', '1.1.0', { ...files, 'config.json': Buffer.from('{"v":2}\n') });
    await fetch(`${url}/v1/models/acme/resnet/aliases/production`, { method: 'PUT', headers: { ...bearer(writer), 'content-type': 'application/json' }, body: JSON.stringify({ version: '1.0.0' }) });
  });
  after(async () => {
    if (restarted) await restarted.close();
    else await srv?.close();
    await fs.rm(srv.dataDir, { recursive: true, force: true });
    await fs.rm(tmp, { recursive: true, force: true });
  });

  let manifestDigest: string;
  let manifestBytes: Buffer;

  test('skopeo inspect --raw: the ModelPack manifest, one titled raw layer per file whose digest is the file sha256', async () => {
    const raw = await ok('skopeo', ['inspect', '--raw', '--tls-verify=false', ...creds(reader), `docker://${host()}/acme/resnet:1.0.0`]);
    manifestBytes = Buffer.from(raw, 'utf8');
    manifestDigest = sha(manifestBytes);
    const m = JSON.parse(raw);
    assert.equal(m.schemaVersion, 2);
    assert.equal(m.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(m.artifactType, 'application/vnd.cncf.model.manifest.v1+json');
    assert.equal(m.config.mediaType, 'application/vnd.cncf.model.config.v1+json');
    const byTitle = Object.fromEntries(m.layers.map((l: any) => [l.annotations['org.opencontainers.image.title'], l]));
    assert.deepEqual(Object.keys(byTitle).sort(), Object.keys(files).sort());
    for (const [p, data] of Object.entries(files)) {
      assert.equal(byTitle[p].digest, digestOf(data), p);
      assert.equal(byTitle[p].size, data.length, p);
      assert.equal(byTitle[p].annotations['org.cncf.model.filepath'], p);
    }
    assert.equal(byTitle['model.safetensors'].mediaType, 'application/vnd.cncf.model.weight.v1.raw');
    assert.equal(byTitle['README.md'].mediaType, 'application/vnd.cncf.model.doc.v1.raw');
    assert.equal(byTitle['config.json'].mediaType, 'application/vnd.cncf.model.weight.config.v1.raw');
    // the config says what Cairn knows
    const config = await get(`/v2/acme/resnet/blobs/${m.config.digest}`, bearer(reader));
    assert.equal(config.status, 200);
    assert.equal(sha(config.bytes), m.config.digest);
    const c = JSON.parse(config.bytes.toString());
    assert.equal(c.descriptor.name, 'acme/resnet');
    assert.equal(c.descriptor.version, '1.0.0');
    assert.equal(c.config.format, 'safetensors');
    assert.equal(c.config.precision, 'float32');
    assert.deepEqual(c.modelfs, { type: 'layers', diffIds: m.layers.map((l: any) => l.digest) });
    // the same bytes each time, by tag, by alias (an alias is a tag) and by digest
    for (const ref of ['1.0.0', 'production', manifestDigest]) {
      const again = await get(`/v2/acme/resnet/manifests/${ref}`, bearer(reader));
      assert.equal(again.status, 200, ref);
      assert.ok(again.bytes.equals(manifestBytes), ref);
      assert.equal(again.headers.get('docker-content-digest'), manifestDigest, ref);
      assert.equal(again.headers.get('content-type'), 'application/vnd.oci.image.manifest.v1+json');
    }
  });

  test('skopeo copy to an oci: layout and a dir: layout: every file byte-identical, the manifest digest unchanged', async () => {
    const ociDir = path.join(tmp, 'oci');
    await ok('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', `cairn:${reader}`, `docker://${host()}/acme/resnet:1.0.0`, `oci:${ociDir}:1.0.0`]);
    const index = JSON.parse(await fs.readFile(path.join(ociDir, 'index.json'), 'utf8'));
    assert.equal(index.manifests[0].digest, manifestDigest);
    const blob = (d: string) => fs.readFile(path.join(ociDir, 'blobs', 'sha256', d.slice(7)));
    assert.ok((await blob(manifestDigest)).equals(manifestBytes));
    for (const [p, data] of Object.entries(files)) assert.ok((await blob(digestOf(data))).equals(data), p);

    const dir = path.join(tmp, 'dir');
    await ok('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', `cairn:${reader}`, `docker://${host()}/acme/resnet:1.0.0`, `dir:${dir}`]);
    assert.ok((await fs.readFile(path.join(dir, 'manifest.json'))).equals(manifestBytes));
    for (const [p, data] of Object.entries(files)) assert.ok((await fs.readFile(path.join(dir, digestOf(data).slice(7)))).equals(data), p);
  });

  test('skopeo copy back into Cairn under another name: a new version with the same files and the same manifest bytes; again is a no-op; other bytes are 409', async () => {
    const ociDir = path.join(tmp, 'oci');
    await ok('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `cairn:${writer}`, `oci:${ociDir}:1.0.0`, `docker://${host()}/acme/resnet-copy:1.0.0`]);
    const version = await fetch(`${url}/v1/models/acme/resnet-copy/versions/1.0.0`, { headers: bearer(reader) }).then((r) => r.json() as Promise<any>);
    assert.deepEqual(
      version.files.map((f: any) => [f.path, f.digest]).sort(),
      Object.entries(files).map(([p, d]) => [p, digestOf(d)]).sort(),
    );
    assert.equal(version.files.find((f: any) => f.path === 'model.safetensors').format, 'safetensors');
    assert.equal(version.metadata.oci.manifest, manifestDigest);
    const copied = await get('/v2/acme/resnet-copy/manifests/1.0.0', bearer(reader));
    assert.ok(copied.bytes.equals(manifestBytes), 'the pushed manifest is served as pushed');
    // pushing the same again: nothing changes
    await ok('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `cairn:${writer}`, `oci:${ociDir}:1.0.0`, `docker://${host()}/acme/resnet-copy:1.0.0`]);
    // another manifest under an existing version: 409 with an OCI error body
    const other = await get('/v2/acme/resnet/manifests/1.1.0', bearer(reader));
    const res = await fetch(`${url}/v2/acme/resnet-copy/manifests/1.0.0`, { method: 'PUT', headers: { ...bearer(writer), 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: new Uint8Array(other.bytes) });
    assert.equal(res.status, 409);
    const body = (await res.json()) as any;
    assert.equal(body.errors[0].code, 'DENIED');
    assert.equal(body.errors[0].detail.cairn_code, 'VERSION_EXISTS');
  });

  test('blobs: Range gives 206 with exactly those bytes; HEAD gives the size and digest', async () => {
    const d = digestOf(weights);
    const head = await get(`/v2/acme/resnet/blobs/${d}`, bearer(reader), 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(weights.length));
    assert.equal(head.headers.get('docker-content-digest'), d);
    const part = await get(`/v2/acme/resnet/blobs/${d}`, { ...bearer(reader), range: 'bytes=1000-1048575' });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 1000-1048575/${weights.length}`);
    assert.ok(part.bytes.equals(weights.subarray(1000, 1048576)));
    const unknown = await get(`/v2/acme/resnet/blobs/sha256:${'0'.repeat(64)}`, bearer(reader));
    assert.equal(unknown.status, 404);
    assert.equal(JSON.parse(unknown.bytes.toString()).errors[0].code, 'BLOB_UNKNOWN');
  });

  test('tags/list: versions and aliases in lexical order, paged with n and last and a Link header', async () => {
    const all = await get('/v2/acme/resnet/tags/list', bearer(reader));
    assert.deepEqual(JSON.parse(all.bytes.toString()), { name: 'acme/resnet', tags: ['1.0.0', '1.1.0', 'production'] });
    const first = await get('/v2/acme/resnet/tags/list?n=2', bearer(reader));
    assert.deepEqual(JSON.parse(first.bytes.toString()).tags, ['1.0.0', '1.1.0']);
    assert.equal(first.headers.get('link'), '</v2/acme/resnet/tags/list?n=2&last=1.1.0>; rel="next"');
    const second = await get('/v2/acme/resnet/tags/list?n=2&last=1.1.0', bearer(reader));
    assert.deepEqual(JSON.parse(second.bytes.toString()).tags, ['production']);
    assert.equal(second.headers.get('link'), null);
    const listed = await ok('skopeo', ['list-tags', '--tls-verify=false', ...creds(reader), `docker://${host()}/acme/resnet`]);
    assert.deepEqual(JSON.parse(listed).Tags, ['1.0.0', '1.1.0', 'production']);
  });

  test('tokens: the Bearer challenge and token flow; a read token cannot push; a team-a/* token cannot read acme/*', async () => {
    const base = await get('/v2/');
    assert.equal(base.status, 401);
    assert.equal(base.headers.get('www-authenticate'), `Bearer realm="${url}/v2/token",service="cairn"`);
    assert.equal(base.headers.get('docker-distribution-api-version'), 'registry/2.0');
    const challenge = await get('/v2/acme/resnet/manifests/1.0.0');
    assert.equal(challenge.headers.get('www-authenticate'), `Bearer realm="${url}/v2/token",service="cairn",scope="repository:acme/resnet:pull"`);
    const basic = (token: string) => ({ authorization: `Basic ${Buffer.from(`anyone:${token}`).toString('base64')}` });
    const issued = JSON.parse((await get('/v2/token?service=cairn&scope=repository:acme/resnet:pull,push', basic(reader))).bytes.toString());
    assert.ok(issued.token && issued.expires_in === 300);
    const pulled = await get('/v2/acme/resnet/manifests/1.0.0', bearer(issued.token));
    assert.equal(pulled.status, 200);
    assert.equal(pulled.headers.get('docker-content-digest'), manifestDigest);
    // only /v2 takes registry tokens
    assert.equal((await get('/v1/models/acme/resnet', bearer(issued.token))).status, 401);
    // push was asked for, but the read token does not allow it
    const push = await fetch(`${url}/v2/acme/resnet/blobs/uploads/`, { method: 'POST', headers: bearer(issued.token) });
    assert.equal(push.status, 403);
    assert.equal(((await push.json()) as any).errors[0].code, 'DENIED');
    // the Cairn read token itself, as Basic (skopeo --creds): no push either
    const direct = await fetch(`${url}/v2/acme/resnet/blobs/uploads/`, { method: 'POST', headers: basic(reader) });
    assert.equal(direct.status, 403);
    // a registry token for one repository reads no other
    const elsewhere = await get('/v2/acme/resnet-copy/manifests/1.0.0', bearer(issued.token));
    assert.equal(elsewhere.status, 403);
    // a team-a/* token gets nothing on acme/*, through the flow or as itself
    const teamToken = JSON.parse((await get('/v2/token?service=cairn&scope=repository:acme/resnet:pull', basic(teamA))).bytes.toString()).token;
    assert.equal((await get('/v2/acme/resnet/manifests/1.0.0', bearer(teamToken))).status, 403);
    const refused = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', ...creds(teamA), `docker://${host()}/acme/resnet:1.0.0`]);
    assert.notEqual(refused.code, 0);
    // and a forged or tampered registry token is 401
    const tampered = `${issued.token.slice(0, -2)}xx`;
    const bad = await get('/v2/acme/resnet/manifests/1.0.0', bearer(tampered));
    assert.equal(bad.status, 401);
    assert.equal(JSON.parse(bad.bytes.toString()).errors[0].code, 'UNAUTHORIZED');
    // team-a pushes into its own namespace with skopeo
    await ok('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `cairn:${teamA}`, `oci:${path.join(tmp, 'oci')}:1.0.0`, `docker://${host()}/team-a/resnet:0.1.0`]);
    const teamCopy = await get('/v2/team-a/resnet/manifests/0.1.0', bearer(teamA));
    assert.equal(teamCopy.headers.get('docker-content-digest'), manifestDigest);
  });

  test('a repository name with two slashes is NAME_INVALID', async () => {
    const res = await fetch(`${url}/v2/a/b/c/blobs/uploads/`, { method: 'POST', headers: bearer(writer) });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as any).errors[0].code, 'NAME_INVALID');
  });

  test('podman pull of the image form; podman create + cp give the files back byte-identical; podman push of it into another repository is a version stored as pushed', { skip: !hasClient('podman') && 'podman is not installed' }, async () => {
    // the job computes the image form after publish, unasked: it shows up among the version manifest's referrers
    let listed: any[] = [];
    for (let i = 0; i < 600 && listed.length === 0; i++) {
      listed = JSON.parse((await get(`/v2/acme/resnet/referrers/${manifestDigest}`, bearer(reader))).bytes.toString()).manifests;
      if (listed.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(listed.length, 1, 'the image form was built after publish');
    const ref = `${host()}/acme/resnet:1.0.0-image`;
    const storage = ['--root', path.join(tmp, 'podman-root'), '--runroot', path.join(tmp, 'podman-run'), '--storage-driver', 'vfs'];
    await ok('podman', [...storage, 'pull', '--tls-verify=false', ...creds(reader), ref], 600_000);
    const ctr = (await ok('podman', [...storage, 'create', ref, '/nonexistent'])).trim();
    const out = path.join(tmp, 'podman-out');
    await ok('podman', [...storage, 'cp', `${ctr}:/models`, out]);
    for (const [p, data] of Object.entries(files)) assert.ok((await fs.readFile(path.join(out, p))).equals(data), p);
    await run('podman', [...storage, 'rm', ctr]);
    // podman push of that image into another repository: an image (tar+gzip layer, as podman compresses it) becomes a version, stored as pushed
    const digestFile = path.join(tmp, 'pushed.digest');
    await ok('podman', [...storage, 'push', '--tls-verify=false', '--creds', `cairn:${writer}`, '--digestfile', digestFile, ref, `docker://${host()}/acme/podman-pushed:1.0.0`], 600_000);
    const pushedDigest = (await fs.readFile(digestFile, 'utf8')).trim();
    const served = await get('/v2/acme/podman-pushed/manifests/1.0.0', bearer(reader));
    assert.equal(served.headers.get('docker-content-digest'), pushedDigest);
    assert.equal(sha(served.bytes), pushedDigest);
    const pushedVersion = await fetch(`${url}/v1/models/acme/podman-pushed/versions/1.0.0`, { headers: bearer(reader) }).then((r) => r.json() as Promise<any>);
    const pushedLayer = JSON.parse(served.bytes.toString()).layers[0];
    assert.deepEqual(pushedVersion.files.map((f: any) => f.digest), [pushedLayer.digest]);
    // the layer as stored unpacks to the same files
    const unpacked = path.join(tmp, 'podman-pushed');
    await fs.mkdir(unpacked);
    const layerBytes = await get(`/v2/acme/podman-pushed/blobs/${pushedLayer.digest}`, bearer(reader));
    assert.equal(sha(layerBytes.bytes), pushedLayer.digest);
    await fs.writeFile(path.join(unpacked, 'layer'), layerBytes.bytes);
    await ok('tar', ['-xf', path.join(unpacked, 'layer'), '-C', unpacked]);
    for (const [p, data] of Object.entries(files)) assert.ok((await fs.readFile(path.join(unpacked, 'models', p))).equals(data), p);
    // the image form's digest is fixed once computed
    const first = await get('/v2/acme/resnet/manifests/1.0.0-image', bearer(reader));
    const m = JSON.parse(first.bytes.toString());
    assert.equal(m.layers.length, 1);
    assert.equal(m.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar');
    assert.equal(m.subject.digest, manifestDigest);
    const layer = await get(`/v2/acme/resnet/blobs/${m.layers[0].digest}`, bearer(reader));
    assert.equal(sha(layer.bytes), m.layers[0].digest);
    const tail = await get(`/v2/acme/resnet/blobs/${m.layers[0].digest}`, { ...bearer(reader), range: 'bytes=700-' });
    assert.equal(tail.status, 206);
    assert.ok(tail.bytes.equals(layer.bytes.subarray(700)));
    const referrers = JSON.parse((await get(`/v2/acme/resnet/referrers/${manifestDigest}`, bearer(reader))).bytes.toString());
    assert.deepEqual(referrers.manifests.map((x: any) => x.digest), [first.headers.get('docker-content-digest')]);
  });

  test('the manifest digests are the same after a restart (stored bytes, not rebuilt)', async () => {
    const before = (await get('/v2/acme/resnet/manifests/1.0.0-image', bearer(reader))).headers.get('docker-content-digest');
    await srv.close();
    restarted = await startServer({ dataDir: srv.dataDir, host: '127.0.0.1', port: 0, s3: undefined, auth: true, unsafePolicy: 'warn', ociImageJob: true }, recordingLogger());
    url = restarted.url;
    const again = await get('/v2/acme/resnet/manifests/1.0.0', bearer(reader));
    assert.ok(again.bytes.equals(manifestBytes));
    const raw = await ok('skopeo', ['inspect', '--raw', '--tls-verify=false', ...creds(reader), `docker://${host()}/acme/resnet:1.0.0`]);
    assert.equal(sha(Buffer.from(raw)), manifestDigest);
    const image = await get('/v2/acme/resnet/manifests/1.0.0-image', bearer(reader));
    assert.equal(image.headers.get('docker-content-digest'), before);
  });
});

describe('OCI pull from S3-backed storage', { skip: (!hasClient('skopeo') && 'skopeo is not installed') || (!storageKinds.includes('s3') && 'no S3 server configured') }, () => {
  let srv: AuthServer;
  let tmp: string;
  before(async () => {
    srv = await startAuthServer({ s3: s3TestConfig(), ociImageJob: true });
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cairn-oci-s3-'));
  });
  after(async () => {
    await srv?.stop();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  test('skopeo copy of a version and of its image form: file bytes and the layer digest check out', async () => {
    const files = { 'weights.bin': randomBytesFor('oci-s3-weights', 5 * MiB + 3), 'config.json': Buffer.from('{"s3":true}\n') };
    const form = new FormData();
    form.append('version', '2.0.0');
    for (const [p, data] of Object.entries(files)) form.append('file', new Blob([new Uint8Array(data)]), p);
    const res = await fetch(`${srv.url}/v1/models/acme/s3model/versions`, { method: 'POST', body: form, headers: bearer(srv.adminToken) });
    assert.equal(res.status, 201, await res.text());
    const src = `docker://${registryHost(srv.url)}/acme/s3model`;
    const out = path.join(tmp, 'oci');
    for (const tag of ['2.0.0', '2.0.0-image']) await ok('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', `x:${srv.adminToken}`, `${src}:${tag}`, `oci:${out}:${tag}`]);
    const blob = (d: string) => fs.readFile(path.join(out, 'blobs', 'sha256', d.slice(7)));
    for (const [p, data] of Object.entries(files)) assert.ok((await blob(digestOf(data))).equals(data), p);
    const index = JSON.parse(await fs.readFile(path.join(out, 'index.json'), 'utf8'));
    const image = JSON.parse((await blob(index.manifests.find((m: any) => m.annotations['org.opencontainers.image.ref.name'] === '2.0.0-image').digest)).toString());
    const layer = await blob(image.layers[0].digest);
    assert.equal(sha(layer), image.layers[0].digest);
    assert.equal(layer.length, image.layers[0].size);
  });
});
