// Detectors for safetensors and GGUF: valid files, one fixture per reference
// rule violation, bounded reads, a local check against real files when present,
// and a fuzz run (mutated inputs must resolve, or reject with
// InvalidModelFileError only, quickly and with bounded memory).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { bufferSource } from '../src/formats/sources.ts';
import { InvalidModelFileError, type FileSource, type FileFormat } from '../src/formats/types.ts';
import { detectSafetensors, safetensorsTensorRanges } from '../src/formats/safetensors.ts';
import { assertPeakGrowthBelow, runInChild } from './support/process-memory.ts';
import { mutate, type FuzzCounts } from './support/safetensors-gguf-work.ts';
import { sharedModels } from './support/shared-models.ts';
import { detectGguf } from '../src/formats/gguf.ts';
import {
  buildGguf, buildSafetensors, concat, CHAT_TEMPLATE, GGML, patternBytes, prng, rawSafetensors, recordingSource,
  ST_VALID_METADATA, validGguf, validSafetensors, type Built,
} from './support/fixtures-safetensors-gguf.ts';

const st = (bytes: Uint8Array, path = 'weights/model.safetensors'): FileSource => bufferSource(path, bytes);
const gg = (bytes: Uint8Array, path = 'model.gguf'): FileSource => bufferSource(path, bytes);

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<InvalidModelFileError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof InvalidModelFileError, `expected InvalidModelFileError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return e;
  }
  assert.fail(`expected a rejection matching ${pattern}`);
}

// ---------------------------------------------------------------------------

describe('safetensors: valid files', () => {
  it('reads BF16/F32/I8 tensors, __metadata__, parameters and dtypes', async () => {
    const { bytes, headerSize } = validSafetensors();
    const f = (await detectSafetensors(st(bytes)))!;
    assert.equal(f.format, 'safetensors');
    assert.equal(f.framework, 'safetensors');
    assert.equal(f.safety.verdict, 'safe');
    assert.deepEqual(f.safety.findings, []);
    assert.equal(f.parameters, 128 + 16 + 15 + 64 + 1);
    assert.deepEqual(f.dtypes, { bfloat16: 128, float32: 81, int8: 15 });
    assert.equal(f.details.tensors, 5);
    assert.equal(f.details.header_size, headerSize);
    const meta = f.details.metadata as Record<string, string>;
    assert.equal(meta.format, 'pt');
    assert.equal(meta.producer, 'cairn-test');
    assert.ok(meta.long!.length < ST_VALID_METADATA.long.length && meta.long!.endsWith('…'), 'long metadata values are truncated');
    const largest = f.details.largest_tensors as Array<{ name: string; shape: number[]; elements: number; dtype: string }>;
    assert.deepEqual(largest[0], { name: 'encoder.weight', dtype: 'bfloat16', shape: [16, 8], elements: 128 });
    assert.equal(largest.length, 5);
    assert.ok(JSON.stringify(f).length < 8000, 'details stay small');
  });

  it('recognises a valid file without the extension, and ignores other content', async () => {
    const { bytes } = validSafetensors();
    assert.equal((await detectSafetensors(st(bytes, 'blobs/abc')))?.format, 'safetensors');
    assert.equal(await detectSafetensors(st(new TextEncoder().encode('{"a": 1}'), 'x.json')), undefined);
    assert.equal(await detectSafetensors(st(patternBytes(4096), 'random.bin')), undefined);
    assert.equal(await detectSafetensors(st(new Uint8Array(3), 'tiny')), undefined);
    // looks like a length + JSON object, but not tensor entries
    assert.equal(await detectSafetensors(st(rawSafetensors('{"a":[1,2]}', 0).bytes, 'config.bin')), undefined);
    // an empty header is valid with the extension, not claimed without
    const empty = rawSafetensors('{}', 0).bytes;
    assert.equal((await detectSafetensors(st(empty)))?.details.tensors, 0);
    assert.equal(await detectSafetensors(st(empty, 'blob')), undefined);
  });

  it('accepts what the reference accepts', async () => {
    const t = [{ name: 'w', dtype: 'F32', shape: [2, 2] }];
    // leading whitespace (upstream's `{` check is commented out), null metadata
    assert.ok(await detectSafetensors(st(buildSafetensors(t, { leading: ' \n\t', metadata: null }).bytes)));
    // unknown fields in a tensor entry are ignored; sequence form of the struct
    assert.ok(await detectSafetensors(st(rawSafetensors('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":{"x":[1,{"y":null}]}}}', 8).bytes)));
    assert.ok(await detectSafetensors(st(rawSafetensors('{"w":["F32",[2],[0,8]]}', 8).bytes)));
    // sub-byte dtypes: F4 with an even count, F6 with a multiple of 4
    const sub = await detectSafetensors(st(buildSafetensors([{ name: 'a', dtype: 'F4', shape: [4, 2] }, { name: 'b', dtype: 'F6_E2M3', shape: [4] }, { name: 'c', dtype: 'F8_E8M0', shape: [3] }]).bytes));
    assert.deepEqual(sub?.dtypes, { float4_e2m1: 8, float6_e2m3: 4, float8_e8m0: 3 });
    // zero-sized tensors, escapes in names, tensors declared out of order
    const f = await detectSafetensors(st(rawSafetensors('{"b\\u00e9\\n":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"z":{"dtype":"F64","shape":[0,5],"data_offsets":[2,2]},"a":{"dtype":"C64","shape":[1],"data_offsets":[2,10]}}', 10).bytes));
    assert.equal(f?.details.tensors, 3);
    assert.equal(f?.parameters, 3);
    // all twenty dtypes
    const all = ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'C64', 'F64', 'I64', 'U64', 'F4', 'F6_E2M3', 'F6_E3M2'];
    const every = await detectSafetensors(st(buildSafetensors(all.map((d, i) => ({ name: `t${i}`, dtype: d, shape: [4] }))).bytes));
    assert.equal(Object.keys(every!.dtypes!).length, 20);
  });

  it('returns absolute tensor ranges in file order', async () => {
    const { bytes, dataStart } = validSafetensors();
    const ranges = await safetensorsTensorRanges(st(bytes, 'anything'));
    assert.deepEqual(ranges.map((r) => r.name), ['encoder.weight', 'encoder.bias', 'quant.scales', 'head.weight', 'scalar']);
    assert.deepEqual(ranges[0], { name: 'encoder.weight', dtype: 'bfloat16', bits: 16, begin: dataStart, end: dataStart + 256 });
    assert.equal(ranges[ranges.length - 1]!.end, bytes.byteLength);
    for (let i = 1; i < ranges.length; i++) assert.equal(ranges[i]!.begin, ranges[i - 1]!.end);
    await rejectsWith(safetensorsTensorRanges(st(bytes.subarray(0, bytes.byteLength - 1), 'anything')), /MetadataIncompleteBuffer/);
  });

  it('reads the header only, never the data buffer', async () => {
    const big = buildSafetensors([{ name: 'w', dtype: 'F32', shape: [1024, 1024] }, { name: 'b', dtype: 'BF16', shape: [1024, 1024] }]);
    const src = recordingSource(st(big.bytes));
    await detectSafetensors(src);
    assert.ok(src.totalRead <= big.dataStart + 4096, `read ${src.totalRead} bytes of a ${big.bytes.byteLength}-byte file`);
  });
});

describe('safetensors: every reference rule', () => {
  const w = (json: string, data: number, path?: string): Promise<FileFormat | undefined> => detectSafetensors(st(rawSafetensors(json, data).bytes, path));
  const one = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';

  it('HeaderTooSmall', async () => {
    await rejectsWith(detectSafetensors(st(new Uint8Array(5))), /HeaderTooSmall/);
  });
  it('HeaderTooLarge (and huge length fields)', async () => {
    await rejectsWith(detectSafetensors(st(rawSafetensors(one, 8, true, 100_000_001n).bytes)), /HeaderTooLarge/);
    await rejectsWith(detectSafetensors(st(rawSafetensors(one, 8, true, 2n ** 64n - 1n).bytes)), /HeaderTooLarge/);
    // without the extension: claimed when the bytes after the length field look like a header, else not
    await rejectsWith(detectSafetensors(st(rawSafetensors(one, 8, true, 2n ** 64n - 1n).bytes, 'blob')), /HeaderTooLarge/);
    assert.equal(await detectSafetensors(st(rawSafetensors('{"a":1}', 8, true, 2n ** 64n - 1n).bytes, 'blob')), undefined);
  });
  it('InvalidHeaderLength: truncated header', async () => {
    const { bytes } = validSafetensors();
    await rejectsWith(detectSafetensors(st(bytes.subarray(0, 100))), /InvalidHeaderLength/);
    // without the extension, a header prefix with safetensors keys still claims the format
    await rejectsWith(detectSafetensors(st(bytes.subarray(0, 100), 'blob')), /InvalidHeaderLength/);
    await rejectsWith(detectSafetensors(st(rawSafetensors(one, 8, true, 100_000_000n).bytes)), /InvalidHeaderLength/);
  });
  it('InvalidHeader: not UTF-8', async () => {
    const json = new TextEncoder().encode('{"w\xff":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}');
    const bad = concat([json.subarray(0, 3), Uint8Array.of(0xff, 0xfe), json.subarray(3)]);
    await rejectsWith(detectSafetensors(st(rawSafetensors(bad, 8).bytes)), /InvalidHeader\b/);
  });
  it('InvalidHeaderDeserialization: JSON and schema errors', async () => {
    const cases = [
      'not json',
      '[1,2,3]',
      '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}',
      '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} x',
      '{"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}',
      '{"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}',
      '{"w":{"shape":[2],"data_offsets":[0,8]}}',
      '{"w":{"dtype":"F32","data_offsets":[0,8]}}',
      '{"w":{"dtype":"F32","shape":[2]}}',
      '{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}',
      '{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}',
      '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,16]}}',
      '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551616]}}',
      '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,08]}}',
      '{"w":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
      '{"w":"F32"}',
      '{"__metadata__":{"a":1},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
      '{"__metadata__":["a"],"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
      '{"__metadata__":{},"__metadata__":{},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
      '{"w\\ud800":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
      '{"w\u0001":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
      `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":${'['.repeat(200)}${']'.repeat(200)}}}`,
    ];
    for (const c of cases) await rejectsWith(w(c, 8), /InvalidHeaderDeserialization/);
  });
  it('duplicate tensor names (stricter than the reference, which keeps the last)', async () => {
    await rejectsWith(w('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 8), /DuplicateTensorName/);
  });
  it('InvalidOffset: gaps, overlaps, not starting at 0, end before begin', async () => {
    await rejectsWith(w('{"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', 12), /InvalidOffset.*"w"/);
    await rejectsWith(w('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', 12), /InvalidOffset.*"b"/);
    await rejectsWith(w('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', 12), /InvalidOffset/);
    await rejectsWith(w('{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[0],"data_offsets":[0,18446744073709551615]}}', 0), /InvalidOffset|TensorInvalidInfo/);
  });
  it('ValidationOverflow', async () => {
    await rejectsWith(w('{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}', 8), /ValidationOverflow/);
    await rejectsWith(w('{"w":{"dtype":"F64","shape":[2305843009213693952,4],"data_offsets":[0,8]}}', 8), /ValidationOverflow/);
  });
  it('MisalignedSlice: sub-byte dtypes off a byte boundary', async () => {
    await rejectsWith(w('{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}', 2), /MisalignedSlice/);
    await rejectsWith(w('{"w":{"dtype":"F6_E3M2","shape":[2],"data_offsets":[0,2]}}', 2), /MisalignedSlice/);
  });
  it('TensorInvalidInfo: size ≠ shape × dtype', async () => {
    await rejectsWith(w('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', 8), /TensorInvalidInfo/);
    await rejectsWith(w('{"w":{"dtype":"F4","shape":[4],"data_offsets":[0,4]}}', 4), /TensorInvalidInfo/);
  });
  it('MetadataIncompleteBuffer: truncated data or trailing bytes', async () => {
    const { bytes } = validSafetensors();
    await rejectsWith(detectSafetensors(st(bytes.subarray(0, bytes.byteLength - 3))), /MetadataIncompleteBuffer/);
    await rejectsWith(detectSafetensors(st(bytes.subarray(0, bytes.byteLength - 3), 'blob')), /MetadataIncompleteBuffer/);
    await rejectsWith(detectSafetensors(st(buildSafetensors([{ name: 'w', dtype: 'I8', shape: [3] }], { trailing: 1 }).bytes)), /MetadataIncompleteBuffer/);
    await rejectsWith(w('{}', 1), /MetadataIncompleteBuffer/);
  });
  it('errors carry the format and the reference name', async () => {
    const e = await rejectsWith(w('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', 8), /^invalid safetensors file: TensorInvalidInfo/);
    assert.equal(e.format, 'safetensors');
  });
});

