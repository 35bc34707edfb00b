import fs from 'node:fs';
import { deriveOnnx } from './src/derive/onnx-transforms.ts';
import { diskSource, writeDerived } from './test/support/derive-files.ts';
fs.mkdirSync('/tmp/dv', { recursive: true });
for (const f of ['ch_PP-OCRv4_det_infer.onnx','silero_vad_v5.onnx','hello_deepa.onnx']) {
  for (const params of [{ transform: 'fp16' }, { transform: 'int8' }, { transform: 'prune', sparsity: 0.5 }] as const) {
    const t0 = performance.now();
    const d = await deriveOnnx(diskSource('/work/shared/models/' + f), params as any);
    const out = `/tmp/dv/${f}.${params.transform}.onnx`;
    await writeDerived(d, out);
    const r: any = d.report();
    console.log(f, params.transform, (performance.now() - t0).toFixed(0) + 'ms', r.size, (r.size.after / r.size.before).toFixed(3), JSON.stringify(r).slice(0, 300));
  }
}
