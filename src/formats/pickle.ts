// A pickle opcode walker (protocols 0–5) that never executes anything. It
// streams through a byte range of a FileSource in bounded windows, simulates
// the unpickler's stack and memo just enough to resolve which globals the
// pickle imports (GLOBAL, STACK_GLOBAL through the memo, INST, EXT codes) and
// which calls it makes, and keeps walking after STOP while further pickles
// follow. Safety is an ALLOWLIST: any imported global that is not known to be
// safe makes the pickle unsafe.
//
// Every limit (opcodes, stack, memo, kept strings, container items) is fixed,
// so a hostile stream can make the walk give up (verdict `unknown`) but cannot
// make it allocate without bound or run for long. So does anything the walker
// cannot follow byte for byte the way the unpickler reads it (e.g. where a
// joblib array's data ends): it stops, `unknown`, rather than guess.
import { InvalidModelFileError, type FileSource, type SafetyFinding, type TensorInfo } from './types.ts';

// ---------------------------------------------------------------------------
// The allowlist

const TORCH_STORAGES: Record<string, string> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  ComplexFloatStorage: 'complex64',
  ComplexDoubleStorage: 'complex128',
  QInt8Storage: 'qint8',
  QUInt8Storage: 'quint8',
  QInt32Storage: 'qint32',
  QUInt4x2Storage: 'quint4x2',
  QUInt2x4Storage: 'quint2x4',
  UntypedStorage: 'uint8',
};

/** bytes per element of each dtype named by TORCH_STORAGES */
export const DTYPE_SIZES: Record<string, number> = {
  float32: 4, float16: 2, bfloat16: 2, float64: 8, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
  complex64: 8, complex128: 16, qint8: 1, quint8: 1, qint32: 4, quint4x2: 1, quint2x4: 1,
};

const TORCH_DTYPES = [
  'float32', 'float', 'float64', 'double', 'float16', 'half', 'bfloat16', 'int8', 'uint8', 'int16', 'short', 'int32', 'int',
  'int64', 'long', 'uint16', 'uint32', 'uint64', 'bool', 'complex32', 'chalf', 'complex64', 'cfloat', 'complex128', 'cdouble',
  'float8_e4m3fn', 'float8_e5m2', 'float8_e4m3fnuz', 'float8_e5m2fnuz', 'float8_e8m0fnu', 'qint8', 'quint8', 'qint32', 'quint4x2', 'quint2x4',
];

/**
 * Globals known to be safe to import during unpickling: each only builds data
 * (tensors, storages, containers, numpy arrays) from its arguments.
 *
 * copyreg._reconstructor(cls, base, state) is on the list deliberately: it
 * only calls base.__new__(cls, state) and base.__init__(obj, state) (or
 * object.__new__(cls)), and a pickle can name cls and base only through a
 * GLOBAL-like opcode, which this walker checks against this same list — so
 * it can only construct instances of classes that are themselves allowed.
 */
export const SAFE_GLOBALS: ReadonlySet<string> = new Set<string>([
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor_v3',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch._utils._rebuild_qtensor',
  ...Object.keys(TORCH_STORAGES).map((s) => `torch.${s}`),
  'torch.Size',
  'torch.device',
  ...TORCH_DTYPES.map((d) => `torch.${d}`),
  'collections.OrderedDict',
  'builtins.set',
  'builtins.frozenset',
  'builtins.bytearray',
  'builtins.slice',
  'builtins.complex',
  'builtins.object',
  '_codecs.encode',
  'numpy.core.multiarray._reconstruct',
  'numpy._core.multiarray._reconstruct',
  'numpy.ndarray',
  'numpy.dtype',
  'numpy.core.multiarray.scalar',
  'numpy._core.multiarray.scalar',
  'numpy.core.numeric._frombuffer',
  'numpy._core.numeric._frombuffer',
  'copyreg._reconstructor',
]);

/** The joblib wrapper for numpy arrays (allowed only inside joblib files). */
export const JOBLIB_WRAPPER = 'joblib.numpy_pickle.NumpyArrayWrapper';

const MODULE_ALIASES: Record<string, string> = {
  posix: 'os',
  nt: 'os',
  posixpath: 'os.path',
  ntpath: 'os.path',
  macpath: 'os.path',
  genericpath: 'os.path',
  __builtin__: 'builtins',
  copy_reg: 'copyreg',
  _io: 'io',
  _posixsubprocess: 'subprocess',
};

/** `module.name` with platform and Python 2 module aliases mapped to their usual names (posix → os, __builtin__ → builtins). */
export function normalizeGlobal(module: string, name: string): string {
  let m = module;
  const head = m.split('.')[0] ?? m;
  const alias = MODULE_ALIASES[head];
  if (alias !== undefined) m = alias + m.slice(head.length);
  return `${m}.${name}`;
}

const COMMANDS = 'which can run commands';
const DANGEROUS: Array<[RegExp, string]> = [
  [/^(os|subprocess|pty|commands|popen2|platform|multiprocessing|asyncio\.subprocess)(\.|$)/, COMMANDS],
  [/^builtins\.(eval|exec|compile|execfile|input|breakpoint)$/, 'which runs arbitrary Python code'],
  [/^builtins\.(__import__|globals|locals|vars)$/, 'which can import modules and reach any function'],
  [/^builtins\.(getattr|setattr|delattr)$/, 'which can reach any attribute, e.g. os.system'],
  [/^builtins\.(open|file)$/, 'which can read and write files'],
  [/^(importlib|imp|runpy|pkgutil|zipimport|code|codeop|pydoc|inspect)(\.|$)/, 'which can import and run code'],
  [/^(sys|ctypes|_ctypes|signal|threading|_thread|gc|resource)(\.|$)/, 'which can control the interpreter'],
  [/^(socket|http|urllib|urllib2|requests|webbrowser|ftplib|smtplib|telnetlib|ssl|xmlrpc|asyncio)(\.|$)/, 'which can open network connections'],
  [/^(shutil|tempfile|pathlib|io|glob|fileinput|zipfile|tarfile|_io)(\.|$)/, 'which can read and write files'],
  [/^(functools\.partial|functools\.reduce|operator\.(attrgetter|methodcaller|itemgetter|call))$/, 'which can call functions chosen by the pickle'],
  [/^(pickle|_pickle|cPickle|marshal|dill|cloudpickle|types|shelve)(\.|$)/, 'which can build and run code'],
  [/^(sklearn|scikit_learn)(\.|$)/, 'sklearn objects run code when unpickled'],
  [/^__torch__(\.|$)/, 'a TorchScript class: its compiled code runs when the model is loaded'],
];

/** Why a global is not safe, or undefined when it is on the allowlist. */
export function classifyGlobal(name: string, extraAllowed?: ReadonlySet<string>): string | undefined {
  if (SAFE_GLOBALS.has(name) || extraAllowed?.has(name)) return undefined;
  const clean = name.replace(/\s+/g, '');
  for (const [re, why] of DANGEROUS) {
    if (re.test(clean)) return why.startsWith('which') ? `imports ${clean}, ${why}` : why;
  }
  return 'not on the allowlist of known-safe globals';
}

