// Pickle/zip-based format detectors: zip reader, pickle opcode walker,
// PyTorch (zip + legacy), plain pickle and joblib, NumPy .npy/.npz, Keras
// (.keras and HDF5), TorchServe .mar — extracted fields, safety verdicts
// (including known scanner bypasses), broken files, and a fuzz pass.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { bufferSource } from '../src/formats/sources.ts';
import { InvalidModelFileError, type FileFormat } from '../src/formats/types.ts';
import { crc32 as zipCrc32, readZipDirectory, readZipMember, readZipMemberPrefix, zipMemberSource } from '../src/formats/zip.ts';
import { classifyGlobal, SAFE_GLOBALS, scanPickle } from '../src/formats/pickle.ts';
import { detectPickle, detectPytorch } from '../src/formats/pytorch.ts';
import { detectNumpy } from '../src/formats/numpy.ts';
import { detectH5, detectKeras, walkConfig } from '../src/formats/keras.ts';
import { detectTorchserve } from '../src/formats/torchserve.ts';
import {
  concatBytes, craftedJoblib, float32Bytes, h5File, joblibFile, kerasConfig, kerasFile, makeNpy, makeZip, marFile, MALICIOUS, numpyArrayPickle,
  PickleWriter, pytorchLegacy, pytorchZip, reconstructorPickle, stateDictPickle, virtualSource, zlibCompress, STATE_DICT,
} from './support/fixtures-pickle-zip.ts';
import { joblibLoadRuns, useJoblibFixtures } from './support/fixtures-python.ts';
import { assertSafetyContract } from './support/safety-contract.ts';
import { FUZZ_TARGETS, type FuzzCounts } from './support/fuzz-pickle-zip.ts';
import { assertPeakGrowthBelow, runInChild } from './support/process-memory.ts';

const enc = new TextEncoder();
const src = (path: string, bytes: Uint8Array) => bufferSource(path, bytes);

async function invalid(p: Promise<unknown>, format: string, re?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof InvalidModelFileError, `expected InvalidModelFileError, got ${String(err)}`);
    assert.equal(err.format, format);
    if (re) assert.match(err.message, re);
    return true;
  });
}

function globalsOf(f: FileFormat): string[] {
  return f.safety.findings.map((x) => x.global);
}

// ---------------------------------------------------------------------------

describe('zip reader', () => {
  const members = [
    { name: 'a.txt', data: enc.encode('hello stored') },
    { name: 'dir/b.json', data: enc.encode(JSON.stringify({ x: 'y'.repeat(1000) })), method: 8 as const },
  ];
  test('reads the central directory and members (stored and deflated)', async () => {
    const zip = makeZip(members, { comment: 'a comment' });
    const f = src('x.zip', zip);
    const dir = await readZipDirectory(f);
    assert.equal(dir.totalEntries, 2);
    assert.equal(dir.zip64, false);
    assert.deepEqual(dir.entries.map((e) => [e.name, e.method, e.uncompressedSize]), [['a.txt', 0, 12], ['dir/b.json', 8, members[1]!.data.length]]);
    assert.equal(new TextDecoder().decode(await readZipMember(f, dir, dir.entries[0]!)), 'hello stored');
    assert.deepEqual(await readZipMember(f, dir, dir.entries[1]!), members[1]!.data);
    assert.deepEqual(await readZipMemberPrefix(f, dir, dir.entries[1]!, 5), members[1]!.data.subarray(0, 5));
    const sub = await zipMemberSource(f, dir, dir.entries[0]!);
    assert.equal(sub?.size, 12);
    assert.equal(new TextDecoder().decode(await sub!.read(6, 100)), 'stored');
    assert.equal(zipCrc32(enc.encode('123456789')), 0xcbf43926);
  });
  test('ZIP64 end of central directory and ZIP64 extra fields', async () => {
    const zip = makeZip(members, { zip64: true });
    const dir = await readZipDirectory(src('x.zip', zip));
    assert.equal(dir.zip64, true);
    assert.equal(dir.entries.length, 2);
    assert.equal(dir.entries[1]!.name, 'dir/b.json');
    assert.deepEqual(await readZipMember(src('x.zip', zip), dir, dir.entries[1]!), members[1]!.data);
  });
  test('broken archives throw InvalidModelFileError', async () => {
    const zip = makeZip(members);
    await invalid(readZipDirectory(src('x', zip.subarray(0, zip.length - 10))), 'zip', /end of central directory/);
    await invalid(readZipDirectory(src('x', zip.subarray(0, 40))), 'zip');
    // central directory offset past the file
    const bad = zip.slice();
    new DataView(bad.buffer).setUint32(bad.length - 6, 0x7fffffff, true);
    await invalid(readZipDirectory(src('x', bad)), 'zip', /outside the file/);
    // absurd entry count
    const many = zip.slice();
    new DataView(many.buffer).setUint16(many.length - 12, 60000, true);
    await invalid(readZipDirectory(src('x', many)), 'zip', /cannot fit/);
    // corrupted deflate data → CRC or inflate failure
    const dir = await readZipDirectory(src('x', zip));
    const e = dir.entries[1]!;
    const corrupt = zip.slice();
    const p = e.localHeaderOffset + 30 + e.name.length + 3;
    corrupt[p] = corrupt[p]! ^ 0xff;
    await invalid(readZipMember(src('x', corrupt), dir, e), 'zip');
  });
  test("an end record understating the entry count hides nothing: entries are read until the directory's size is used up", async () => {
    const three = [...members, { name: 'c.txt', data: enc.encode('third') }];
    const dir = await readZipDirectory(src('x.zip', makeZip(three, { eocdEntries: 2 })));
    assert.deepEqual(dir.entries.map((e) => e.name), ['a.txt', 'dir/b.json', 'c.txt']);
    assert.equal(dir.totalEntries, 3);
    assert.equal(dir.truncated, false);
    // an overstated count is still broken
    await invalid(readZipDirectory(src('x.zip', makeZip(three, { eocdEntries: 4 }))), 'zip');
  });
  test('a zip bomb member is not inflated past its cap', async () => {
    const big = new Uint8Array(64 * 1024 * 1024); // 64 MiB of zeros deflates to ~64 KiB
    const zip = makeZip([{ name: 'bomb.bin', data: big, method: 8 }]);
    const dir = await readZipDirectory(src('x', zip));
    assert.equal(await readZipMember(src('x', zip), dir, dir.entries[0]!), undefined, 'over the 16 MiB cap: not read');
    // lie about the size: the directory says 1000 bytes
    const lying = zip.slice();
    const cdAt = dir.cdOffset;
    new DataView(lying.buffer).setUint32(cdAt + 24, 1000, true);
    const dir2 = await readZipDirectory(src('x', lying));
    await invalid(readZipMember(src('x', lying), dir2, dir2.entries[0]!), 'zip', /inflates past/);
  });
});

