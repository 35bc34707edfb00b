// The ONNX transforms behind one call: read the model's skeleton (large
// tensors stay in the source), rewrite it, and stream the result.
import { CairnError } from '../errors.ts';
import type { FileSource } from '../formats/types.ts';
import { convertToFloat16, type Fp16Params, type Fp16Report } from './onnx-fp16.ts';
import { quantizeWeightsInt8, type Int8OnnxParams, type Int8OnnxReport } from './onnx-int8.ts';
import { OnnxModel } from './onnx-model.ts';
import { pruneWeights, type PruneOnnxParams, type PruneOnnxReport } from './onnx-prune.ts';
import { derived, type Derived } from './stream.ts';

export type OnnxParams = Fp16Params | Int8OnnxParams | PruneOnnxParams;

export type OnnxReport = (Fp16Report | Int8OnnxReport | PruneOnnxReport) & { size: { before: number; after: number } };

/** Derives an ONNX model from `file`. Statistics passes run before it returns; the output streams. */
export async function deriveOnnx(file: FileSource, params: OnnxParams): Promise<Derived<OnnxReport>> {
  const transform = (params as { transform?: unknown }).transform;
  if (transform !== 'fp16' && transform !== 'int8' && transform !== 'prune') {
    throw new CairnError('INVALID_ARGUMENT', `unknown ONNX transform ${JSON.stringify(transform)} (fp16, int8, prune)`);
  }
  const model = await OnnxModel.read(file);
  const report =
    params.transform === 'fp16'
      ? await convertToFloat16(model, params)
      : params.transform === 'int8'
        ? await quantizeWeightsInt8(model, params)
        : await pruneWeights(model, params);
  const out = model.encode();
  return derived(out.byteLength, () => out.chunks(), () => ({ ...report(), size: { before: file.size, after: out.byteLength } }));
}
