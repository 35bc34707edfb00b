// safetensors transforms against Python references: cast equals ml_dtypes /
// numpy bit for bit (and PyTorch on every non-NaN value), int8 equals a numpy
// per-channel quantiser, prune zeroes exactly the smallest magnitudes; outputs
// are deterministic, metadata is kept, the round-trip comparison agrees with
// numpy, and a 256 MiB tensor streams through in bounded memory.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deriveSafetensors, type SafetensorsParams, type SafetensorsReport } from '../src/derive/safetensors-transforms.ts';
import { compareSafetensors } from '../src/derive/safetensors-measure.ts';
import { readSafetensorsLayout } from '../src/derive/safetensors-file.ts';
import { CairnError } from '../src/errors.ts';
import { InvalidModelFileError, type FileSource } from '../src/formats/types.ts';
import { bufferSource } from '../src/formats/sources.ts';
import { diskSource, writeDerived } from './support/derive-files.ts';
import { assertPeakGrowsSlowly, runInChild } from './support/process-memory.ts';
import { DERIVE_PYTHON_PACKAGES, pythonVenv, type PythonEnv } from './support/python.ts';

let python: PythonEnv;
/** Runs a Python script (source) with arguments; its stdout. */
const py = async (script: string, args: string[]) => (await python.run(script, args)).stdout;
let dir = '';
let input = '';

const MAKE_INPUT = `
import sys, numpy as np
from safetensors.numpy import save_file
rng = np.random.default_rng(7)
bits = np.concatenate([
    rng.integers(0, 2**32, 1 << 16, dtype=np.uint64).astype(np.uint32),  # every kind of bit pattern: NaNs, subnormals, huge
    np.array([0x7f800001, 0xff800001, 0x7fc00000, 0x7fffffff, 0x7f801234, 0x7f7fffff, 0xff7fffff, 0x7f7f8000,
              0x477ff000, 0x477fefff, 0x477fe000, 0x38800000, 0x387fffff, 0x33000000, 0x33000001, 0x00000001,
              0x807fffff, 0x3f808000, 0x3f818000, 0x3f808001, 0x3f801000, 0x3f803000, 0, 0x80000000,
              0x7f800000, 0xff800000], dtype=np.uint32),
])
bits = np.concatenate([bits, np.zeros((-len(bits)) % 64, np.uint32)])
tensors = {
    'conv.weight': (rng.standard_normal((16, 8, 3, 3)) * 0.05).astype(np.float32),
    'fc.weight': rng.standard_normal((32, 64)).astype(np.float32),
    'fc.bias': rng.standard_normal(32).astype(np.float32),
    'special': bits.view(np.float32).reshape(-1, 64),
    'ties': np.repeat(np.array([[0.5, -0.5, 0.25, 1.0]], np.float32), 8, axis=0),
    'zero_rows': np.concatenate([np.zeros((2, 8), np.float32), rng.standard_normal((2, 8)).astype(np.float32)]),
    'ids': np.arange(10, dtype=np.int64),
    'half': rng.standard_normal((4, 4)).astype(np.float16),
}
save_file(tensors, sys.argv[1], metadata={'format': 'pt', 'note': 'derive test'})
`;

const CHECK_CAST = `
import sys, json, numpy as np, torch, ml_dtypes
from safetensors import safe_open
src, out, to = sys.argv[1:4]
a = safe_open(src, 'pt'); b = safe_open(out, 'pt')
res = {'metadata_equal': a.metadata() == b.metadata(), 'tensors': {}}
for name in a.keys():
    x = a.get_tensor(name); y = b.get_tensor(name)
    r = {'dtype': str(y.dtype)}
    if x.dtype == torch.float32:
        got = y.view(torch.int16).numpy().view(np.uint16)
        xn = x.numpy()
        if to == 'BF16':
            ref = xn.astype(ml_dtypes.bfloat16).view(np.uint16)
            ref_torch = x.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
            inf = 0x7f80
        else:
            with np.errstate(all='ignore'):
                ref = xn.astype(np.float16).view(np.uint16)
            ref_torch = x.to(torch.float16).view(torch.int16).numpy().view(np.uint16)
            inf = 0x7c00
        nan = np.isnan(xn)
        r['mismatch_reference'] = int((got != ref).sum())
        r['mismatch_torch_non_nan'] = int((got[~nan] != ref_torch[~nan]).sum())
        r['overflow'] = int((np.isfinite(xn) & ((got & 0x7fff) == inf)).sum())
        r['elements'] = int(xn.size)
    else:
        r['identical'] = bool(x.dtype == y.dtype and torch.equal(x.view(torch.uint8) if x.dtype != torch.bool else x, y.view(torch.uint8) if y.dtype != torch.bool else y))
    res['tensors'][name] = r
print(json.dumps(res))
`;