// ---------------------------------------------------------------------------

describe('pickle walker', () => {
  test('the allowlist', () => {
    for (const g of ['torch._utils._rebuild_tensor_v2', 'torch.FloatStorage', 'torch.bfloat16', 'collections.OrderedDict', 'numpy.core.multiarray._reconstruct', '_codecs.encode', 'copyreg._reconstructor']) {
      assert.equal(classifyGlobal(g), undefined, g);
    }
    assert.equal(classifyGlobal('os.system'), 'imports os.system, which can run commands');
    assert.equal(classifyGlobal('torch.storage._load_from_bytes'), 'not on the allowlist of known-safe globals');
    assert.equal(classifyGlobal('sklearn.tree._classes.DecisionTreeClassifier'), 'sklearn objects run code when unpickled');
    assert.equal(classifyGlobal('never.seen.Before'), 'not on the allowlist of known-safe globals');
    for (const g of ['builtins.eval', 'builtins.exec', 'builtins.getattr', 'builtins.compile', 'builtins.open', 'builtins.__import__']) {
      assert.ok(!SAFE_GLOBALS.has(g));
      assert.notEqual(classifyGlobal(g), undefined);
    }
  });

  test('a torch state_dict pickle: safe, storages, tensors', async () => {
    const scan = await scanPickle(src('data.pkl', stateDictPickle(STATE_DICT)));
    assert.equal(scan.verdict, 'safe');
    assert.deepEqual(scan.findings, []);
    assert.deepEqual(scan.globals, ['collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch.FloatStorage', 'torch.BFloat16Storage']);
    assert.equal(scan.protocol, 2);
    assert.equal(scan.pickles, 1);
    assert.deepEqual([...scan.storages], [['0', { dtype: 'float32', numel: 12 }], ['1', { dtype: 'float32', numel: 4 }], ['2', { dtype: 'bfloat16', numel: 8 }]]);
    assert.deepEqual(scan.tensors, [
      { name: 'encoder.weight', dtype: 'float32', shape: [4, 3] },
      { name: 'encoder.bias', dtype: 'float32', shape: [4] },
      { name: 'head.weight', dtype: 'bfloat16', shape: [2, 4] },
    ]);
  });

  test('numpy array pickles and copyreg._reconstructor with safe classes are safe', async () => {
    const np = await scanPickle(src('a.pkl', numpyArrayPickle()));
    assert.equal(np.verdict, 'safe', JSON.stringify(np.findings));
    assert.deepEqual(np.globals, ['numpy.core.multiarray._reconstruct', 'numpy.ndarray', 'numpy.dtype', '_codecs.encode']);
    const rc = await scanPickle(src('a.pkl', reconstructorPickle()));
    assert.equal(rc.verdict, 'safe');
    assert.deepEqual(rc.globals, ['copyreg._reconstructor', 'collections.OrderedDict', 'builtins.object']);
  });

  for (const [name, { bytes, expect }] of Object.entries(MALICIOUS)) {
    test(`bypass caught: ${name}`, async () => {
      const f = await detectPickle(src('model.pkl', bytes));
      assert.ok(f);
      assert.equal(f.safety.verdict, 'unsafe');
      const flagged = globalsOf(f);
      for (const g of expect) assert.ok(flagged.includes(g), `${g} flagged (got ${JSON.stringify(flagged)})`);
    });
  }

  test('findings name the reason', async () => {
    const f = (await detectPickle(src('m.pkl', MALICIOUS['GLOBAL os.system (protocol 0)']!.bytes)))!;
    assert.deepEqual(f.safety.findings, [{ global: 'os.system', reason: 'imports os.system, which can run commands' }]);
    assert.deepEqual(f.safety.globals, ['os.system']);
    const g = (await detectPickle(src('m.pkl', MALICIOUS['builtins.getattr reaching os.system']!.bytes)))!;
    assert.deepEqual(g.safety.findings.find((x) => x.global === 'os.system'), { global: 'os.system', reason: 'reached through builtins.getattr: imports os.system, which can run commands' });
    const w = (await detectPickle(src('m.pkl', MALICIOUS['protocol-0 GLOBAL with odd whitespace']!.bytes)))!;
    assert.equal(w.safety.findings[0]!.reason, 'imports os.system, which can run commands');
    const u = (await detectPickle(src('m.pkl', MALICIOUS['unknown global never seen before']!.bytes)))!;
    assert.deepEqual(u.safety.findings, [{ global: 'mypackage.models.Net', reason: 'not on the allowlist of known-safe globals' }]);
  });

  test('STACK_GLOBAL that cannot be resolved is unsafe, not skipped', async () => {
    // module name longer than the kept-string limit
    const w = new PickleWriter().proto(4).binUnicode('o'.repeat(5000)).str('system').stackGlobal().stop();
    const scan = await scanPickle(src('x.pkl', w.bytes()));
    assert.equal(scan.verdict, 'unsafe');
    assert.equal(scan.findings[0]!.global, '<unresolved STACK_GLOBAL>');
  });

  test('trailing non-pickle bytes after STOP are not an error; a second pickle is walked', async () => {
    const benign = new PickleWriter().proto(2).emptyDict().stop().bytes();
    const f = (await detectPickle(src('m.pkl', concatBytes(benign, Uint8Array.from([0x00, 0xff, 0xfe])))))!;
    assert.equal(f.safety.verdict, 'safe');
    assert.equal(f.details.trailing_bytes, 3);
    const two = (await detectPickle(src('m.pkl', concatBytes(benign, benign))))!;
    assert.equal(two.details.pickles, 2);
  });

  test('broken pickles are InvalidModelFileError when claimed, undefined when guessed', async () => {
    const good = stateDictPickle(STATE_DICT);
    await invalid(detectPickle(src('m.pkl', good.subarray(0, good.length - 7))), 'pickle', /truncated/);
    await invalid(detectPickle(src('m.pkl', Uint8Array.from([0x80, 0x02, 0xff, 0x2e]))), 'pickle', /unknown opcode 0xff/);
    await invalid(detectPickle(src('m.bin', Uint8Array.from([0x80, 0x02, 0x30, 0x2e]))), 'pickle', /underflow|MARK/);
    await invalid(detectPickle(src('m.pkl', enc.encode('hello world'))), 'pickle');
    assert.equal(await detectPickle(src('notes.txt', enc.encode('hello world'))), undefined);
    assert.equal(await detectPickle(src('notes.txt', enc.encode('(not a pickle)'))), undefined);
    assert.equal(await detectPickle(src('x.bin', new Uint8Array(0))), undefined);
    // a protocol-0 pickle is found by content
    const p0 = (await detectPickle(src('blob', enc.encode("(dp0\nS'a'\np1\nI1\ns."))))!;
    assert.equal(p0.format, 'pickle');
    assert.equal(p0.safety.verdict, 'safe');
    assert.equal(p0.details.protocol, 0);
  });

  test('limits: dropped container items make tensor metadata partial, never the verdict', async () => {
    const scan = await scanPickle(src('x.pkl', stateDictPickle(STATE_DICT)), 0, undefined, { limits: { maxKeptItems: 10 } });
    assert.equal(scan.verdict, 'safe');
    assert.equal(scan.metadataIncomplete, true);
    const full = await scanPickle(src('x.pkl', stateDictPickle(STATE_DICT)));
    assert.equal(full.metadataIncomplete, false);
  });
  test('hostile pickles end quickly with bounded work: unknown, not safe', async () => {
    for (const [what, body] of [['stack flood', 0x4e], ['MARK flood', 0x28]] as const) {
      const bytes = new Uint8Array(1_200_000).fill(body);
      bytes[0] = 0x80;
      bytes[1] = 2;
      bytes[bytes.length - 1] = 0x2e;
      const started = performance.now();
      const f = (await detectPickle(src('x.pkl', bytes)))!;
      assert.equal(f.safety.verdict, 'unknown', what);
      assert.ok(performance.now() - started < 2000, what);
    }
    // a 1 MiB protocol-0 line without a newline is a broken pickle, not a hang
    const line = new Uint8Array(2 << 20).fill(0x41);
    line[0] = 0x63; // GLOBAL
    await invalid(detectPickle(src('x.pkl', line)), 'pickle', /longer than|unterminated/);
  });
  test('limits: a pickle past the opcode limit is unknown, not safe', async () => {
    const w = new PickleWriter().proto(2);
    for (let i = 0; i < 200; i++) w.none().pop();
    const scan = await scanPickle(src('x.pkl', w.none().stop().bytes()), 0, undefined, { limits: { maxOps: 100 } });
    assert.equal(scan.verdict, 'unknown');
    assert.match(scan.incomplete ?? '', /opcodes/);
  });
});

