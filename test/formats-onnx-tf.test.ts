// ONNX, TFLite, SavedModel and TF.js detectors: every extracted field on
// fixtures built in TypeScript, broken (truncated, corrupted) files, bounded
// reads on a huge virtual file, a seeded fuzz run (support/fuzz-onnx-tf.ts, in a
// child process), and — as a local check only,
// skipped when absent — the real ONNX files in ../shared/models (support/shared-models.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { bufferSource } from '../src/formats/sources.ts';
import { InvalidModelFileError, type FileFormat, type FileSource } from '../src/formats/types.ts';
import { PbReader, ProtobufError } from '../src/formats/protobuf.ts';
import { detectOnnx } from '../src/formats/onnx.ts';
import { detectTflite } from '../src/formats/tflite.ts';
import { detectSavedModelPb, detectTfjs } from '../src/formats/tensorflow.ts';
import { PbWriter, onnxModel, onnxNestedIf, savedModel, tfliteModel, tfjsModelJson } from './support/fixtures-onnx-tf.ts';
import { virtualSource } from './support/fixtures-pickle-zip.ts';
import { type FuzzCounts } from './support/fuzz-onnx-tf.ts';
import { assertPeakGrowthBelow, runInChild } from './support/process-memory.ts';
import { sharedModels } from './support/shared-models.ts';

async function rejectsInvalid(p: Promise<unknown>, format: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof InvalidModelFileError, `expected InvalidModelFileError, got ${String(e)}`);
    assert.equal(e.format, format);
    return true;
  });
}

/** Offsets where top-level protobuf fields end (a prefix cut there is itself well-formed). */
async function topLevelBoundaries(bytes: Uint8Array): Promise<Set<number>> {
  const r = PbReader.of(bufferSource('x', bytes));
  const ends = new Set<number>([0]);
  while (await r.next()) ends.add(r.pos);
  return ends;
}

// ---------------------------------------------------------------- protobuf reader

test('protobuf reader: varints, 64-bit values, packed fields, fixed32, errors', async () => {
  const w = new PbWriter()
    .int(1, 150)
    .int(2, -2)
    .int(3, 2n ** 62n)
    .packed(4, [1, 300, -1])
    .fixed32(5, 0xdeadbeef)
    .str(6, 'héllo');
  const r = PbReader.of(bufferSource('x', w.finish()));
  const f1 = (await r.next())!;
  assert.deepEqual([f1.num, f1.wire, f1.value], [1, 0, 150]);
  const f2 = (await r.next())!;
  assert.equal(f2.signed, -2);
  assert.equal(f2.length, 10);
  const f3 = (await r.next())!;
  assert.equal(f3.value, 2 ** 62);
  const f4 = (await r.next())!;
  assert.deepEqual(await r.varints(f4), [1, 300, -1]);
  const f5 = (await r.next())!;
  assert.deepEqual([f5.wire, f5.value, f5.signed], [5, 0xdeadbeef, 0xdeadbeef | 0]);
  const f6 = (await r.next())!;
  assert.equal(await r.string(f6), 'héllo');
  assert.equal(await r.next(), undefined);

  const bad = async (bytes: number[], re: RegExp): Promise<void> => {
    const rr = PbReader.of(bufferSource('x', Uint8Array.from(bytes)));
    await assert.rejects(async () => {
      while (await rr.next());
    }, (e: unknown) => e instanceof ProtobufError && re.test(e.message));
  };
  await bad([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], /64 bits/);
  await bad([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], /64 bits|10 bytes/);
  await bad([0x08, 0x80], /truncated varint/);
  await bad([0x12, 0x05, 0x01], /beyond the end/);
  await bad([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f], /beyond the end/);
  await bad([0x0b], /wire type 3/);
  await bad([0x00], /field number 0/);
  await bad([0x09, 1, 2, 3], /truncated fixed64/);
  await bad([0x0d, 1, 2], /truncated fixed32/);
  assert.throws(() => new PbReader(bufferSource('x', new Uint8Array(4)), 0, 5), ProtobufError);
});

