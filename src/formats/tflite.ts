// TensorFlow Lite: a FlatBuffer with the file identifier "TFL3" at bytes 4..8
// (schema.fbs: Model → subgraphs → tensors, buffers, operator codes). Read with
// random access through small cached blocks; every offset, vtable and vector
// length is checked against the file size before it is followed, and the total
// work is budgeted so crafted vectors cannot make it quadratic.
import { cachedSource } from './sources.ts';
import { InvalidModelFileError, safetyOf, type Detector, type FileFormat, type FileSource, type TensorInfo } from './types.ts';

class FlatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlatError';
  }
}

/** schema.fbs TensorType → dtype name */
const TFLITE_DTYPES = [
  'float32', 'float16', 'int32', 'uint8', 'int64', 'string', 'bool', 'int16', 'complex64', 'int8',
  'float64', 'complex128', 'uint64', 'resource', 'variant', 'uint32', 'uint16', 'int4', 'bfloat16',
];

export function tfliteDtype(code: number): string {
  return TFLITE_DTYPES[code] ?? `unknown(${code})`;
}

const MAX_SUBGRAPHS = 64;
const MAX_LISTED = 256;
const MAX_STRING = 1024;
const MAX_DIMS = 1024;
const WORK_BUDGET = 2_000_000; // table/element visits

const decoder = new TextDecoder('utf-8', { fatal: false });

class Flat {
  private src: FileSource;
  readonly size: number;
  private work = 0;
  partial = false;

  constructor(file: FileSource) {
    this.src = cachedSource(file, 64 * 1024, 16);
    this.size = file.size;
  }

  /** counts work; false once the budget is spent */
  tick(n = 1): boolean {
    this.work += n;
    if (this.work > WORK_BUDGET) {
      this.partial = true;
      return false;
    }
    return true;
  }

  async bytes(at: number, n: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(at) || at < 0 || n < 0 || at + n > this.size) throw new FlatError(`read of ${n} bytes at ${at} outside the file (${this.size} bytes)`);
    const b = await this.src.read(at, n);
    if (b.byteLength < n) throw new FlatError(`short read at ${at}`);
    return b;
  }

  private async view(at: number, n: number): Promise<DataView> {
    const b = await this.bytes(at, n);
    return new DataView(b.buffer, b.byteOffset, n);
  }

  async u8(at: number): Promise<number> {
    return (await this.view(at, 1)).getUint8(0);
  }
  async u16(at: number): Promise<number> {
    return (await this.view(at, 2)).getUint16(0, true);
  }
  async u32(at: number): Promise<number> {
    return (await this.view(at, 4)).getUint32(0, true);
  }
  async i32(at: number): Promise<number> {
    return (await this.view(at, 4)).getInt32(0, true);
  }
  async u64(at: number): Promise<number> {
    return Number((await this.view(at, 8)).getBigUint64(0, true));
  }

  /** follows the uoffset stored at `at` */
  async deref(at: number): Promise<number> {
    const target = at + (await this.u32(at));
    if (target >= this.size) throw new FlatError(`offset at ${at} points past the end (${target})`);
    return target;
  }

  async table(at: number): Promise<Table> {
    const vt = at - (await this.i32(at));
    if (vt < 0 || vt + 4 > this.size) throw new FlatError(`vtable of table at ${at} out of bounds (${vt})`);
    const vtSize = await this.u16(vt);
    const tableSize = await this.u16(vt + 2);
    if (vtSize < 4 || vtSize % 2 !== 0 || vt + vtSize > this.size) throw new FlatError(`bad vtable at ${vt} (size ${vtSize})`);
    if (tableSize < 4 || at + tableSize > this.size) throw new FlatError(`table at ${at} (size ${tableSize}) out of bounds`);
    return new Table(this, at, vt, vtSize, tableSize);
  }
}

class Table {
  constructor(
    private f: Flat,
    readonly at: number,
    private vt: number,
    private vtSize: number,
    private tableSize: number,
  ) {}

  /** absolute position of field `i`, or undefined when absent */
  async field(i: number, width: number): Promise<number | undefined> {
    if (4 + 2 * i + 2 > this.vtSize) return undefined;
    const off = await this.f.u16(this.vt + 4 + 2 * i);
    if (off === 0) return undefined;
    if (off < 4 || off + width > this.tableSize) throw new FlatError(`field ${i} of table at ${this.at} outside the table`);
    return this.at + off;
  }

  async u8(i: number, dflt: number): Promise<number> {
    const p = await this.field(i, 1);
    return p === undefined ? dflt : this.f.u8(p);
  }
  async u32(i: number, dflt: number): Promise<number> {
    const p = await this.field(i, 4);
    return p === undefined ? dflt : this.f.u32(p);
  }
  async i32(i: number, dflt: number): Promise<number> {
    const p = await this.field(i, 4);
    return p === undefined ? dflt : this.f.i32(p);
  }
  async u64(i: number, dflt: number): Promise<number> {
    const p = await this.field(i, 8);
    return p === undefined ? dflt : this.f.u64(p);
  }