const CHECK_INT8 = `
import sys, json, numpy as np
from safetensors import safe_open
src, out = sys.argv[1:3]
a = safe_open(src, 'np'); b = safe_open(out, 'np')
res = {'metadata': b.metadata(), 'tensors': {}, 'max_error': {}}
for name in a.keys():
    x = a.get_tensor(name)
    y = b.get_tensor(name)
    if y.dtype == np.int8:
        s = b.get_tensor(name + '.scale')
        flat = x.reshape(x.shape[0], -1).astype(np.float64)
        m = np.abs(flat).max(axis=1)
        s_ref = np.where(m > 0, (m / 127).astype(np.float32), np.float32(1)).astype(np.float32)
        q_ref = np.clip(np.rint(flat / s_ref.astype(np.float64)[:, None]), -127, 127).astype(np.int8).reshape(x.shape)
        deq = y.reshape(y.shape[0], -1).astype(np.float64) * s.astype(np.float64)[:, None]
        res['tensors'][name] = {'scale_equal': bool(np.array_equal(s, s_ref)), 'q_equal': bool(np.array_equal(y, q_ref)),
                                'scale_shape': list(s.shape)}
        res['max_error'][name] = float(np.abs(deq - flat).max())
    else:
        res['tensors'][name] = {'identical': bool(x.dtype == y.dtype and x.tobytes() == y.tobytes())}
print(json.dumps(res))
`;

const CHECK_PRUNE = `
import sys, json, math, numpy as np
from safetensors import safe_open
src, out, sparsity = sys.argv[1], sys.argv[2], float(sys.argv[3])
a = safe_open(src, 'np'); b = safe_open(out, 'np')
res = {}
for name in a.keys():
    x = a.get_tensor(name); y = b.get_tensor(name)
    if x.dtype.kind != 'f' or x.ndim < 2:
        res[name] = {'identical': x.tobytes() == y.tobytes()}
        continue
    xf = x.astype(np.float64).ravel(); yf = y.astype(np.float64).ravel()
    changed = (x.view(np.uint8).reshape(x.size, -1) != y.view(np.uint8).reshape(y.size, -1)).any(axis=1)
    pruned = yf == 0
    kept = ~pruned
    ax = np.abs(xf)
    res[name] = {
        'zeros': float(pruned.mean()),
        'changed_only_to_zero': bool((yf[changed] == 0).all()),
        'kept_unchanged': bool(np.array_equal(x.ravel()[kept].view(np.uint8), y.ravel()[kept].view(np.uint8))),
        'order': bool(np.nanmax(ax[pruned], initial=0) <= np.nanmin(np.where(np.isnan(ax[kept]), np.inf, ax[kept]), initial=np.inf)),
        'zeroed_count': int(changed.sum() + ((xf == 0)).sum()),
        'target_count': math.ceil(sparsity * x.size),
        'max_pruned': float(np.nanmax(ax[pruned], initial=0)),
    }
print(json.dumps(res))
`;

async function derive(params: SafetensorsParams, name: string, source?: FileSource): Promise<{ file: string; sha: string; report: SafetensorsReport }> {
  const src = source ?? diskSource(input);
  const d = await deriveSafetensors(src, params);
  assert.throws(() => d.report(), /complete once the output/);
  const file = path.join(dir, name);
  const sha = await writeDerived(d, file);
  assert.equal(fs.statSync(file).size, d.size);
  return { file, sha, report: d.report() };
}