test('protobuf reader: iterates a large message in place with bounded reads', async () => {
  // field 1: a 40 MiB sub-message of one 40 MiB bytes field, then field 2
  const big = 40 << 20;
  const inner = new PbWriter().tag(1, 2).varint(big).finish();
  const head = new PbWriter().tag(1, 2).varint(inner.length + big).finish();
  const tail = new PbWriter().int(2, 7).finish();
  const file = virtualFile('big.bin', [head, inner, big, tail]);
  const r = PbReader.of(file.source);
  const f = (await r.next())!;
  const sub = await r.message(f);
  const g = (await sub.next())!;
  assert.equal(g.length, big);
  assert.equal(await sub.next(), undefined);
  assert.equal((await r.next())!.value, 7);
  assert.ok(file.stats.maxRead <= 1 << 20, `max read ${file.stats.maxRead}`);
  assert.ok(file.stats.total < 1 << 20, `read ${file.stats.total} bytes`);
});

/** A FileSource over real segments and virtual zero runs (number = that many zero bytes), recording reads. */
function virtualFile(path: string, segments: Array<Uint8Array | number>): { source: FileSource; stats: { maxRead: number; total: number } } {
  const stats = { maxRead: 0, total: 0 };
  const size = segments.reduce<number>((n, s) => n + (typeof s === 'number' ? s : s.length), 0);
  return {
    stats,
    source: {
      path,
      size,
      async read(offset, length) {
        const end = Math.min(offset + length, size);
        const out = new Uint8Array(Math.max(0, end - offset));
        stats.maxRead = Math.max(stats.maxRead, out.length);
        stats.total += out.length;
        let at = 0;
        for (const s of segments) {
          const len = typeof s === 'number' ? s : s.length;
          const from = Math.max(offset, at);
          const to = Math.min(end, at + len);
          if (from < to && typeof s !== 'number') out.set(s.subarray(from - at, to - at), from - offset);
          at += len;
        }
        return out;
      },
    },
  };
}

// ---------------------------------------------------------------- ONNX

const ONNX_EXPECTED: FileFormat = {
  format: 'onnx',
  framework: 'onnx',
  parameters: 120,
  dtypes: { float32: 18, int64: 2, float16: 100 },
  inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 3] }],
  outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', 2] }],
  safety: { verdict: 'safe', findings: [] },
  details: {
    irVersion: 8,
    opsets: [
      { domain: '', version: 17 },
      { domain: 'com.example', version: 1 },
    ],
    producerName: 'cairn-test',
    producerVersion: '1.2.3',
    domain: 'org.cairn',
    modelVersion: 42,
    docString: 'a test model',
    graphName: 'test-graph',
    nodes: 4,
    opTypes: { Constant: 1, MatMul: 1, If: 1, FancyOp: 1 },
    initializers: 5,
    constants: 1,
    subgraphs: 1,
    customDomains: ['com.example'],
    customOps: ['com.example::FancyOp'],
    externalData: [{ tensor: 'E', location: 'weights.bin', offset: 0, length: 200 }],
    externalDataTensors: 1,
    externalDataFiles: ['weights.bin'],
    metadata: { author: 'cairn' },
  },
};

test('onnx: every field of a real ModelProto (initializers, Constant, subgraph, sparse, external data)', async () => {
  const bytes = onnxModel();
  assert.deepEqual(await detectOnnx(bufferSource('models/net.onnx', bytes)), ONNX_EXPECTED);
  // recognised by structure without the extension, and through a cached source
  assert.deepEqual(await detectOnnx(bufferSource('models/net.bin', bytes)), ONNX_EXPECTED);
  assert.deepEqual(await detectOnnx(bufferSource('NET.ONNX', bytes)), ONNX_EXPECTED);
});