// ---------------------------------------------------------------------------

describe('PyTorch', () => {
  test('zip checkpoint: tensors, dtypes, parameters, safe', async () => {
    const f = (await detectPytorch(src('model.pt', pytorchZip())))!;
    assert.equal(f.format, 'pytorch');
    assert.equal(f.framework, 'pytorch');
    assert.equal(f.parameters, 24);
    assert.deepEqual(f.dtypes, { float32: 16, bfloat16: 8 });
    assert.equal(f.safety.verdict, 'safe');
    assert.deepEqual(f.safety.findings, []);
    assert.deepEqual(f.safety.globals, ['collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch.FloatStorage', 'torch.BFloat16Storage']);
    assert.equal(f.details.archive, 'archive');
    assert.equal(f.details.version, '3');
    assert.equal(f.details.byteorder, 'little');
    assert.equal(f.details.tensor_count, 3);
    assert.deepEqual((f.details.tensors as unknown[])[2], { name: 'head.weight', dtype: 'bfloat16', shape: [2, 4] });
    assert.match(String(f.details.note), /approximation/);
  });
  test('zip checkpoint with ZIP64 directory and another prefix (.bin)', async () => {
    const f = (await detectPytorch(src('pytorch_model.bin', pytorchZip({ prefix: 'pytorch_model', zip64: true }))))!;
    assert.equal(f.details.archive, 'pytorch_model');
    assert.equal(f.parameters, 24);
  });
  test('malicious data.pkl, and a malicious *.pkl in a subfolder', async () => {
    const bad = (await detectPytorch(src('model.pt', pytorchZip({ dataPkl: MALICIOUS['builtins.getattr reaching os.system']!.bytes }))))!;
    assert.equal(bad.safety.verdict, 'unsafe');
    assert.ok(globalsOf(bad).includes('os.system'));
    const nested = (await detectPytorch(src('model.pt', pytorchZip({ extra: [{ name: 'archive/extra/sub/evil.pkl', data: MALICIOUS['INST opcode']!.bytes, method: 8 }] }))))!;
    assert.equal(nested.safety.verdict, 'unsafe');
    assert.deepEqual(nested.safety.findings, [{ global: 'os.system', reason: 'imports os.system, which can run commands (in archive/extra/sub/evil.pkl)' }]);
    assert.equal(nested.parameters, 24);
  });
  test('legacy (non-zip) torch.save file', async () => {
    const f = (await detectPytorch(src('old.pth', pytorchLegacy())))!;
    assert.equal(f.format, 'pytorch');
    assert.equal(f.details.container, 'legacy');
    assert.equal(f.details.protocol_version, 1001);
    assert.deepEqual(f.details.sys_info, { protocol_version: 1001, little_endian: true, type_sizes: { short: 2, int: 4, long: 4 } });
    assert.equal(f.parameters, 24);
    assert.deepEqual(f.dtypes, { float32: 16, bfloat16: 8 });
    assert.equal(f.safety.verdict, 'safe');
    // the plain pickle detector leaves it to detectPytorch
    assert.equal(await detectPickle(src('old.pth', pytorchLegacy())), undefined);
  });
  test('a 3 GiB legacy file is walked through bounded reads, stopping where the pickles end', async () => {
    const shape = [1024, 1024, 768];
    const real = pytorchLegacy([{ name: 'big.weight', storage: 'FloatStorage', key: '0', shape }], { dataless: true });
    const size = real.length + 1024 * 1024 * 768 * 4;
    const v = virtualSource('big.pt', real, size);
    const f = (await detectPytorch(v.source))!;
    assert.equal(f.parameters, 1024 * 1024 * 768);
    assert.deepEqual(f.dtypes, { float32: 1024 * 1024 * 768 });
    assert.ok(v.bytesRead() < 4 * 1024 * 1024, `read ${v.bytesRead()} bytes`);
    // one byte short: truncated
    await invalid(detectPytorch(virtualSource('big.pt', real, size - 1).source), 'pytorch', /truncated/);
  });
  test('legacy file with a malicious model pickle', async () => {
    const f = (await detectPytorch(src('old.pt', pytorchLegacy(STATE_DICT, { model: MALICIOUS['STACK_GLOBAL with names from memo (BINGET)']!.bytes }))))!;
    assert.equal(f.safety.verdict, 'unsafe');
    assert.ok(globalsOf(f).includes('os.system'));
  });
  test('broken checkpoints', async () => {
    const zip = pytorchZip();
    await invalid(detectPytorch(src('model.pt', zip.subarray(0, zip.length - 30))), 'pytorch');
    await invalid(detectPytorch(src('model.bin', zip.subarray(0, 200))), 'pytorch'); // claimed by its first member, data.pkl
    const legacy = pytorchLegacy();
    await invalid(detectPytorch(src('old.pt', legacy.subarray(0, legacy.length - 10))), 'pytorch', /truncated legacy/);
    await invalid(detectPytorch(src('old.pt', legacy.subarray(0, 40))), 'pytorch');
    // storage missing from the archive
    const missing = makeZip([{ name: 'archive/data.pkl', data: stateDictPickle(STATE_DICT) }, { name: 'archive/version', data: enc.encode('3\n') }]);
    await invalid(detectPytorch(src('model.pt', missing)), 'pytorch', /missing/);
    await invalid(detectPytorch(src('model.pt', enc.encode('just text, not a model'))), 'pytorch');
    await invalid(detectPytorch(src('model.pt', makeZip([{ name: 'readme.txt', data: enc.encode('x') }]))), 'pytorch', /no data.pkl/);
    assert.equal(await detectPytorch(src('weights.bin', enc.encode('binary blob'))), undefined);
    assert.equal(await detectPytorch(src('archive.zip', makeZip([{ name: 'readme.txt', data: enc.encode('x') }]))), undefined);
  });
});

