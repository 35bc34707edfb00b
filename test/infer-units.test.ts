// The inference server's parts that need no model: tensors from JSON and
// back, half floats, model names in paths, the command line and config
// file, and the dynamic batcher (with a stand-in for the runtime).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher, canBatch, type Feeds } from '../src/infer/batcher.ts';
import { InferUsageError, parseInferOptions } from '../src/infer/options.ts';
import { matchModel } from '../src/infer/protocol.ts';
import type { ServedModel } from '../src/infer/served-model.ts';
import {
  checkShape,
  flatJson,
  fromHalf,
  nestedJson,
  parseJsonLenient,
  tensorBytes,
  tensorFromBytes,
  tensorFromFlat,
  tensorFromNested,
  TensorInputError,
  toHalf,
  type Tensor,
} from '../src/infer/tensors.ts';

describe('tensors from JSON', () => {
  test('NaN and Infinity tokens as TF Serving takes them, outside strings only', () => {
    const v = parseJsonLenient('{"a": [1, NaN, -Infinity, Infinity], "s": "NaN in a string"}') as { a: unknown[]; s: string };
    assert.equal(v.s, 'NaN in a string');
    const t = tensorFromNested(v.a, 'float32', 'a');
    assert.deepEqual(Array.from(t.data as Float32Array), [1, NaN, -Infinity, Infinity]);
    assert.throws(() => parseJsonLenient('{"a": [1, NaNa]}'), SyntaxError);
    assert.throws(() => parseJsonLenient('[1,'), SyntaxError);
    // the strings proto3 JSON uses are numbers too, for floats only
    assert.deepEqual(Array.from(tensorFromFlat(['NaN', '-Infinity'], 'float64', [2], 'x').data as Float64Array), [NaN, -Infinity]);
    assert.throws(() => tensorFromFlat(['NaN'], 'int32', [1], 'x'), /element \[0\] is "NaN"; expected an integer/);
  });

  test('nested lists: shape, rank, ragged rows', () => {
    const t = tensorFromNested([[1, 2, 3], [4, 5, 6]], 'float32', 'x');
    assert.deepEqual(t.dims, [2, 3]);
    assert.deepEqual(tensorFromNested(7, 'int32', 'x').dims, []);
    assert.deepEqual(tensorFromNested([], 'int32', 'x').dims, [0]);
    assert.throws(() => tensorFromNested([[1, 2], [3]], 'float32', 'x'), /input 'x': \[1\] has 1 elements, its siblings 2 \(ragged nested list\)/);
    assert.throws(() => tensorFromNested([[1, 2], 3], 'float32', 'x'), /ragged/);
    assert.throws(() => tensorFromNested([1, [2]], 'float32', 'x'), /element \[1\] is a list, but its siblings are not/);
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    assert.throws(() => tensorFromNested(deep, 'float32', 'x'), /nested deeper than 32/);
  });

  test('element types: integer ranges, int64 beyond 2^53 as strings, bools, strings and b64', () => {
    assert.deepEqual(Array.from(tensorFromNested([-128, 127], 'int8', 'x').data as Int8Array), [-128, 127]);
    assert.throws(() => tensorFromNested([128], 'int8', 'x'), /expected an integer in \[-128, 127\]/);
    assert.throws(() => tensorFromNested([-1], 'uint32', 'x'), /in \[0, 4294967295\]/);
    assert.throws(() => tensorFromNested([1.5], 'int32', 'x'), /element \[0\] is 1.5; expected an integer \(DT_INT32 \/ INT32\)/);
    assert.deepEqual(Array.from(tensorFromNested(['9223372036854775807', -5], 'int64', 'x').data as BigInt64Array), [9223372036854775807n, -5n]);
    assert.throws(() => tensorFromNested(['9223372036854775808'], 'int64', 'x'), /int64 range/);
    assert.deepEqual(Array.from(tensorFromNested(['18446744073709551615'], 'uint64', 'x').data as BigUint64Array), [18446744073709551615n]);
    assert.throws(() => tensorFromNested([2 ** 60], 'int64', 'x'), /within ±2\^53/);
    assert.deepEqual(Array.from(tensorFromNested([true, false], 'bool', 'x').data as Uint8Array), [1, 0]);
    assert.throws(() => tensorFromNested([1], 'bool', 'x'), /expected true or false/);
    assert.deepEqual(tensorFromNested(['a', { b64: Buffer.from('é').toString('base64') }], 'string', 's').data, ['a', 'é']);
    assert.throws(() => tensorFromNested([{ b64: '***' }], 'string', 's'), /not base64/);
    assert.throws(() => tensorFromNested([{ b64: 'AA==', x: 1 }], 'string', 's'), /expected a string or \{"b64"/);
    assert.throws(() => tensorFromNested([3], 'float32', 'x').data && tensorFromNested(['3'], 'float32', 'x'), /element \[0\] is "3"; expected a number/);
  });

  test('OIP data: flat or nested, counted against the shape before anything is allocated', () => {
    assert.deepEqual(Array.from(tensorFromFlat([[1, 2], [3, 4]], 'float32', [4], 'x').data as Float32Array), [1, 2, 3, 4]);
    assert.throws(() => tensorFromFlat([1, 2, 3], 'float32', [2, 2], 'x'), /"data" has 3 elements; shape \[2, 2\] needs 4/);
    assert.throws(() => tensorFromFlat([1, 2, 3], 'float32', [1, 2], 'x'), /"data" has more than 2 elements/);
    // a shape claiming 10^12 elements with 1 given: refused, not allocated
    assert.throws(() => tensorFromFlat([1], 'float32', [1_000_000, 1_000_000], 'x'), /"data" has 1 elements; shape \[1000000, 1000000\] needs 1000000000000/);
    assert.throws(() => tensorFromFlat('abc', 'float32', [1], 'x'), /"data" must be a list/);
  });

  test('binary data: exact sizes, BYTES with length prefixes, bools 0 or 1', () => {
    const f = new Float32Array([1.5, -2]);
    assert.deepEqual(Array.from(tensorFromBytes(new Uint8Array(f.buffer), 'float32', [2], 'x').data as Float32Array), [1.5, -2]);
    assert.throws(() => tensorFromBytes(new Uint8Array(7), 'float32', [2], 'x'), /binary data is 7 bytes; shape \[2\] of FP32 needs 8/);
    const strings: Tensor = { type: 'string', dims: [2], data: ['ab', 'ü'] };
    assert.deepEqual(tensorFromBytes(tensorBytes(strings), 'string', [2], 's').data, ['ab', 'ü']);
    assert.throws(() => tensorFromBytes(new Uint8Array([5, 0, 0, 0, 1]), 'string', [1], 's'), /runs past the data/);
    assert.throws(() => tensorFromBytes(new Uint8Array([2]), 'bool', [1], 'b'), /is 2, not 0 or 1/);
  });

  test('shapes against the model: rank and fixed dims', () => {
    const spec = { name: 'x', type: 'float32' as const, shape: ['N', 4] };
    checkShape({ type: 'float32', dims: [7, 4], data: new Float32Array(28) }, spec);
    assert.throws(() => checkShape({ type: 'float32', dims: [7, 5], data: new Float32Array(35) }, spec), /dimension 1 must be 4: the model takes \[-1, 4\]/);
    assert.throws(() => checkShape({ type: 'float32', dims: [4], data: new Float32Array(4) }, spec), TensorInputError);
  });
});

describe('tensors to JSON', () => {
  test('nested (TF Serving) and flat (OIP); NaN bare or as strings; int64 exact', () => {
    const t: Tensor = { type: 'float32', dims: [2, 2], data: new Float32Array([0.5, NaN, -Infinity, 3]) };
    assert.equal(nestedJson(t, { nonFinite: 'bare' }), '[[0.5,NaN],[-Infinity,3]]');
    assert.equal(flatJson(t, { nonFinite: 'string' }), '[0.5,"NaN","-Infinity",3]');
    assert.equal(nestedJson({ type: 'int64', dims: [], data: BigInt64Array.from([-(2n ** 63n)]) }, { nonFinite: 'bare' }), '-9223372036854775808');
    assert.equal(nestedJson({ type: 'bool', dims: [1, 2], data: Uint8Array.from([1, 0]) }, { nonFinite: 'bare' }), '[[true,false]]');
    assert.equal(nestedJson({ type: 'string', dims: [1], data: ['é'] }, { nonFinite: 'bare', b64: true }), `[{"b64":"${Buffer.from('é').toString('base64')}"}]`);
    assert.equal(nestedJson({ type: 'float32', dims: [2, 0], data: new Float32Array(0) }, { nonFinite: 'bare' }), '[[],[]]');
    // a float32 prints as its exact value: read back as float32 it is the same number
    const f = new Float32Array([0.1, 1 / 3]);
    const back = new Float32Array(JSON.parse(flatJson({ type: 'float32', dims: [2], data: f }, { nonFinite: 'string' })) as number[]);
    assert.deepEqual(back, f);
  });

  test('half floats: exact bits, rounding to nearest even, overflow and underflow', () => {
    const cases: Array<[number, number]> = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [70000, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -24, 0x0001],
      [2 ** -26, 0x0000],
      [1 + 2 ** -11, 0x3c00], // halfway: to even
      [1 + 3 * 2 ** -11, 0x3c02], // halfway: to even (up)
      [0.1, 0x2e66],
    ];
    for (const [n, bits] of cases) assert.equal(toHalf(n), bits, `toHalf(${n})`);
    assert.ok(Number.isNaN(fromHalf(toHalf(NaN))));
    for (const bits of [0x0001, 0x03ff, 0x0400, 0x3c00, 0x7bff, 0xc000]) assert.equal(toHalf(fromHalf(bits)), bits);
  });
});