  /** a vector field: [start of elements, length]; elements checked to lie in the file */
  async vector(i: number, elemSize: number): Promise<[number, number] | undefined> {
    const p = await this.field(i, 4);
    if (p === undefined) return undefined;
    const v = await this.f.deref(p);
    const len = await this.f.u32(v);
    if (v + 4 + len * elemSize > this.f.size) throw new FlatError(`vector at ${v} (${len} × ${elemSize} bytes) past the end`);
    return [v + 4, len];
  }

  async string(i: number): Promise<string | undefined> {
    const v = await this.vector(i, 1);
    if (!v) return undefined;
    const [at, len] = v;
    const s = decoder.decode(await this.f.bytes(at, Math.min(len, MAX_STRING)));
    return len > MAX_STRING ? `${s}…` : s;
  }

  async i32s(i: number, max: number): Promise<number[] | undefined> {
    const v = await this.vector(i, 4);
    if (!v) return undefined;
    const [at, len] = v;
    if (len > max) throw new FlatError(`vector of ${len} ints (at most ${max} expected)`);
    const b = await this.f.bytes(at, len * 4);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const out: number[] = [];
    for (let k = 0; k < len; k++) out.push(dv.getInt32(4 * k, true));
    return out;
  }

  /** element k of a vector of tables */
  async tableAt(vec: [number, number], k: number): Promise<Table> {
    return this.f.table(await this.f.deref(vec[0] + 4 * k));
  }
}

interface TensorDesc {
  name: string;
  type: number;
  shape: number[];
  buffer: number;
}

async function readTensor(t: Table): Promise<TensorDesc> {
  const shape = (await t.i32s(0, MAX_DIMS)) ?? [];
  const signature = await t.i32s(7, MAX_DIMS);
  return {
    name: (await t.string(3)) ?? '',
    type: await t.u8(1, 0),
    // shape_signature has -1 for dynamic dimensions; prefer it when it matches the rank
    shape: signature && signature.length === shape.length ? signature : shape,
    buffer: await t.u32(2, 0),
  };
}