// ---------------------------------------------------------------------------

describe('gguf: valid files', () => {
  it('reads a v3 file: architecture, quantization, context, tensors, metadata', async () => {
    const { bytes } = validGguf();
    const f = (await detectGguf(gg(bytes)))!;
    assert.equal(f.format, 'gguf');
    assert.equal(f.framework, 'gguf');
    assert.equal(f.safety.verdict, 'safe');
    const d = f.details;
    assert.equal(d.version, 3);
    assert.equal(d.architecture, 'llama');
    assert.equal(d.name, 'Cairn Tiny Llama');
    assert.deepEqual(d.file_type, { id: 15, name: 'MOSTLY_Q4_K_M' });
    assert.equal(d.context_length, 4096);
    assert.equal(d.tensors, 8);
    assert.equal(d.alignment, 64);
    assert.equal((d.data_offset as number) % 64, 0);
    assert.deepEqual(d.tensor_types, { Q4_K: 1, Q6_K: 1, F32: 1, Q8_0: 1, Q4_0: 1, F16: 1, BF16: 1, IQ4_XS: 1 });
    assert.deepEqual(f.dtypes, { q4_k: 76800, q6_k: 65536, float32: 256, q8_0: 2048, q4_0: 2048, float16: 256, bfloat16: 32, iq4_xs: 1024 });
    assert.equal(f.parameters, 76800 + 65536 + 256 + 2048 + 2048 + 256 + 32 + 1024);
    const m = d.metadata as Record<string, unknown>;
    assert.deepEqual(m['tokenizer.ggml.tokens'], { type: 'array', item_type: 'string', count: 300, head: ['<unk>', '<s>', '</s>', 'tok3', 'tok4'] });
    assert.deepEqual(m['tokenizer.ggml.scores'], { type: 'array', item_type: 'float32', count: 300, head: [-0, -1, -2, -3, -4] });
    assert.deepEqual(m['llama.rope.sections'], [1, 2, 3, 4]);
    assert.deepEqual(m['general.tags'], ['text-generation', 'test']);
    assert.deepEqual(m['general.nested'], [[1, 2], ['a']]);
    assert.equal(m['general.size_bytes'], (2n ** 60n).toString());
    assert.equal(m['general.signed'], -5);
    assert.equal(m['general.flag'], true);
    assert.equal(m['llama.rope.freq_base'], 10000);
    assert.match(m['general.description'] as string, /^d{256}… \[1000 bytes\]$/);
    assert.deepEqual(d.chat_template, { present: true, length: CHAT_TEMPLATE.length, head: CHAT_TEMPLATE });
    const largest = d.largest_tensors as Array<{ name: string; type: string; shape: number[] }>;
    assert.deepEqual(largest[0], { name: 'token_embd.weight', type: 'Q4_K', shape: [256, 300], elements: 76800 });
    assert.ok(JSON.stringify(f).length < 20_000);
  });

  it('reads v2, big-endian v3, zero tensors, and unknown tensor types', async () => {
    const v2 = (await detectGguf(gg(validGguf({ version: 2 }).bytes, 'blob')))!;
    assert.equal(v2.details.version, 2);
    assert.equal(v2.details.architecture, 'llama');
    const be = (await detectGguf(gg(validGguf({ bigEndian: true }).bytes)))!;
    assert.equal(be.details.endianness, 'big');
    assert.deepEqual(be.details.file_type, { id: 15, name: 'MOSTLY_Q4_K_M' });
    assert.equal(be.parameters, v2.parameters);
    const vocab = (await detectGguf(gg(buildGguf({ kv: [['general.architecture', { type: 'string', value: 'llama' }]] }).bytes)))!;
    assert.equal(vocab.details.tensors, 0);
    assert.equal(vocab.parameters, 0);
    const unk = (await detectGguf(gg(buildGguf({ tensors: [{ name: 'x', dims: [10], type: 200, bytes: 40 }, { name: 'y', dims: [4], type: 0 }] }).bytes)))!;
    assert.deepEqual(unk.details.tensor_types, { type_200: 1, F32: 1 });
    assert.deepEqual(unk.dtypes, { type_200: 10, float32: 4 });
    assert.equal(unk.details.unknown_tensor_types, true);
  });

  it('is not fooled by other content; non-GGUF without the extension is undefined', async () => {
    assert.equal(await detectGguf(gg(patternBytes(1000), 'x.bin')), undefined);
    assert.equal(await detectGguf(gg(new Uint8Array(0), 'x.bin')), undefined);
    assert.equal(await detectGguf(gg(validSafetensors().bytes, 'model.safetensors')), undefined);
    assert.equal(await detectSafetensors(gg(validGguf().bytes, 'blob')), undefined);
  });

  it('streams a large header through bounded reads', async () => {
    const tokens = Array.from({ length: 120_000 }, (_, i) => `token-${i}-${'x'.repeat(i % 17)}`);
    const b = buildGguf({
      kv: [
        ['general.architecture', { type: 'string', value: 'llama' }],
        ['tokenizer.ggml.tokens', { type: 'array', item: 'string', value: tokens }],
        ['tokenizer.ggml.merges', { type: 'array', item: 'string', value: tokens.slice(0, 50_000) }],
        ['tokenizer.huggingface.json', { type: 'string', value: 'j'.repeat(3_000_000) }],
      ],
      tensors: [{ name: 'w', dims: [32], type: 0 }],
    });
    assert.ok(b.bytes.byteLength > 5_000_000);
    const src = recordingSource(gg(b.bytes));
    const f = (await detectGguf(src))!;
    assert.ok(src.maxRead <= 1 << 20, `largest read ${src.maxRead}`);
    assert.ok(src.totalRead < b.bytes.byteLength, 'the 3 MB string is skipped, not read');
    const m = f.details.metadata as Record<string, { count: number; head: string[] }>;
    assert.equal(m['tokenizer.ggml.tokens']!.count, 120_000);
    assert.deepEqual(m['tokenizer.ggml.tokens']!.head, tokens.slice(0, 5));
    assert.match(m['tokenizer.huggingface.json'] as unknown as string, /… \[3000000 bytes\]$/);
  });
});