// ---------------------------------------------------------------------------

describe('pickle and joblib files', () => {
  test('joblib with a plain dict of numpy arrays: safe, raw array bytes skipped', async () => {
    const f = (await detectPickle(src('model.joblib', joblibFile())))!;
    assert.equal(f.format, 'joblib');
    assert.equal(f.framework, 'pickle');
    assert.equal(f.safety.verdict, 'safe', JSON.stringify(f.safety.findings));
    assert.deepEqual(f.safety.globals, ['joblib.numpy_pickle.NumpyArrayWrapper', 'numpy.ndarray', 'numpy.dtype']);
    assert.equal(f.details.trailing_bytes, 0);
  });
  test('joblib sklearn model: unsafe, framework sklearn', async () => {
    const f = (await detectPickle(src('model.joblib', joblibFile({ sklearn: true }))))!;
    assert.equal(f.framework, 'sklearn');
    assert.equal(f.safety.verdict, 'unsafe');
    assert.deepEqual(f.safety.findings, [{ global: 'sklearn.linear_model._base.LinearRegression', reason: 'sklearn objects run code when unpickled' }]);
  });
  test('joblib object array: the nested pickle is walked', async () => {
    const f = (await detectPickle(src('model.joblib', joblibFile({ objectArray: true }))))!;
    assert.equal(f.safety.verdict, 'unsafe');
    assert.ok(globalsOf(f).includes('builtins.eval'));
  });
  test('zlib-compressed joblib is decompressed and walked; lz4 is unknown', async () => {
    const f = (await detectPickle(src('model.joblib', zlibCompress(joblibFile({ sklearn: true })))))!;
    assert.equal(f.details.compression, 'zlib');
    assert.equal(f.framework, 'sklearn');
    assert.equal(f.safety.verdict, 'unsafe');
    const lz4 = (await detectPickle(src('model.joblib', Uint8Array.from([0x04, 0x22, 0x4d, 0x18, 1, 2, 3]))))!;
    assert.equal(lz4.safety.verdict, 'unknown');
    assert.equal(lz4.details.compression, 'lz4');
    await invalid(detectPickle(src('model.joblib', Uint8Array.from([0x78, 0x9c, 1, 2, 3, 4]))), 'joblib', /zlib/);
  });
});

