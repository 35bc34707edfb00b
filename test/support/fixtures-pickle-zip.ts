// Fixtures for the pickle/zip-based format detectors, built in TypeScript
// (no Python needed): a tiny pickle writer emitting opcodes, a tiny zip
// writer (stored and deflated, optional ZIP64), and builders for PyTorch
// checkpoints (zip and legacy), joblib files, .npy/.npz, .keras, HDF5 and .mar.
import { crc32, deflateRawSync, deflateSync } from 'node:zlib';

const enc = new TextEncoder();

// ---------------------------------------------------------------------------
// Pickle writer

export class PickleWriter {
  private readonly out: number[] = [];
  private nextMemo = 0;

  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
  raw(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this.out.push(b[i]!);
    return this;
  }
  private le(v: number, n: number): this {
    for (let i = 0; i < n; i++) {
      this.out.push(v % 256);
      v = Math.floor(v / 256);
    }
    return this;
  }
  text(s: string): this {
    return this.raw(enc.encode(s));
  }
  proto(v: number): this { return this.raw([0x80, v]); }
  frame(len: number): this { return this.raw([0x95]).le(len, 8); }
  stop(): this { return this.raw([0x2e]); }
  mark(): this { return this.raw([0x28]); }
  pop(): this { return this.raw([0x30]); }
  none(): this { return this.raw([0x4e]); }
  bool(v: boolean): this { return this.raw([v ? 0x88 : 0x89]); }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.raw([0x4b, n]);
    if (n >= 0 && n < 65536) return this.raw([0x4d]).le(n, 2);
    if (n >= -0x80000000 && n < 0x80000000) return this.raw([0x4a]).le(n < 0 ? n + 0x100000000 : n, 4);
    return this.raw([0x8a, 8]).le(n, 8);
  }
  float(): this { return this.raw([0x47, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]); }
  /** SHORT_BINUNICODE */
  str(s: string): this {
    const b = enc.encode(s);
    return this.raw([0x8c, b.length]).raw(b);
  }
  /** BINUNICODE (4-byte length) */
  binUnicode(s: string): this {
    const b = enc.encode(s);
    return this.raw([0x58]).le(b.length, 4).raw(b);
  }
  /** BINUNICODE8 (8-byte length) */
  binUnicode8(s: string): this {
    const b = enc.encode(s);
    return this.raw([0x8d]).le(b.length, 8).raw(b);
  }
  /** protocol-0 STRING 'quoted' */
  string0(s: string): this { return this.text(`S'${s}'\n`); }
  /** protocol-0 UNICODE */
  unicode0(s: string): this { return this.text(`V${s}\n`); }
  shortBinBytes(b: ArrayLike<number>): this { return this.raw([0x43, b.length]).raw(b); }
  global(module: string, name: string): this { return this.text(`c${module}\n${name}\n`); }
  inst(module: string, name: string): this { return this.text(`i${module}\n${name}\n`); }
  stackGlobal(): this { return this.raw([0x93]); }
  /** BINPUT with the next memo index; returns the index through `cb` when wanted */
  memo(): this { const i = this.nextMemo++; return i < 256 ? this.binput(i) : this.longBinput(i); }
  binput(i: number): this { this.nextMemo = Math.max(this.nextMemo, i + 1); return this.raw([0x71, i]); }
  longBinput(i: number): this { this.nextMemo = Math.max(this.nextMemo, i + 1); return this.raw([0x72]).le(i, 4); }
  memoize(): this { this.nextMemo++; return this.raw([0x94]); }
  binget(i: number): this { return this.raw([0x68, i]); }
  longBinget(i: number): this { return this.raw([0x6a]).le(i, 4); }
  put0(i: number): this { return this.text(`p${i}\n`); }
  get0(i: number): this { return this.text(`g${i}\n`); }
  get memoCount(): number { return this.nextMemo; }
  emptyTuple(): this { return this.raw([0x29]); }
  tuple(): this { return this.raw([0x74]); }
  tupleN(n: 1 | 2 | 3): this { return this.raw([0x84 + n]); }
  emptyList(): this { return this.raw([0x5d]); }
  emptyDict(): this { return this.raw([0x7d]); }
  setitem(): this { return this.raw([0x73]); }
  setitems(): this { return this.raw([0x75]); }
  append(): this { return this.raw([0x61]); }
  appends(): this { return this.raw([0x65]); }
  reduce(): this { return this.raw([0x52]); }
  build(): this { return this.raw([0x62]); }
  newobj(): this { return this.raw([0x81]); }
  binpersid(): this { return this.raw([0x51]); }
  ext1(code: number): this { return this.raw([0x82, code]); }
  ext2(code: number): this { return this.raw([0x83]).le(code, 2); }
  ext4(code: number): this { return this.raw([0x84]).le(code, 4); }
  ints(values: number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return concatList(parts);
}