test('onnx: a 3 GiB initializer is skipped by length (bounded reads)', async () => {
  const N = 3 * 2 ** 30;
  const tensorHead = new PbWriter().packed(1, [N / 4]).int(2, 1).str(8, 'huge').tag(9, 2).varint(N).finish();
  const input = new PbWriter().msg(11, (i) => i.str(1, 'x').msg(2, (t) => t.msg(1, (tt) => tt.int(1, 1)))).finish();
  const graphHead = Uint8Array.from([...input, ...new PbWriter().tag(5, 2).varint(tensorHead.length + N).finish()]);
  const graphTail = new PbWriter().msg(12, (o) => o.str(1, 'y').msg(2, (t) => t.msg(1, (tt) => tt.int(1, 10)))).finish();
  const graphLen = graphHead.length + tensorHead.length + N + graphTail.length;
  const prefix = new PbWriter().int(1, 9).msg(8, (o) => o.int(2, 21)).tag(7, 2).varint(graphLen).finish();
  const file = virtualFile('big.onnx', [prefix, graphHead, tensorHead, N, graphTail]);
  const r = (await detectOnnx(file.source))!;
  assert.equal(r.parameters, N / 4);
  assert.deepEqual(r.dtypes, { float32: N / 4 });
  assert.deepEqual(r.inputs, [{ name: 'x', dtype: 'float32', shape: [] }]);
  assert.deepEqual(r.outputs, [{ name: 'y', dtype: 'float16', shape: [] }]);
  assert.ok(file.stats.maxRead <= 1 << 20, `max read ${file.stats.maxRead}`);
  assert.ok(file.stats.total < 1 << 20, `read ${file.stats.total} bytes in all`);
});

test('onnx: not ONNX → undefined; claimed but broken → InvalidModelFileError', async () => {
  const rnd = new Uint8Array(4096).map((_, i) => (i * 2654435761) >>> 24);
  assert.equal(await detectOnnx(bufferSource('blob.bin', rnd)), undefined);
  assert.equal(await detectOnnx(bufferSource('blob.bin', new Uint8Array(0))), undefined);
  assert.equal(await detectOnnx(bufferSource('saved_model.pb', savedModel())), undefined);
  assert.equal(await detectOnnx(bufferSource('model.tflite', tfliteModel())), undefined);
  assert.equal(await detectOnnx(bufferSource('model.json', tfjsModelJson())), undefined);
  // a protobuf with a small field 1 but no graph is not ONNX unless claimed
  const noGraph = new PbWriter().int(1, 7).str(2, 'x').finish();
  assert.equal(await detectOnnx(bufferSource('thing.pb', noGraph)), undefined);
  await rejectsInvalid(detectOnnx(bufferSource('thing.onnx', noGraph)), 'onnx');
  await rejectsInvalid(detectOnnx(bufferSource('empty.onnx', new Uint8Array(0))), 'onnx');
  await rejectsInvalid(detectOnnx(bufferSource('random.onnx', rnd)), 'onnx');
  // implausible ir_version
  const ir99 = onnxModel();
  ir99[1] = 99;
  await rejectsInvalid(detectOnnx(bufferSource('m.onnx', ir99)), 'onnx');
  assert.equal(await detectOnnx(bufferSource('m.bin', ir99)), undefined);
});

test('onnx: every truncation of a claimed file is InvalidModelFileError (unless cut at a top-level field boundary)', async () => {
  const bytes = onnxModel();
  const boundaries = await topLevelBoundaries(bytes);
  let invalid = 0;
  for (let n = 0; n < bytes.length; n++) {
    const p = detectOnnx(bufferSource('m.onnx', bytes.subarray(0, n)));
    if (boundaries.has(n)) {
      // well-formed prefix: either a smaller valid model or rejected as incomplete
      await p.then(
        (r) => assert.ok(r === undefined || r.format === 'onnx'),
        (e) => assert.ok(e instanceof InvalidModelFileError, String(e)),
      );
    } else {
      await rejectsInvalid(p, 'onnx');
      invalid++;
    }
    // without the extension a truncated file is simply not recognised (or still a model at a boundary)
    const q = await detectOnnx(bufferSource('m', bytes.subarray(0, n)));
    if (!boundaries.has(n)) assert.equal(q, undefined);
  }
  assert.ok(invalid > bytes.length - 20);
});