// ---------------------------------------------------------------------------

describe('joblib arrays: the walk follows what joblib.load reads after each NumpyArrayWrapper', () => {
  for (const [name, c] of Object.entries(craftedJoblib())) {
    test(`${name}: ${c.verdict}`, async () => {
      const f = (await detectPickle(src('model.joblib', c.bytes)))!;
      assert.equal(f.format, 'joblib');
      assert.equal(f.safety.verdict, c.verdict, JSON.stringify(f.safety));
      assertSafetyContract(f, name);
      if (c.runs) assert.ok(globalsOf(f).includes('os.system'), JSON.stringify(f.safety.findings));
    });
  }
  test('a pickle frame that runs past STOP, with another pickle after it: unknown', async () => {
    const first = new PickleWriter().none().stop().raw([0x4e]).bytes();
    const bytes = concatBytes(new PickleWriter().proto(4).frame(first.length).raw(first).bytes(), new PickleWriter().proto(2).global('os', 'system').stop().bytes());
    // the C unpickler (reading a file) resumes after STOP, the Python one after the frame
    const f = (await detectPickle(src('m.pkl', bytes)))!;
    assert.equal(f.safety.verdict, 'unknown');
    assert.match(f.safety.incomplete!.join(), /frame runs past its STOP/);
  });
});

describe('joblib and NumPy files written by numpy and joblib (Python venv)', () => {
  const python = useJoblibFixtures();

  test('ordinary joblib dumps of structured dtypes with object fields are accepted: safe, the nested pickle walked', async (t) => {
    const fx = await python.get(t);
    if (!fx) return;
    for (const name of fx.dtypes) {
      const f: FileFormat = (await detectPickle(src(`benign-${name}.joblib`, fx.file(`benign-${name}.joblib`))))!;
      assert.equal(f.format, 'joblib', name);
      assert.equal(f.safety.verdict, 'safe', `${name}: ${JSON.stringify(f.safety)}`);
      // the object array's own pickle was walked, and the walk found the end of the file
      assert.ok(f.safety.globals!.some((g) => /^numpy\._?core\.multiarray\._reconstruct$/.test(g)), `${name}: ${f.safety.globals}`);
      assert.equal(f.details.trailing_bytes, 0, name);
    }
  });
  for (const [name, what] of [
    ['attack', 'the ordinary dump of an object whose __reduce__ is os.system, in an object field'],
    ['crafted', 'an object-field array whose pickle is shaped to look like raw data ending in STOP'],
  ] as const) {
    test(`${what}: unsafe (and joblib.load runs it)`, async (t) => {
      const fx = await python.get(t);
      if (!fx) return;
      assert.ok(fx.ran(name), 'joblib.load ran the command');
      const f = (await detectPickle(src('model.joblib', fx.file(`${name}.joblib`))))!;
      assert.equal(f.safety.verdict, 'unsafe');
      assert.ok(globalsOf(f).includes('os.system'), JSON.stringify(f.safety));
    });
  }
  test('every crafted joblib case that should run code does, under the real joblib.load', async (t) => {
    const fx = await python.get(t);
    if (!fx) return;
    const dir = await mkdtemp(join(tmpdir(), 'cairn-crafted-'));
    const slug = (s: string): string => s.replace(/\W+/g, '-');
    const cases = Object.keys(craftedJoblib());
    const files = Object.fromEntries(cases.map((name) => [slug(name), craftedJoblib(`touch ${join(dir, `ran-${slug(name)}`)}`)[name]!.bytes]));
    const ran = await joblibLoadRuns(fx.py, dir, files);
    assert.deepEqual(ran.sort(), cases.filter((name) => craftedJoblib()[name]!.runs).map(slug).sort());
  });
  test("Python's zipfile reads past an understated entry count, and takes the last of two config.json", async (t) => {
    const fx = await python.get(t);
    if (!fx) return;
    const dir = await mkdtemp(join(tmpdir(), 'cairn-zip-'));
    await writeFile(join(dir, 'model.keras'), hiddenConfigKeras());
    const { stdout } = await fx.py.run('import json, sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nprint(len(z.namelist()), json.loads(z.read("config.json"))["config"]["layers"][2]["class_name"])', [join(dir, 'model.keras')]);
    assert.equal(stdout.trim(), '4 Lambda');
  });
  test('.npy of structured object arrays: unsafe; an .npz member without a .npy suffix is still an array to np.load', async (t) => {
    const fx = await python.get(t);
    if (!fx) return;
    for (const name of fx.dtypes) {
      const f: FileFormat = (await detectNumpy(src(`${name}.npy`, fx.file(`${name}.npy`))))!;
      assert.equal(f.safety.verdict, 'unsafe', name);
      assert.equal(f.details.dtype, 'structured', name);
    }
    assert.ok(fx.ran('npz'), "np.load(…)['evil'] ran the command");
    const z = (await detectNumpy(src('hidden.npz', fx.file('hidden.npz'))))!;
    assert.equal(z.safety.verdict, 'unsafe');
    assert.ok(globalsOf(z).includes('os.system'), JSON.stringify(z.safety));
    assert.deepEqual((z.details.arrays as Array<{ name: string }>).map((a) => a.name).sort(), ['evil', 'w']);
  });
});

