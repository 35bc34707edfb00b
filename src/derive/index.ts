// Derived versions, the library half: named, deterministic transforms over one
// file (streamed from a FileSource, streamed out) and the measurements that go
// into the lineage recipe. The job, routes and CLI build on these.
//
//   const d = await deriveFile(source, 'onnx', { transform: 'int8' });
//   await store(d.stream(), d.size);              // the bytes, produced once
//   const report = d.report();                    // the transform's numbers
//   const measured = await measureOnnx({ parent, derived, samples });  // ONNX Runtime on both
//
// Transforms: cast (safetensors: F32 → BF16/F16), fp16 (ONNX), int8 (both),
// prune (both). The same input and parameters give byte-identical output.
import { CairnError } from '../errors.ts';
import type { FileSource } from '../formats/types.ts';
import { deriveOnnx, type OnnxParams, type OnnxReport } from './onnx-transforms.ts';
import { deriveSafetensors, type SafetensorsParams, type SafetensorsReport } from './safetensors-transforms.ts';
import type { Derived } from './stream.ts';

export { deriveOnnx, type OnnxParams, type OnnxReport } from './onnx-transforms.ts';
export { deriveSafetensors, type SafetensorsParams, type SafetensorsReport } from './safetensors-transforms.ts';
export { compareSafetensors, type SafetensorsRoundTrip } from './safetensors-measure.ts';
export { generateSamples, loadSamples, measureOnnx, ONNXRUNTIME_VERSION, type GenerateSamples, type MeasureOptions, type OnnxMeasurement } from './onnx-measure.ts';
export type { Derived } from './stream.ts';

/**
 * Bumped whenever a transform's output for the same input and parameters
 * changes, so a recipe says which transform produced the bytes.
 */
export const DERIVE_VERSION = 1;

export type DeriveParams = OnnxParams | SafetensorsParams;
export type DeriveReport = OnnxReport | SafetensorsReport;

/** Which transforms apply to which format. */
export const TRANSFORMS: Record<DeriveParams['transform'], Array<'onnx' | 'safetensors'>> = {
  cast: ['safetensors'],
  fp16: ['onnx'],
  int8: ['onnx', 'safetensors'],
  prune: ['onnx', 'safetensors'],
};

/** Derives one file of `format` (as the format detector named it). */
export async function deriveFile(source: FileSource, format: string, params: DeriveParams): Promise<Derived<DeriveReport>> {
  const transform = (params as { transform?: unknown }).transform;
  const formats = TRANSFORMS[transform as DeriveParams['transform']];
  if (!formats) throw new CairnError('INVALID_ARGUMENT', `unknown transform ${JSON.stringify(transform)} (${Object.keys(TRANSFORMS).join(', ')})`);
  if (!formats.includes(format as 'onnx')) {
    throw new CairnError('INVALID_ARGUMENT', `${String(transform)} applies to ${formats.join(' and ')} files; ${source.path} is ${format}`);
  }
  if (format === 'onnx') return deriveOnnx(source, params as OnnxParams);
  return deriveSafetensors(source, params as SafetensorsParams);
}
