// NumPy .npy arrays and .npz archives (zips of .npy members). The .npy header
// is a Python dict literal, parsed here by a small literal parser (never
// evaluated). Object arrays ('O' dtypes) store a pickle: unsafe.
import { InvalidModelFileError, safetyOf, type Detector, type FileFormat, type FileSource, type SafetyFinding } from './types.ts';
import { descrItemsize, scanPickle } from './pickle.ts';
import { extOf, hasZipMagic, openZipFor, readZipMemberPrefix, subSource, unreadEntries, zipMemberDataOffset, type ZipDirectory } from './zip.ts';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const MAX_HEADER = (1 << 20) - 16;
const MAX_MEMBERS_CHECKED = 2000;
const MAX_MEMBER_DETAILS = 100;
const OBJECT_REASON = 'an object array is stored as a pickle: loading it (allow_pickle=True) runs code';

// ---------------------------------------------------------------------------
// A Python literal parser for the header dict: dicts, tuples, lists, strings,
// ints, True/False/None. Nothing else is accepted.

type Py = string | number | boolean | null | Py[] | { [k: string]: Py } | { tuple: Py[] };

class LiteralError extends Error {}

function parsePyLiteral(src: string): Py {
  let i = 0;
  const ws = (): void => {
    while (i < src.length && /\s/.test(src[i]!)) i++;
  };
  const value = (depth: number): Py => {
    if (depth > 32) throw new LiteralError('nested too deeply');
    ws();
    const c = src[i];
    if (c === undefined) throw new LiteralError('unexpected end');
    if (c === '{') {
      i++;
      const o: Record<string, Py> = {};
      for (;;) {
        ws();
        if (src[i] === '}') { i++; return o; }
        const k = value(depth + 1);
        if (typeof k !== 'string') throw new LiteralError('dict keys must be strings');
        ws();
        if (src[i++] !== ':') throw new LiteralError("expected ':'");
        o[k] = value(depth + 1);
        ws();
        if (src[i] === ',') { i++; continue; }
        if (src[i] === '}') { i++; return o; }
        throw new LiteralError("expected ',' or '}'");
      }
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      const items: Py[] = [];
      let comma = false;
      for (;;) {
        ws();
        if (src[i] === close) { i++; break; }
        items.push(value(depth + 1));
        ws();
        comma = false;
        if (src[i] === ',') { i++; comma = true; continue; }
        if (src[i] === close) { i++; break; }
        throw new LiteralError(`expected ',' or '${close}'`);
      }
      void comma;
      return c === '(' ? { tuple: items } : items;
    }
    if (c === "'" || c === '"') {
      i++;
      let s = '';
      for (;;) {
        const d = src[i++];
        if (d === undefined) throw new LiteralError('unterminated string');
        if (d === c) return s;
        if (d === '\\') {
          const e = src[i++];
          if (e === undefined) throw new LiteralError('unterminated string');
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e;
        } else s += d;
      }
    }
    const m = /^(-?\d+)L?|^(True|False|None)\b/.exec(src.slice(i, i + 64));
    if (m) {
      i += m[0].length;
      if (m[1] !== undefined) return Number(m[1]);
      return m[2] === 'True' ? true : m[2] === 'False' ? false : null;
    }
    throw new LiteralError(`unexpected character ${JSON.stringify(c)}`);
  };
  const v = value(0);
  ws();
  if (i !== src.length) throw new LiteralError('trailing characters');
  return v;
}

// ---------------------------------------------------------------------------
// dtypes

const KIND_NAMES: Record<string, string> = { f: 'float', i: 'int', u: 'uint', c: 'complex' };