/** concatBytes for more parts than a call takes arguments */
function concatList(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------
// PyTorch

export interface TensorSpec {
  name: string;
  storage: 'FloatStorage' | 'BFloat16Storage' | 'HalfStorage' | 'LongStorage';
  key: string;
  shape: number[];
}

export const ELEMENT_SIZE: Record<TensorSpec['storage'], number> = { FloatStorage: 4, BFloat16Storage: 2, HalfStorage: 2, LongStorage: 8 };

const numelOf = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** A state_dict pickle as torch.save writes it (protocol 2, persistent ids for storages). */
export function stateDictPickle(tensors: TensorSpec[], opts: { legacy?: boolean; protocol?: number } = {}): Uint8Array {
  const w = new PickleWriter().proto(opts.protocol ?? 2);
  w.global('collections', 'OrderedDict').memo().emptyTuple().reduce().memo();
  w.mark();
  for (const t of tensors) {
    w.binUnicode(t.name).memo();
    w.global('torch._utils', '_rebuild_tensor_v2').memo();
    w.mark();
    // persistent id ('storage', torch.XStorage, key, location, numel[, view_metadata])
    w.mark().binUnicode('storage').memo().global('torch', t.storage).memo().binUnicode(t.key).memo().binUnicode('cpu').memo().int(numelOf(t.shape));
    if (opts.legacy) w.none();
    w.tuple().memo().binpersid();
    w.int(0);
    w.ints(t.shape).memo();
    const strides = t.shape.map((_, i) => numelOf(t.shape.slice(i + 1)));
    w.ints(strides).memo();
    w.bool(false);
    w.global('collections', 'OrderedDict').memo().emptyTuple().reduce().memo();
    w.tuple().memo().reduce().memo();
  }
  w.setitems();
  return w.stop().bytes();
}

/** Deterministic tensor bytes. */
export function tensorBytes(t: TensorSpec): Uint8Array {
  const n = numelOf(t.shape) * ELEMENT_SIZE[t.storage];
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + t.key.length) & 0xff;
  return b;
}

export const STATE_DICT: TensorSpec[] = [
  { name: 'encoder.weight', storage: 'FloatStorage', key: '0', shape: [4, 3] },
  { name: 'encoder.bias', storage: 'FloatStorage', key: '1', shape: [4] },
  { name: 'head.weight', storage: 'BFloat16Storage', key: '2', shape: [2, 4] },
];

/** A PyTorch zip checkpoint (torch.save since 1.6): `<prefix>/data.pkl`, `<prefix>/data/<key>`, `<prefix>/version`. */
export function pytorchZip(opts: { prefix?: string; tensors?: TensorSpec[]; extra?: ZipMember[]; dataPkl?: Uint8Array; zip64?: boolean } = {}): Uint8Array {
  const prefix = opts.prefix ?? 'archive';
  const tensors = opts.tensors ?? STATE_DICT;
  const members: ZipMember[] = [
    { name: `${prefix}/data.pkl`, data: opts.dataPkl ?? stateDictPickle(tensors) },
    { name: `${prefix}/.format_version`, data: enc.encode('1') },
    { name: `${prefix}/byteorder`, data: enc.encode('little') },
    ...tensors.map((t) => ({ name: `${prefix}/data/${t.key}`, data: tensorBytes(t), align: 64 })),
    { name: `${prefix}/version`, data: enc.encode('3\n') },
    ...(opts.extra ?? []),
  ];
  return makeZip(members, { zip64: opts.zip64 });
}

/** The legacy (pre-1.6, _use_new_zipfile_serialization=False) torch.save format. */
export function pytorchLegacy(tensors: TensorSpec[] = STATE_DICT, opts: { model?: Uint8Array; dataless?: boolean } = {}): Uint8Array {
  const magic = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
  const protocol = new PickleWriter().proto(2).int(1001).stop().bytes();
  const sys = new PickleWriter().proto(2).emptyDict().memo().mark()
    .binUnicode('protocol_version').int(1001)
    .binUnicode('little_endian').bool(true)
    .binUnicode('type_sizes').emptyDict().memo().mark().binUnicode('short').int(2).binUnicode('int').int(4).binUnicode('long').int(4).setitems()
    .setitems().stop().bytes();
  const legacyTensors = tensors.map((t) => ({ ...t, key: `9${t.key}0417` }));
  const model = opts.model ?? stateDictPickle(legacyTensors, { legacy: true });
  const keys = new PickleWriter().proto(2).emptyList().memo().mark();
  for (const t of [...legacyTensors].sort((a, b) => (a.key < b.key ? -1 : 1))) keys.binUnicode(t.key);
  const keysBytes = keys.appends().stop().bytes();
  const storages: Uint8Array[] = [];
  for (const t of [...legacyTensors].sort((a, b) => (a.key < b.key ? -1 : 1))) {
    const head = new Uint8Array(8);
    new DataView(head.buffer).setBigUint64(0, BigInt(numelOf(t.shape)), true);
    storages.push(head);
    if (!opts.dataless) storages.push(tensorBytes(t));
  }
  return concatBytes(magic, protocol, sys, model, keysBytes, ...storages);
}