describe('gguf: broken files', () => {
  const kvArch: Array<[string, { type: 'string'; value: string }]> = [['general.architecture', { type: 'string', value: 'llama' }]];
  const setU64 = (b: Built, at: number, v: bigint): Uint8Array => {
    const c = b.bytes.slice();
    new DataView(c.buffer).setBigUint64(at, v, true);
    return c;
  };

  it('bad magic with the extension; version 1, 0 and 4', async () => {
    await rejectsWith(detectGguf(gg(patternBytes(100))), /bad magic/);
    await rejectsWith(detectGguf(gg(new Uint8Array(2))), /too short/);
    await rejectsWith(detectGguf(gg(buildGguf({ version: 1 }).bytes, 'blob')), /version 1 is not supported/);
    await rejectsWith(detectGguf(gg(buildGguf({ version: 0 }).bytes)), /unsupported GGUF version 0/);
    await rejectsWith(detectGguf(gg(buildGguf({ version: 4 }).bytes)), /unsupported GGUF version 4/);
  });
  it('truncated anywhere', async () => {
    const v = validGguf();
    // the last tensor (IQ4_XS, 544 bytes) is followed by 32 bytes of alignment padding, which may go
    for (const cut of [33, 300, v.bytes.byteLength - v.dataStart + 10, v.bytes.byteLength - 200, v.bytes.byteLength - 30, v.bytes.byteLength - 8]) {
      await rejectsWith(detectGguf(gg(v.bytes.subarray(0, v.bytes.byteLength - cut), 'blob')), /truncated|past the end|beyond|cannot fit|more than the file holds/);
    }
  });
  it('huge counts and lengths', async () => {
    const v = validGguf();
    const [tensorCount, kvCount, firstKeyLen] = v.u64Fields as [number, number, number];
    await rejectsWith(detectGguf(gg(setU64(v, tensorCount, 2n ** 64n - 1n))), /tensor_count .* exceeds/);
    await rejectsWith(detectGguf(gg(setU64(v, tensorCount, 100_000n))), /cannot fit/);
    await rejectsWith(detectGguf(gg(setU64(v, kvCount, 2n ** 63n))), /metadata_kv_count .* exceeds/);
    await rejectsWith(detectGguf(gg(setU64(v, firstKeyLen, 2n ** 62n))), /exceeds the \d+ bytes left/);
    // the token array count
    const b = buildGguf({ kv: [['tokenizer.ggml.tokens', { type: 'array', item: 'string', value: ['a', 'b'] }]] });
    await rejectsWith(detectGguf(gg(setU64(b, b.u64Fields[3]!, 2n ** 60n))), /cannot fit/);
    const s = buildGguf({ kv: [['general.name', { type: 'string', value: 'abc' }]], tensors: [{ name: 'w', dims: [4], type: 0 }] });
    await rejectsWith(detectGguf(gg(setU64(s, s.u64Fields[3]!, BigInt(s.bytes.byteLength)))), /exceeds the \d+ bytes left/);
    await rejectsWith(detectGguf(gg(setU64(s, s.u64Fields[3]!, 4n))), /./);
  });
  it('duplicate keys and tensor names', async () => {
    await rejectsWith(detectGguf(gg(buildGguf({ kv: [...kvArch, ...kvArch] }).bytes)), /duplicate key "general.architecture"/);
    await rejectsWith(detectGguf(gg(buildGguf({ tensors: [{ name: 'w', dims: [4], type: 0 }, { name: 'w', dims: [4], type: 0 }] }).bytes)), /duplicate tensor name "w"/);
  });
  it('alignment: not a power of two, wrong type; offsets not aligned', async () => {
    await rejectsWith(detectGguf(gg(buildGguf({ kv: [['general.alignment', { type: 'u32', value: 48 }]], alignment: 48, tensors: [{ name: 'w', dims: [4], type: 0 }] }).bytes)), /not a power of two/);
    await rejectsWith(detectGguf(gg(buildGguf({ kv: [['general.alignment', { type: 'string', value: '32' }]] }).bytes)), /must be an unsigned integer/);
    await rejectsWith(detectGguf(gg(buildGguf({ tensors: [{ name: 'w', dims: [4], type: 0, offset: 8n }] }).bytes)), /not a multiple of the alignment 32/);
    // alignment 16 honoured
    const a16 = await detectGguf(gg(buildGguf({ kv: [['general.alignment', { type: 'u32', value: 16 }]], alignment: 16, tensors: [{ name: 'a', dims: [3], type: 0 }, { name: 'b', dims: [3], type: 0 }] }).bytes));
    assert.equal(a16?.details.alignment, 16);
  });
  it('tensor data out of the file or overlapping', async () => {
    await rejectsWith(detectGguf(gg(buildGguf({ tensors: [{ name: 'w', dims: [4], type: 0, offset: 2n ** 40n }] }).bytes)), /beyond the end/);
    await rejectsWith(detectGguf(gg(buildGguf({ tensors: [{ name: 'a', dims: [64], type: 0 }, { name: 'b', dims: [64], type: 0, offset: 128n }] }).bytes)), /overlap|past the end/);
    await rejectsWith(detectGguf(gg(buildGguf({ tensors: [{ name: 'a', dims: [64], type: 0 }, { name: 'b', dims: [64], type: 0, offset: 0n }] }).bytes)), /overlap/);
  });
  it('bad tensor infos: dims, block size, name length, value types', async () => {
    await rejectsWith(detectGguf(gg(buildGguf({ tensors: [{ name: 'w', dims: [1, 1, 1, 1, 1], type: 0 }] }).bytes)), /5 dimensions/);
    await rejectsWith(detectGguf(gg(buildGguf({ tensors: [{ name: 'w', dims: [33, 2], type: GGML.Q4_0[0], bytes: 36 }] }).bytes)), /not a multiple of the block size 32/);
    await rejectsWith(detectGguf(gg(buildGguf({ tensors: [{ name: 'w'.repeat(65), dims: [4], type: 0 }] }).bytes)), /name is 65 bytes/);
    await rejectsWith(detectGguf(gg(buildGguf({ tensors: [{ name: 'w', dims: [2 ** 32, 2 ** 32], type: 0, bytes: 4 }] }).bytes)), /overflows int64|more than the file holds/);
    const b = buildGguf({ kv: [['k', { type: 'u32', value: 1 }]] });
    const c = b.bytes.slice();
    new DataView(c.buffer).setUint32(b.u32Fields[0]!, 13, true);
    await rejectsWith(detectGguf(gg(c)), /unknown value type 13/);
    const deep = { type: 'array' as const, item: 'array' as const, value: [{ type: 'array' as const, item: 'array' as const, value: [{ type: 'array' as const, item: 'array' as const, value: [{ type: 'array' as const, item: 'u8' as const, value: [1] }] }] }] };
    await rejectsWith(detectGguf(gg(buildGguf({ kv: [['deep', deep]] }).bytes)), /nested deeper/);
  });
});