/** A numpy type string ('<f4', '|b1', '<U10', '|O') as a lower-case dtype name. */
export function dtypeName(descr: string): string {
  const m = /^[<>|=]?([a-zA-Z?])(\d*)(\[\w+\])?$/.exec(descr);
  if (!m) return descr.toLowerCase();
  const kind = m[1]!;
  const n = m[2] ? Number(m[2]) : 0;
  if (kind === 'b' || kind === '?') return 'bool';
  if (kind === 'O') return 'object';
  if (kind === 'U') return 'str';
  if (kind === 'S' || kind === 'a') return 'bytes';
  if (kind === 'V') return 'void';
  if (kind === 'M') return 'datetime64';
  if (kind === 'm') return 'timedelta64';
  const base = KIND_NAMES[kind];
  if (base && n > 0) return `${base}${n * 8}`;
  return descr.toLowerCase();
}

interface Dtype {
  name: string;
  itemsize: number;
  object: boolean;
}

function dtypeOf(descr: Py, depth = 0): Dtype | undefined {
  if (depth > 8) return undefined;
  if (typeof descr === 'string') {
    const size = descrItemsize(descr);
    if (size === 'object') return { name: 'object', itemsize: 8, object: true };
    if (size === undefined) return undefined;
    return { name: dtypeName(descr), itemsize: size, object: false };
  }
  if (typeof descr === 'object' && descr !== null && 'tuple' in descr) {
    // a subarray type: (base descr, shape)
    const [base, shape] = descr.tuple as Py[];
    const sub = base !== undefined ? dtypeOf(base, depth + 1) : undefined;
    const mult = shape !== undefined ? elementsOf(shape) : undefined;
    if (!sub || mult === undefined || (descr.tuple as Py[]).length !== 2) return undefined;
    return { name: sub.name, itemsize: sub.itemsize * mult, object: sub.object };
  }
  if (Array.isArray(descr)) {
    // structured: [(name, descr[, shape]), …]
    let itemsize = 0;
    let object = false;
    for (const f of descr) {
      if (typeof f !== 'object' || f === null || !('tuple' in f)) return undefined;
      const t = f.tuple as Py[];
      const sub = t[1] !== undefined ? dtypeOf(t[1], depth + 1) : undefined;
      if (!sub) return undefined;
      const mult = t[2] === undefined ? 1 : elementsOf(t[2]);
      if (mult === undefined) return undefined;
      itemsize += sub.itemsize * mult;
      object ||= sub.object;
    }
    return { name: 'structured', itemsize, object };
  }
  return undefined;
}

/** Elements of a subarray shape: an int or a tuple of ints. */
function elementsOf(shape: Py): number | undefined {
  const dims = typeof shape === 'number' ? [shape] : typeof shape === 'object' && shape !== null && 'tuple' in shape ? (shape.tuple as Py[]) : undefined;
  if (!dims) return undefined;
  let n = 1;
  for (const d of dims) {
    if (typeof d !== 'number' || d < 0) return undefined;
    n *= d;
  }
  return n;
}

export interface NpyInfo {
  version: string;
  dtype: string;
  shape: number[];
  count: number;
  fortranOrder: boolean;
  object: boolean;
  /** offset of the array data within the .npy */
  dataOffset: number;
  /** bytes of array data (0 for object arrays: a pickle of unknown length) */
  dataBytes: number;
}

/** Bytes of the .npy preamble needed before the header can be parsed (magic, version, header length). */
function headerExtent(b: Uint8Array, where: string): { start: number; len: number; version: string; utf8: boolean } {
  for (let i = 0; i < MAGIC.length; i++) {
    if (b[i] !== MAGIC[i]) throw new InvalidModelFileError('numpy', `${where}: not a .npy array (no \\x93NUMPY magic)`);
  }
  if (b.length < 10) throw new InvalidModelFileError('numpy', `${where}: truncated .npy header`);
  const major = b[6]!;
  const minor = b[7]!;
  const version = `${major}.${minor}`;
  if (major === 1) return { start: 10, len: b[8]! | (b[9]! << 8), version, utf8: false };
  if (major === 2 || major === 3) {
    if (b.length < 12) throw new InvalidModelFileError('numpy', `${where}: truncated .npy header`);
    const len = (b[8]! | (b[9]! << 8) | (b[10]! << 16)) + b[11]! * 0x1000000;
    return { start: 12, len, version, utf8: major === 3 };
  }
  throw new InvalidModelFileError('numpy', `${where}: unsupported .npy format version ${version}`);
}