// ---------------------------------------------------------------------------
// Safe and malicious pickles

const wrap = (body: (w: PickleWriter) => void, protocol = 2): Uint8Array => {
  const w = new PickleWriter();
  if (protocol >= 2) w.proto(protocol);
  body(w);
  return w.stop().bytes();
};

/** A numpy array pickled with protocol 2, like numpy does (safe). */
export function numpyArrayPickle(): Uint8Array {
  return wrap((w) => {
    w.global('numpy.core.multiarray', '_reconstruct').memo();
    w.global('numpy', 'ndarray').memo().int(0).tupleN(1).memo().shortBinBytes([0x62]).tupleN(3).memo().reduce().memo();
    w.mark().int(1).int(3).tupleN(1).memo();
    w.global('numpy', 'dtype').memo().binUnicode('f8').memo().bool(false).bool(true).tupleN(3).memo().reduce().memo();
    w.mark().int(3).binUnicode('<').memo().none().none().none().int(-1).int(-1).int(0).tuple().memo().build();
    w.bool(false);
    w.global('_codecs', 'encode').memo().binUnicode('\u0000\u0000\u0000\u0000\u0000\u0000\u00f0?').memo().binUnicode('latin1').memo().tupleN(2).memo().reduce().memo();
    w.tuple().memo().build();
  });
}

/** copyreg._reconstructor(collections.OrderedDict, builtins.object, None): safe. */
export function reconstructorPickle(): Uint8Array {
  return wrap((w) => {
    w.global('copy_reg', '_reconstructor').memo();
    w.mark().global('collections', 'OrderedDict').global('__builtin__', 'object').none().tuple().reduce();
  }, 0);
}