describe('derive: safetensors', () => {
  before(async () => {
    python = await pythonVenv(DERIVE_PYTHON_PACKAGES);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-derive-st-'));
    input = path.join(dir, 'input.safetensors');
    await py(MAKE_INPUT, [input]);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const to of ['BF16', 'F16'] as const) {
    it(`cast F32 → ${to} equals the Python reference bit for bit; other tensors and metadata are kept`, async () => {
      const { file, sha, report } = await derive({ transform: 'cast', to }, `cast-${to}.safetensors`);
      const res = JSON.parse(await py(CHECK_CAST, [input, file, to])) as {
        metadata_equal: boolean;
        tensors: Record<string, { mismatch_reference?: number; mismatch_torch_non_nan?: number; overflow?: number; identical?: boolean; dtype: string }>;
      };
      assert.ok(res.metadata_equal);
      let overflow = 0;
      for (const [name, r] of Object.entries(res.tensors)) {
        if (r.identical !== undefined) {
          assert.ok(r.identical, `${name} kept`);
          continue;
        }
        assert.equal(r.mismatch_reference, 0, `${name}: ${r.mismatch_reference} elements differ from the reference`);
        assert.equal(r.mismatch_torch_non_nan, 0, `${name}: differs from PyTorch`);
        assert.equal(r.dtype, to === 'BF16' ? 'torch.bfloat16' : 'torch.float16');
        const change = report.changed.find((c) => c.name === name)!;
        assert.equal(change.overflowToInf, r.overflow, `${name}: overflow count`);
        overflow += r.overflow!;
      }
      assert.ok(overflow > 0, 'the special values include overflows');
      assert.equal(report.overflowToInf, overflow);
      assert.deepEqual(report.kept.map((k) => k.name).sort(), ['half', 'ids']);
      // deterministic: the same input and parameters give the same bytes
      const again = await derive({ transform: 'cast', to }, `cast-${to}-again.safetensors`);
      assert.equal(again.sha, sha);
      // the round trip, measured from the files
      const rt = await compareSafetensors(diskSource(input), diskSource(file));
      const fc = rt.tensors.find((t) => t.name === 'fc.weight')!;
      assert.ok(fc.maxAbsError! > 0 && fc.maxAbsError! < (to === 'BF16' ? 0.04 : 0.002), `fc.weight error ${fc.maxAbsError}`);
      assert.equal(rt.tensors.find((t) => t.name === 'ids')!.identical, true);
    });
  }

  it('int8: per-channel symmetric scales in <name>.scale, values equal a numpy quantiser, metadata describes the scheme', async () => {
    const { file, sha, report } = await derive({ transform: 'int8' }, 'int8.safetensors');
    const res = JSON.parse(await py(CHECK_INT8, [input, file])) as {
      metadata: Record<string, string>;
      tensors: Record<string, { scale_equal?: boolean; q_equal?: boolean; identical?: boolean; scale_shape?: number[] }>;
      max_error: Record<string, number>;
    };
    assert.equal(res.metadata.format, 'pt');
    assert.equal(res.metadata.note, 'derive test');
    assert.equal(res.metadata['cairn.quantization'], 'int8-symmetric-per-channel');
    assert.equal(res.metadata['cairn.quantization.scale_suffix'], '.scale');
    const quantised = Object.entries(res.tensors).filter(([, r]) => r.q_equal !== undefined).map(([n]) => n).sort();
    assert.deepEqual(quantised, ['conv.weight', 'fc.weight', 'ties', 'zero_rows']);
    for (const name of quantised) {
      assert.ok(res.tensors[name]!.scale_equal, `${name} scales`);
      assert.ok(res.tensors[name]!.q_equal, `${name} values`);
    }
    assert.deepEqual(res.tensors['conv.weight']!.scale_shape, [16]);
    for (const name of ['fc.bias', 'ids', 'half', 'special']) assert.ok(res.tensors[name]!.identical, `${name} kept`);
    assert.match(report.kept.find((k) => k.name === 'special')!.reason, /NaN or infinite/);
    const rt = await compareSafetensors(diskSource(input), diskSource(file));
    for (const name of quantised) {
      const measured = rt.tensors.find((t) => t.name === name)!.maxAbsError!;
      assert.ok(Math.abs(measured - res.max_error[name]!) <= 1e-9 * Math.max(1, res.max_error[name]!), `${name}: ${measured} vs ${res.max_error[name]}`);
    }
    assert.equal((await derive({ transform: 'int8' }, 'int8-again.safetensors')).sha, sha);
  });

  it('prune 50%: every ≥2-D float tensor is ≥ 50% zeros, exactly the smallest magnitudes, the rest unchanged', async () => {
    const { file, sha, report } = await derive({ transform: 'prune', sparsity: 0.5 }, 'prune.safetensors');
    const res = JSON.parse(await py(CHECK_PRUNE, [input, file, '0.5'])) as Record<string, Record<string, number | boolean>>;
    const pruned = report.changed.map((c) => c.name).sort();
    assert.deepEqual(pruned, ['conv.weight', 'fc.weight', 'half', 'special', 'ties', 'zero_rows']);
    for (const name of pruned) {
      const r = res[name]!;
      assert.ok((r.zeros as number) >= 0.5, `${name}: ${r.zeros} zeros`);
      assert.ok(r.changed_only_to_zero && r.kept_unchanged && r.order, `${name}: ${JSON.stringify(r)}`);
      const change = report.changed.find((c) => c.name === name)!;
      assert.equal(change.sparsity, r.zeros, `${name}: reported sparsity is the measured one`);
    }
    // ties: eight rows of [0.5, −0.5, 0.25, 1.0]: the eight 0.25s, then eight of the sixteen ±0.5s
    assert.equal(res.ties!.zeros, 0.5);
    for (const name of ['fc.bias', 'ids']) assert.ok(res[name]!.identical);
    const rt = await compareSafetensors(diskSource(input), diskSource(file));
    assert.equal(rt.tensors.find((t) => t.name === 'fc.weight')!.maxAbsError, res['fc.weight']!.max_pruned);
    assert.equal((await derive({ transform: 'prune', sparsity: 0.5 }, 'prune-again.safetensors')).sha, sha);
  });

  it('prune to 0 changes nothing; to 1 zeroes everything', async () => {
    const none = await derive({ transform: 'prune', sparsity: 0 }, 'prune-0.safetensors');
    const rt = await compareSafetensors(diskSource(input), diskSource(none.file));
    assert.equal(rt.maxAbsError, 0);
    const names = (await readSafetensorsLayout(diskSource(none.file))).tensors.map((t) => t.name);
    assert.deepEqual(names, (await readSafetensorsLayout(diskSource(input))).tensors.map((t) => t.name));
    const all = await derive({ transform: 'prune', sparsity: 1 }, 'prune-1.safetensors');
    assert.ok(all.report.changed.every((c) => c.sparsity === 1));
  });

  it('rejects bad parameters and broken files with clear errors', async () => {
    const src = diskSource(input);
    await assert.rejects(deriveSafetensors(src, { transform: 'cast', to: 'F8' } as never), (e: unknown) => e instanceof CairnError && e.code === 'INVALID_ARGUMENT');
    await assert.rejects(deriveSafetensors(src, { transform: 'prune', sparsity: 1.5 }), /sparsity/);
    await assert.rejects(deriveSafetensors(src, { transform: 'squash' } as never), /unknown safetensors transform/);
    const broken = new Uint8Array(fs.readFileSync(input).subarray(0, 200));
    await assert.rejects(deriveSafetensors(bufferSource('x.safetensors', broken), { transform: 'int8' }), InvalidModelFileError);
  });

  it('streams: casting a 256 MiB tensor holds a few windows, not the tensor (measured in a child process, against a 64 MiB one)', async (t) => {
    const runs: Array<{ bytes: number; peakMiB: number }> = [];
    for (const elements of [16 << 20, 64 << 20]) {
      const run = await runInChild<{ inputSize: number; size: number; bytes: number; biggestRead: number }>(new URL('./support/derive-files.ts', import.meta.url), 'castPatternTensor', [elements]);
      assert.equal(run.result.bytes, run.result.size);
      assert.ok(run.result.size < run.result.inputSize / 2 + 200);
      assert.ok(run.result.biggestRead <= 16 << 20, `largest read ${run.result.biggestRead}`);
      runs.push({ bytes: run.result.inputSize, peakMiB: run.peakMiB });
    }
    t.diagnostic(assertPeakGrowsSlowly('cast of one big tensor to BF16', runs[0]!, runs[1]!));
  });
});
