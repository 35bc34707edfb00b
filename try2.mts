import { measureOnnx } from './src/derive/onnx-measure.ts';
const M = '/work/shared/models/';
for (const [f, samples] of [
  ['ch_PP-OCRv4_det_infer.onnx', { count: 4, seed: 1, shapes: { x: [1, 3, 320, 320] } }],
  ['silero_vad_v5.onnx', { count: 8, seed: 1, shapes: { input: [1, 512], state: [2, 1, 128] }, values: { sr: 16000 } }],
  ['hello_deepa.onnx', { count: 8, seed: 1 }],
] as const) {
  for (const t of ['fp16', 'int8', 'prune']) {
    const m = await measureOnnx({ parent: M + f, derived: `/tmp/dv/${f}.${t}.onnx`, samples: samples as any });
    console.log(f, t, JSON.stringify(m.outputs.map(o => ({ n: o.name, cos: o.cosine.toFixed(6), min: o.minCosine.toFixed(6), max: o.maxAbsError.toExponential(3), mean: o.meanAbsError.toExponential(3) }))), m.latencyMs);
  }
}