// ---------------------------------------------------------------------------
// Values the walker tracks (just enough structure to resolve names and tensors)

type V =
  | { k: 'str'; s: string | undefined }
  | { k: 'bytes' }
  | { k: 'int'; v: number }
  | { k: 'float' }
  | { k: 'none' }
  | { k: 'bool'; v: boolean }
  | { k: 'global'; name: string }
  // partial: items were dropped (limits), so the container is not known exactly
  | { k: 'tuple'; items: V[]; partial?: true }
  | { k: 'list'; items: V[]; partial?: true }
  | { k: 'dict'; items: Array<[V, V]>; partial?: true }
  | { k: 'set' }
  | Call
  | { k: 'pid'; pid: V }
  | { k: 'tensor'; dtype: string; shape: number[] }
  | { k: 'any' };

/**
 * An object built by calling fn (REDUCE, INST/OBJ with arguments: `call`) or
 * by fn.__new__ (NEWOBJ, INST/OBJ without arguments: `new`); `state` is the
 * last BUILD state applied to it, `attrs` a joblib array wrapper's attributes.
 */
interface Call {
  k: 'call';
  fn: V;
  args: V;
  ctor: 'call' | 'new';
  state?: V;
  attrs?: Map<string, V>;
}

const ANY: V = { k: 'any' };
const NONE: V = { k: 'none' };

/** Limits of one walk. */
export interface PickleLimits {
  maxOps: number;
  maxStack: number;
  maxMemo: number;
  /** strings longer than this are tracked without their content */
  maxKeptString: number;
  /** total container items kept (beyond this, containers are counted, not kept) */
  maxKeptItems: number;
  /** longest protocol-0 text line */
  maxLine: number;
  maxGlobals: number;
  maxTensors: number;
}

export const DEFAULT_LIMITS: PickleLimits = {
  maxOps: 10_000_000,
  maxStack: 500_000,
  maxMemo: 1_000_000,
  maxKeptString: 4096,
  maxKeptItems: 2_000_000,
  maxLine: 1 << 20,
  maxGlobals: 10_000,
  maxTensors: 100_000,
};

const KEEP_PER_CONTAINER = 256;

export interface PickleScanOptions {
  /** format reported in InvalidModelFileError */
  format?: string;
  /** globals allowed on top of SAFE_GLOBALS (e.g. the joblib wrapper) */
  extraAllowed?: ReadonlySet<string>;
  /** how many pickles to walk: exactly n, or 'all' to keep going after STOP while another pickle follows */
  pickles?: number | 'all';
  /** joblib: raw numpy array bytes follow each NumpyArrayWrapper BUILD */
  joblib?: boolean;
  limits?: Partial<PickleLimits>;
}

export interface StorageInfo {
  dtype: string;
  numel: number;
}

export interface PickleScan {
  verdict: 'safe' | 'unsafe' | 'unknown';
  findings: SafetyFinding[];
  /** every global imported (normalized), in order of first use */
  globals: string[];
  /** complete pickles walked (ending in STOP) */
  pickles: number;
  opcodes: number;
  /** protocol of the first pickle (0 or 1 when it has no PROTO opcode) */
  protocol: number;
  /** offset just after the last STOP walked */
  end: number;
  /** torch storages by key, from persistent ids ('storage', Type, key, location, numel) */
  storages: Map<string, StorageInfo>;
  /** named tensors (dict keys → _rebuild_tensor calls), bounded */
  tensors: TensorInfo[];
  tensorCount: number;
  persistentIds: number;
  /** why the walk stopped early (limits), when it did */
  incomplete?: string;
  /** container or memo limits dropped values: tensor metadata (storages, shapes) may be incomplete */
  metadataIncomplete: boolean;
  /** the last top-level value of each pickle, for callers that read small pickles (torch legacy headers) */
  results: unknown[];
}

/** A walk failure: the stream is not a valid pickle at `offset`. */
class PickleError extends Error {
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}

/** The walk stops early: a limit was reached, or the stream cannot be followed exactly. Verdict `unknown`. */
class WalkStopped extends Error {}

const WINDOW = 1 << 20;
/** bytes buffered before each opcode: the opcode and any fixed-size argument */
const PREFETCH = 16;
const utf8 = new TextDecoder('utf-8');
const latin1 = new TextDecoder('latin1');

/** Buffered forward reader over [start, end) of a FileSource. */
class Reader {
  pos: number;
  private buf: Uint8Array = new Uint8Array(0);
  private bufStart = 0;
  constructor(private readonly src: FileSource, start: number, readonly end: number) {
    this.pos = start;
  }
  has(n: number): boolean {
    return this.pos >= this.bufStart && this.pos + n <= this.bufStart + this.buf.length;
  }
  /** Loads at least n bytes at pos; false when the range ends first. */
  async fill(n: number): Promise<boolean> {
    if (this.pos + n > this.end) return false;
    const len = Math.min(Math.max(n, WINDOW), this.end - this.pos);
    this.buf = await this.src.read(this.pos, len);
    this.bufStart = this.pos;
    return this.buf.length >= n;
  }
  async need(n: number, what: string): Promise<void> {
    if (!this.has(n) && !(await this.fill(n))) throw new PickleError(`truncated pickle: ${what} runs past the end of the data`, this.pos);
  }
  /** after need(1) */
  u8(): number {
    return this.buf[this.pos++ - this.bufStart]!;
  }
  /** after need(n) */
  take(n: number): Uint8Array {
    const o = this.pos - this.bufStart;
    this.pos += n;
    return this.buf.subarray(o, o + n);
  }
  async peek(): Promise<number | undefined> {
    if (!this.has(1) && !(await this.fill(1))) return undefined;
    return this.buf[this.pos - this.bufStart];
  }
  async skip(n: number, what: string): Promise<void> {
    if (n < 0 || this.pos + n > this.end) throw new PickleError(`truncated pickle: ${what} runs past the end of the data`, this.pos);
    this.pos += n;
  }
  /** The line at pos when its newline is already buffered (and it is short), else undefined. */
  lineSync(keep: number): { text: Uint8Array; full: boolean } | undefined {
    const o = this.pos - this.bufStart;
    if (o < 0) return undefined;
    const nl = this.buf.indexOf(0x0a, o);
    if (nl < 0 || nl - o > keep) return undefined;
    this.pos += nl - o + 1;
    return { text: this.buf.subarray(o, nl), full: true };
  }
  /** A '\n'-terminated line (without the newline); content kept up to `keep` bytes. */
  async line(maxLen: number, keep: number, what: string): Promise<{ text: Uint8Array; full: boolean }> {
    const parts: Uint8Array[] = [];
    let kept = 0;
    let total = 0;
    for (;;) {
      if (!this.has(1) && !(await this.fill(1))) throw new PickleError(`truncated pickle: unterminated ${what} line`, this.pos);
      const o = this.pos - this.bufStart;
      const nl = this.buf.indexOf(0x0a, o);
      const stop = nl < 0 ? this.buf.length : nl;
      const seg = this.buf.subarray(o, stop);
      total += seg.length;
      if (total > maxLen) throw new PickleError(`invalid pickle: ${what} line longer than ${maxLen} bytes`, this.pos);
      if (kept < keep) {
        const piece = seg.subarray(0, keep - kept);
        parts.push(piece.slice());
        kept += piece.length;
      }
      this.pos += seg.length;
      if (nl >= 0) {
        this.pos += 1;
        const text = parts.length === 1 ? parts[0]! : concat(parts, kept);
        return { text, full: total <= keep };
      }
    }
  }
}