test('onnx: corrupted lengths and varints → InvalidModelFileError', async () => {
  const bytes = onnxModel();
  // the graph field's length: find its tag (0x3a) at the top level
  const r = PbReader.of(bufferSource('x', bytes));
  let graphTagAt = -1;
  for (let at = r.pos, f = await r.next(); f; at = r.pos, f = await r.next()) if (f.num === 7) graphTagAt = at;
  assert.ok(graphTagAt > 0);
  const longer = bytes.slice();
  longer[graphTagAt + 1] = (longer[graphTagAt + 1]! + 1) | 0x80; // length runs past the end / changes varint
  await rejectsInvalid(detectOnnx(bufferSource('m.onnx', longer)), 'onnx');
  const badVarint = Uint8Array.from([0x08, ...new Array(11).fill(0xff), 0x01]);
  await rejectsInvalid(detectOnnx(bufferSource('m.onnx', badVarint)), 'onnx');
  // wrong wire type for ir_version
  const wrongWire = bytes.slice();
  wrongWire[0] = 0x0a;
  await rejectsInvalid(detectOnnx(bufferSource('m.onnx', wrongWire)), 'onnx');
  // negative dims in an initializer
  const neg = new PbWriter()
    .int(1, 8)
    .msg(7, (g) => g.msg(5, (t) => t.packed(1, [-5]).int(2, 1).str(8, 'w')))
    .msg(8, (o) => o.int(2, 17))
    .finish();
  await rejectsInvalid(detectOnnx(bufferSource('m.onnx', neg)), 'onnx');
});

// ---------------------------------------------------------------- TFLite

const TFLITE_EXPECTED: FileFormat = {
  format: 'tflite',
  framework: 'tflite',
  parameters: 10,
  dtypes: { float32: 8, int32: 2 },
  inputs: [{ name: 'input', dtype: 'float32', shape: [-1, 4] }],
  outputs: [{ name: 'out', dtype: 'float32', shape: [1, 2] }],
  safety: { verdict: 'safe', findings: [] },
  details: {
    version: 3,
    subgraphs: 1,
    subgraphInfo: [{ name: 'main', tensors: 5, operators: 1 }],
    operatorCodes: 2,
    buffers: 4,
    description: 'cairn tflite test',
    builtinCodes: [9, 32],
    customOps: ['MyCustomOp'],
    metadata: ['min_runtime_version'],
    signatures: ['serving_default'],
  },
};

test('tflite: every field of a hand-built FlatBuffer', async () => {
  const bytes = tfliteModel();
  assert.deepEqual(await detectTflite(bufferSource('m.tflite', bytes)), TFLITE_EXPECTED);
  assert.deepEqual(await detectTflite(bufferSource('blob', bytes)), TFLITE_EXPECTED); // by magic
});

test('tflite: weights stored after the FlatBuffer (> 2 GiB models) are not read; a truncated tail is InvalidModelFileError', async () => {
  const dims: [number, number] = [32768, 24576]; // 3 GiB of float32
  const fbLength = tfliteModel({ bigWeights: { dims, dataOffset: 0 } }).length;
  const fb = tfliteModel({ bigWeights: { dims, dataOffset: fbLength } });
  const file = virtualFile('big.tflite', [fb, dims[0] * dims[1] * 4]);
  const r = (await detectTflite(file.source))!;
  assert.equal(r.parameters, dims[0] * dims[1] + 2);
  assert.deepEqual(r.dtypes, { float32: dims[0] * dims[1], int32: 2 });
  assert.ok(file.stats.total < 1 << 20, `read ${file.stats.total} bytes`);
  const cut = virtualFile('big.tflite', [fb, dims[0] * dims[1] * 4 - 1]);
  await rejectsInvalid(detectTflite(cut.source), 'tflite');
});