export const MALICIOUS: Record<string, { bytes: Uint8Array; expect: string[] }> = {
  /** protocol 0: cos\nsystem\n(S'echo pwned'\ntR. */
  'GLOBAL os.system (protocol 0)': {
    bytes: enc.encode("cos\nsystem\n(S'echo pwned'\ntR."),
    expect: ['os.system'],
  },
  'posix.system normalized to os.system': {
    bytes: wrap((w) => w.global('posix', 'system').string0('id').tupleN(1).reduce()),
    expect: ['os.system'],
  },
  'nt.system normalized to os.system': {
    bytes: wrap((w) => w.global('nt', 'system').binUnicode('id').tupleN(1).reduce()),
    expect: ['os.system'],
  },
  'STACK_GLOBAL with names from memo (BINGET)': {
    bytes: wrap((w) => {
      w.str('os').binput(0).pop().str('system').binput(1).pop();
      w.str('torch').pop(); // noise
      w.binget(0).binget(1).stackGlobal().str('id').tupleN(1).reduce();
    }, 4),
    expect: ['os.system'],
  },
  'names split across memo (LONG_BINPUT module, MEMOIZE name)': {
    bytes: wrap((w) => {
      w.str('subprocess').longBinput(70000).pop();
      w.str('check_output').memoize().pop(); // MEMOIZE stores at len(memo) = 1
      w.longBinget(70000).binget(1).stackGlobal().mark().str('id').emptyList().tuple().reduce();
    }, 4),
    expect: ['subprocess.check_output'],
  },
  'builtins.getattr reaching os.system': {
    bytes: wrap((w) => {
      w.global('builtins', 'getattr').memo();
      w.global('builtins', '__import__').str('os').tupleN(1).reduce();
      w.str('system').tupleN(2).reduce();
      w.str('id').tupleN(1).reduce();
    }, 4),
    expect: ['builtins.getattr', 'builtins.__import__', 'os.system'],
  },
  'BINUNICODE8 strings for STACK_GLOBAL': {
    bytes: wrap((w) => w.binUnicode8('builtins').binUnicode8('eval').stackGlobal().binUnicode8('1+1').tupleN(1).reduce(), 4),
    expect: ['builtins.eval'],
  },
  'BINUNICODE strings for STACK_GLOBAL': {
    bytes: wrap((w) => w.binUnicode('builtins').binUnicode('exec').stackGlobal().binUnicode('pass').tupleN(1).reduce(), 4),
    expect: ['builtins.exec'],
  },
  'protocol-0 UNICODE strings for STACK_GLOBAL': {
    bytes: wrap((w) => w.unicode0('runpy').unicode0('_run_code').stackGlobal().unicode0('x').tupleN(1).reduce(), 4),
    expect: ['runpy._run_code'],
  },
  'malicious pickle after a benign one (after STOP)': {
    bytes: concatBytes(wrap((w) => w.emptyDict().str('a').int(1).setitem(), 4), enc.encode("cos\nsystem\n(S'id'\ntR.")),
    expect: ['os.system'],
  },
  'malicious protocol-4 pickle after STOP, starting with SHORT_BINUNICODE': {
    bytes: concatBytes(wrap((w) => w.emptyList(), 2), new PickleWriter().str('os').str('system').stackGlobal().str('id').tupleN(1).reduce().stop().bytes()),
    expect: ['os.system'],
  },
  'INST opcode': {
    bytes: enc.encode("(S'id'\nios\nsystem\n."),
    expect: ['os.system'],
  },
  'EXT1 opcode': {
    bytes: wrap((w) => w.ext1(7).emptyTuple().reduce()),
    expect: ['<extension code 7>'],
  },
  'EXT2 opcode': {
    bytes: wrap((w) => w.ext2(300).emptyTuple().reduce()),
    expect: ['<extension code 300>'],
  },
  'EXT4 opcode': {
    bytes: wrap((w) => w.ext4(70000).emptyTuple().reduce()),
    expect: ['<extension code 70000>'],
  },
  'protocol-0 GLOBAL with odd whitespace': {
    bytes: enc.encode("c os \n system\n(S'id'\ntR."),
    expect: ['" os . system"'],
  },
  'GLOBAL module with dots (posixpath → os.path)': {
    bytes: enc.encode("cposixpath\njoin\n(S'a'\nS'b'\ntR."),
    expect: ['os.path.join'],
  },
  'functools.partial': {
    bytes: wrap((w) => w.global('functools', 'partial').global('os', 'system').tupleN(1).reduce()),
    expect: ['functools.partial', 'os.system'],
  },
  'operator.attrgetter': {
    bytes: wrap((w) => w.global('operator', 'attrgetter').str('x').tupleN(1).reduce(), 4),
    expect: ['operator.attrgetter'],
  },
  'pydoc.locate': {
    bytes: wrap((w) => w.global('pydoc', 'locate').str('os.system').tupleN(1).reduce(), 4),
    expect: ['pydoc.locate'],
  },
  'webbrowser.open': {
    bytes: wrap((w) => w.global('webbrowser', 'open').str('http://x').tupleN(1).reduce(), 4),
    expect: ['webbrowser.open'],
  },
  'torch.storage._load_from_bytes': {
    bytes: wrap((w) => w.global('torch.storage', '_load_from_bytes').shortBinBytes([1, 2]).tupleN(1).reduce()),
    expect: ['torch.storage._load_from_bytes'],
  },
  'unknown global never seen before': {
    bytes: wrap((w) => w.global('mypackage.models', 'Net').emptyTuple().newobj().emptyDict().build()),
    expect: ['mypackage.models.Net'],
  },
};

/** A joblib file: an (sklearn or plain) object with a numpy array written raw after its NumpyArrayWrapper. */
export function joblibFile(opts: { sklearn?: boolean; objectArray?: boolean } = {}): Uint8Array {
  const w = new PickleWriter().proto(4).frame(0);
  if (opts.sklearn) {
    w.str('sklearn.linear_model._base').memoize().str('LinearRegression').memoize().stackGlobal().memoize();
    w.emptyTuple().newobj().memoize();
  }
  w.emptyDict().memoize().mark();
  w.str('coef_').memoize();
  w.str('joblib.numpy_pickle').memoize().str('NumpyArrayWrapper').memoize().stackGlobal().memoize();
  w.emptyTuple().newobj().memoize();
  w.emptyDict().memoize().mark();
  w.str('subclass').memoize().str('numpy').memoize().str('ndarray').memoize().stackGlobal().memoize();
  w.str('shape').memoize().int(3).tupleN(1).memoize();
  w.str('order').memoize().str('C').memoize();
  w.str('dtype').memoize().str('numpy').str('dtype').stackGlobal().memoize();
  w.str(opts.objectArray ? 'O8' : 'f8').memoize().bool(false).bool(true).tupleN(3).memoize().reduce().memoize();
  w.mark().int(3).str('<').memoize().none().none().none().int(-1).int(-1).int(opts.objectArray ? 63 : 0).tuple().memoize().build();
  w.str('allow_mmap').memoize().bool(!opts.objectArray);
  w.str('numpy_array_alignment_bytes').memoize().int(16);
  w.setitems().build();
  if (opts.objectArray) {
    // object arrays: a nested protocol-2 pickle follows
    w.raw(new PickleWriter().proto(2).global('builtins', 'eval').str('1').tupleN(1).reduce().stop().bytes());
  } else {
    const pad = 5;
    w.raw([pad, 0xff, 0xff, 0xff, 0xff, 0xff]);
    // 3 float64 with bytes that would be invalid opcodes (0xff)
    w.raw(new Uint8Array(24).fill(0xff));
  }
  w.str('intercept_').memoize().float();
  w.setitems();
  if (opts.sklearn) w.build();
  return w.stop().bytes();
}