describe('NumPy', () => {
  test('.npy: dtype, shape, count (versions 1 and 2, fortran order)', async () => {
    const f = (await detectNumpy(src('a.npy', makeNpy('<f4', [2, 3], float32Bytes(6)))))!;
    assert.equal(f.format, 'numpy');
    assert.equal(f.framework, 'numpy');
    assert.equal(f.parameters, 6);
    assert.deepEqual(f.dtypes, { float32: 6 });
    assert.deepEqual(f.details, { version: '1.0', dtype: 'float32', shape: [2, 3], fortran_order: false });
    assert.equal(f.safety.verdict, 'safe');
    const g = (await detectNumpy(src('b', makeNpy('|u1', [4], new Uint8Array(4), { version: 2, fortran: true }))))!;
    assert.deepEqual(g.details, { version: '2.0', dtype: 'uint8', shape: [4], fortran_order: true });
    const s = (await detectNumpy(src('s.npy', makeNpy('', [], new Uint8Array(8), { rawHeader: "{'descr': '<f8', 'fortran_order': False, 'shape': (), }" }))))!;
    assert.equal(s.parameters, 1);
    const st = (await detectNumpy(src('st.npy', makeNpy('', [2], new Uint8Array(24), { rawHeader: "{'descr': [('a', '<f4'), ('b', '<i8', (2,))], 'fortran_order': False, 'shape': (1,), }" }))))!;
    assert.equal(st.details.dtype, 'structured');
  });
  test('.npy object array: unsafe, its pickle walked', async () => {
    const payload = MALICIOUS['GLOBAL os.system (protocol 0)']!.bytes;
    const f = (await detectNumpy(src('o.npy', makeNpy('|O', [1], payload))))!;
    assert.equal(f.safety.verdict, 'unsafe');
    assert.deepEqual(globalsOf(f), ['o.npy (dtype object)', 'os.system']);
  });
  test('.npz: per-member arrays, stored and deflated, object member unsafe', async () => {
    const npz = makeZip([
      { name: 'weights.npy', data: makeNpy('<f4', [3, 4], float32Bytes(12)) },
      { name: 'bias.npy', data: makeNpy('<f8', [4], new Uint8Array(32)), method: 8 },
    ]);
    const f = (await detectNumpy(src('m.npz', npz)))!;
    assert.equal(f.format, 'numpy');
    assert.equal(f.parameters, 16);
    assert.deepEqual(f.dtypes, { float32: 12, float64: 4 });
    assert.deepEqual(f.details.arrays, [{ name: 'weights', dtype: 'float32', shape: [3, 4], count: 12 }, { name: 'bias', dtype: 'float64', shape: [4], count: 4 }]);
    assert.equal(f.safety.verdict, 'safe');
    assert.ok(await detectNumpy(src('noext', npz)), 'found by content');
    const withObj = makeZip([{ name: 'w.npy', data: makeNpy('<f4', [1], float32Bytes(1)) }, { name: 'o.npy', data: makeNpy('|O', [1], MALICIOUS['INST opcode']!.bytes) }]);
    const g = (await detectNumpy(src('m.npz', withObj)))!;
    assert.equal(g.safety.verdict, 'unsafe');
    assert.ok(globalsOf(g).includes('os.system'));
  });
  test('.npz: every member with the .npy magic is an array, whatever its name; other members are data', async () => {
    const npz = makeZip([
      { name: 'w.npy', data: makeNpy('<f4', [2], float32Bytes(2)) },
      { name: 'notes', data: enc.encode('just bytes') },
      { name: 'hidden', data: makeNpy('|O', [1], MALICIOUS['GLOBAL os.system (protocol 0)']!.bytes) },
    ]);
    const f = (await detectNumpy(src('m.npz', npz)))!;
    assert.equal(f.safety.verdict, 'unsafe');
    assert.ok(globalsOf(f).includes('os.system'));
    assert.deepEqual((f.details.arrays as Array<{ name: string }>).map((a) => a.name), ['w', 'hidden']);
    const plain = (await detectNumpy(src('m.npz', makeZip([{ name: 'w.npy', data: makeNpy('<f4', [2], float32Bytes(2)) }, { name: 'notes', data: enc.encode('just bytes'), method: 8 }]))))!;
    assert.equal(plain.safety.verdict, 'safe');
    assert.equal(plain.details.array_count, 1);
  });
  test('.npy descr forms numpy reads: a (base, shape) subarray tuple', async () => {
    const f = (await detectNumpy(src('t.npy', makeNpy('', [1], new Uint8Array(8), { rawHeader: "{'descr': ('|O', (1,)), 'fortran_order': False, 'shape': (1,), }" }))))!;
    assert.equal(f.safety.verdict, 'unsafe');
    const g = (await detectNumpy(src('t.npy', makeNpy('', [1], new Uint8Array(12), { rawHeader: "{'descr': ('<f4', (3,)), 'fortran_order': False, 'shape': (1,), }" }))))!;
    assert.equal(g.safety.verdict, 'safe');
  });
  test('broken arrays', async () => {
    const good = makeNpy('<f4', [2, 3], float32Bytes(6));
    await invalid(detectNumpy(src('a.npy', good.subarray(0, good.length - 1))), 'numpy', /truncated/);
    await invalid(detectNumpy(src('a.npy', good.subarray(0, 20))), 'numpy', /truncated/);
    await invalid(detectNumpy(src('a.npy', makeNpy('', [1], new Uint8Array(4), { rawHeader: "{'descr': __import__('os'), 'shape': (1,)}" }))), 'numpy', /bad .npy header/);
    await invalid(detectNumpy(src('a.npy', enc.encode('not numpy'))), 'numpy', /magic/);
    await invalid(detectNumpy(src('a.npz', enc.encode('not a zip'))), 'numpy');
    await invalid(detectNumpy(src('a.npz', makeZip([{ name: 'x.npy', data: good.subarray(0, 70) }]))), 'numpy', /truncated/);
    assert.equal(await detectNumpy(src('x.zip', makeZip([{ name: 'x.txt', data: good }]))), undefined);
  });
});