describe('huge length fields on huge (virtual) files', () => {
  /** a file of `size` bytes: `head`, then zeros (nothing is allocated for the zeros until read) */
  const virtual = (path: string, head: Uint8Array, size: number): FileSource => ({
    path,
    size,
    async read(o, l) {
      const e = Math.min(o + l, size);
      const out = new Uint8Array(Math.max(0, e - o));
      if (o < head.length) out.set(head.subarray(o, Math.min(e, head.length)));
      return out;
    },
  });
  it('a GGUF string array of 2^33 empty strings in a 100 GiB file stops at the header cap, bounded (memory measured in a child process)', { timeout: 120_000 }, async (t) => {
    const run = await runInChild<{ error: string; ms: number }>(WORK, 'ggufHugeStringArray');
    assert.match(run.result.error, /header larger than/);
    assert.ok(run.result.ms < 10_000, `${run.result.ms} ms`);
    const grewMiB = assertPeakGrowthBelow(run, 200, 'a 2^33-entry string array');
    t.diagnostic(`${run.result.ms.toFixed(0)} ms, peak rss +${grewMiB.toFixed(0)} MiB`);
  });
  it('GGUF counts beyond the limits or the file fail before any allocation', async () => {
    const b = buildGguf({});
    for (const [at, v] of [[8, 2n ** 40n], [16, 2n ** 40n], [8, 1_000_000n]] as const) {
      const head = b.bytes.slice();
      new DataView(head.buffer).setBigUint64(at, v, true);
      await rejectsWith(detectGguf(virtual('blob', head, 2 ** 40)), /exceeds|truncated|duplicate/);
    }
  });
  it('a safetensors header length of 100,000,000 over zeros is read once (≤ 100 MB) and rejected', async () => {
    const head = rawSafetensors('', 0, false, 100_000_000n).bytes;
    await rejectsWith(detectSafetensors(virtual('m.safetensors', head, 2 ** 33)), /InvalidHeaderDeserialization/);
    assert.equal(await detectSafetensors(virtual('blob', head, 2 ** 33)), undefined, 'without the extension nothing past the first 4 KiB is read');
  });
});