// ---------------------------------------------------------------------------
// Joblib files crafted opcode by opcode, for the corners of how joblib's
// NumpyUnpickler reads an array after BUILD of a NumpyArrayWrapper: a nested
// pickle when dtype.hasobject (numpy takes it from the pickled dtype flags),
// else padding then count × itemsize raw bytes. Each case says what a scanner
// must answer; the `runs` ones call os.system(command) when joblib.load reads
// them (test/formats-pickle-zip.test.ts proves that with real joblib).

export interface NpDtypeSpec {
  descr: string;
  /** the pickled dtype flags: bit 0 is hasobject */
  flags: number;
  /** the pickled elsize (numpy uses it for flexible types only) */
  elsize?: number;
  fields?: Array<[string, NpDtypeSpec]>;
}

export const NP_OBJECT: NpDtypeSpec = { descr: 'O8', flags: 63 };
export const NP_FLOAT64: NpDtypeSpec = { descr: 'f8', flags: 0 };
/** np.dtype([('a', 'O')]) as numpy pickles it */
export const NP_OBJECT_FIELD: NpDtypeSpec = { descr: 'V8', flags: 27, elsize: 8, fields: [['a', NP_OBJECT]] };

/** numpy.dtype(descr, False, True), then BUILD (3, endian, None, names, fields, elsize, alignment, flags) */
export function writeNpDtype(w: PickleWriter, d: NpDtypeSpec): PickleWriter {
  w.global('numpy', 'dtype').str(d.descr).bool(false).bool(true).tupleN(3).reduce();
  w.mark().int(3).str(/^[OV]/.test(d.descr) ? '|' : '<').none();
  if (d.fields) {
    w.mark();
    for (const [name] of d.fields) w.str(name);
    w.tuple().emptyDict().mark();
    d.fields.forEach(([name, sub], i) => {
      w.str(name);
      writeNpDtype(w, sub).int(8 * i).tupleN(2);
    });
    w.setitems();
  } else w.none().none();
  return w.int(d.elsize ?? -1).int(d.elsize === undefined ? -1 : 8).int(d.flags).tuple().build();
}

type Attr = [string, (w: PickleWriter) => void];

/** BUILD state of a wrapper: a dict of attributes, as joblib writes it (plus `extra`). */
function wrapperState(w: PickleWriter, dtype: NpDtypeSpec | undefined, shape: number[] | undefined, extra: Attr[] = []): PickleWriter {
  const attrs: Attr[] = [];
  if (dtype) attrs.push(['subclass', (x) => x.global('numpy', 'ndarray')], ['order', (x) => x.str('C')], ['dtype', (x) => writeNpDtype(x, dtype)], ['allow_mmap', (x) => x.bool(false)]);
  if (shape) attrs.push(['shape', (x) => x.ints(shape)]);
  w.emptyDict().mark();
  for (const [k, v] of [...attrs, ...extra]) {
    w.str(k);
    v(w);
  }
  return w.setitems().build();
}

const newWrapper = (w: PickleWriter): PickleWriter => w.global('joblib.numpy_pickle', 'NumpyArrayWrapper').emptyTuple().newobj();
const system = (w: PickleWriter, command: string): PickleWriter => w.global('os', 'system').str(command).tupleN(1).reduce();
/** the pickle joblib reads for an object array: here one that runs the command */
const objectPayload = (command: string): Uint8Array => system(new PickleWriter().proto(2), command).pop().none().stop().bytes();

export interface CraftedJoblib {
  bytes: Uint8Array;
  verdict: 'unsafe' | 'unknown';
  /** joblib.load runs the command */
  runs: boolean;
}