describe('model names in paths', () => {
  const models = new Map([
    ['acme', { name: 'acme' }],
    ['acme/resnet', { name: 'acme/resnet' }],
    ['vad', { name: 'vad' }],
  ]) as unknown as Map<string, ServedModel>;
  test('the longest served name wins; segments are percent-decoded', () => {
    const pick = (rest: string) => {
      const m = matchModel(models, rest);
      return 'unknown' in m ? `unknown ${m.unknown}` : `${m.model.name} | ${m.after}`;
    };
    assert.equal(pick('acme/resnet:predict'), 'acme/resnet | :predict');
    assert.equal(pick('acme/resnet/versions/3/metadata'), 'acme/resnet | /versions/3/metadata');
    assert.equal(pick('acme%2Fresnet/infer'), 'acme/resnet | /infer');
    assert.equal(pick('acme/versions/2'), 'acme | /versions/2');
    assert.equal(pick('vadx:predict'), 'unknown vadx');
    assert.equal(pick('%E0%A4%A'), 'unknown %E0%A4%A');
  });
});

describe('command line and config file', () => {
  const parse = (argv: string[], file?: unknown) => parseInferOptions(argv, { CAIRN_URL: 'http://reg:7070', CAIRN_TOKEN: 't' }, () => JSON.stringify(file), '/work');

  test('models from the command line and the file; flags win', () => {
    const o = parse(['vad@production', '--port', '9000', '--config', 'c.json', '--no-warmup'], {
      models: [{ name: 'acme/resnet', batching: { max_batch_size: 4 } }, 'ocr'],
      port: 8000,
      poll_seconds: 5,
      batching: { max_delay_ms: 3 },
    });
    assert.equal(o.port, 9000);
    assert.equal(o.pollSeconds, 5);
    assert.equal(o.registryUrl, 'http://reg:7070');
    assert.equal(o.token, 't');
    assert.deepEqual(
      o.models.map((m) => [m.name, m.ref, m.batching, m.warmup]),
      [
        ['acme/resnet', undefined, { maxBatchSize: 4, maxDelayMs: 3 }, false],
        ['ocr', undefined, { maxBatchSize: 32, maxDelayMs: 3 }, false],
        ['vad', 'production', { maxBatchSize: 32, maxDelayMs: 3 }, false],
      ],
    );
    assert.equal(parse(['m', '--no-batching']).models[0]!.batching, false);
    assert.equal(parse(['m']).port, 8500);
  });

  test('bad settings are usage errors that say which', () => {
    const cases: Array<[string[], unknown, RegExp]> = [
      [[], undefined, /name at least one model/],
      [['Bad_Name'], undefined, /is not a model name/],
      [['m@'], undefined, /is not a version, alias or digest/],
      [['m', 'm@x'], undefined, /model m is named twice/],
      [['m', '--port', '70000'], undefined, /port must be an integer in \[0, 65535\]/],
      [['m', '--poll', '0'], undefined, /poll must be a number of seconds/],
      [['m', '--url', 'ftp://x'], undefined, /must be an http/],
      [['--config', 'c.json'], { models: [{ name: 'm', batch: 1 }] }, /models\[0\]: unknown setting batch/],
      [['--config', 'c.json'], { modles: [] }, /unknown setting modles/],
      [['--config', 'c.json'], { models: [{ name: 'm', batching: { max_batch_size: 0 } }] }, /max_batch_size must be an integer in \[1, 65536\]/],
      [['m', '--bogus'], undefined, /Unknown option '--bogus'/],
    ];
    for (const [argv, file, message] of cases) assert.throws(() => parse(argv, file), (err: unknown) => err instanceof InferUsageError && message.test(err.message), argv.join(' '));
  });
});