// ---------------------------------------------------------------------------
// Local check against the real files in ../shared/models (not part of the
// fixture suite: skipped when the files are absent, e.g. on a fresh clone).

function fileSource(path: string): FileSource & { close(): void } {
  const fd = openSync(path, 'r');
  const size = fstatSync(fd).size;
  return {
    path,
    size,
    async read(offset, length) {
      const n = Math.max(0, Math.min(length, size - offset));
      const b = Buffer.alloc(n);
      if (n > 0) readSync(fd, b, 0, n, offset);
      return b;
    },
    close: () => closeSync(fd),
  };
}

const realFiles = sharedModels(/^ppocr-det\..*\.safetensors$/, 'formats-safetensors-gguf');

describe('LOCAL CHECK: the real files in ../shared/models (skipped when absent)', () => {
  it('extracts ppocr-det.*.safetensors', { skip: realFiles.skip }, async (t) => {
    for (const name of realFiles.files) {
      const src = fileSource(realFiles.path(name));
      try {
        const rec = recordingSource(src);
        const f = (await detectSafetensors(rec))!;
        const ranges = await safetensorsTensorRanges(src);
        assert.equal(f.format, 'safetensors');
        assert.equal(ranges[ranges.length - 1]!.end, src.size);
        const summary = { file: name, size: src.size, bytesRead: rec.totalRead, parameters: f.parameters, dtypes: f.dtypes, details: f.details, firstRange: ranges[0], ranges: ranges.length };
        t.diagnostic(JSON.stringify(summary));
        console.log(`[local check] ${JSON.stringify(summary)}`);
      } finally {
        src.close();
      }
    }
  });
});