test('tflite: not TFLite → undefined; truncated or corrupted → InvalidModelFileError', async () => {
  const bytes = tfliteModel();
  assert.equal(await detectTflite(bufferSource('m.onnx', onnxModel())), undefined);
  assert.equal(await detectTflite(bufferSource('blob', new Uint8Array(3))), undefined);
  await rejectsInvalid(detectTflite(bufferSource('m.tflite', new Uint8Array(0))), 'tflite');
  await rejectsInvalid(detectTflite(bufferSource('m.tflite', onnxModel())), 'tflite');
  for (let n = 0; n < bytes.length; n++) {
    await rejectsInvalid(detectTflite(bufferSource('m.tflite', bytes.subarray(0, n))), 'tflite');
    if (n >= 8) await rejectsInvalid(detectTflite(bufferSource('blob', bytes.subarray(0, n))), 'tflite');
  }
  const dv = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
  // root offset past the end
  const root = bytes.slice();
  dv(root).setUint32(0, bytes.length + 10, true);
  await rejectsInvalid(detectTflite(bufferSource('m.tflite', root)), 'tflite');
  // vtable offset pointing before the file
  const vt = bytes.slice();
  const rootAt = dv(bytes).getUint32(0, true);
  dv(vt).setInt32(rootAt, rootAt + 100, true);
  await rejectsInvalid(detectTflite(bufferSource('m.tflite', vt)), 'tflite');
  // every u32 in the file replaced with a huge value: never anything but InvalidModelFileError or a result
  for (let at = 0; at + 4 <= bytes.length; at += 4) {
    const m = bytes.slice();
    dv(m).setUint32(at, 0xfffffff0, true);
    await detectTflite(bufferSource('m.tflite', m)).catch((e: unknown) => assert.ok(e instanceof InvalidModelFileError, String(e)));
  }
});

// ---------------------------------------------------------------- SavedModel

const SAVED_MODEL_EXPECTED: FileFormat = {
  format: 'savedmodel',
  framework: 'tensorflow',
  inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 3] }],
  outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 2] }],
  safety: { verdict: 'safe', findings: [] },
  details: {
    metaGraphs: [
      {
        tags: ['serve'],
        tensorflowVersion: '2.15.0',
        tensorflowGitVersion: 'v2.15.0-rc1-8-g6887368d6d4',
        signatures: [
          {
            key: 'embed',
            method: 'tensorflow/serving/predict',
            inputs: [{ name: 'tokens', dtype: 'int64', shape: [-1], tensor: 'embed_tokens:0' }],
            outputs: [{ name: 'vec', dtype: 'float16', shape: [-1, 8], tensor: 'StatefulPartitionedCall_1:0' }],
          },
          {
            key: 'serving_default',
            method: 'tensorflow/serving/predict',
            inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 3], tensor: 'serving_default_x:0' }],
            outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 2], tensor: 'StatefulPartitionedCall:0' }],
          },
        ],
      },
    ],
    ops: 5,
    nodesScanned: 5,
    schemaVersion: 1,
    signature: 'serving_default',
    fileSystemOps: ['ReadFile'],
  },
};

test('savedmodel: tags, TF version, signatures, op scan', async () => {
  const r = await detectSavedModelPb(bufferSource('export/1/saved_model.pb', savedModel()));
  assert.deepEqual(r, SAVED_MODEL_EXPECTED);
  // another *.pb that parses as a SavedModel
  assert.deepEqual(await detectSavedModelPb(bufferSource('export/model.pb', savedModel())), SAVED_MODEL_EXPECTED);
  // not a .pb: not looked at
  assert.equal(await detectSavedModelPb(bufferSource('export/model.bin', savedModel())), undefined);
});

test('savedmodel: PyFunc ops in library functions are unsafe findings', async () => {
  const r = (await detectSavedModelPb(bufferSource('saved_model.pb', savedModel({ pyFunc: true }))))!;
  assert.equal(r.safety.verdict, 'unsafe');
  assert.deepEqual(
    r.safety.findings.map((f) => f.global),
    ['tf.raw_ops.EagerPyFunc'],
  );
  assert.match(r.safety.findings[0]!.reason, /Python/);
});