export function craftedJoblib(command = 'true'): Record<string, CraftedJoblib> {
  const raw = (n: number): Uint8Array => new Uint8Array(n).fill(0x2e); // raw array bytes: STOP opcodes, to trip a scanner that walks them
  const out: Record<string, CraftedJoblib> = {};
  // a dtype with an object field but pickled flags saying "no objects": joblib reads raw bytes as object pointers
  {
    const w = newWrapper(new PickleWriter().proto(2));
    wrapperState(w, { ...NP_OBJECT_FIELD, flags: 0 }, [1]).raw(new Uint8Array(8));
    out['object field, flags deny it'] = { bytes: w.stop().bytes(), verdict: 'unsafe', runs: false };
  }
  // a float64 dtype whose pickled flags say hasobject: joblib unpickles what follows
  {
    const w = newWrapper(new PickleWriter().proto(2));
    wrapperState(w, { ...NP_FLOAT64, flags: 63 }, [1]).raw(objectPayload(command));
    out['float64 with the hasobject flag'] = { bytes: w.stop().bytes(), verdict: 'unsafe', runs: true };
  }
  // numpy ignores the pickled elsize of a non-flexible type: 8 bytes of data, not 100
  {
    const w = newWrapper(new PickleWriter().proto(2));
    wrapperState(w, { ...NP_FLOAT64, elsize: 100 }, [1]).raw(raw(8));
    system(w, command).pop().raw(raw(100));
    out['elsize of a float64 ignored'] = { bytes: w.stop().bytes(), verdict: 'unsafe', runs: true };
  }
  // the dtype's last BUILD decides: flags 0, then flags 63
  {
    const w = new PickleWriter().proto(2);
    writeNpDtype(w, { descr: 'V8', flags: 0, elsize: 8 }).memo();
    w.pop();
    w.binget(0).mark().int(3).str('|').none().none().none().int(8).int(1).int(63).tuple().build().pop();
    newWrapper(w);
    w.emptyDict().mark().str('shape').ints([1]).str('dtype').binget(0).setitems().build();
    w.raw(objectPayload(command));
    out['dtype rebuilt with the hasobject flag'] = { bytes: w.stop().bytes(), verdict: 'unsafe', runs: true };
  }
  // a memoized wrapper BUILT again: joblib reads a second array, with the merged attributes
  {
    const w = new PickleWriter().proto(2);
    newWrapper(w).memo();
    wrapperState(w, NP_FLOAT64, [1]).raw(raw(8)).pop();
    w.binget(0).emptyDict().mark().str('shape').ints([3]).setitems().build().raw(raw(24)).pop();
    system(w, command).pop().none();
    out['wrapper built twice'] = { bytes: w.stop().bytes(), verdict: 'unsafe', runs: true };
  }
  // any alignment attribute but None means a padding byte and padding
  {
    const w = newWrapper(new PickleWriter().proto(2));
    wrapperState(w, NP_FLOAT64, [1], [['numpy_array_alignment_bytes', (x) => x.str('x')]]).raw([4, 0x2e, 0x2e, 0x2e, 0x2e]).raw(raw(8));
    system(w, command).pop();
    out['padding announced by a string'] = { bytes: w.stop().bytes(), verdict: 'unsafe', runs: true };
  }
  // inside an object array's pickle, a wrapper is a plain object: nothing is read after its BUILD
  {
    const nested = newWrapper(new PickleWriter().proto(2));
    wrapperState(nested, NP_FLOAT64, [1000]).pop();
    system(nested, command).stop();
    const w = newWrapper(new PickleWriter().proto(2));
    wrapperState(w, NP_OBJECT, [1]).raw(nested.bytes());
    out['wrapper inside an object array pickle'] = { bytes: w.stop().bytes(), verdict: 'unsafe', runs: true };
  }
  // a frame that runs past the wrapper's BUILD: the data is read after the frame, the frame's rest later
  {
    const body = newWrapper(new PickleWriter());
    wrapperState(body, NP_FLOAT64, [1]).raw(raw(8));
    const b = body.bytes();
    out['frame running past the BUILD'] = { bytes: new PickleWriter().proto(4).frame(b.length).raw(b).stop().bytes(), verdict: 'unknown', runs: false };
  }
  // the wrapper made by calling its class (attributes from __init__, not the state)
  {
    const w = new PickleWriter().proto(2).global('joblib.numpy_pickle', 'NumpyArrayWrapper');
    w.mark().global('numpy', 'ndarray').ints([1]).str('C');
    writeNpDtype(w, NP_FLOAT64).tuple().reduce().emptyDict().build().raw(raw(8));
    out['wrapper built by calling its class'] = { bytes: w.stop().bytes(), verdict: 'unknown', runs: false };
  }
  // an object array's pickle whose frame runs past its STOP
  {
    const inner = new PickleWriter().none().stop().raw([0xff, 0xff]).bytes();
    const w = newWrapper(new PickleWriter().proto(2));
    wrapperState(w, NP_OBJECT, [1]).raw(new PickleWriter().proto(4).frame(inner.length).raw(inner).bytes());
    out['object array pickle with a frame past its STOP'] = { bytes: w.stop().bytes(), verdict: 'unknown', runs: false };
  }
  return out;
}

export const zlibCompress = (b: Uint8Array): Uint8Array => new Uint8Array(deflateSync(b));

// ---------------------------------------------------------------------------
// Zip writer

