// The recipe of a derived version stays within its budget however many files
// and tensors the derivation had: long lists are cut, and say how much was
// left out; small ones are whole.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SafetensorsReport } from '../src/derive/safetensors-transforms.ts';
import type { SafetensorsRoundTrip } from '../src/derive/safetensors-measure.ts';
import { deriveRecipe, RECIPE_BUDGET, type RecipeFile } from '../src/derive/recipe.ts';
import { MAX_JSON_BYTES } from '../src/json-limits.ts';

function castFile(path: string, tensors: number): RecipeFile {
  const names = Array.from({ length: tensors }, (_, i) => `model.layers.${i}.self_attn.q_proj.weight`);
  const report: SafetensorsReport = {
    transform: 'cast',
    params: { transform: 'cast', to: 'BF16' },
    tensors,
    changed: names.map((name) => ({ name, from: 'F32', to: 'BF16', elements: 4096 * 4096, overflowToInf: 0, underflowToZero: 0 })),
    kept: [],
    overflowToInf: 0,
    underflowToZero: 0,
    size: { before: tensors * 64 << 20, after: tensors * 32 << 20 },
  };
  const measured: SafetensorsRoundTrip = {
    tensors: names.map((name, i) => ({ name, from: 'F32', to: 'BF16', elements: 4096 * 4096, maxAbsError: 0.001 * (i + 1), meanAbsError: 0.0001, sparsity: 0 })),
    maxAbsError: 0.001 * tensors,
  };
  return { path, format: 'safetensors', size: { before: 100, after: 50 }, stored: { before: 90, after: 40 }, report, measured };
}

const input = (files: RecipeFile[]) => ({
  op: 'cast',
  params: { to: 'BF16' },
  files,
  samples: null,
  key: `sha256:${'0'.repeat(64)}`,
  tool: { derive_version: 1, onnxruntime: 'onnxruntime-node 1.30.0' },
  size: { before: 100, after: 50 },
  stored: { before: 90, after: 40, new: 40 },
});

describe('derive recipe size', () => {
  test('a small derivation keeps every tensor', () => {
    const r = deriveRecipe(input([castFile('model.safetensors', 30)])) as any;
    assert.equal(r.results.files[0].measured.tensors.length, 30);
    assert.equal(r.results.files[0].measured.tensors_omitted, undefined);
    assert.equal(r.results.files[0].measured.max_abs_error, 0.03);
  });

  test('many tensors in many shards: lists are cut to fit, with what was left out counted', () => {
    const files = Array.from({ length: 30 }, (_, i) => castFile(`model-${String(i + 1).padStart(5, '0')}-of-00030.safetensors`, 400));
    const r = deriveRecipe(input(files)) as any;
    const size = Buffer.byteLength(JSON.stringify(r));
    assert.ok(size <= RECIPE_BUDGET && RECIPE_BUDGET < MAX_JSON_BYTES, `${size} bytes`);
    assert.equal(r.results.files.length, 30, 'every file keeps its numbers');
    for (const f of r.results.files) {
      assert.equal(f.measured.tensors.length + f.measured.tensors_omitted, 400);
      assert.equal(f.measured.max_abs_error, 0.4, 'the worst error stays, whatever the list keeps');
    }
  });

  test('thousands of files: the results of as many as fit, the rest counted', () => {
    const files = Array.from({ length: 5000 }, (_, i) => castFile(`shards/part-${i}.safetensors`, 2));
    const r = deriveRecipe(input(files)) as any;
    assert.ok(Buffer.byteLength(JSON.stringify(r)) <= RECIPE_BUDGET);
    assert.ok(r.results.files.length > 0 && r.results.files.length < 5000);
    assert.equal(r.results.files.length + r.results.files_omitted, 5000);
    assert.equal(r.files.length + r.files_omitted, 5000);
  });
});
