// Bad input refused cleanly, through a real server: nesting and size limits
// on the JSON a client sends (never a RangeError/500), file paths (Unicode
// NFC, invisible and bidi characters, undecodable names, drive letters, case
// and file/directory collisions), PATCH bodies running past their
// Content-Range, and the number of files, parents and fields of a publish.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { MAX_FILES_PER_VERSION } from '../src/identifiers.ts';
import { MAX_JSON_BYTES, MAX_JSON_DEPTH } from '../src/json-limits.ts';
import { MAX_FIELDS } from '../src/http/multipart.ts';
import { MAX_PARENTS } from '../src/identifiers.ts';
import { digestOf, randomBytesFor } from './support/bytes.ts';
import { assertError, bodyOf, call, filePath, publishForm, publishRawMultipart, pull, type FilePart, type JsonResponse } from './support/http-client.ts';
import { startTestServer, storageKinds, type TestServer } from './support/server.ts';

/** `{"a":{"a":…1…}}`: `depth` levels of objects. */
function nestedObject(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** `[[…]]`: `depth` levels of arrays. */
function nestedArray(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

/** A request with a JSON body given as text (JSON.stringify cannot build these). */
async function rawJson(base: string, method: string, path: string, text: string): Promise<JsonResponse> {
  const res = await fetch(base + path, { method, headers: { 'content-type': 'application/json' }, body: text });
  const body = await res.text();
  return { status: res.status, headers: res.headers, body: body ? JSON.parse(body) : undefined };
}

function assertRefused(res: JsonResponse, status: number, code: string, mentions: Array<string | number>, what: string): void {
  assertError(res, status, code, what);
  for (const m of mentions) assert.ok(res.body.error.message.includes(String(m)), `${what}: the message names ${m} — ${res.body.error.message}`);
}

const tiny: FilePart[] = [{ path: 'f.txt', data: Buffer.from('tiny') }];

describe('bad input refused cleanly (fs)', () => {
  let server: TestServer;
  let base: string;
  /** the content of base@1's one file, for JSON publishes */
  const blob = digestOf(Buffer.from('tiny'));

  before(async () => {
    server = await startTestServer('fs');
    base = server.url;
    assert.equal((await publishForm(base, 'base', { version: '1' }, tiny)).status, 201);
  });
  after(() => server?.stop());

  describe('client JSON: nesting and size limits', () => {
    const manifest = (version: string, fields: string) => `{"version":"${version}","files":[{"path":"f.txt","digest":"${blob}"}],${fields}}`;

    test(`metadata nested ~2,500 deep → 400 INVALID_ARGUMENT naming metadata and ${MAX_JSON_DEPTH} (multipart and JSON)`, async () => {
      assertRefused(await publishForm(base, 'deep', { version: '1', metadata: nestedObject(2500) }, tiny), 400, 'INVALID_ARGUMENT', ['metadata', MAX_JSON_DEPTH], 'multipart');
      assertRefused(await rawJson(base, 'POST', '/v1/models/deep/versions', manifest('1', `"metadata":${nestedObject(2500)}`)), 400, 'INVALID_ARGUMENT', ['metadata', MAX_JSON_DEPTH], 'JSON');
      // the limit itself is allowed, one more level is not
      assertRefused(await publishForm(base, 'deep', { version: '1', metadata: nestedObject(MAX_JSON_DEPTH + 1) }, tiny), 400, 'INVALID_ARGUMENT', ['metadata', MAX_JSON_DEPTH], 'multipart, limit + 1');
      assertRefused(await rawJson(base, 'POST', '/v1/models/deep/versions', manifest('1', `"metadata":${nestedObject(MAX_JSON_DEPTH + 1)}`)), 400, 'INVALID_ARGUMENT', ['metadata', MAX_JSON_DEPTH], 'JSON, limit + 1');
      const multipart = await publishForm(base, 'deep', { version: '1', metadata: nestedObject(MAX_JSON_DEPTH) }, tiny);
      assert.equal(multipart.status, 201, JSON.stringify(multipart.body));
      const json = await rawJson(base, 'POST', '/v1/models/deep/versions', manifest('2', `"metadata":${nestedObject(MAX_JSON_DEPTH)}`));
      assert.equal(json.status, 201, JSON.stringify(json.body));
      assert.equal(JSON.stringify((await call(base, 'GET', '/v1/models/deep/versions/2')).body.metadata), nestedObject(MAX_JSON_DEPTH));
    });

    test('a recipe nested ~2,500 deep → 400 naming parents[0].recipe (multipart field, metadata.recipe, JSON)', async () => {
      const form = (fields: Record<string, string>) => {
        const body = new FormData();
        body.append('version', '1');
        body.append('parent', 'base@1');
        for (const [k, v] of Object.entries(fields)) body.append(k, v);
        body.append('file', new Blob(['x']), 'x.bin');
        return fetch(`${base}/v1/models/deep-recipe/versions`, { method: 'POST', body }).then(async (res) => ({ status: res.status, headers: res.headers, body: await res.json() }));
      };
      assertRefused(await form({ recipe: nestedArray(2500) }), 400, 'INVALID_ARGUMENT', ['parents[0].recipe', MAX_JSON_DEPTH], 'multipart recipe');
      assertRefused(await form({ metadata: `{"recipe":${nestedArray(2500)}}` }), 400, 'INVALID_ARGUMENT', ['metadata', MAX_JSON_DEPTH], 'multipart metadata.recipe');
      assertRefused(await form({ recipe: nestedArray(MAX_JSON_DEPTH + 1) }), 400, 'INVALID_ARGUMENT', ['parents[0].recipe', MAX_JSON_DEPTH], 'multipart recipe, limit + 1');
      const parents = (recipe: string) => `"parents":[{"ref":"base@1","relation":"fine-tuned-from","recipe":${recipe}}]`;
      assertRefused(await rawJson(base, 'POST', '/v1/models/deep-recipe/versions', manifest('1', parents(nestedArray(2500)))), 400, 'INVALID_ARGUMENT', ['parents[0].recipe', MAX_JSON_DEPTH], 'JSON');
      assertRefused(await rawJson(base, 'POST', '/v1/models/deep-recipe/versions', manifest('1', parents(nestedArray(MAX_JSON_DEPTH + 1)))), 400, 'INVALID_ARGUMENT', ['parents[0].recipe', MAX_JSON_DEPTH], 'JSON, limit + 1');
      const ok = await rawJson(base, 'POST', '/v1/models/deep-recipe/versions', manifest('1', parents(nestedArray(MAX_JSON_DEPTH))));
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assert.equal(JSON.stringify(ok.body.parents[0].recipe), nestedArray(MAX_JSON_DEPTH));
    });

    test(`metadata and recipes over ${MAX_JSON_BYTES} bytes → 400 naming the field and the limit`, async () => {
      const big = JSON.stringify({ blob: 'x'.repeat(MAX_JSON_BYTES) });
      assertRefused(await publishForm(base, 'big-json', { version: '1', metadata: big }, tiny), 400, 'INVALID_ARGUMENT', ['metadata', MAX_JSON_BYTES], 'multipart metadata');
      assertRefused(await rawJson(base, 'POST', '/v1/models/big-json/versions', manifest('1', `"metadata":${big}`)), 400, 'INVALID_ARGUMENT', ['metadata', MAX_JSON_BYTES], 'JSON metadata');
      assertRefused(
        await rawJson(base, 'POST', '/v1/models/big-json/versions', manifest('1', `"parents":[{"ref":"base@1","recipe":${big}}]`)),
        400,
        'INVALID_ARGUMENT',
        ['parents[0].recipe', MAX_JSON_BYTES],
        'JSON recipe',
      );
      const form = new FormData();
      form.append('version', '1');
      form.append('parent', 'base@1');
      form.append('recipe', big);
      form.append('file', new Blob(['x']), 'x.bin');
      const res = await fetch(`${base}/v1/models/big-json/versions`, { method: 'POST', body: form });
      assertRefused({ status: res.status, headers: res.headers, body: await res.json() }, 400, 'INVALID_ARGUMENT', ['recipe', MAX_JSON_BYTES], 'multipart recipe');
      assertError(await call(base, 'GET', '/v1/models/big-json'), 404, 'MODEL_NOT_FOUND');
    });

    test('every JSON body: a value nested 20,000 deep in any field → 400, not 500', async () => {
      const deep = nestedArray(20_000);
      const cases: Array<[string, string, string, string]> = [
        ['publish version', 'POST', '/v1/models/deep-body/versions', `{"version":${deep},"files":[]}`],
        ['publish aliases', 'POST', '/v1/models/deep-body/versions', manifest('1', `"aliases":${deep}`)],
        ['publish file path', 'POST', '/v1/models/deep-body/versions', `{"version":"1","files":[{"path":${deep},"digest":"${blob}"}]}`],
        ['publish parents', 'POST', '/v1/models/deep-body/versions', manifest('1', `"parents":${deep}`)],
        ['alias', 'PUT', '/v1/models/base/aliases/prod', `{"version":${deep}}`],
        ['webhook url', 'POST', '/v1/webhooks', `{"url":${deep}}`],
        ['webhook events', 'POST', '/v1/webhooks', `{"url":"http://127.0.0.1:9/hook","events":${deep}}`],
        // as deep as the 2 MB publish body allows: express's JSON.parse takes it, the depth check refuses it
        ['publish metadata 1,000,000 deep', 'POST', '/v1/models/deep-body/versions', `{"version":"1","metadata":${nestedArray(1_000_000)}}`],
      ];
      for (const [what, method, path, text] of cases) {
        const res = await rawJson(base, method, path, text);
        assertRefused(res, 400, 'INVALID_ARGUMENT', ['nested', MAX_JSON_DEPTH], what);
      }
      assert.equal((await call(base, 'GET', '/healthz')).status, 200);
      assertError(await call(base, 'GET', '/v1/models/deep-body'), 404, 'MODEL_NOT_FOUND');
    });
  });

  describe('file paths', () => {
    const publishJson = (name: string, paths: string[]) => call(base, 'POST', `/v1/models/${name}/versions`, { version: '1', files: paths.map((path) => ({ path, digest: blob })) });
    const publishParts = (name: string, paths: string[]) => publishForm(base, name, { version: '1' }, paths.map((path, i) => ({ path, data: Buffer.from(`file ${i}`) })));

    test('two paths equal ignoring case, or a file that is also a directory → 400 DUPLICATE_PATH (multipart and JSON)', async () => {
      const conflicts = [
        ['A.bin', 'a.bin'],
        ['dir/Weights.bin', 'DIR/weights.BIN'],
        ['a', 'a/b'],
        ['a/b', 'a'],
        ['x/y', 'x/y/z/w'],
        ['A', 'a/b'],
        ['a/b', 'A'],
      ];
      for (const paths of conflicts) {
        assertRefused(await publishParts('collide', paths), 400, 'DUPLICATE_PATH', [paths[0]!, paths[1]!], `multipart ${paths.join(' + ')}`);
        assertRefused(await publishJson('collide', paths), 400, 'DUPLICATE_PATH', [paths[0]!, paths[1]!], `JSON ${paths.join(' + ')}`);
      }
      assertError(await call(base, 'GET', '/v1/models/collide'), 404, 'MODEL_NOT_FOUND');
      // neighbours that are no conflict
      const fine = ['ab', 'a/b', 'a/c', 'a.b', 'a b'];
      assert.equal((await publishParts('no-collide', fine)).status, 201);
      assert.equal((await publishJson('no-collide-json', fine)).status, 201);
    });

    test('paths are stored in Unicode NFC; NFC and NFD of one name in one version collide', async () => {
      const nfd = 'cafe\u0301/mode\u0300le.bin';
      const nfc = nfd.normalize('NFC');
      assert.notEqual(nfd, nfc);
      const multipart = await publishForm(base, 'unicode', { version: '1' }, [{ path: nfd, data: Buffer.from('nfd bytes') }]);
      assert.equal(multipart.status, 201, JSON.stringify(multipart.body));
      assert.deepEqual(
        multipart.body.files.map((f: { path: string }) => f.path),
        [nfc],
      );
      // found whichever form a reader asks for
      for (const asked of [nfc, nfd]) {
        const got = await pull(base, 'unicode', '1', asked);
        assert.equal(got.status, 200, `GET ${JSON.stringify(asked)}`);
        assert.equal(got.bytes.toString(), 'nfd bytes');
      }
      const json = await publishJson('unicode-json', [nfd]);
      assert.equal(json.status, 201, JSON.stringify(json.body));
      assert.equal(json.body.files[0].path, nfc);
      assertRefused(await publishParts('unicode-both', [nfc, nfd]), 400, 'DUPLICATE_PATH', [nfc], 'multipart NFC + NFD');
      assertRefused(await publishJson('unicode-both', [nfc, nfd]), 400, 'DUPLICATE_PATH', [nfc], 'JSON NFC + NFD');
      assertRefused(await publishJson('unicode-both', ['Cafe\u0301', 'café']), 400, 'DUPLICATE_PATH', ['Café'], 'JSON NFD + NFC, other case');
    });

    test('invisible, bidi-control and U+FFFD characters, drive letters, trailing dots and spaces → 400 INVALID_PATH', async () => {
      const invisible = ['\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u200e', '\u200f', '\u061c', '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069', '\u00ad', '\u2028', '\u2029', '\ufffd'];
      const bad = [
        ...invisible.map((c) => `model${c}.bin`),
        'C:/x',
        'C:x',
        'z:',
        'dir/D:file',
        'a.',
        'dir./x',
        'a ',
        'dir /x',
        'dir/..',
      ];
      for (const p of bad) {
        const shown = JSON.stringify(p);
        assertError(await publishParts('bad-path', ['ok.bin', p]), 400, 'INVALID_PATH', `multipart ${shown}`);
        assertError(await publishJson('bad-path', ['ok.bin', p]), 400, 'INVALID_PATH', `JSON ${shown}`);
      }
      // JSON can carry a lone surrogate, which no file system name can hold
      assertError(await rawJson(base, 'POST', '/v1/models/bad-path/versions', `{"version":"1","files":[{"path":"a\\ud800b","digest":"${blob}"}]}`), 400, 'INVALID_PATH', 'lone surrogate');
      // the message shows the invisible character
      const res = await publishJson('bad-path', ['a\u202eb']);
      assert.ok(res.body.error.message.includes('<U+202E>'), res.body.error.message);
      // what stays allowed
      const fine = ['.hidden', 'a.b', 'ab:c', 'emoji-😀.bin', 'naïve/Ωmega.bin', ' leading-space'];
      const ok = await publishParts('good-path', fine);
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assertError(await call(base, 'GET', '/v1/models/bad-path'), 404, 'MODEL_NOT_FOUND');
    });

    test('multipart filenames that are not UTF-8, or missing, → 400 INVALID_PATH (not U+FFFD, not a dropped file)', async () => {
      const cases: Array<[string, string | Buffer, string?]> = [
        ['raw byte 0xFF in filename=', Buffer.concat([Buffer.from('filename="weights'), Buffer.from([0xff]), Buffer.from('.bin"')])],
        ['truncated UTF-8 sequence in filename=', Buffer.concat([Buffer.from('filename="caf'), Buffer.from([0xc3]), Buffer.from('"')])],
        ['invalid UTF-8 in filename*=', "filename*=UTF-8''weights%FF.bin"],
        ['a literal U+FFFD in filename*=', "filename*=UTF-8''weights%EF%BF%BD.bin"],
        ['a file part without a filename', 'x-note="no filename"'],
      ];
      for (const [what, disposition] of cases) {
        const res = await publishRawMultipart(base, 'raw-name', { version: '1' }, [
          { disposition: 'filename="ok.bin"', data: Buffer.from('ok') },
          { disposition, data: Buffer.from('x') },
        ]);
        assertError(res, 400, 'INVALID_PATH', what);
      }
      // valid UTF-8 (precomposed or not) and other declared charsets are fine, in NFC
      const ok = await publishRawMultipart(base, 'raw-name', { version: '1' }, [
        { disposition: Buffer.concat([Buffer.from('filename="cafe'), Buffer.from([0xcc, 0x81]), Buffer.from('.bin"')]), data: Buffer.from('1') },
        { disposition: "filename*=ISO-8859-1''na%EFve.bin", data: Buffer.from('2') },
      ]);
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assert.deepEqual(ok.body.files.map((f: { path: string }) => f.path).sort(), ['café.bin', 'naïve.bin']);
    });

    test('reads only look up: an odd but well-formed path is 404, not refused', async () => {
      assertError(await call(base, 'GET', filePath('base', '1', 'a\u200bb')), 404, 'FILE_NOT_FOUND');
      assertError(await call(base, 'GET', filePath('base', '1', 'C:x')), 404, 'FILE_NOT_FOUND');
    });
  });

  describe('counts: files, parents, fields', () => {
    test(`a JSON publish of ${MAX_FILES_PER_VERSION + 1} files → 400 before any file is read`, async () => {
      const files = Array.from({ length: MAX_FILES_PER_VERSION + 1 }, (_, i) => ({ path: `f/${i}`, digest: blob }));
      const started = Date.now();
      const res = await call(base, 'POST', '/v1/models/many-json/versions', { version: '1', files });
      assertRefused(res, 400, 'INVALID_ARGUMENT', [MAX_FILES_PER_VERSION], 'JSON');
      assert.equal(res.body.error.max_files, MAX_FILES_PER_VERSION);
      assert.ok(Date.now() - started < 5000, `refused in ${Date.now() - started} ms`);
    });

    test(`more than ${MAX_PARENTS} parents → 400 INVALID_PARENT`, async () => {
      const res = await call(base, 'POST', '/v1/models/many-parents/versions', { version: '1', files: [{ path: 'f', digest: blob }], parents: Array.from({ length: MAX_PARENTS + 1 }, () => 'base@1') });
      assertRefused(res, 400, 'INVALID_PARENT', [MAX_PARENTS], 'JSON');
      assert.equal(res.body.error.max_parents, MAX_PARENTS);
    });

    test('a multipart publish with more fields than allowed → 400 naming the limit', async () => {
      const form = new FormData();
      form.append('version', '1');
      for (let i = 0; i < MAX_FIELDS; i++) form.append('alias', `a${i}`);
      form.append('file', new Blob(['x']), 'x.bin');
      const res = await fetch(`${base}/v1/models/many-fields/versions`, { method: 'POST', body: form });
      assertRefused({ status: res.status, headers: res.headers, body: await res.json() }, 400, 'INVALID_ARGUMENT', [MAX_FIELDS], 'fields');
    });

    test(`a multipart publish of ${MAX_FILES_PER_VERSION + 2} files: refused at part ${MAX_FILES_PER_VERSION + 1}, which is not stored, nor anything after it`, async () => {
      const boundary = `count-${Date.now()}`;
      // the parts within the limit are empty (cheap to store); the two past it are unique
      const shared = Buffer.alloc(0);
      const past = [randomBytesFor('past-limit-1', 4096), randomBytesFor('past-limit-2', 4096)];
      const started = Date.now();
      const res = await new Promise<JsonResponse>((resolve, reject) => {
        const req = http.request(`${base}/v1/models/many-files/versions`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }, (r) => {
          let text = '';
          r.setEncoding('utf8').on('data', (d: string) => (text += d));
          r.on('end', () => resolve({ status: r.statusCode!, headers: new Headers(), body: JSON.parse(text) }));
        });
        req.on('error', reject);
        const part = (i: number, data: Buffer) => Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f/${i}"\r\nContent-Type: application/octet-stream\r\n\r\n`), data, Buffer.from('\r\n')]);
        let i = 0;
        const pump = () => {
          while (i < MAX_FILES_PER_VERSION + 2) {
            const data = i < MAX_FILES_PER_VERSION ? shared : past[i - MAX_FILES_PER_VERSION]!;
            const more = req.write(i === 0 ? Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="version"\r\n\r\n1\r\n`), part(i, data)]) : part(i, data));
            i++;
            if (!more) return void req.once('drain', pump);
          }
          req.end(`--${boundary}--\r\n`);
        };
        pump();
      });
      assertRefused(res, 400, 'INVALID_ARGUMENT', [MAX_FILES_PER_VERSION], 'multipart');
      assert.equal(res.body.error.max_files, MAX_FILES_PER_VERSION);
      for (const data of past) assert.equal((await fetch(`${base}/v1/blobs/${digestOf(data)}`, { method: 'HEAD' })).status, 404, 'a part past the limit was not stored');
      assertError(await call(base, 'GET', '/v1/models/many-files'), 404, 'MODEL_NOT_FOUND');
      process.stderr.write(`# ${MAX_FILES_PER_VERSION + 2} multipart parts refused after ${Date.now() - started} ms\n`);
    });
  });
});

for (const storage of storageKinds) {
  describe(`PATCH past its Content-Range (${storage})`, () => {
    let server: TestServer;
    let base: string;

    before(async () => {
      server = await startTestServer(storage);
      base = server.url;
    });
    after(() => server?.stop());

    const patch = async (id: string, body: Buffer, range: string) => {
      const res = await fetch(`${base}/v1/uploads/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': range }, body: bodyOf(body) });
      return { status: res.status, headers: res.headers, body: await res.json() } as JsonResponse;
    };
    /** A PATCH without Content-Length (chunked), its pieces written apart. */
    const chunkedPatch = (id: string, pieces: Buffer[], range: string) =>
      new Promise<JsonResponse>((resolve, reject) => {
        const req = http.request(`${base}/v1/uploads/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': range } }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, headers: new Headers(), body: JSON.parse(text) }));
        });
        req.on('error', reject);
        (async () => {
          for (const piece of pieces) {
            req.write(piece);
            await new Promise((r) => setTimeout(r, 50)); // the pieces arrive apart, each on its own (the point)
          }
          req.end();
        })().catch(reject);
      });
    const offsetOf = async (id: string) => (await call(base, 'GET', `/v1/uploads/${id}`)).body.offset as number;

    test('bytes past the declared end are never stored; the session resumes and finishes with the right digest', async () => {
      const data = randomBytesFor(`${storage}-overrun`, 4000);
      const id = (await call(base, 'POST', '/v1/uploads')).body.id as string;
      assert.equal((await patch(id, data.subarray(0, 1000), 'bytes 0-999/*')).status, 202);

      // Content-Length says 1,000 bytes for a range of 999: refused before a byte is read
      const declared = await patch(id, data.subarray(1000, 2000), 'bytes 1000-1998/*');
      assertError(declared, 400, 'UPLOAD_RANGE_EXCEEDED', 'Content-Length past the range');
      assert.equal(declared.body.error.offset, 1000);
      assert.equal(await offsetOf(id), 1000, 'nothing stored');

      // no Content-Length: the declared 999 bytes are kept, the 1,000th is refused
      const chunked = await chunkedPatch(id, [data.subarray(1000, 1500), data.subarray(1500, 2000)], 'bytes 1000-1998/*');
      assertError(chunked, 400, 'UPLOAD_RANGE_EXCEEDED', 'chunked body past the range');
      assert.equal(chunked.body.error.offset, 1999);
      assert.equal(await offsetOf(id), 1999, 'exactly the declared part kept');

      // a body shorter than declared: what came is kept, 400 UPLOAD_INCOMPLETE as before
      const short = await patch(id, data.subarray(1999, 2500), 'bytes 1999-2999/*');
      assertError(short, 400, 'UPLOAD_INCOMPLETE');
      assert.equal(short.body.error.offset, 2500);

      assert.equal((await patch(id, data.subarray(2500), 'bytes 2500-3999/*')).status, 202);
      const done = await call(base, 'PUT', `/v1/uploads/${id}?digest=${digestOf(data)}`);
      assert.equal(done.status, 201, JSON.stringify(done.body));
      assert.equal(done.body.size, 4000);
    });
  });
}