async function parse(file: FileSource): Promise<FileFormat> {
  const f = new Flat(file);
  if (file.size < 8) throw new FlatError('file shorter than a FlatBuffer header');
  const model = await f.table(await f.deref(0));
  const version = await model.u32(0, 0);
  const description = await model.string(3);

  // operator codes: count and custom op names
  const opcodes = await model.vector(1, 4);
  const customOps: string[] = [];
  const builtinCodes = new Set<number>();
  if (opcodes) {
    for (let k = 0; k < opcodes[1] && f.tick(); k++) {
      const oc = await model.tableAt(opcodes, k);
      const custom = await oc.string(1);
      if (custom !== undefined && customOps.length < MAX_LISTED) customOps.push(custom);
      const code = Math.max(await oc.u8(0, 0), await oc.i32(3, 0));
      if (builtinCodes.size < MAX_LISTED) builtinCodes.add(code);
    }
  }

  // buffers: which indices hold data (constant tensors point at them)
  const buffers = await model.vector(4, 4);
  const bufferHasData = new Map<number, boolean>();
  const hasData = async (index: number): Promise<boolean> => {
    if (!buffers || index <= 0 || index >= buffers[1]) return false;
    const known = bufferHasData.get(index);
    if (known !== undefined) return known;
    const b = await model.tableAt(buffers, index);
    const data = await b.vector(0, 1);
    // data inline, or (models over 2 GiB) at [offset, offset + size) after the FlatBuffer
    const offset = await b.u64(1, 0);
    const size = await b.u64(2, 0);
    if (offset > 1 && offset + size > file.size) throw new FlatError(`buffer ${index} at [${offset}, ${offset + size}) past the end of the file (${file.size} bytes): truncated?`);
    const has = (data !== undefined && data[1] > 0) || size > 0;
    bufferHasData.set(index, has);
    return has;
  };

  const subgraphs = await model.vector(2, 4);
  if (!subgraphs || subgraphs[1] === 0) throw new FlatError('model has no subgraphs');
  let inputs: TensorInfo[] = [];
  let outputs: TensorInfo[] = [];
  let parameters = 0;
  const dtypes: Record<string, number> = {};
  const counted = new Set<number>();
  const subgraphInfo: Array<{ name?: string; tensors: number; operators: number }> = [];
  const nSub = Math.min(subgraphs[1], MAX_SUBGRAPHS);
  for (let s = 0; s < nSub && f.tick(); s++) {
    const sg = await model.tableAt(subgraphs, s);
    const tensors = await sg.vector(0, 4);
    const nTensors = tensors ? tensors[1] : 0;
    const ops = await sg.vector(3, 4);
    const name = await sg.string(4);
    subgraphInfo.push({ ...(name !== undefined ? { name } : {}), tensors: nTensors, operators: ops ? ops[1] : 0 });
    const tensorInfo = async (index: number): Promise<TensorInfo> => {
      if (!tensors || index < 0 || index >= nTensors) throw new FlatError(`tensor index ${index} out of range (${nTensors} tensors)`);
      const t = await readTensor(await sg.tableAt(tensors, index));
      return { name: t.name, dtype: tfliteDtype(t.type), shape: t.shape };
    };
    if (s === 0) {
      const ins = (await sg.i32s(1, 1 << 20)) ?? [];
      const outs = (await sg.i32s(2, 1 << 20)) ?? [];
      for (const i of ins.slice(0, MAX_LISTED)) inputs.push(await tensorInfo(i));
      for (const o of outs.slice(0, MAX_LISTED)) outputs.push(await tensorInfo(o));
    }
    // operators: tables, operator code indices and tensor indices in range (-1: an omitted optional input)
    if (ops) {
      for (let k = 0; k < ops[1] && f.tick(4); k++) {
        const op = await sg.tableAt(ops, k);
        const code = await op.u32(0, 0);
        if (code >= (opcodes ? opcodes[1] : 0)) throw new FlatError(`operator ${k} uses operator code ${code} of ${opcodes ? opcodes[1] : 0}`);
        for (const field of [1, 2]) {
          const v = await op.vector(field, 4);
          if (!v || !f.tick(v[1])) continue;
          if (v[1] > 1 << 20) throw new FlatError(`operator ${k} with ${v[1]} tensors`);
          const b = await f.bytes(v[0], v[1] * 4);
          const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
          for (let j = 0; j < v[1]; j++) {
            const t = dv.getInt32(4 * j, true);
            if (t < -1 || t >= nTensors) throw new FlatError(`operator ${k} refers to tensor ${t} of ${nTensors}`);
          }
        }
      }
    }
    // constant tensors: those whose buffer holds data (each buffer counted once)
    for (let k = 0; k < nTensors && f.tick(); k++) {
      const t = await readTensor(await sg.tableAt(tensors!, k));
      if (counted.has(t.buffer) || !(await hasData(t.buffer))) continue;
      counted.add(t.buffer);
      let elements = 1;
      for (const d of t.shape) elements *= Math.max(d, 0);
      if (!Number.isSafeInteger(elements)) throw new FlatError(`tensor ${t.name}: element count out of range`);
      parameters += elements;
      const dt = tfliteDtype(t.type);
      dtypes[dt] = (dtypes[dt] ?? 0) + elements;
    }
  }

  // metadata names and signature keys
  const metadataNames: string[] = [];
  const metadata = await model.vector(6, 4);
  if (metadata) {
    for (let k = 0; k < Math.min(metadata[1], MAX_LISTED) && f.tick(); k++) {
      const m = await model.tableAt(metadata, k);
      metadataNames.push((await m.string(0)) ?? '');
    }
  }
  const signatures: string[] = [];
  const sigs = await model.vector(7, 4);
  if (sigs) {
    for (let k = 0; k < Math.min(sigs[1], MAX_LISTED) && f.tick(); k++) {
      const sd = await model.tableAt(sigs, k);
      signatures.push((await sd.string(2)) ?? '');
    }
  }

  const details: Record<string, unknown> = {
    version,
    subgraphs: subgraphs[1],
    subgraphInfo,
    operatorCodes: opcodes ? opcodes[1] : 0,
    buffers: buffers ? buffers[1] : 0,
  };
  if (description !== undefined) details.description = description;
  if (builtinCodes.size) details.builtinCodes = [...builtinCodes].sort((a, b) => a - b);
  if (customOps.length) details.customOps = customOps;
  if (metadataNames.length) details.metadata = metadataNames;
  if (signatures.length) details.signatures = signatures;
  const unchecked: string[] = [];
  if (f.partial) {
    details.partial = true;
    unchecked.push(`more than ${WORK_BUDGET} tables and elements: the walk stopped there`);
  }
  if (subgraphs[1] > nSub) unchecked.push(`only the first ${nSub} of ${subgraphs[1]} subgraphs were walked`);
  inputs = inputs.slice(0, MAX_LISTED);
  outputs = outputs.slice(0, MAX_LISTED);
  return {
    format: 'tflite',
    framework: 'tflite',
    parameters,
    dtypes,
    inputs,
    outputs,
    // the file holds no code; a structure not walked to its end is still unchecked
    safety: safetyOf([], unchecked),
    details,
  };
}

export const detectTflite: Detector = async (file) => {
  const claimed = /\.tflite$/i.test(file.path);
  const head = file.size >= 8 ? await file.read(0, 8) : new Uint8Array(0);
  const magic = head.byteLength === 8 && head[4] === 0x54 && head[5] === 0x46 && head[6] === 0x4c && head[7] === 0x33; // TFL3
  if (!magic && !claimed) return undefined;
  try {
    return await parse(file);
  } catch (e) {
    if (e instanceof FlatError) throw new InvalidModelFileError('tflite', `broken TFLite file: ${e.message}`);
    throw e;
  }
};