export interface ZipMember {
  name: string;
  data: Uint8Array;
  /** 0 stored (default), 8 deflate */
  method?: 0 | 8;
  /** align stored data to this many bytes (PyTorch aligns to 64) */
  align?: number;
}

/** `eocdEntries`: the entry count written in the end record (default: the true count; 16 bits without ZIP64) */
export function makeZip(members: ZipMember[], opts: { zip64?: boolean; comment?: string; eocdEntries?: number } = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const m of members) {
    const name = enc.encode(m.name);
    const method = m.method ?? 0;
    const body = method === 8 ? new Uint8Array(deflateRawSync(m.data)) : m.data;
    const crc = crc32(m.data) >>> 0;
    let extraLen = 0;
    if (m.align) {
      const dataAt = offset + 30 + name.length + 4;
      extraLen = 4 + ((m.align - (dataAt % m.align)) % m.align);
    }
    const lh = new DataView(new ArrayBuffer(30 + name.length + extraLen));
    lh.setUint32(0, 0x04034b50, true);
    lh.setUint16(4, 20, true);
    lh.setUint16(6, 0x800, true);
    lh.setUint16(8, method, true);
    lh.setUint32(14, crc, true);
    lh.setUint32(18, body.length, true);
    lh.setUint32(22, m.data.length, true);
    lh.setUint16(26, name.length, true);
    lh.setUint16(28, extraLen, true);
    const lhb = new Uint8Array(lh.buffer);
    lhb.set(name, 30);
    if (extraLen) {
      lh.setUint16(30 + name.length, 0x4b50, true); // arbitrary padding field id
      lh.setUint16(32 + name.length, extraLen - 4, true);
    }
    // ZIP64 variant: the central entry carries the local header offset in a ZIP64 extra field
    const z64 = opts.zip64 === true;
    const ch = new DataView(new ArrayBuffer(46 + name.length + (z64 ? 12 : 0)));
    ch.setUint32(0, 0x02014b50, true);
    ch.setUint16(4, 45, true);
    ch.setUint16(6, 20, true);
    ch.setUint16(8, 0x800, true);
    ch.setUint16(10, method, true);
    ch.setUint32(16, crc, true);
    ch.setUint32(20, body.length, true);
    ch.setUint32(24, m.data.length, true);
    ch.setUint16(28, name.length, true);
    ch.setUint16(30, z64 ? 12 : 0, true);
    ch.setUint32(42, z64 ? 0xffffffff : offset, true);
    const chb = new Uint8Array(ch.buffer);
    chb.set(name, 46);
    if (z64) {
      ch.setUint16(46 + name.length, 0x0001, true);
      ch.setUint16(48 + name.length, 8, true);
      ch.setBigUint64(50 + name.length, BigInt(offset), true);
    }
    parts.push(lhb, body);
    central.push(chb);
    offset += lhb.length + body.length;
  }
  const cd = concatList(central);
  const cdOffset = offset;
  const tail: Uint8Array[] = [cd];
  const comment = enc.encode(opts.comment ?? '');
  if (opts.zip64) {
    const rec = new DataView(new ArrayBuffer(56));
    rec.setUint32(0, 0x06064b50, true);
    rec.setBigUint64(4, 44n, true);
    rec.setUint16(12, 45, true);
    rec.setUint16(14, 45, true);
    rec.setBigUint64(24, BigInt(members.length), true);
    rec.setBigUint64(32, BigInt(members.length), true);
    rec.setBigUint64(40, BigInt(cd.length), true);
    rec.setBigUint64(48, BigInt(cdOffset), true);
    const loc = new DataView(new ArrayBuffer(20));
    loc.setUint32(0, 0x07064b50, true);
    loc.setBigUint64(8, BigInt(cdOffset + cd.length), true);
    loc.setUint32(16, 1, true);
    tail.push(new Uint8Array(rec.buffer), new Uint8Array(loc.buffer));
  }
  const eocd = new DataView(new ArrayBuffer(22 + comment.length));
  eocd.setUint32(0, 0x06054b50, true);
  const count = opts.zip64 ? 0xffff : (opts.eocdEntries ?? members.length) & 0xffff;
  eocd.setUint16(8, count, true);
  eocd.setUint16(10, count, true);
  eocd.setUint32(12, opts.zip64 ? 0xffffffff : cd.length, true);
  eocd.setUint32(16, opts.zip64 ? 0xffffffff : cdOffset, true);
  eocd.setUint16(20, comment.length, true);
  const eocdb = new Uint8Array(eocd.buffer);
  eocdb.set(comment, 22);
  tail.push(eocdb);
  return concatList([...parts, ...tail]);
}

// ---------------------------------------------------------------------------
// NumPy