/** Parses a .npy header, reading through `read`; `total` is the .npy's size. */
async function parseNpy(read: (offset: number, length: number) => Promise<Uint8Array | undefined>, total: number, where: string): Promise<NpyInfo | undefined> {
  const pre = await read(0, 12);
  if (!pre) return undefined;
  const ext = headerExtent(pre, where);
  if (ext.len > MAX_HEADER) throw new InvalidModelFileError('numpy', `${where}: .npy header of ${ext.len} bytes is implausibly large`);
  if (ext.start + ext.len > total) throw new InvalidModelFileError('numpy', `${where}: truncated .npy: the header runs past the end of the data`);
  const all = await read(0, ext.start + ext.len);
  if (!all) return undefined;
  if (all.length < ext.start + ext.len) throw new InvalidModelFileError('numpy', `${where}: truncated .npy header`);
  const text = new TextDecoder(ext.utf8 ? 'utf-8' : 'latin1').decode(all.subarray(ext.start, ext.start + ext.len));
  let header: Py;
  try {
    header = parsePyLiteral(text);
  } catch (err) {
    throw new InvalidModelFileError('numpy', `${where}: bad .npy header: ${(err as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header) || 'tuple' in header) {
    throw new InvalidModelFileError('numpy', `${where}: bad .npy header: not a dict`);
  }
  const h = header as Record<string, Py>;
  const descr = h.descr;
  const fortran = h.fortran_order;
  const shapeV = h.shape;
  if (descr === undefined || typeof fortran !== 'boolean' || typeof shapeV !== 'object' || shapeV === null || !('tuple' in shapeV)) {
    throw new InvalidModelFileError('numpy', `${where}: bad .npy header: needs 'descr', 'fortran_order' and a 'shape' tuple`);
  }
  const shape: number[] = [];
  let count = 1;
  for (const d of shapeV.tuple as Py[]) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw new InvalidModelFileError('numpy', `${where}: bad .npy header: shape must be non-negative integers`);
    shape.push(d);
    count *= d;
  }
  const dtype = dtypeOf(descr);
  if (!dtype) throw new InvalidModelFileError('numpy', `${where}: bad .npy header: unsupported descr ${JSON.stringify(descr).slice(0, 100)}`);
  const dataOffset = ext.start + ext.len;
  const dataBytes = dtype.object ? 0 : count * dtype.itemsize;
  if (!dtype.object && total - dataOffset < dataBytes) {
    throw new InvalidModelFileError('numpy', `${where}: truncated .npy: the array needs ${dataBytes} bytes of data, ${total - dataOffset} are present`);
  }
  return { version: ext.version, dtype: dtype.name, shape, count, fortranOrder: fortran, object: dtype.object, dataOffset, dataBytes };
}

/** Findings of an object array's pickle payload (best effort; it is unsafe regardless). */
async function objectFindings(src: FileSource, start: number, where: string): Promise<{ findings: SafetyFinding[]; globals: string[] }> {
  const findings: SafetyFinding[] = [{ global: `${where} (dtype object)`, reason: OBJECT_REASON }];
  let globals: string[] = [];
  try {
    const scan = await scanPickle(src, start, src.size, { format: 'numpy', pickles: 1 });
    globals = scan.globals;
    findings.push(...scan.findings.slice(0, 100));
  } catch (err) {
    if (!(err instanceof InvalidModelFileError)) throw err;
  }
  return { findings, globals };
}

export const detectNumpy: Detector = async (file) => {
  const ext = extOf(file.path);
  const head = await file.read(0, 8);
  if (MAGIC.every((b, i) => head[i] === b)) return npy(file);
  if (ext === '.npy') throw new InvalidModelFileError('numpy', `not a valid .npy file: no \\x93NUMPY magic`);
  if (await hasZipMagic(file)) {
    const dir = await openZipFor(file, 'numpy', ext === '.npz');
    if (!dir) return undefined;
    return npz(file, dir, ext === '.npz');
  }
  if (ext === '.npz') throw new InvalidModelFileError('numpy', 'not a valid .npz file: it is not a zip archive');
  return undefined;
};

async function npy(file: FileSource): Promise<FileFormat> {
  const info = (await parseNpy((o, n) => file.read(o, n), file.size, file.path))!;
  const details = { version: info.version, dtype: info.dtype, shape: info.shape, fortran_order: info.fortranOrder };
  if (info.object) {
    const { findings, globals } = await objectFindings(file, info.dataOffset, file.path);
    return { format: 'numpy', framework: 'numpy', safety: safetyOf(findings, [], globals), details };
  }
  return {
    format: 'numpy',
    framework: 'numpy',
    parameters: info.count,
    dtypes: { [info.dtype]: info.count },
    safety: safetyOf([]),
    details,
  };
}

async function npz(file: FileSource, dir: ZipDirectory, claimed: boolean): Promise<FileFormat | undefined> {
  const files = dir.entries.filter((e) => !e.isDirectory);
  const npyNamed = files.filter((e) => e.name.endsWith('.npy')).length;
  if (npyNamed === 0 || (!claimed && npyNamed !== files.length)) {
    if (claimed) throw new InvalidModelFileError('numpy', 'not a valid .npz file: no .npy members');
    return undefined;
  }
  const arrays: Array<Record<string, unknown>> = [];
  const dtypes: Record<string, number> = {};
  const findings: SafetyFinding[] = [];
  const globals: string[] = [];
  const incomplete: string[] = [];
  let parameters = 0;
  let members = 0;
  for (const e of files.slice(0, MAX_MEMBERS_CHECKED)) {
    const read = (o: number, n: number): Promise<Uint8Array | undefined> => (o === 0 ? readZipMemberPrefix(file, dir, e, n, 'numpy') : Promise.resolve(undefined));
    // np.load(…)[key] reads ANY member that starts with the .npy magic as an array,
    // whatever its name; other members come back as raw bytes
    if (!e.name.endsWith('.npy')) {
      const head = await read(0, MAGIC.length);
      if (!head) {
        incomplete.push(`${e.name}: could not be read here, so whether it is an array was not checked`);
        continue;
      }
      if (!MAGIC.every((b, i) => head[i] === b)) continue;
    }
    members++;
    const info = await parseNpy(read, e.uncompressedSize, e.name);
    if (!info) {
      incomplete.push(`${e.name}: could not be read here (encrypted or unsupported compression)`);
      continue;
    }
    const name = e.name.endsWith('.npy') ? e.name.slice(0, -4) : e.name;
    if (arrays.length < MAX_MEMBER_DETAILS) arrays.push({ name, dtype: info.dtype, shape: info.shape, count: info.count });
    if (info.object) {
      if (e.method === 0) {
        const src = subSource(file, await zipMemberDataOffset(file, dir, e, 'numpy'), e.compressedSize, e.name);
        const r = await objectFindings(src, info.dataOffset, e.name);
        for (const f of r.findings) if (findings.length < 1000) findings.push(f);
        for (const g of r.globals) if (!globals.includes(g) && globals.length < 1000) globals.push(g);
      } else findings.push({ global: `${e.name} (dtype object)`, reason: OBJECT_REASON });
    } else {
      parameters += info.count;
      dtypes[info.dtype] = (dtypes[info.dtype] ?? 0) + info.count;
    }
  }
  if (files.length > MAX_MEMBERS_CHECKED) incomplete.push(`only the first ${MAX_MEMBERS_CHECKED} of ${files.length} members were checked`);
  incomplete.push(...unreadEntries(dir));
  const details: Record<string, unknown> = { arrays, array_count: members, compressed: files.some((e) => e.method !== 0) };
  if (incomplete.length > 0) details.unchecked = incomplete.length;
  return {
    format: 'numpy',
    framework: 'numpy',
    parameters,
    dtypes,
    safety: safetyOf(findings, incomplete, globals.length ? globals : undefined),
    details,
  };
}