// ---------------------------------------------------------------------------
// Fuzz (support/safetensors-gguf-work.ts, each detector in a child process
// whose memory is measured from here)

const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20240611);
const PER_DETECTOR = Number(process.env.FUZZ_COUNT ?? 10_000);
const WORK = new URL('./support/safetensors-gguf-work.ts', import.meta.url);

describe('fuzz (deterministic; FUZZ_SEED / FUZZ_COUNT to vary)', () => {
  for (const [format, detector] of [['safetensors', 'detectSafetensors'], ['gguf', 'detectGguf']] as const) {
    it(`${detector}: ${PER_DETECTOR} mutated inputs; memory stays bounded (measured in a child process)`, { timeout: 300_000 }, async (t) => {
      const run = await runInChild<FuzzCounts>(WORK, 'fuzzSafetensorsGguf', [format, FUZZ_SEED, PER_DETECTOR]);
      const s = run.result;
      const grewMiB = assertPeakGrowthBelow(run, 200, `fuzzing ${detector}`);
      t.diagnostic(JSON.stringify({ ...s, peakRssGrowthMiB: Math.round(grewMiB) }));
      assert.equal(s.resolved + s.rejected, PER_DETECTOR);
      assert.ok(s.rejected > 0 && s.claimed > 0);
    });
  }

  it('cross-feeding: each detector on the other format\'s mutations and on pure noise', { timeout: 30_000 }, async () => {
    const rnd = prng(FUZZ_SEED + 1);
    const ggufBase = validGguf();
    for (let i = 0; i < 2000; i++) {
      const input = i % 2 ? mutate(ggufBase, rnd, true) : patternBytes(Math.floor(rnd() * 300), i);
      for (const [det, path] of [[detectSafetensors, 'x.safetensors'], [detectGguf, 'blob'], [detectSafetensors, 'blob'], [detectGguf, 'x.gguf']] as const) {
        try {
          await det(bufferSource(path, input));
        } catch (e) {
          assert.ok(e instanceof InvalidModelFileError, String(e));
        }
      }
    }
  });
});