// ---------------------------------------------------------------------------

/** metadata, a harmless config.json, weights, then a config.json with a Lambda, with an end record counting 3 entries */
function hiddenConfigKeras(): Uint8Array {
  return makeZip(
    [
      { name: 'metadata.json', data: enc.encode(JSON.stringify({ keras_version: '3.3.3' })) },
      { name: 'config.json', data: enc.encode(JSON.stringify(kerasConfig())) },
      { name: 'model.weights.h5', data: h5File({ size: 1024 }) },
      { name: 'config.json', data: enc.encode(JSON.stringify(kerasConfig({ lambda: true }))) },
    ],
    { eocdEntries: 3 },
  );
}

describe('Keras and HDF5', () => {
  test('.keras: version, layers, safe', async () => {
    const f = (await detectKeras(src('model.keras', kerasFile())))!;
    assert.equal(f.format, 'keras');
    assert.equal(f.framework, 'keras');
    assert.equal(f.details.keras_version, '3.3.3');
    assert.equal(f.details.model_class, 'Sequential');
    assert.deepEqual(f.details.layers, ['InputLayer', 'Dense', 'Dense']);
    assert.equal(f.safety.verdict, 'safe');
    assert.ok(await detectKeras(src('noext', kerasFile())), 'found by content');
  });
  test('.keras with a Lambda layer or a custom class: unsafe', async () => {
    const l = (await detectKeras(src('model.keras', kerasFile({ lambda: true }))))!;
    assert.equal(l.safety.verdict, 'unsafe');
    assert.deepEqual(globalsOf(l), ['keras.layers.Lambda', 'keras.__lambda__']);
    const c = (await detectKeras(src('model.keras', kerasFile({ custom: true }))))!;
    assert.deepEqual(c.safety.findings, [{ global: 'my_project.layers.Attention', reason: 'custom class runs code on load' }]);
    const t = (await detectKeras(src('model.keras', kerasFile({ tfop: true }))))!;
    assert.equal(t.safety.verdict, 'safe');
    assert.match(String(t.details.note), /TFOpLambda/);
  });
  test('a Lambda behind a config with more than 2 million values, or nested 250 sub-models deep: unsafe, not safe', async () => {
    const lambda = (kerasConfig({ lambda: true }) as { config: { layers: unknown[] } }).config.layers[2];
    // the junk is the last key: walked first by a walk that pops a stack
    const base = kerasConfig() as { config: { layers: unknown[] } };
    base.config.layers.push(lambda);
    const junk = { ...base, junk: new Array(2_100_000).fill({}) };
    const wide = (await detectKeras(src('model.keras', kerasFile({ config: enc.encode(JSON.stringify(junk)) }))))!;
    assert.equal(wide.safety.verdict, 'unsafe');
    assert.deepEqual(globalsOf(wide), ['keras.layers.Lambda', 'keras.__lambda__']);
    let layer: unknown = lambda;
    for (let i = 0; i < 250; i++) layer = { module: 'keras.src.models.functional', class_name: 'Functional', config: { name: `m${i}`, layers: [layer] }, registered_name: null };
    const deep = { module: 'keras', class_name: 'Functional', config: { name: 'outer', layers: [layer] }, registered_name: null };
    const d = (await detectKeras(src('model.keras', kerasFile({ config: enc.encode(JSON.stringify(deep)) }))))!;
    assert.equal(d.safety.verdict, 'unsafe');
    assert.ok(globalsOf(d).includes('keras.layers.Lambda'));
    assert.equal(d.details.layer_count, 251);
  });
  test('a config walk cut short by its budget reports it (so the file is unknown, never safe)', () => {
    const cfg = { junk: new Array(500).fill({}), ...(kerasConfig({ lambda: true }) as object) };
    const cut = walkConfig(cfg, 100);
    assert.deepEqual(cut.findings, []);
    assert.match(cut.incomplete.join(), /more than 100 objects and arrays/);
    const whole = walkConfig(cfg);
    assert.deepEqual(whole.incomplete, []);
    assert.equal(whole.findings.length, 2);
  });
  test('a .keras whose end record counts one entry less, hiding a second config.json (the one zipfile loads): unsafe', async () => {
    const f = (await detectKeras(src('model.keras', hiddenConfigKeras())))!;
    assert.equal(f.safety.verdict, 'unsafe');
    assert.ok(globalsOf(f).includes('keras.layers.Lambda'));
  });
  test('a .keras with more zip entries than are read: unknown (zipfile loads the last config.json of that name)', async () => {
    const members = [
      { name: 'metadata.json', data: enc.encode(JSON.stringify({ keras_version: '3.3.3' })) },
      { name: 'config.json', data: enc.encode(JSON.stringify(kerasConfig())) },
      ...Array.from({ length: 100_000 }, (_, i) => ({ name: `assets/${i}`, data: new Uint8Array(0) })),
      { name: 'config.json', data: enc.encode(JSON.stringify(kerasConfig({ lambda: true }))) },
    ];
    const f = (await detectKeras(src('model.keras', makeZip(members))))!;
    assert.equal(f.safety.verdict, 'unknown');
    assert.match(f.safety.incomplete!.join(), /zip entries/);
  });
  test('broken .keras', async () => {
    await invalid(detectKeras(src('model.keras', kerasFile({ config: enc.encode('{not json') }))), 'keras', /JSON/);
    const k = kerasFile();
    await invalid(detectKeras(src('model.keras', k.subarray(0, k.length - 5))), 'keras');
    await invalid(detectKeras(src('model.keras', makeZip([{ name: 'x', data: enc.encode('x') }]))), 'keras');
    assert.equal(await detectKeras(src('model.pt', pytorchZip())), undefined);
  });
  test('HDF5 superblock far into a file: searched when the name says HDF5, not in any large upload (each probe is a chunk fetched from storage)', async () => {
    const far = h5File({ offset: 2 * 1024 * 1024 });
    const found = (await detectH5(src('model.h5', far)))!;
    assert.equal(found.details.superblock_offset, 2 * 1024 * 1024);
    const reads: number[] = [];
    const counted = bufferSource('weights.bin', far);
    const spy = { ...counted, read: (offset: number, length: number) => (reads.push(offset), counted.read(offset, length)) };
    assert.equal(await detectH5(spy), undefined);
    assert.ok(reads.length > 0 && reads.every((o) => o < 1024 * 1024), `reads stay in the first MiB: ${reads.join(',')}`);
  });

  test('HDF5 signature at 0 or 512; Lambda in model_config is unsafe', async () => {
    const f = (await detectH5(src('model.h5', h5File({ text: 'keras_version\u0000\u00002.15.0 model_config {"class_name": "Sequential"}' }))))!;
    assert.equal(f.format, 'h5');
    assert.equal(f.framework, 'keras');
    assert.equal(f.safety.verdict, 'unknown');
    assert.equal(f.details.keras_version, '2.15.0');
    const at512 = (await detectH5(src('data.hdf5', h5File({ offset: 512 }))))!;
    assert.equal(at512.details.superblock_offset, 512);
    assert.equal(at512.framework, undefined);
    const lambda = (await detectH5(src('model.h5', h5File({ text: '{"class_name": "Lambda", "config": {}}' }))))!;
    assert.equal(lambda.safety.verdict, 'unsafe');
    assert.deepEqual(globalsOf(lambda), ['keras.layers.Lambda']);
    await invalid(detectH5(src('model.h5', enc.encode('not hdf5 at all'))), 'h5', /signature/);
    // a zip whose stored .h5 member lands at offset 512 is not an HDF5 file
    const pad = 512 - 30 - 'pad.bin'.length - 30 - 'model.weights.h5'.length;
    const zipWithH5 = makeZip([{ name: 'pad.bin', data: new Uint8Array(pad) }, { name: 'model.weights.h5', data: h5File({ size: 1024 }) }]);
    assert.equal(zipWithH5[512], 0x89);
    assert.equal(await detectH5(src('model.keras', zipWithH5)), undefined);
    assert.equal(await detectH5(src('notes.txt', enc.encode('not hdf5 at all'))), undefined);
  });
});