export function makeNpy(descr: string, shape: number[], data: Uint8Array, opts: { version?: 1 | 2 | 3; fortran?: boolean; rawHeader?: string } = {}): Uint8Array {
  const version = opts.version ?? 1;
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = opts.rawHeader ?? `{'descr': '${descr}', 'fortran_order': ${opts.fortran ? 'True' : 'False'}, 'shape': ${shapeText}, }`;
  const pre = version === 1 ? 10 : 12;
  const total = Math.ceil((pre + header.length + 1) / 64) * 64;
  header = header.padEnd(total - pre - 1, ' ') + '\n';
  const h = enc.encode(header);
  const out = new Uint8Array(pre + h.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, h.length, true);
  else dv.setUint32(8, h.length, true);
  out.set(h, pre);
  out.set(data, pre + h.length);
  return out;
}

export function float32Bytes(n: number): Uint8Array {
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = i / 2;
  return new Uint8Array(f.buffer);
}

// ---------------------------------------------------------------------------
// Keras, HDF5, TorchServe

export const HDF5_SIG = Uint8Array.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

export function h5File(opts: { text?: string; offset?: number; size?: number } = {}): Uint8Array {
  const off = opts.offset ?? 0;
  const out = new Uint8Array(Math.max(opts.size ?? 4096, off + 1024));
  out.set(HDF5_SIG, off);
  out[off + 8] = 0; // superblock version 0
  if (opts.text) out.set(enc.encode(opts.text), off + 96);
  return out;
}

export function kerasConfig(opts: { lambda?: boolean; custom?: boolean; tfop?: boolean } = {}): unknown {
  const layers: unknown[] = [
    { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 4], name: 'input' }, registered_name: null },
    {
      module: 'keras.layers',
      class_name: 'Dense',
      config: { units: 8, activation: 'relu', kernel_initializer: { module: 'keras.initializers', class_name: 'GlorotUniform', config: { seed: null }, registered_name: null } },
      registered_name: null,
    },
  ];
  if (opts.lambda) layers.push({ module: 'keras.layers', class_name: 'Lambda', config: { function: { class_name: '__lambda__', config: { code: '4wEAAAAAAAAA', defaults: null, closure: null } } }, registered_name: null });
  if (opts.custom) layers.push({ module: 'my_project.layers', class_name: 'Attention', config: { units: 4 }, registered_name: 'MyProject>Attention' });
  if (opts.tfop) layers.push({ module: 'keras.layers', class_name: 'TFOpLambda', config: { function: 'math.add' }, registered_name: null });
  layers.push({ module: 'keras.layers', class_name: 'Dense', config: { units: 1 }, registered_name: null });
  return { module: 'keras', class_name: 'Sequential', config: { name: 'sequential', layers }, registered_name: null };
}

export function kerasFile(opts: { lambda?: boolean; custom?: boolean; tfop?: boolean; config?: Uint8Array } = {}): Uint8Array {
  return makeZip([
    { name: 'metadata.json', data: enc.encode(JSON.stringify({ keras_version: '3.3.3', date_saved: '2024-05-01@12:00:00' })), method: 8 },
    { name: 'config.json', data: opts.config ?? enc.encode(JSON.stringify(kerasConfig(opts))), method: 8 },
    { name: 'model.weights.h5', data: h5File({ size: 2048 }) },
  ]);
}

export function marFile(opts: { extra?: ZipMember[]; deflateModel?: boolean } = {}): Uint8Array {
  const manifest = {
    createdOn: '01/05/2024 12:00:00',
    runtime: 'python',
    model: { modelName: 'resnet', serializedFile: 'model.pt', handler: 'image_classifier', modelVersion: '1.0' },
    archiverVersion: '0.11.0',
  };
  return makeZip([
    { name: 'MAR-INF/MANIFEST.json', data: enc.encode(JSON.stringify(manifest)), method: 8 },
    { name: 'handler.py', data: enc.encode('def handle(data, context):\n    return data\n'), method: 8 },
    { name: 'model.pt', data: pytorchZip(), method: opts.deflateModel ? 8 : 0 },
    ...(opts.extra ?? []),
  ]);
}

/** A FileSource of `size` bytes: `real` then zeros, counting the bytes read (multi-GB files without the memory). */
export function virtualSource(path: string, real: Uint8Array, size: number): { source: import('../../src/formats/types.ts').FileSource; bytesRead: () => number } {
  let read = 0;
  return {
    bytesRead: () => read,
    source: {
      path,
      size,
      async read(offset: number, length: number) {
        const end = Math.min(size, offset + length);
        const n = Math.max(0, end - offset);
        read += n;
        const out = new Uint8Array(n);
        if (offset < real.length) out.set(real.subarray(offset, Math.min(real.length, end)));
        return out;
      },
    },
  };
}