test('savedmodel: other protobufs → undefined; claimed but broken → InvalidModelFileError', async () => {
  const bytes = savedModel();
  assert.equal(await detectSavedModelPb(bufferSource('model.pb', onnxModel())), undefined);
  // a frozen GraphDef (node(1) messages) is not a SavedModel
  const graphDef = new PbWriter().msg(1, (n) => n.str(1, 'x').str(2, 'Placeholder')).finish();
  assert.equal(await detectSavedModelPb(bufferSource('frozen.pb', graphDef)), undefined);
  await rejectsInvalid(detectSavedModelPb(bufferSource('saved_model.pb', onnxModel())), 'savedmodel');
  await rejectsInvalid(detectSavedModelPb(bufferSource('saved_model.pb', new Uint8Array(0))), 'savedmodel');
  await rejectsInvalid(detectSavedModelPb(bufferSource('saved_model.pb', new PbWriter().int(1, 1).finish())), 'savedmodel');
  const boundaries = await topLevelBoundaries(bytes);
  for (let n = 0; n < bytes.length; n++) {
    const p = detectSavedModelPb(bufferSource('saved_model.pb', bytes.subarray(0, n)));
    if (boundaries.has(n)) await p.catch((e: unknown) => assert.ok(e instanceof InvalidModelFileError));
    else await rejectsInvalid(p, 'savedmodel');
    const q = await detectSavedModelPb(bufferSource('other.pb', bytes.subarray(0, n)));
    if (!boundaries.has(n)) assert.equal(q, undefined);
  }
});

// ---------------------------------------------------------------- TF.js

const TFJS_EXPECTED: FileFormat = {
  format: 'tfjs',
  framework: 'tfjs',
  parameters: 38,
  dtypes: { float32: 8, int32: 20, uint8: 10 },
  inputs: [{ name: 'x:0', dtype: 'float32', shape: [-1, 3] }],
  outputs: [{ name: 'Identity:0', dtype: 'float32', shape: [-1, 2] }],
  safety: { verdict: 'safe', findings: [] },
  details: {
    weightPaths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'],
    weights: 4,
    format: 'graph-model',
    generatedBy: '2.15.0',
    convertedBy: 'TensorFlow.js Converter v4.17.0',
    quantizedWeights: 1,
  },
};

test('tfjs: weights manifest, signature and converter fields', async () => {
  assert.deepEqual(await detectTfjs(bufferSource('web/model.json', tfjsModelJson())), TFJS_EXPECTED);
  assert.deepEqual(await detectTfjs(bufferSource('web/whatever.json', tfjsModelJson())), TFJS_EXPECTED);
});

test('tfjs: other JSON → undefined; broken TF.js → InvalidModelFileError', async () => {
  const enc = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
  assert.equal(await detectTfjs(bufferSource('package.json', enc({ name: 'x', version: '1.0.0' }))), undefined);
  assert.equal(await detectTfjs(bufferSource('model.json', enc({ architectures: ['Bert'] }))), undefined);
  assert.equal(await detectTfjs(bufferSource('model.json', enc('[1,2,3]'))), undefined);
  assert.equal(await detectTfjs(bufferSource('model.json', enc('{"a": '))), undefined);
  assert.equal(await detectTfjs(bufferSource('m.onnx', onnxModel())), undefined);
  // layers model without weights: still TF.js
  const layers = (await detectTfjs(bufferSource('model.json', enc({ format: 'layers-model', modelTopology: { class_name: 'Sequential' } }))))!;
  assert.equal(layers.format, 'tfjs');
  assert.equal(layers.parameters, 0);
  for (const broken of [
    { modelTopology: {}, weightsManifest: {} },
    { weightsManifest: [{ paths: 'a.bin', weights: [] }] },
    { weightsManifest: [{ paths: ['a.bin'], weights: [{ name: 'w', shape: [2, -1], dtype: 'float32' }] }] },
    { weightsManifest: [{ paths: ['a.bin'], weights: [{ name: 'w', shape: [2, 1.5], dtype: 'float32' }] }] },
    { weightsManifest: [{ paths: ['a.bin'], weights: [{ name: 'w', dtype: 'float32' }] }] },
    { weightsManifest: [{ paths: ['a.bin'], weights: [{ name: 'w', shape: [2 ** 40, 2 ** 40], dtype: 'float32' }] }] },
    { nested: { weightsManifest: [] } },
  ]) {
    await rejectsInvalid(detectTfjs(bufferSource('model.json', enc(broken))), 'tfjs');
  }
  const bytes = tfjsModelJson();
  const text = new TextDecoder().decode(bytes);
  const marker = text.indexOf('"modelTopology"') + '"modelTopology"'.length;
  for (let n = 0; n < bytes.length - 1; n++) {
    const p = detectTfjs(bufferSource('model.json', bytes.subarray(0, n)));
    if (n >= marker) await rejectsInvalid(p, 'tfjs');
    else assert.equal(await p, undefined);
  }
});