// ---------------------------------------------------------------------------

describe('TorchServe .mar', () => {
  test('manifest fields, handler makes it unsafe, the model inside is checked', async () => {
    const f = (await detectTorchserve(src('resnet.mar', marFile())))!;
    assert.equal(f.format, 'torchserve');
    assert.equal(f.framework, 'torchserve');
    assert.equal(f.details.runtime, 'python');
    assert.equal(f.details.model_name, 'resnet');
    assert.equal(f.details.model_version, '1.0');
    assert.equal(f.details.handler, 'image_classifier');
    assert.equal(f.details.serialized_file, 'model.pt');
    assert.equal(f.safety.verdict, 'unsafe');
    assert.deepEqual(f.safety.findings, [{ global: 'handler:image_classifier', reason: 'a .mar ships a Python handler that runs code when the model is served' }]);
    assert.equal(f.parameters, 24);
    assert.deepEqual(f.details.checked, [{ member: 'model.pt', format: 'pytorch', verdict: 'safe' }]);
    const d = (await detectTorchserve(src('resnet.mar', marFile({ deflateModel: true }))))!;
    assert.equal(d.parameters, 24);
  });
  test('malicious pickles inside are reported', async () => {
    const f = (await detectTorchserve(src('x.mar', marFile({ extra: [{ name: 'extra/state.pkl', data: MALICIOUS['nt.system normalized to os.system']!.bytes, method: 8 }] }))))!;
    assert.ok(globalsOf(f).includes('os.system'));
  });
  test('broken .mar', async () => {
    const m = marFile();
    await invalid(detectTorchserve(src('x.mar', m.subarray(0, m.length - 3))), 'torchserve');
    await invalid(detectTorchserve(src('x.mar', makeZip([{ name: 'a', data: enc.encode('x') }]))), 'torchserve', /MANIFEST/);
    await invalid(detectTorchserve(src('x.mar', makeZip([{ name: 'MAR-INF/MANIFEST.json', data: enc.encode('[1') }]))), 'torchserve', /JSON/);
    assert.equal(await detectTorchserve(src('model.pt', pytorchZip())), undefined);
  });
});

// ---------------------------------------------------------------------------
// Fuzz (support/fuzz-pickle-zip.ts): mutated valid fixtures and random bytes;
// every call resolves or rejects with InvalidModelFileError, quickly. Each
// target runs in a child process whose memory is measured from here.

describe('fuzz', () => {
  const PER_TARGET = 10_000;
  for (const name of FUZZ_TARGETS) {
    test(`${name}: ${PER_TARGET} mutated inputs resolve or reject with InvalidModelFileError; memory stays bounded (measured in a child process)`, { timeout: 300_000 }, async (ctx) => {
      const run = await runInChild<FuzzCounts>(new URL('./support/fuzz-pickle-zip.ts', import.meta.url), 'fuzzPickleZip', [name, PER_TARGET]);
      const c = run.result;
      const grewMiB = assertPeakGrowthBelow(run, 200, `fuzzing ${name}`);
      ctx.diagnostic(`${c.resolved} resolved (${c.found} found, ${c.cutShort} cut short), ${c.rejected} rejected, slowest ${c.slowestMs.toFixed(1)} ms, peak rss +${grewMiB.toFixed(0)} MiB`);
    });
  }
});
