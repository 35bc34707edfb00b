// For the derive job tests: small real models built here (an ONNX MLP encoded
// with the ONNX schema, safetensors of seeded float tensors), samples files,
// and polling a job until it ends.
import assert from 'node:assert/strict';
import { onnxSchema, DT } from '../../src/derive/onnx-schema.ts';
import { call } from './http-client.ts';
import { prng } from './prng.ts';

function normals(n: number, seed: number, scale: number): Float32Array {
  const next = prng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()) * scale;
  return out;
}

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * x [batch, inputs] → MatMul W1 → Add B1 → Relu → MatMul W2 → y [batch, outputs].
 * `hidden` sets the size: the weights are (inputs + outputs) × hidden floats.
 */
export function mlpOnnx(options: { inputs?: number; hidden?: number; outputs?: number; seed?: number } = {}): Uint8Array {
  const { inputs = 16, hidden = 64, outputs = 8, seed = 1 } = options;
  const tensor = (name: string, dims: number[], values: Float32Array) => ({ name, dims, data_type: DT.FLOAT, raw_data: bytesOf(values) });
  const value = (name: string, dims: Array<number | string>) => ({
    name,
    type: { tensor_type: { elem_type: DT.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
  });
  const model = {
    ir_version: 8,
    opset_import: [{ domain: '', version: 13 }],
    producer_name: 'cairn-test',
    graph: {
      name: 'mlp',
      node: [
        { op_type: 'MatMul', input: ['x', 'W1'], output: ['h'], name: 'mm1' },
        { op_type: 'Add', input: ['h', 'B1'], output: ['hb'], name: 'add1' },
        { op_type: 'Relu', input: ['hb'], output: ['r'], name: 'relu' },
        { op_type: 'MatMul', input: ['r', 'W2'], output: ['y'], name: 'mm2' },
      ],
      initializer: [
        tensor('W1', [inputs, hidden], normals(inputs * hidden, seed, 0.3)),
        tensor('B1', [hidden], normals(hidden, seed + 1, 0.1)),
        tensor('W2', [hidden, outputs], normals(hidden * outputs, seed + 2, 0.3)),
      ],
      input: [value('x', ['batch', inputs])],
      output: [value('y', ['batch', outputs])],
    },
  };
  const { ModelProto } = onnxSchema();
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

/** A safetensors file of F32 tensors (seeded normal values), plus any given raw tensors. */
export function floatSafetensors(tensors: Array<{ name: string; shape: number[]; seed?: number; dtype?: 'F32' | 'I64'; data?: Uint8Array }>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  const datas: Uint8Array[] = [];
  let offset = 0;
  for (const [i, t] of tensors.entries()) {
    const n = t.shape.reduce((a, d) => a * d, 1);
    const data = t.data ?? bytesOf(normals(n, t.seed ?? i + 1, 0.5));
    header[t.name] = { dtype: t.dtype ?? 'F32', shape: t.shape, data_offsets: [offset, offset + data.byteLength] };
    datas.push(data);
    offset += data.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8;
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...datas]);
}

/** Samples for mlpOnnx: `<i>/x` of shape [1, inputs]. */
export function mlpSamples(count: number, inputs = 16, seed = 7): Uint8Array {
  return floatSafetensors(Array.from({ length: count }, (_, i) => ({ name: `${i}/x`, shape: [1, inputs], seed: seed + i })));
}

/** Polls GET /v1/jobs/{id} until the job has succeeded or failed. */
export async function waitForJob(base: string, id: string, headers: Record<string, string> = {}, timeoutMs = 120_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await call(base, 'GET', `/v1/jobs/${id}`, undefined, headers);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    if (res.body.state === 'succeeded' || res.body.state === 'failed') return res.body;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${res.body.state} after ${timeoutMs} ms: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