// ---------------------------------------------------------------- walks cut short: unknown, never safe

test('onnx: subgraphs nested deeper than the walk goes make the file unknown, not safe', async () => {
  const deep = (await detectOnnx(bufferSource('m.onnx', onnxNestedIf(40))))!;
  assert.equal(deep.safety.verdict, 'unknown');
  assert.equal(deep.details.skippedSubgraphs, 1);
  assert.match(deep.safety.incomplete!.join(), /1 subgraphs nested deeper than 32 levels/);
  const ok = (await detectOnnx(bufferSource('m.onnx', onnxNestedIf(32))))!;
  assert.equal(ok.safety.verdict, 'safe');
  assert.equal(ok.parameters, 2);
});

test('tflite: more subgraphs than are walked, or a structure past the work budget: unknown, not safe', async () => {
  assert.equal((await detectTflite(bufferSource('m.tflite', tfliteModel({ extraSubgraphs: 63 }))))!.safety.verdict, 'safe');
  const many = (await detectTflite(bufferSource('m.tflite', tfliteModel({ extraSubgraphs: 64 }))))!;
  assert.equal(many.safety.verdict, 'unknown');
  assert.match(many.safety.incomplete!.join(), /first 64 of 65 subgraphs/);
  const big = (await detectTflite(bufferSource('m.tflite', tfliteModel({ operatorTensors: 1 << 20 }))))!;
  assert.equal(big.safety.verdict, 'unknown');
  assert.equal(big.details.partial, true);
  assert.match(big.safety.incomplete!.join(), /walk stopped/);
});

test('savedmodel: a graph past the node budget is unknown, and says why', async () => {
  const f = (await detectSavedModelPb(bufferSource('saved_model.pb', savedModel({ extraNodes: 500_000 }))))!;
  assert.equal(f.safety.verdict, 'unknown');
  assert.match(f.safety.incomplete!.join(), /larger than 500000 nodes/);
});

test('tfjs: a model.json too large to parse is unknown, not safe', async () => {
  const v = virtualSource('model.json', new TextEncoder().encode('{"weightsManifest": ['), (64 << 20) + 1);
  const f = (await detectTfjs(v.source))!;
  assert.equal(f.format, 'tfjs');
  assert.equal(f.safety.verdict, 'unknown');
  assert.match(f.safety.incomplete!.join(), /not parsed/);
});


// ---------------------------------------------------------------- fuzz

test('fuzz: 10,000 mutated inputs per detector resolve or throw InvalidModelFileError only; memory stays bounded (measured in a child process)', { timeout: 300_000 }, async (t) => {
  const run = await runInChild<Record<string, FuzzCounts>>(new URL('./support/fuzz-onnx-tf.ts', import.meta.url), 'fuzzOnnxTf', [10_000]);
  const grewMiB = assertPeakGrowthBelow(run, 200, 'fuzzing the ONNX/TF detectors');
  t.diagnostic(`fuzz: ${JSON.stringify(run.result)}; rss ${run.startMiB.toFixed(0)} MiB, peak +${grewMiB.toFixed(0)} MiB`);
});

// ---------------------------------------------------------------- local check: real files

const realOnnx = sharedModels(/\.onnx$/, 'formats-onnx-tf');

test('LOCAL CHECK: the real ONNX files in ../shared/models', { skip: realOnnx.skip }, async () => {
  for (const name of realOnnx.files) {
    const bytes = readFileSync(realOnnx.path(name));
    const r = await detectOnnx(bufferSource(name, bytes));
    assert.ok(r && r.format === 'onnx' && (r.parameters ?? 0) > 0, name);
    // the same without the extension: recognised from the bytes alone
    assert.deepEqual(await detectOnnx(bufferSource('renamed', bytes)), r);
    const { opTypes: _, ...details } = r.details;
    console.log(`${name}: ${JSON.stringify({ parameters: r.parameters, dtypes: r.dtypes, inputs: r.inputs, outputs: r.outputs, details })}`);
  }
});
