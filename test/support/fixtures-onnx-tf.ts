// Real ONNX, SavedModel, TFLite and TF.js fixtures built in TypeScript: a tiny
// protobuf writer and a tiny FlatBuffer builder, so the tests need no files
// from outside the repository.

// ---------------------------------------------------------------- protobuf writer

export class PbWriter {
  private parts: number[] = [];

  varint(v: number | bigint): this {
    let b = BigInt.asUintN(64, BigInt(v));
    do {
      let byte = Number(b & 0x7fn);
      b >>= 7n;
      if (b > 0n) byte |= 0x80;
      this.parts.push(byte);
    } while (b > 0n);
    return this;
  }
  tag(num: number, wire: number): this {
    return this.varint(num * 8 + wire);
  }
  /** a varint field (int32/int64/uint64/enum/bool); negative numbers as 10-byte two's complement */
  int(num: number, v: number | bigint): this {
    return this.tag(num, 0).varint(v);
  }
  bytes(num: number, b: Uint8Array): this {
    this.tag(num, 2).varint(b.byteLength);
    for (const x of b) this.parts.push(x);
    return this;
  }
  str(num: number, s: string): this {
    return this.bytes(num, new TextEncoder().encode(s));
  }
  msg(num: number, build: (w: PbWriter) => void): this {
    const w = new PbWriter();
    build(w);
    return this.bytes(num, w.finish());
  }
  packed(num: number, values: Array<number | bigint>): this {
    const w = new PbWriter();
    for (const v of values) w.varint(v);
    return this.bytes(num, w.finish());
  }
  packedFloats(num: number, values: number[]): this {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return this.bytes(num, b);
  }
  fixed32(num: number, v: number): this {
    this.tag(num, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    for (const x of b) this.parts.push(x);
    return this;
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

// ---------------------------------------------------------------- ONNX

interface OnnxTensor {
  name: string;
  dataType: number;
  dims: number[];
  packedDims?: boolean;
  raw?: Uint8Array;
  floats?: number[];
  external?: Record<string, string>;
}

function onnxTensor(w: PbWriter, t: OnnxTensor): void {
  if (t.packedDims === false) for (const d of t.dims) w.int(1, d);
  else w.packed(1, t.dims);
  w.int(2, t.dataType);
  if (t.floats) w.packedFloats(4, t.floats);
  w.str(8, t.name);
  if (t.raw) w.bytes(9, t.raw);
  if (t.external) {
    for (const [k, v] of Object.entries(t.external)) w.msg(13, (e) => e.str(1, k).str(2, v));
    w.int(14, 1);
  }
}

function valueInfo(w: PbWriter, name: string, elemType: number, dims: Array<number | string>): void {
  w.str(1, name);
  w.msg(2, (type) =>
    type.msg(1, (tt) => {
      tt.int(1, elemType);
      tt.msg(2, (shape) => {
        for (const d of dims) shape.msg(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.str(2, d)));
      });
    }),
  );
}

/**
 * A small but complete ONNX model:
 * - initializers W [3,2] float32 (raw_data), B [2] int64 (unpacked dims, int64_data),
 *   E [10,10] float16 stored externally (weights.bin, offset 0, length 200)
 * - sparse initializer S: 3 float32 values of a [10,10] tensor
 * - a Constant node C [4] float32 (float_data)
 * - an If node whose then-branch subgraph has an initializer T [5] float32
 * - a custom op in domain com.example
 * - inputs x [batch, 3] float32 and W (an initializer: not a model input); output y [batch, 2]
 * Parameters: 6 + 2 + 100 + 3 + 4 + 5 = 120 (float32 18, int64 2, float16 100).
 */
export function onnxModel(): Uint8Array {
  const w = new PbWriter();
  w.int(1, 8); // ir_version
  w.str(2, 'cairn-test');
  w.str(3, '1.2.3');
  w.str(4, 'org.cairn');
  w.int(5, 42);
  w.str(6, 'a test model');
  w.msg(7, (g) => {
    g.msg(1, (n) => {
      n.str(2, 'C');
      n.str(3, 'const0');
      n.str(4, 'Constant');
      n.msg(5, (a) => {
        a.str(1, 'value');
        a.msg(5, (t) => onnxTensor(t, { name: 'C', dataType: 1, dims: [4], floats: [1, 2, 3, 4] }));
        a.int(20, 4); // AttributeType TENSOR
      });
    });
    g.msg(1, (n) => {
      n.str(1, 'x');
      n.str(1, 'W');
      n.str(2, 'h');
      n.str(4, 'MatMul');
    });
    g.msg(1, (n) => {
      n.str(1, 'cond');
      n.str(2, 'z');
      n.str(4, 'If');
      n.msg(5, (a) => {
        a.str(1, 'then_branch');
        a.msg(6, (sub) => {
          sub.str(2, 'then');
          sub.msg(5, (t) => onnxTensor(t, { name: 'T', dataType: 1, dims: [5], raw: new Uint8Array(20) }));
          sub.msg(12, (o) => valueInfo(o, 'T', 1, [5]));
        });
        a.int(20, 5); // GRAPH
      });
    });
    g.msg(1, (n) => {
      n.str(1, 'h');
      n.str(2, 'y');
      n.str(4, 'FancyOp');
      n.str(7, 'com.example');
    });
    g.str(2, 'test-graph');
    g.msg(5, (t) => onnxTensor(t, { name: 'W', dataType: 1, dims: [3, 2], raw: new Uint8Array(24).fill(7) }));
    g.msg(5, (t) => {
      onnxTensor(t, { name: 'B', dataType: 7, dims: [2], packedDims: false });
      t.packed(7, [5, -3]); // int64_data
    });
    g.msg(5, (t) => onnxTensor(t, { name: 'E', dataType: 10, dims: [10, 10], external: { location: 'weights.bin', offset: '0', length: '200' } }));
    g.str(10, 'graph doc');
    g.msg(11, (i) => valueInfo(i, 'x', 1, ['batch', 3]));
    g.msg(11, (i) => valueInfo(i, 'W', 1, [3, 2]));
    g.msg(12, (o) => valueInfo(o, 'y', 1, ['batch', 2]));
    g.msg(15, (s) => {
      s.msg(1, (t) => onnxTensor(t, { name: 'S', dataType: 1, dims: [3], floats: [1, 2, 3] }));
      s.msg(2, (t) => {
        onnxTensor(t, { name: 'S_idx', dataType: 7, dims: [3] });
        t.packed(7, [0, 11, 99]);
      });
      s.packed(3, [10, 10]);
    });
  });
  w.msg(8, (o) => o.str(1, '').int(2, 17));
  w.msg(8, (o) => o.str(1, 'com.example').int(2, 1));
  w.msg(14, (m) => m.str(1, 'author').str(2, 'cairn'));
  return w.finish();
}

/** A model whose If nodes nest `depth` subgraphs, the innermost holding a 2-element initializer. */
export function onnxNestedIf(depth: number): Uint8Array {
  const graph = (g: PbWriter, level: number): void => {
    g.str(2, `g${level}`);
    if (level === depth) {
      g.msg(5, (t) => onnxTensor(t, { name: 'deep', dataType: 1, dims: [2], raw: new Uint8Array(8) }));
      return;
    }
    g.msg(1, (n) => {
      n.str(1, 'cond');
      n.str(2, `z${level}`);
      n.str(4, 'If');
      n.msg(5, (a) => {
        a.str(1, 'then_branch');
        a.msg(6, (sub) => graph(sub, level + 1));
        a.int(20, 5); // GRAPH
      });
    });
  };
  const w = new PbWriter();
  w.int(1, 8);
  w.msg(7, (g) => graph(g, 0));
  w.msg(8, (o) => o.str(1, '').int(2, 17));
  return w.finish();
}

// ---------------------------------------------------------------- SavedModel

function tfTensorInfo(w: PbWriter, tensor: string, dtype: number, dims: number[]): void {
  w.str(1, tensor);
  w.int(2, dtype);
  w.msg(3, (s) => {
    for (const d of dims) s.msg(2, (dim) => dim.int(1, d));
  });
}

/**
 * A SavedModel with one meta graph (tags serve, TF 2.15.0) and signatures
 * serving_default (x: float32 [-1,3] → y: float32 [-1,2]) and `embed`
 * (tokens: int64 [-1] → vec: float16 [-1,8]); the graph has Placeholder,
 * MatMul and ReadFile nodes, plus a function library; with `pyFunc` it also
 * has an EagerPyFunc node inside a library function.
 */
export function savedModel(opts: { pyFunc?: boolean; extraNodes?: number } = {}): Uint8Array {
  const w = new PbWriter();
  w.int(1, 1);
  w.msg(2, (mg) => {
    mg.msg(1, (mi) => {
      mi.msg(2, (ol) => {
        for (const op of ['Placeholder', 'MatMul', 'ReadFile']) ol.msg(1, (od) => od.str(1, op));
      });
      mi.str(4, 'serve');
      mi.str(5, '2.15.0');
      mi.str(6, 'v2.15.0-rc1-8-g6887368d6d4');
    });
    mg.msg(2, (gd) => {
      gd.msg(1, (n) => n.str(1, 'x').str(2, 'Placeholder'));
      gd.msg(1, (n) => n.str(1, 'w').str(2, 'Const').msg(5, (attr) => attr.str(1, 'value').msg(2, (v) => v.bytes(8, new Uint8Array(64)))));
      gd.msg(1, (n) => n.str(1, 'y').str(2, 'MatMul').str(3, 'x').str(3, 'w'));
      gd.msg(1, (n) => n.str(1, 'f').str(2, 'ReadFile'));
      for (let i = 0; i < (opts.extraNodes ?? 0); i++) gd.msg(1, (n) => n.str(2, 'NoOp'));
      gd.msg(2, (lib) =>
        lib.msg(1, (fn) => {
          fn.msg(1, (sig) => sig.str(1, '__inference_call_42'));
          fn.msg(3, (n) => n.str(1, 'relu').str(2, 'Relu'));
          if (opts.pyFunc) fn.msg(3, (n) => n.str(1, 'py').str(2, 'EagerPyFunc'));
        }),
      );
    });
    mg.msg(5, (e) => {
      e.str(1, 'serving_default');
      e.msg(2, (sd) => {
        sd.msg(1, (m) => m.str(1, 'x').msg(2, (ti) => tfTensorInfo(ti, 'serving_default_x:0', 1, [-1, 3])));
        sd.msg(2, (m) => m.str(1, 'y').msg(2, (ti) => tfTensorInfo(ti, 'StatefulPartitionedCall:0', 1, [-1, 2])));
        sd.str(3, 'tensorflow/serving/predict');
      });
    });
    mg.msg(5, (e) => {
      e.str(1, 'embed');
      e.msg(2, (sd) => {
        sd.msg(1, (m) => m.str(1, 'tokens').msg(2, (ti) => tfTensorInfo(ti, 'embed_tokens:0', 9, [-1])));
        sd.msg(2, (m) => m.str(1, 'vec').msg(2, (ti) => tfTensorInfo(ti, 'StatefulPartitionedCall_1:0', 19, [-1, 8])));
        sd.str(3, 'tensorflow/serving/predict');
      });
    });
  });
  return w.finish();
}

// ---------------------------------------------------------------- FlatBuffers

type FbScalar = { u8: number } | { u32: number } | { i32: number } | { u64: number };
type FbObj = FbTable | FbVector | FbString;
interface FbTable {
  table: Array<FbScalar | FbObj | undefined>;
}
interface FbVector {
  vec: 'u8' | 'i32' | 'obj';
  items: Array<number | FbObj>;
}
interface FbString {
  str: string;
}

/** Lays out a FlatBuffer front to back: every object after the slot that refers to it (uoffsets are unsigned). */
export function buildFlatbuffer(root: FbTable, identifier: string): Uint8Array {
  const out: number[] = [];
  const put32 = (at: number, v: number): void => {
    out[at] = v & 0xff;
    out[at + 1] = (v >>> 8) & 0xff;
    out[at + 2] = (v >>> 16) & 0xff;
    out[at + 3] = (v >>> 24) & 0xff;
  };
  const push32 = (v: number): number => {
    const at = out.length;
    put32(at, v);
    return at;
  };
  const align = (n: number): void => {
    while (out.length % n) out.push(0);
  };
  const patches: Array<[number, FbObj]> = [];
  const write = (o: FbObj): number => {
    align(4);
    if ('str' in o) {
      const b = new TextEncoder().encode(o.str);
      const at = push32(b.length);
      for (const x of b) out.push(x);
      out.push(0);
      return at;
    }
    if ('vec' in o) {
      const at = push32(o.items.length);
      if (o.vec === 'u8') for (const x of o.items) out.push(x as number);
      else if (o.vec === 'i32') for (const x of o.items) push32(x as number);
      else for (const x of o.items) patches.push([push32(0), x as FbObj]);
      return at;
    }
    // vtable first, then the table (soffset = table - vtable > 0)
    const slots = o.table.map((f) => (f === undefined ? 0 : 'u64' in f ? 8 : 4));
    const vt = out.length;
    const vtSize = 4 + 2 * o.table.length;
    let offset = 4;
    const offsets = slots.map((s) => {
      if (!s) return 0;
      const here = offset;
      offset += s;
      return here;
    });
    out.push(vtSize & 0xff, vtSize >> 8, offset & 0xff, offset >> 8);
    for (const off of offsets) out.push(off & 0xff, off >> 8);
    align(4);
    const at = out.length;
    push32(at - vt);
    o.table.forEach((f) => {
      if (f === undefined) return;
      if ('u8' in f) push32(f.u8 & 0xff);
      else if ('u32' in f) push32(f.u32);
      else if ('i32' in f) push32(f.i32);
      else if ('u64' in f) {
        push32(f.u64 % 2 ** 32);
        push32(Math.floor(f.u64 / 2 ** 32));
      } else patches.push([push32(0), f]);
    });
    return at;
  };
  push32(0); // root offset
  for (const c of identifier) out.push(c.charCodeAt(0));
  patches.push([0, root]);
  while (patches.length) {
    const [slot, obj] = patches.shift()!;
    const at = write(obj);
    put32(slot, at - slot);
  }
  return Uint8Array.from(out);
}

const str = (s: string): FbString => ({ str: s });
const i32v = (items: number[]): FbVector => ({ vec: 'i32', items });
const objv = (items: FbObj[]): FbVector => ({ vec: 'obj', items });

function tfliteTensor(name: string, type: number, shape: number[], buffer: number, signature?: number[]): FbTable {
  return {
    table: [i32v(shape), { u8: type }, { u32: buffer }, str(name), undefined, undefined, undefined, signature ? i32v(signature) : undefined],
  };
}

/**
 * A TFLite model (schema version 3): one subgraph `main` with input `input`
 * float32 [-1,4] (shape [1,4]), weights `w` float32 [4,2] (buffer 1),
 * bias `b` int32 [2] (buffer 2), `w_alias` sharing buffer 1 and output
 * `out` float32 [1,2]; operator codes FULLY_CONNECTED and custom
 * `MyCustomOp`; metadata `min_runtime_version`; a signature `serving_default`.
 * Parameters: 8 float32 + 2 int32 = 10. `extraSubgraphs` appends empty subgraphs;
 * `operatorTensors` pads the operator's input and output lists to that length.
 */
export function tfliteModel(opts: { bigWeights?: { dims: [number, number]; dataOffset: number }; extraSubgraphs?: number; operatorTensors?: number } = {}): Uint8Array {
  const buffer = (data?: number[]): FbTable => ({ table: [data ? { vec: 'u8', items: data } : undefined] });
  const big = opts.bigWeights;
  const wShape = big ? big.dims : [4, 2];
  // with bigWeights, buffer 1 lives after the FlatBuffer (Buffer.offset/size, as for models over 2 GiB)
  const wBuffer: FbTable = big ? { table: [undefined, { u64: big.dataOffset }, { u64: big.dims[0] * big.dims[1] * 4 }] } : buffer(new Array(32).fill(1));
  // with operatorTensors, the operator's inputs and outputs lists are padded to that length with -1 (omitted)
  const io = (list: number[]): FbVector => i32v(opts.operatorTensors ? [...list, ...new Array<number>(opts.operatorTensors - list.length).fill(-1)] : list);
  const main: FbTable = {
    table: [
      objv([
        tfliteTensor('input', 0, [1, 4], 0, [-1, 4]),
        tfliteTensor('w', 0, wShape, 1),
        tfliteTensor('b', 2, [2], 2),
        tfliteTensor('out', 0, [1, 2], 0),
        tfliteTensor('w_alias', 0, wShape, 1),
      ]),
      i32v([0]),
      i32v([3]),
      objv([{ table: [{ u32: 0 }, io([0, 1, 2]), io([3])] }]),
      str('main'),
    ],
  };
  const model: FbTable = {
    table: [
      { u32: 3 },
      objv([
        { table: [{ u8: 9 }, undefined, { i32: 1 }, { i32: 9 }] },
        { table: [{ u8: 32 }, str('MyCustomOp'), { i32: 1 }, { i32: 32 }] },
      ]),
      objv([main, ...new Array<FbTable>(opts.extraSubgraphs ?? 0).fill({ table: [] })]),
      str('cairn tflite test'),
      objv([buffer(), wBuffer, buffer([1, 0, 0, 0, 2, 0, 0, 0]), buffer([...new TextEncoder().encode('1.5.0')])]),
      undefined,
      objv([{ table: [str('min_runtime_version'), { u32: 3 }] }]),
      objv([{ table: [objv([]), objv([]), str('serving_default'), undefined, { u32: 0 }] }]),
    ],
  };
  return buildFlatbuffer(model, 'TFL3');
}

// ---------------------------------------------------------------- TF.js

/**
 * A TF.js graph model: two shards, weights dense/kernel float32 [3,2],
 * dense/bias float32 [2], emb int32 [4,5] and q [10] (float32 quantized to uint8).
 * Parameters: 6 + 2 + 20 + 10 = 38 (float32 8, int32 20, uint8 10).
 */
export function tfjsModelJson(): Uint8Array {
  const model = {
    format: 'graph-model',
    generatedBy: '2.15.0',
    convertedBy: 'TensorFlow.js Converter v4.17.0',
    signature: {
      inputs: { 'x:0': { name: 'x:0', dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '-1' }, { size: '3' }] } } },
      outputs: { 'Identity:0': { name: 'Identity:0', dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '-1' }, { size: '2' }] } } },
    },
    modelTopology: {
      node: [
        { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' } } },
        { name: 'dense/MatMul', op: 'MatMul', input: ['x', 'dense/kernel'] },
      ],
      versions: { producer: 1395 },
    },
    weightsManifest: [
      {
        paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'],
        weights: [
          { name: 'dense/kernel', shape: [3, 2], dtype: 'float32' },
          { name: 'dense/bias', shape: [2], dtype: 'float32' },
          { name: 'emb', shape: [4, 5], dtype: 'int32' },
          { name: 'q', shape: [10], dtype: 'float32', quantization: { dtype: 'uint8', min: -1, scale: 0.01 } },
        ],
      },
    ],
  };
  return new TextEncoder().encode(JSON.stringify(model, null, 2));
}