/** ASCII fast path for the many short strings of a pickle (keys, module names). */
function decodeShort(b: Uint8Array, decoder: TextDecoder): string {
  if (b.length <= 64) {
    let s = '';
    for (let i = 0; i < b.length; i++) {
      const c = b[i]!;
      if (c >= 0x80) return decoder.decode(b);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return decoder.decode(b);
}

function concat(parts: Uint8Array[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function readLE(b: Uint8Array, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + (b[i] ?? 0);
  return v;
}

/** Python-style unescape of a protocol-0 STRING argument (the quotes already removed). */
function unescapePy(s: string): string {
  if (!s.includes('\\')) return s;
  return s.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/gs, (_m, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8) & 0xff);
    switch (e) {
      case 'n': return '\n';
      case 't': return '\t';
      case 'r': return '\r';
      case '0': return '\0';
      case 'a': return '\x07';
      case 'b': return '\b';
      case 'f': return '\f';
      case 'v': return '\v';
      case '\n': return '';
      default: return e === '\\' || e === "'" || e === '"' ? e : `\\${e}`;
    }
  });
}

/** raw-unicode-escape decoding (protocol-0 UNICODE argument). */
function rawUnicodeUnescape(bytes: Uint8Array): string {
  const s = latin1.decode(bytes);
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (m, a: string | undefined, b: string | undefined) => {
    const cp = parseInt((a ?? b)!, 16);
    return cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
  });
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

// ---------------------------------------------------------------------------
// The walker

interface State {
  stack: V[];
  marks: number[];
  memo: Map<number, V>;
  /** joblib's NumpyUnpickler (array data follows each NumpyArrayWrapper BUILD), not a plain unpickler */
  joblib: boolean;
  /** end of the last FRAME: the unpickler has already read the file up to here */
  frameEnd: number;
}

function newState(joblib: boolean): State {
  return { stack: [], marks: [], memo: new Map(), joblib, frameEnd: 0 };
}

class Walker {
  readonly limits: PickleLimits;
  readonly findings: SafetyFinding[] = [];
  private readonly flagged = new Set<string>();
  readonly globals: string[] = [];
  private readonly globalSet = new Set<string>();
  readonly storages = new Map<string, StorageInfo>();
  readonly tensors: TensorInfo[] = [];
  tensorCount = 0;
  persistentIds = 0;
  ops = 0;
  keptItems = 0;
  incomplete: string | undefined;
  memoOverflow = false;
  /** container contents were dropped (limits): tensor metadata may be incomplete; safety is not affected */
  metadataIncomplete = false;
  protocol = -1;
  readonly results: unknown[] = [];

  constructor(private readonly r: Reader, private readonly opts: PickleScanOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
  }

  private flag(global: string, reason: string): void {
    if (this.flagged.has(global) || this.findings.length >= 1000) return;
    this.flagged.add(global);
    this.findings.push({ global, reason });
  }

  private importGlobal(module: string, name: string): V {
    const norm = normalizeGlobal(module, name);
    // names are reported, so keep them short; a cut name is never on the allowlist
    const full = norm.length > 256 ? `${norm.slice(0, 256)}…` : norm;
    if (!this.globalSet.has(full) && this.globalSet.size < this.limits.maxGlobals) {
      this.globalSet.add(full);
      this.globals.push(full);
    }
    const why = classifyGlobal(full, this.opts.extraAllowed);
    if (why !== undefined) this.flag(full.replace(/\s+/g, '') === full ? full : JSON.stringify(full), why);
    return { k: 'global', name: full };
  }

  private keep(c: { items: V[]; partial?: true }, more: V[]): void {
    for (const it of more) {
      if (c.items.length >= KEEP_PER_CONTAINER) {
        c.partial = true;
        return;
      }
      if (this.keptItems >= this.limits.maxKeptItems) {
        this.metadataIncomplete = true;
        c.partial = true;
        return;
      }
      c.items.push(it);
      this.keptItems++;
    }
  }

  private push(st: State, v: V): void {
    if (st.stack.length >= this.limits.maxStack) throw new WalkStopped(`stack deeper than ${this.limits.maxStack}`);
    st.stack.push(v);
  }

  private pop(st: State): V {
    const floor = st.marks.length > 0 ? st.marks[st.marks.length - 1]! : 0;
    if (st.stack.length <= floor) throw new PickleError('invalid pickle: stack underflow', this.r.pos - 1);
    return st.stack.pop()!;
  }

  private top(st: State): V {
    const floor = st.marks.length > 0 ? st.marks[st.marks.length - 1]! : 0;
    if (st.stack.length <= floor) throw new PickleError('invalid pickle: stack underflow', this.r.pos - 1);
    return st.stack[st.stack.length - 1]!;
  }

  private popMark(st: State): V[] {
    const m = st.marks.pop();
    if (m === undefined) throw new PickleError('invalid pickle: no MARK on the stack', this.r.pos - 1);
    return st.stack.splice(m);
  }

  private put(st: State, key: number, v: V): void {
    if (!st.memo.has(key) && st.memo.size >= this.limits.maxMemo) {
      this.memoOverflow = true;
      this.metadataIncomplete = true;
      return;
    }
    st.memo.set(key, v);
  }

  private get(st: State, key: number): V {
    const v = st.memo.get(key);
    if (v !== undefined) return v;
    if (this.memoOverflow) return ANY;
    throw new PickleError(`invalid pickle: memo key ${key} not found`, this.r.pos);
  }

  private str(bytes: Uint8Array, decoder: TextDecoder, full = true): V {
    if (!full || bytes.length > this.limits.maxKeptString) return { k: 'str', s: undefined };
    return { k: 'str', s: decodeShort(bytes, decoder) };
  }

  /** A string or bytes argument, without a promise when it is buffered and short. */
  private strOp(len: number, what: string, decoder: TextDecoder | undefined): V | Promise<V> {
    if (decoder === undefined && len <= 1 << 16 && this.r.has(len)) {
      this.r.take(len);
      return { k: 'bytes' };
    }
    return this.sizedFast(len, decoder) ?? this.sized(len, what, decoder);
  }

  /** A string argument: kept when short, skipped otherwise. */
  private async sized(len: number, what: string, decoder: TextDecoder | undefined): Promise<V> {
    const fast = this.sizedFast(len, decoder);
    if (fast) return fast;
    if (len < 0 || len > this.r.end - this.r.pos) throw new PickleError(`truncated pickle: ${what} of ${len} bytes runs past the end of the data`, this.r.pos);
    if (decoder === undefined) {
      await this.r.skip(len, what);
      return { k: 'bytes' };
    }
    if (len > this.limits.maxKeptString) {
      await this.r.skip(len, what);
      return { k: 'str', s: undefined };
    }
    await this.r.need(len, what);
    return this.str(this.r.take(len), decoder);
  }

  /** A fixed-size argument (n ≤ 8): the loop prefetches PREFETCH bytes, so it is buffered unless the data ends. */
  private arg(n: number, what: string): number {
    if (!this.r.has(n)) throw new PickleError(`truncated pickle: ${what} runs past the end of the data`, this.r.pos);
    return readLE(this.r.take(n), n);
  }

  /** A string argument read without awaiting when it is buffered and short. */
  private sizedFast(len: number, decoder: TextDecoder | undefined): V | undefined {
    if (decoder === undefined || len > this.limits.maxKeptString || !this.r.has(len)) return undefined;
    return this.str(this.r.take(len), decoder);
  }

  private async line(maxLen: number, keep: number, what: string): Promise<{ text: Uint8Array; full: boolean }> {
    return this.r.lineSync(keep) ?? this.r.line(maxLen, keep, what);
  }

  private asTuple(v: V): V[] | undefined {
    return v.k === 'tuple' || v.k === 'list' ? v.items : undefined;
  }

  /** What a call builds: tensors from torch rebuild functions, attributes reached through getattr. */
  private call(fn: V, args: V): V {
    if (fn.k !== 'global') return { k: 'call', fn, args, ctor: 'call' };
    const a = this.asTuple(args) ?? [];
    switch (fn.name) {
      case 'torch._utils._rebuild_tensor':
      case 'torch._utils._rebuild_tensor_v2':
      case 'torch._utils._rebuild_tensor_v3':
      case 'torch._utils._rebuild_qtensor': {
        const storage = a[0];
        const sizeV = a[2];
        let dtype = 'unknown';
        if (storage?.k === 'pid') {
          const info = this.storageOf(storage.pid);
          if (info) dtype = info.dtype;
        }
        const shape = sizeV && this.asTuple(sizeV) ? this.asTuple(sizeV)!.map((d) => (d.k === 'int' ? d.v : -1)) : [];
        this.tensorCount++;
        return { k: 'tensor', dtype, shape };
      }
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state':
        return a[0]?.k === 'tensor' ? a[0] : { k: 'call', fn, args, ctor: 'call' };
      case 'builtins.getattr': {
        // getattr(obj, 'attr'): report what it reaches, e.g. os.system
        const obj = a[0];
        const attr = a[1];
        let base: string | undefined;
        if (obj?.k === 'global') base = obj.name;
        else if (obj?.k === 'call' && obj.fn.k === 'global' && /^(builtins\.__import__|importlib\.import_module)$/.test(obj.fn.name)) {
          const m = this.asTuple(obj.args)?.[0];
          if (m?.k === 'str' && m.s !== undefined) base = normalizeGlobal(m.s, '').slice(0, -1);
        }
        if (base !== undefined && attr?.k === 'str' && attr.s !== undefined) {
          const target = `${base}.${attr.s}`;
          const why = classifyGlobal(target, this.opts.extraAllowed);
          if (why !== undefined) this.flag(target, `reached through builtins.getattr: ${why}`);
          return { k: 'global', name: target };
        }
        return { k: 'call', fn, args, ctor: 'call' };
      }
      default:
        return { k: 'call', fn, args, ctor: 'call' };
    }
  }

  private storageOf(pid: V): StorageInfo | undefined {
    const t = this.asTuple(pid);
    if (!t || t[0]?.k !== 'str' || t[0].s !== 'storage') return undefined;
    const type = t[1];
    const key = t[2];
    const numel = t[4];
    let dtype = 'unknown';
    if (type?.k === 'global' && type.name.startsWith('torch.')) dtype = TORCH_STORAGES[type.name.slice(6)] ?? 'unknown';
    if (key?.k !== 'str' || key.s === undefined) return { dtype, numel: 0 };
    const existing = this.storages.get(key.s);
    if (existing) return existing;
    const info: StorageInfo = { dtype, numel: numel?.k === 'int' && Number.isFinite(numel.v) && numel.v >= 0 ? numel.v : 0 };
    if (this.storages.size < this.limits.maxTensors) this.storages.set(key.s, info);
    return info;
  }

  private noteItem(key: V, value: V): void {
    if (value.k === 'tensor' && key.k === 'str' && key.s !== undefined && this.tensors.length < this.limits.maxTensors) {
      this.tensors.push({ name: key.s, dtype: value.dtype, shape: value.shape });
    }
  }

  /**
   * Joblib: BUILD of a NumpyArrayWrapper makes joblib's NumpyUnpickler read
   * the array right there (NumpyArrayWrapper.read_array): when its dtype has
   * objects (dtype.hasobject), a nested pickle read by a fresh plain
   * unpickler; otherwise an optional padding byte and padding, then
   * count × itemsize raw bytes. Anything that makes the extent unclear stops
   * the walk (unknown).
   */
  private async joblibArray(st: State, wrapper: Call, state: V): Promise<void> {
    const r = this.r;
    if (st.frameEnd > r.pos) throw new WalkStopped('a joblib array starts inside an unfinished pickle frame: where its data lies depends on the unpickler');
    const attrs = wrapperAttrs(wrapper);
    applyBuildState(attrs, state);
    const shapeV = attrs.get('shape');
    const dtypeV = attrs.get('dtype');
    if (!shapeV) throw new PickleError('invalid joblib array: no shape', r.pos);
    if (!dtypeV) throw new PickleError('invalid joblib array: no dtype', r.pos);
    const dtype = numpyDtype(dtypeV);
    if (typeof dtype === 'string') throw new WalkStopped(`joblib array: ${dtype}, so where its data ends is not known`);
    if (dtype.hasobject) {
      // the objects are a nested pickle, read by a plain unpickler (no joblib arrays inside)
      const nested = newState(false);
      await this.walkOne(nested);
      if (nested.frameEnd > r.pos) throw new WalkStopped('the pickle of a joblib object array has a frame running past its STOP: where the outer pickle resumes depends on the unpickler');
      return;
    }
    if (dtype.holdsObjects === undefined) throw new WalkStopped('joblib array: cannot tell whether its dtype holds Python objects');
    if (dtype.holdsObjects) {
      this.flag('numpy.dtype(hasobject=False) with object fields', 'a joblib array whose dtype has object fields but flags saying it has none: its raw bytes are read as Python object pointers');
    }
    const shape = shapeV.k === 'tuple' || shapeV.k === 'list' ? shapeV : undefined;
    if (!shape || shape.partial) throw new WalkStopped('joblib array: its shape is not known exactly');
    // joblib multiplies the dimensions as int64 (numpy.multiply.reduce), wrapping on overflow
    let count = 1n;
    for (const d of shape.items) {
      const n = d.k === 'int' ? d.v : d.k === 'bool' ? Number(d.v) : NaN;
      if (!Number.isSafeInteger(n)) throw new WalkStopped('joblib array: its shape is not known exactly');
      count = BigInt.asIntN(64, count * BigInt(n));
    }
    if (count < 0n) throw new PickleError('invalid joblib array: negative element count', r.pos);
    const align = attrs.get('numpy_array_alignment_bytes');
    if (align?.k === 'any') throw new WalkStopped('joblib array: cannot tell whether padding precedes its data');
    if (align !== undefined && align.k !== 'none') {
      // any value but None means: one byte giving the padding length, then the padding
      await r.need(1, 'joblib padding length');
      await r.skip(r.u8(), 'joblib padding');
    }
    const bytes = count * BigInt(dtype.itemsize);
    if (bytes > BigInt(r.end - r.pos)) throw new PickleError('truncated joblib file: array data runs past the end of the data', r.pos);
    await r.skip(Number(bytes), 'joblib array data');
  }

  /** Walks one pickle, from its first opcode to STOP (consumed). */
  async walkOne(st: State): Promise<V> {
    const r = this.r;
    const L = this.limits;
    for (;;) {
      if (++this.ops > L.maxOps) throw new WalkStopped(`more than ${L.maxOps} opcodes`);
      if (!r.has(PREFETCH)) {
        if (r.pos >= r.end) throw new PickleError('truncated pickle: no STOP opcode before the end of the data', r.pos);
        if (!(await r.fill(Math.min(PREFETCH, r.end - r.pos)))) throw new PickleError('truncated pickle: the data ends early', r.pos);
      }
      const at = r.pos;
      const op = r.u8();
      switch (op) {
        case 0x80: { // PROTO
          const v = this.arg(1, 'PROTO');
          if (v > 5) throw new PickleError(`invalid pickle: unsupported protocol ${v}`, at);
          if (this.protocol < 0) this.protocol = v;
          break;
        }
        case 0x95: { // FRAME
          const n = this.arg(8, 'FRAME');
          if (n > r.end - r.pos) throw new PickleError('truncated pickle: frame runs past the end of the data', at);
          st.frameEnd = r.pos + n;
          break;
        }
        case 0x2e: { // STOP
          const v = this.pop(st);
          if (this.protocol < 0) this.protocol = 0;
          return v;
        }
        case 0x28: // MARK
          if (st.marks.length >= L.maxStack) throw new WalkStopped('too many MARKs');
          st.marks.push(st.stack.length);
          break;
        case 0x30: // POP
          if (st.stack.length > (st.marks[st.marks.length - 1] ?? 0)) st.stack.pop();
          else this.popMark(st);
          break;
        case 0x31: // POP_MARK
          this.popMark(st);
          break;
        case 0x32: // DUP
          this.push(st, this.top(st));
          break;
        // --- numbers
        case 0x4a: { // BININT
          const v = this.arg(4, 'BININT');
          this.push(st, { k: 'int', v: v >= 0x80000000 ? v - 0x100000000 : v });
          break;
        }
        case 0x4b: this.push(st, { k: 'int', v: this.arg(1, 'BININT1') }); break;
        case 0x4d: this.push(st, { k: 'int', v: this.arg(2, 'BININT2') }); break;
        case 0x8a: { // LONG1
          const n = this.arg(1, 'LONG1');
          await r.need(n, 'LONG1');
          this.push(st, { k: 'int', v: longValue(r.take(n)) });
          break;
        }
        case 0x8b: { // LONG4
          const n = this.arg(4, 'LONG4');
          if (n >= 0x80000000) throw new PickleError('invalid pickle: negative LONG4 length', at);
          if (n <= 8) {
            await r.need(n, 'LONG4');
            this.push(st, { k: 'int', v: longValue(r.take(n)) });
          } else {
            await r.skip(n, 'LONG4');
            this.push(st, { k: 'int', v: NaN });
          }
          break;
        }
        case 0x49: case 0x4c: { // INT, LONG (text)
          const { text } = await this.line(L.maxLine, 64, op === 0x49 ? 'INT' : 'LONG');
          const s = latin1.decode(text).trim().replace(/L$/, '');
          if (op === 0x49 && (s === '00' || s === '01')) { this.push(st, { k: 'bool', v: s === '01' }); break; }
          if (!/^[+-]?\d+$/.test(s)) throw new PickleError(`invalid pickle: bad ${op === 0x49 ? 'INT' : 'LONG'} argument`, at);
          this.push(st, { k: 'int', v: Number(s) });
          break;
        }
        case 0x46: // FLOAT (text)
          await this.line(L.maxLine, 0, 'FLOAT');
          this.push(st, { k: 'float' });
          break;
        case 0x47: // BINFLOAT
          await r.need(8, 'BINFLOAT');
          r.take(8);
          this.push(st, { k: 'float' });
          break;
        case 0x4e: this.push(st, NONE); break;
        case 0x88: this.push(st, { k: 'bool', v: true }); break;
        case 0x89: this.push(st, { k: 'bool', v: false }); break;
        // --- strings and bytes
        case 0x53: { // STRING: a quoted repr
          const { text, full } = await this.line(L.maxLine, L.maxKeptString + 2, 'STRING');
          const raw = latin1.decode(text);
          const q = raw[0];
          if (full && (raw.length < 2 || (q !== "'" && q !== '"') || raw[raw.length - 1] !== q)) {
            throw new PickleError('invalid pickle: the STRING opcode argument must be quoted', at);
          }
          this.push(st, full ? { k: 'str', s: unescapePy(raw.slice(1, -1)) } : { k: 'str', s: undefined });
          break;
        }
        case 0x54: { // BINSTRING
          const n = this.arg(4, 'BINSTRING');
          if (n >= 0x80000000) throw new PickleError('invalid pickle: negative BINSTRING length', at);
          const v = this.strOp(n, 'BINSTRING', latin1);
          this.push(st, v instanceof Promise ? await v : v);
          break;
        }
        case 0x55: { const v = this.strOp(this.arg(1, 'SHORT_BINSTRING'), 'SHORT_BINSTRING', latin1); this.push(st, v instanceof Promise ? await v : v); break; }
        case 0x56: { // UNICODE (raw-unicode-escape text)
          const { text, full } = await this.line(L.maxLine, L.maxKeptString, 'UNICODE');
          this.push(st, full ? { k: 'str', s: rawUnicodeUnescape(text) } : { k: 'str', s: undefined });
          break;
        }
        case 0x58: { const v = this.strOp(this.arg(4, 'BINUNICODE'), 'BINUNICODE', utf8); this.push(st, v instanceof Promise ? await v : v); break; }
        case 0x8c: { const v = this.strOp(this.arg(1, 'SHORT_BINUNICODE'), 'SHORT_BINUNICODE', utf8); this.push(st, v instanceof Promise ? await v : v); break; }
        case 0x8d: { const v = this.strOp(this.arg(8, 'BINUNICODE8'), 'BINUNICODE8', utf8); this.push(st, v instanceof Promise ? await v : v); break; }
        case 0x42: { const v = this.strOp(this.arg(4, 'BINBYTES'), 'BINBYTES', undefined); this.push(st, v instanceof Promise ? await v : v); break; }
        case 0x43: { const v = this.strOp(this.arg(1, 'SHORT_BINBYTES'), 'SHORT_BINBYTES', undefined); this.push(st, v instanceof Promise ? await v : v); break; }
        case 0x8e: { const v = this.strOp(this.arg(8, 'BINBYTES8'), 'BINBYTES8', undefined); this.push(st, v instanceof Promise ? await v : v); break; }
        case 0x96: { const v = this.strOp(this.arg(8, 'BYTEARRAY8'), 'BYTEARRAY8', undefined); this.push(st, v instanceof Promise ? await v : v); break; }
        case 0x97: this.push(st, ANY); break; // NEXT_BUFFER (out-of-band data)
        case 0x98: this.top(st); break; // READONLY_BUFFER
        // --- containers
        case 0x29: this.push(st, { k: 'tuple', items: [] }); break;
        case 0x74: { // TUPLE
          const t: V = { k: 'tuple', items: [] };
          this.keep(t, this.popMark(st));
          this.push(st, t);
          break;
        }
        case 0x85: case 0x86: case 0x87: { // TUPLE1..3
          const n = op - 0x84;
          const items: V[] = [];
          for (let i = 0; i < n; i++) items.unshift(this.pop(st));
          const t: V = { k: 'tuple', items: [] };
          this.keep(t, items);
          this.push(st, t);
          break;
        }
        case 0x5d: this.push(st, { k: 'list', items: [] }); break;
        case 0x6c: { // LIST
          const l: V = { k: 'list', items: [] };
          this.keep(l, this.popMark(st));
          this.push(st, l);
          break;
        }
        case 0x61: { // APPEND
          const v = this.pop(st);
          const list = this.top(st);
          if (list.k === 'list') this.keep(list, [v]);
          break;
        }
        case 0x65: { // APPENDS
          const vs = this.popMark(st);
          const list = this.top(st);
          if (list.k === 'list') this.keep(list, vs);
          break;
        }
        case 0x7d: this.push(st, { k: 'dict', items: [] }); break;
        case 0x64: { // DICT
          const vs = this.popMark(st);
          if (vs.length % 2 !== 0) throw new PickleError('invalid pickle: odd number of items for DICT', at);
          const d: V = { k: 'dict', items: [] };
          for (let i = 0; i + 1 < vs.length; i += 2) this.setItem(d, vs[i]!, vs[i + 1]!);
          this.push(st, d);
          break;
        }
        case 0x73: { // SETITEM
          const v = this.pop(st);
          const k = this.pop(st);
          this.setItem(this.top(st), k, v);
          break;
        }
        case 0x75: { // SETITEMS
          const vs = this.popMark(st);
          if (vs.length % 2 !== 0) throw new PickleError('invalid pickle: odd number of items for SETITEMS', at);
          const d = this.top(st);
          for (let i = 0; i + 1 < vs.length; i += 2) this.setItem(d, vs[i]!, vs[i + 1]!);
          break;
        }
        case 0x8f: this.push(st, { k: 'set' }); break; // EMPTY_SET
        case 0x90: this.popMark(st); this.top(st); break; // ADDITEMS
        case 0x91: this.popMark(st); this.push(st, { k: 'set' }); break; // FROZENSET
        // --- memo
        case 0x70: { // PUT (text)
          const { text } = await this.line(L.maxLine, 32, 'PUT');
          const s = latin1.decode(text);
          if (!/^\d+$/.test(s)) throw new PickleError('invalid pickle: bad PUT argument', at);
          this.put(st, Number(s), this.top(st));
          break;
        }
        case 0x71: { const k = this.arg(1, 'BINPUT'); this.put(st, k, this.top(st)); break; }
        case 0x72: { const k = this.arg(4, 'LONG_BINPUT'); this.put(st, k, this.top(st)); break; }
        case 0x94: this.put(st, st.memo.size, this.top(st)); break; // MEMOIZE
        case 0x67: { // GET (text)
          const { text } = await this.line(L.maxLine, 32, 'GET');
          const s = latin1.decode(text);
          if (!/^\d+$/.test(s)) throw new PickleError('invalid pickle: bad GET argument', at);
          this.push(st, this.get(st, Number(s)));
          break;
        }
        case 0x68: this.push(st, this.get(st, this.arg(1, 'BINGET'))); break;
        case 0x6a: this.push(st, this.get(st, this.arg(4, 'LONG_BINGET'))); break;
        // --- globals and calls
        case 0x63: case 0x69: { // GLOBAL, INST: module\nname\n
          const what = op === 0x63 ? 'GLOBAL' : 'INST';
          const m = r.lineSync(4096) ?? (await r.line(4096, 4096, `${what} module`));
          const n = r.lineSync(4096) ?? (await r.line(4096, 4096, `${what} name`));
          const g = this.importGlobal(utf8.decode(m.text), utf8.decode(n.text));
          if (op === 0x63) this.push(st, g);
          else this.push(st, this.instantiate(g, this.popMark(st)));
          break;
        }
        case 0x93: { // STACK_GLOBAL
          const name = this.pop(st);
          const module = this.pop(st);
          if ((name.k !== 'str' && name.k !== 'any') || (module.k !== 'str' && module.k !== 'any')) {
            throw new PickleError('invalid pickle: STACK_GLOBAL requires str', at);
          }
          if (name.k === 'str' && module.k === 'str' && name.s !== undefined && module.s !== undefined) {
            this.push(st, this.importGlobal(module.s, name.s));
          } else {
            this.flag('<unresolved STACK_GLOBAL>', 'imports a global whose name could not be resolved');
            this.push(st, { k: 'global', name: '<unresolved>' });
          }
          break;
        }
        case 0x82: case 0x83: case 0x84: { // EXT1, EXT2, EXT4
          const code = this.arg(op === 0x82 ? 1 : op === 0x83 ? 2 : 4, 'EXT');
          const name = `<extension code ${code}>`;
          if (this.globalSet.size < L.maxGlobals && !this.globalSet.has(name)) {
            this.globalSet.add(name);
            this.globals.push(name);
          }
          this.flag(name, 'imports a global through the copyreg extension registry, which can name any function');
          this.push(st, { k: 'global', name });
          break;
        }
        case 0x52: { // REDUCE
          const args = this.pop(st);
          const fn = this.pop(st);
          this.push(st, this.call(fn, args));
          break;
        }
        case 0x81: { // NEWOBJ
          const args = this.pop(st);
          const cls = this.pop(st);
          this.push(st, { k: 'call', fn: cls, args, ctor: 'new' });
          break;
        }
        case 0x92: { // NEWOBJ_EX
          this.pop(st);
          const args = this.pop(st);
          const cls = this.pop(st);
          this.push(st, { k: 'call', fn: cls, args, ctor: 'new' });
          break;
        }
        case 0x6f: { // OBJ
          const items = this.popMark(st);
          const cls = items[0];
          if (!cls) throw new PickleError('invalid pickle: OBJ without a class', at);
          this.push(st, this.instantiate(cls, items.slice(1)));
          break;
        }
        case 0x62: { // BUILD
          const state = this.pop(st);
          const obj = this.top(st);
          // the last state wins (a numpy dtype's __setstate__ replaces the previous one)
          if (obj.k === 'call') obj.state = state;
          if (st.joblib && obj.k === 'call' && isJoblibWrapper(obj)) {
            await this.joblibArray(st, obj, state);
            st.stack[st.stack.length - 1] = ANY; // NumpyUnpickler replaces the wrapper by the array it read
          }
          break;
        }
        case 0x50: { // PERSID (text)
          const { text, full } = await this.line(L.maxLine, L.maxKeptString, 'PERSID');
          this.persistentIds++;
          this.push(st, { k: 'pid', pid: full ? { k: 'str', s: latin1.decode(text) } : ANY });
          break;
        }
        case 0x51: { // BINPERSID
          const pid = this.pop(st);
          this.persistentIds++;
          this.storageOf(pid);
          this.push(st, { k: 'pid', pid });
          break;
        }
        default:
          throw new PickleError(`invalid pickle: unknown opcode 0x${op.toString(16).padStart(2, '0')}`, at);
      }
    }
  }

  private setItem(d: V, k: V, v: V): void {
    if (d.k === 'dict') {
      if (d.items.length < KEEP_PER_CONTAINER && this.keptItems < this.limits.maxKeptItems) {
        d.items.push([k, v]);
        this.keptItems++;
      } else {
        if (d.items.length < KEEP_PER_CONTAINER) this.metadataIncomplete = true;
        d.partial = true;
      }
    }
    this.noteItem(k, v);
  }

  /** INST and OBJ: pickle's _instantiate calls cls(*args), or cls.__new__(cls) when there are none. */
  private instantiate(cls: V, args: V[]): V {
    if (args.length === 0) return { k: 'call', fn: cls, args: { k: 'tuple', items: [] }, ctor: 'new' };
    const t: V = { k: 'tuple', items: [] };
    this.keep(t, args);
    return this.call(cls, t);
  }
}

/** NEWOBJ(NumpyArrayWrapper) or, in protocols 0–1, copyreg._reconstructor(NumpyArrayWrapper, object, None). */
function isJoblibWrapper(obj: Call): boolean {
  if (obj.fn.k !== 'global') return false;
  if (obj.fn.name === JOBLIB_WRAPPER) return true;
  const cls = obj.args.k === 'tuple' ? obj.args.items[0] : undefined;
  return obj.fn.name === 'copyreg._reconstructor' && cls?.k === 'global' && cls.name === JOBLIB_WRAPPER;
}

/** A wrapper's attributes before its first BUILD: none when made without __init__ (how joblib writes it). */
function wrapperAttrs(obj: Call): Map<string, V> {
  if (obj.attrs) return obj.attrs;
  const args = obj.args.k === 'tuple' ? obj.args : undefined;
  const base = args?.items[1];
  const made = obj.fn.k === 'global' && obj.fn.name === JOBLIB_WRAPPER
    ? obj.ctor === 'new'
    : args !== undefined && !args.partial && args.items.length === 3 && base?.k === 'global' && base.name === 'builtins.object';
  if (!made) throw new WalkStopped('a joblib array wrapper built by calling its class (joblib never writes that): where its data ends was not followed');
  obj.attrs = new Map();
  return obj.attrs;
}

/** Keys that can never equal an attribute name (a str, or a str subclass built by a call). */
const NOT_A_NAME = new Set<V['k']>(['int', 'float', 'bool', 'none', 'bytes']);

/** pickle's load_build on a plain object: `state` or `(state, slotstate)` dicts update its attributes. */
function applyBuildState(attrs: Map<string, V>, state: V): void {
  const apply = (d: V | undefined): void => {
    if (d?.k === 'none') return;
    if (d?.k !== 'dict' || d.partial) throw new WalkStopped('a joblib array wrapper with a state that is not known exactly');
    for (const [k, v] of d.items) {
      if (k.k === 'str' && k.s !== undefined) attrs.set(k.s, v);
      else if (!(k.k === 'str' || NOT_A_NAME.has(k.k))) throw new WalkStopped('a joblib array wrapper with a state key that is not known exactly');
    }
  };
  if (state.k === 'tuple' && !state.partial && state.items.length === 2) {
    apply(state.items[0]);
    apply(state.items[1]);
  } else apply(state);
}

interface NumpyDtype {
  itemsize: number;
  /** dtype.hasobject: what joblib (and numpy) decide by */
  hasobject: boolean;
  /** whether it is an object type or has fields or a subarray that are; undefined when that cannot be told */
  holdsObjects: boolean | undefined;
}

const NPY_ITEM_HASOBJECT = 0x01;

/**
 * A numpy dtype as the unpickler builds it: numpy.dtype('V8', False, True)
 * then BUILD with (version, endian, subarray, names, fields, elsize,
 * alignment, flags[, metadata]). numpy (≥ 1.7, state versions 3 and 4) takes
 * the flags — and so hasobject — from the state as they are, and the itemsize
 * of flexible types (S, U, V) from elsize; it recomputes neither. A string
 * says why the dtype was not understood.
 */
function numpyDtype(v: V, depth = 0): NumpyDtype | string {
  if (depth > 16) return 'its dtype is nested too deeply';
  if (v.k !== 'call' || v.fn.k !== 'global' || v.fn.name !== 'numpy.dtype' || v.ctor !== 'call') return 'its dtype is not a numpy.dtype built from a type string';
  const a0 = v.args.k === 'tuple' ? v.args.items[0] : undefined;
  if (a0?.k !== 'str' || a0.s === undefined) return 'its dtype is not a numpy.dtype built from a type string';
  const base = parseTypeString(a0.s);
  if (!base) return `its dtype ${JSON.stringify(a0.s.slice(0, 40))} is not understood`;
  const state = v.state;
  if (state === undefined) return { itemsize: base.itemsize, hasobject: base.object, holdsObjects: base.object };
  if (state.k !== 'tuple' || state.partial || (state.items.length !== 8 && state.items.length !== 9)) return 'its dtype state is not understood';
  const [version, , subarray, , fields, elsize, , flagsV] = state.items as [V, V, V, V, V, V, V, V];
  if (version.k !== 'int' || (version.v !== 3 && version.v !== 4)) return 'its dtype state is of an old version';
  let flags = flagsV.k === 'int' ? flagsV.v : flagsV.k === 'bool' ? Number(flagsV.v) : NaN;
  if (!Number.isSafeInteger(flags)) return 'its dtype flags are not known';
  if (flags < 0 && flags >= -128) flags += 128; // numpy's normalization of a signed char
  let itemsize = base.itemsize;
  if (base.flexible) {
    if (elsize.k !== 'int' || !Number.isSafeInteger(elsize.v) || elsize.v < 0) return 'its dtype has no valid item size';
    itemsize = elsize.v;
  }
  let holds: boolean | undefined = base.object;
  const merge = (sub: V | undefined): void => {
    const d = sub === undefined ? 'missing' : numpyDtype(sub, depth + 1);
    const h = typeof d === 'string' ? undefined : d.hasobject;
    holds = holds === true || h === true ? true : holds === undefined || h === undefined ? undefined : false;
  };
  if (subarray.k !== 'none') merge(subarray.k === 'tuple' && !subarray.partial ? subarray.items[0] : undefined);
  if (fields.k !== 'none') {
    if (fields.k !== 'dict' || fields.partial) merge(undefined);
    else for (const [, f] of fields.items) merge(f.k === 'tuple' ? f.items[0] : undefined);
  }
  return { itemsize, hasobject: (flags & NPY_ITEM_HASOBJECT) !== 0, holdsObjects: holds };
}

function longValue(b: Uint8Array): number {
  if (b.length === 0) return 0;
  if (b.length > 7) return NaN;
  let v = readLE(b, b.length);
  if ((b[b.length - 1]! & 0x80) !== 0) v -= 2 ** (8 * b.length);
  return v;
}

/** A type string as numpy pickles it ('f8', 'b1', 'O8', 'V8', 'U3', 'M8[ns]'); undefined for anything else. */
function parseTypeString(s: string): { itemsize: number; object: boolean; flexible: boolean } | undefined {
  const m = /^[<>|=]?([biufcmMOSUVa?])(\d*)(\[\w+\])?$/.exec(s);
  if (!m) return undefined;
  const kind = m[1]!;
  const n = m[2] ? Number(m[2]) : undefined;
  switch (kind) {
    case 'O': return { itemsize: 8, object: true, flexible: false };
    case '?': return { itemsize: 1, object: false, flexible: false };
    case 'b': return { itemsize: n ?? 1, object: false, flexible: false };
    case 'U': return { itemsize: (n ?? 0) * 4, object: false, flexible: true };
    case 'S': case 'a': case 'V': return { itemsize: n ?? 0, object: false, flexible: true };
    default: return n === undefined ? undefined : { itemsize: n, object: false, flexible: false };
  }
}

/** itemsize of a numpy type string ('f8', '<i4', 'U20' (bytes), 'O8'), 'object' for objects. */
export function descrItemsize(descr: string): number | 'object' | undefined {
  const m = /^[<>|=]?([a-zA-Z])(\d*)(\[\w+\])?$/.exec(descr);
  if (!m) return undefined;
  const kind = m[1]!;
  const n = m[2] ? Number(m[2]) : undefined;
  if (kind === 'O') return 'object';
  if (kind === 'U') return n === undefined ? undefined : n * 4; // characters, 4 bytes each
  if (kind === '?' || (kind === 'b' && n === undefined)) return 1;
  return n;
}

/** Plain-data rendering of a small value (torch legacy headers), bounded. */
function toPlain(v: V, depth = 0): unknown {
  if (depth > 4) return null;
  switch (v.k) {
    case 'str': return v.s ?? null;
    case 'int': return Number.isFinite(v.v) ? v.v : null;
    case 'bool': return v.v;
    case 'none': return null;
    case 'tuple': case 'list': return v.items.slice(0, 64).map((x) => toPlain(x, depth + 1));
    case 'dict': {
      const o: Record<string, unknown> = {};
      for (const [k, x] of v.items.slice(0, 64)) if (k.k === 'str' && k.s !== undefined) o[k.s] = toPlain(x, depth + 1);
      return o;
    }
    case 'global': return { global: v.name };
    default: return null;
  }
}

/**
 * Walks the pickle(s) in [start, end) of `file`. Throws InvalidModelFileError
 * when the first pickle is broken (truncated, invalid opcode, stack misuse);
 * later pickles ('all' mode) that fail to parse end the walk quietly — the
 * bytes after a complete pickle may be anything — but any globals they
 * imported before failing are still reported, since Python would have run
 * them before reaching the bad byte.
 */
export async function scanPickle(file: FileSource, start = 0, end = file.size, opts: PickleScanOptions = {}): Promise<PickleScan> {
  const format = opts.format ?? 'pickle';
  const r = new Reader(file, start, Math.min(end, file.size));
  const w = new Walker(r, opts);
  const wanted = opts.pickles ?? 'all';
  let pickles = 0;
  let lastEnd = start;
  try {
    let frameEnd = 0;
    for (;;) {
      const st = newState(opts.joblib === true);
      const begin = r.pos;
      if (pickles > 0) {
        if (wanted !== 'all' && pickles >= wanted) break;
        if (begin >= r.end) break;
        const b = await r.peek();
        if (b === undefined) break;
        // 'all': whatever follows a STOP is walked as another pickle (pickle.load would
        // read it on the next call) until it stops parsing
        void b;
        // the C unpickler resumes right after STOP, the Python one after the frame
        if (frameEnd > begin) throw new WalkStopped('a pickle frame runs past its STOP: where the next pickle starts depends on the unpickler');
      }
      const findingsBefore = w.findings.length;
      try {
        const result = await w.walkOne(st);
        if (w.results.length < 16) w.results.push(toPlain(result));
        pickles++;
        lastEnd = r.pos;
        frameEnd = st.frameEnd;
      } catch (err) {
        if (!(err instanceof PickleError)) throw err;
        if (pickles === 0 || (wanted !== 'all' && pickles < wanted)) {
          throw new InvalidModelFileError(format, `${err.message} (offset ${err.offset})`);
        }
        // trailing bytes that are not a pickle: keep only findings that name real identifiers
        const extra = w.findings.splice(findingsBefore);
        for (const f of extra) if (IDENT.test(f.global) || f.global.startsWith('<')) w.findings.push(f);
        break;
      }
    }
  } catch (err) {
    if (!(err instanceof WalkStopped)) throw err;
    w.incomplete = err.message;
  }
  const verdict = w.findings.length > 0 ? 'unsafe' : w.incomplete ? 'unknown' : 'safe';
  return {
    verdict,
    findings: w.findings,
    globals: w.globals,
    pickles,
    opcodes: w.ops,
    protocol: Math.max(0, w.protocol),
    end: lastEnd,
    storages: w.storages,
    tensors: w.tensors,
    tensorCount: w.tensorCount,
    persistentIds: w.persistentIds,
    incomplete: w.incomplete,
    metadataIncomplete: w.metadataIncomplete || w.incomplete !== undefined,
    results: w.results,
  };
}

/** Bytes a pickle can plausibly start with (PROTO, or a protocol 0/1 opcode that opens a value). */
export function looksLikePickleStart(b: number): boolean {
  return b === 0x80 || b === 0x28 || b === 0x63 || b === 0x69 || b === 0x5d || b === 0x7d || b === 0x29 || b === 0x4e
    || b === 0x53 || b === 0x56 || b === 0x49 || b === 0x4c || b === 0x4b || b === 0x4a || b === 0x4d || b === 0x58 || b === 0x55 || b === 0x54 || b === 0x47 || b === 0x46;
}

/** Sums storage numel by dtype. */
export function paramsByDtype(storages: Map<string, StorageInfo>): { parameters: number; dtypes: Record<string, number> } {
  const dtypes: Record<string, number> = {};
  let parameters = 0;
  for (const s of storages.values()) {
    dtypes[s.dtype] = (dtypes[s.dtype] ?? 0) + s.numel;
    parameters += s.numel;
  }
  return { parameters, dtypes };
}