describe('dynamic batching', () => {
  const row = (v: number, width = 2): Tensor => ({ type: 'float32', dims: [1, width], data: new Float32Array(width).fill(v) });
  /** A stand-in runtime: doubles its input, takes `ms` per run, records each run's rows. */
  function runtime(ms = 5) {
    const runs: number[] = [];
    let active = 0;
    let maxActive = 0;
    const run = async (feeds: Feeds): Promise<Feeds> => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs.push(feeds.x!.dims[0]!);
      await new Promise((r) => setTimeout(r, ms)); // the run takes time: requests pile up meanwhile (the point)
      active--;
      const x = feeds.x!;
      return { y: { ...x, data: (x.data as Float32Array).map((v) => v * 2) } };
    };
    return { run, runs, maxActive: () => maxActive };
  }

  test('only models whose every input and output has a symbolic dim 0 batch', () => {
    assert.equal(canBatch([{ name: 'x', type: 'float32', shape: ['N', 4] }], [{ name: 'y', type: 'float32', shape: ['N'] }]), true);
    assert.equal(canBatch([{ name: 'x', type: 'float32', shape: ['N', 4] }, { name: 's', type: 'float32', shape: [2, 'N', 8] }], [{ name: 'y', type: 'float32', shape: ['N'] }]), false);
    assert.equal(canBatch([{ name: 'sr', type: 'int64', shape: [] }], [{ name: 'y', type: 'float32', shape: ['N'] }]), false);
  });

  test('idle: a request runs at once; busy: the waiting ones merge, each gets its rows', async () => {
    const rt = runtime();
    const sizes: number[] = [];
    const b = new Batcher(rt.run, 1, { maxBatchSize: 4, maxDelayMs: 0 }, (n) => sizes.push(n), () => assert.fail('splits'));
    const answers = await Promise.all(Array.from({ length: 9 }, (_, i) => b.submit({ x: row(i) })));
    answers.forEach((a, i) => assert.deepEqual(Array.from(a.y!.data as Float32Array), [2 * i, 2 * i]));
    assert.deepEqual(rt.runs, [1, 4, 4], 'the first alone, then as many as fit');
    assert.equal(rt.maxActive(), 1, 'one run per slot');
    assert.deepEqual(sizes, [1, 4, 4]);
  });

  test('requests with other trailing dims never merge; a request of many rows runs alone', async () => {
    const rt = runtime();
    const b = new Batcher(rt.run, 1, { maxBatchSize: 4, maxDelayMs: 0 }, () => {}, () => {});
    const big: Tensor = { type: 'float32', dims: [4, 2], data: new Float32Array(8).fill(1) };
    const out = await Promise.all([b.submit({ x: row(1) }), b.submit({ x: row(2, 3) }), b.submit({ x: row(3, 3) }), b.submit({ x: row(4) }), b.submit({ x: big })]);
    assert.deepEqual(out[1]!.y!.dims, [1, 3]);
    assert.deepEqual(out[4]!.y!.dims, [4, 2]);
    // row 1 at once; then the two 3-wide rows together; then row 4, and the 4-row request by itself
    assert.deepEqual(rt.runs, [1, 2, 1, 4]);
    assert.equal(rt.maxActive(), 1);
  });

  test('max delay holds a batch open for company while idle', async () => {
    const rt = runtime(1);
    const b = new Batcher(rt.run, 1, { maxBatchSize: 8, maxDelayMs: 30 }, () => {}, () => {});
    const first = b.submit({ x: row(1) });
    await new Promise((r) => setTimeout(r, 5)); // the second request comes a little later, within the delay (the point)
    const second = b.submit({ x: row(2) });
    await Promise.all([first, second]);
    assert.deepEqual(rt.runs, [2]);
  });

  test('a failing merged run is retried one request at a time: only the bad one fails', async () => {
    const runs: number[] = [];
    const run = async (feeds: Feeds): Promise<Feeds> => {
      runs.push(feeds.x!.dims[0]!);
      await new Promise((r) => setTimeout(r, 2)); // a run takes time, so the others merge behind it
      if ((feeds.x!.data as Float32Array).includes(-1)) throw new Error('bad value');
      return { y: feeds.x! };
    };
    const b = new Batcher(run, 1, { maxBatchSize: 8, maxDelayMs: 0 }, () => {}, () => {});
    const results = await Promise.allSettled([b.submit({ x: row(0) }), b.submit({ x: row(1) }), b.submit({ x: row(-1) }), b.submit({ x: row(3) })]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  });

  test('outputs that do not split by rows turn merging off, and the requests still get their answers', async () => {
    let why = '';
    const run = async (feeds: Feeds): Promise<Feeds> => {
      await new Promise((r) => setTimeout(r, 2)); // a run takes time, so the others merge behind it
      return { y: feeds.x!, total: { type: 'float32', dims: [], data: new Float32Array([feeds.x!.dims[0]!]) } };
    };
    const b = new Batcher(run, 1, { maxBatchSize: 8, maxDelayMs: 0 }, () => {}, (w) => (why = w));
    const out = await Promise.all([0, 1, 2, 3].map((i) => b.submit({ x: row(i) })));
    assert.match(why, /output 'total' has shape \[\] for 3 merged rows/);
    out.forEach((o) => assert.deepEqual(Array.from(o.total!.data as Float32Array), [1]));
  });
});
