// PyTorch checkpoints (zip archives and the legacy pickle-sequence format),
// plain pickles and joblib files. Safety comes from the pickle opcode walker
// (src/formats/pickle.ts): nothing is ever unpickled.
import { constants as zlibConstants, gunzipSync, inflateSync } from 'node:zlib';
import { bufferSource } from './sources.ts';
import { InvalidModelFileError, safetyOf, type Detector, type FileFormat, type FileSource, type Safety, type SafetyFinding } from './types.ts';
import { DTYPE_SIZES, JOBLIB_WRAPPER, looksLikePickleStart, paramsByDtype, scanPickle, type PickleScan, type StorageInfo } from './pickle.ts';
import { extOf, firstLocalName, hasZipMagic, openZipFor, readZipMember, unreadEntries, zipMemberSource, type ZipDirectory, type ZipEntry } from './zip.ts';

/** The legacy torch.save magic number 0x1950a86a20f9469cfc6c, pickled with protocol 2. */
export const TORCH_LEGACY_MAGIC = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);

const PARAM_NOTE = 'parameters = total elements of all tensor storages (each storage counted once); a good approximation of the parameter count';
const MAX_PKL_MEMBERS = 64;
const MAX_DETAIL_TENSORS = 64;
/** Largest compressed pickle decompressed here, and its largest output. */
const MAX_COMPRESSED_INPUT = 16 * 1024 * 1024;
const MAX_DECOMPRESSED = 64 * 1024 * 1024;

function startsWith(b: Uint8Array, prefix: ArrayLike<number>): boolean {
  if (b.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (b[i] !== prefix[i]) return false;
  return true;
}

/** Safety gathered over several pickles. */
export class SafetyAcc {
  findings: SafetyFinding[] = [];
  globals: string[] = [];
  private seenF = new Set<string>();
  private seenG = new Set<string>();
  unknown: string[] = [];

  add(scan: PickleScan, where?: string): void {
    for (const g of scan.globals) if (!this.seenG.has(g) && this.seenG.size < 10_000) { this.seenG.add(g); this.globals.push(g); }
    for (const f of scan.findings) this.finding(f.global, where ? `${f.reason} (in ${where})` : f.reason);
    if (scan.incomplete) this.unknown.push(`${where ?? 'pickle'}: walk stopped early (${scan.incomplete})`);
  }
  finding(global: string, reason: string): void {
    if (this.seenF.has(global) || this.findings.length >= 1000) return;
    this.seenF.add(global);
    this.findings.push({ global, reason });
  }
  safety(): Safety {
    return safetyOf(this.findings, this.unknown, this.globals);
  }
}

function tensorDetails(scan: PickleScan): Record<string, unknown> {
  return {
    tensor_count: scan.tensorCount,
    storage_count: scan.storages.size,
    tensors: scan.tensors.slice(0, MAX_DETAIL_TENSORS),
  };
}

// ---------------------------------------------------------------------------
// PyTorch

const PT_EXTS = new Set(['.pt', '.pth']);
const PT_HINT_EXTS = new Set(['.pt', '.pth', '.bin', '.ckpt', '.pt2', '.tar']);

export const detectPytorch: Detector = async (file) => {
  const ext = extOf(file.path);
  const head = await file.read(0, 512);
  if (await hasZipMagic(file)) {
    const first = await firstLocalName(file);
    const claimed = PT_EXTS.has(ext) || (first !== undefined && /(^|\/)data\.pkl$/.test(first));
    const dir = await openZipFor(file, 'pytorch', claimed);
    if (!dir) return undefined;
    return pytorchZip(file, dir, claimed);
  }
  if (startsWith(head, TORCH_LEGACY_MAGIC)) return pytorchLegacy(file);
  if (!PT_EXTS.has(ext)) return undefined;
  // a plain pickle named .pt: the pickle detector's business
  if (head.length > 0 && (head[0] === 0x80 || looksLikePickleStart(head[0]!))) return undefined;
  if (head.length >= 262 && String.fromCharCode(...head.subarray(257, 262)) === 'ustar') {
    return {
      format: 'pytorch',
      framework: 'pytorch',
      safety: safetyOf([], ['pre-1.0 torch.save tar format: its pickles were not checked']),
      details: { container: 'tar', note: 'pre-1.0 torch.save tar format: its pickles were not checked' },
    };
  }
  throw new InvalidModelFileError('pytorch', `not a valid PyTorch file: ${file.path} is neither a zip archive nor a pickle`);
};

async function pytorchZip(file: FileSource, dir: ZipDirectory, claimed: boolean): Promise<FileFormat | undefined> {
  const dataPkls = dir.entries.filter((e) => /^(?:[^/]*\/)*data\.pkl$/.test(e.name)).sort((a, b) => a.name.length - b.name.length);
  const main = dataPkls[0];
  if (!main) {
    if (claimed) throw new InvalidModelFileError('pytorch', 'not a valid PyTorch archive: no data.pkl in the zip');
    return undefined;
  }
  const prefix = main.name.slice(0, main.name.length - 'data.pkl'.length);
  const byName = new Map(dir.entries.map((e) => [e.name, e] as const));
  const acc = new SafetyAcc();
  const pickles: Array<Record<string, unknown>> = [];
  let mainScan: PickleScan | undefined;
  const pkls = dir.entries.filter((e) => !e.isDirectory && /\.pkl$/i.test(e.name));
  for (const e of pkls.slice(0, MAX_PKL_MEMBERS)) {
    const scan = await scanMember(file, dir, e, 'pytorch', acc);
    if (scan) pickles.push({ member: e.name, protocol: scan.protocol, pickles: scan.pickles, globals: scan.globals.length, verdict: scan.verdict });
    if (e === main) mainScan = scan;
  }
  if (pkls.length > MAX_PKL_MEMBERS) acc.unknown.push(`${pkls.length - MAX_PKL_MEMBERS} more .pkl members were not checked`);
  acc.unknown.push(...unreadEntries(dir));

  const torchscript = dir.entries.some((e) => e.name.startsWith(`${prefix}code/`));
  const details: Record<string, unknown> = { container: 'zip', archive: prefix.replace(/\/$/, ''), pickles };
  if (torchscript) details.torchscript = true;
  for (const meta of ['version', '.format_version', 'byteorder']) {
    const e = byName.get(`${prefix}${meta}`);
    if (e && e.uncompressedSize <= 64) {
      const b = await readZipMember(file, dir, e, 'pytorch', 64);
      if (b) details[meta.replace(/^\./, '')] = new TextDecoder().decode(b).trim().slice(0, 64);
    }
  }
  const out: FileFormat = { format: 'pytorch', framework: 'pytorch', safety: acc.safety(), details };
  if (mainScan) {
    // every storage data.pkl names must be in data/<key>, and long enough
    for (const [key, s] of mainScan.storages) {
      const e = byName.get(`${prefix}data/${key}`);
      if (!e) throw new InvalidModelFileError('pytorch', `broken PyTorch archive: storage ${prefix}data/${key} named in data.pkl is missing`);
      const size = DTYPE_SIZES[s.dtype];
      if (size !== undefined && e.uncompressedSize < s.numel * size) {
        throw new InvalidModelFileError('pytorch', `broken PyTorch archive: storage ${prefix}data/${key} holds ${e.uncompressedSize} bytes, data.pkl needs ${s.numel * size}`);
      }
    }
    Object.assign(details, tensorDetails(mainScan));
    if (mainScan.metadataIncomplete) details.metadata_incomplete = 'limits reached: tensor metadata is partial, so no parameter count is given';
    else if (mainScan.storages.size > 0) {
      const { parameters, dtypes } = paramsByDtype(mainScan.storages);
      out.parameters = parameters;
      out.dtypes = dtypes;
      details.note = PARAM_NOTE;
    }
  }
  return out;
}

/** Walks one pickle member of a zip into `acc`; undefined when the member cannot be read here. */
export async function scanMember(file: FileSource, dir: ZipDirectory, e: ZipEntry, format: string, acc: SafetyAcc): Promise<PickleScan | undefined> {
  const src = await zipMemberSource(file, dir, e, format);
  if (!src) {
    acc.unknown.push(`${e.name}: not checked (encrypted, unsupported compression, or too large to inflate)`);
    return undefined;
  }
  const scan = await scanPickle(src, 0, src.size, { format, pickles: 'all' });
  acc.add(scan, e.name);
  return scan;
}

async function pytorchLegacy(file: FileSource): Promise<FileFormat> {
  // magic, protocol version, sys_info, the object, the storage keys; raw storages follow
  const scan = await scanPickle(file, 0, file.size, { format: 'pytorch', pickles: 5 });
  const acc = new SafetyAcc();
  acc.add(scan);
  const details: Record<string, unknown> = { container: 'legacy', protocol_version: scan.results[1] ?? null, sys_info: scan.results[2] ?? null };
  if (scan.incomplete === undefined && scan.pickles < 5) throw new InvalidModelFileError('pytorch', 'truncated legacy PyTorch file: fewer than 5 pickles');
  if (scan.incomplete === undefined) {
    // each storage: 8-byte element count, then its bytes
    let expected = 0;
    let known = true;
    for (const s of scan.storages.values()) {
      const size = DTYPE_SIZES[s.dtype];
      if (size === undefined) known = false;
      else expected += 8 + s.numel * size;
    }
    if (known && file.size < scan.end + expected) {
      throw new InvalidModelFileError('pytorch', `truncated legacy PyTorch file: tensor data needs ${expected} bytes after offset ${scan.end}, the file has ${file.size - scan.end}`);
    }
  }
  Object.assign(details, tensorDetails(scan));
  const out: FileFormat = { format: 'pytorch', framework: 'pytorch', safety: acc.safety(), details };
  if (scan.metadataIncomplete) details.metadata_incomplete = 'limits reached: tensor metadata is partial, so no parameter count is given';
  else if (scan.storages.size > 0) {
    const { parameters, dtypes } = paramsByDtype(scan.storages);
    out.parameters = parameters;
    out.dtypes = dtypes;
    details.note = PARAM_NOTE;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Plain pickles and joblib

const PICKLE_EXTS = new Set(['.pkl', '.pickle', '.joblib']);
const COMPRESSED = /\.(joblib|pkl|pickle)\.(z|zlib|gz|gzip|bz2|xz|lzma|lz4)$/i;
const JOBLIB_ALLOWED: ReadonlySet<string> = new Set([JOBLIB_WRAPPER]);

type Compression = 'zlib' | 'gzip' | 'bz2' | 'xz' | 'lzma' | 'lz4' | 'joblib-zfile';

function compressionOf(b: Uint8Array): Compression | undefined {
  if (b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b[0] === 0x78 && (b[1] === 0x01 || b[1] === 0x5e || b[1] === 0x9c || b[1] === 0xda)) return 'zlib';
  if (startsWith(b, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (startsWith(b, [0x42, 0x5a, 0x68])) return 'bz2';
  if (startsWith(b, [0x04, 0x22, 0x4d, 0x18])) return 'lz4';
  if (startsWith(b, [0x5d, 0x00, 0x00])) return 'lzma';
  if (startsWith(b, [0x5a, 0x46])) return 'joblib-zfile'; // 'ZF': joblib < 0.10 zlib files
  return undefined;
}

export const detectPickle: Detector = async (file) => {
  const ext = extOf(file.path);
  const compressedName = COMPRESSED.test(file.path);
  const claimedExt = PICKLE_EXTS.has(ext) || compressedName;
  const head = await file.read(0, 64);
  if (head.length === 0) {
    if (claimedExt) throw new InvalidModelFileError(ext === '.joblib' ? 'joblib' : 'pickle', 'empty pickle file');
    return undefined;
  }
  if (startsWith(head, TORCH_LEGACY_MAGIC)) return undefined; // detectPytorch's
  if (await hasZipMagic(file)) return undefined;
  const joblibName = ext === '.joblib' || /\.joblib\./i.test(file.path);
  const b0 = head[0]!;
  if (claimedExt && b0 !== 0x80) {
    // none of these magics can start a valid pickle; a compressed stream needs the name to claim it
    const comp = compressionOf(head);
    if (comp) return compressedPickle(file, comp, joblibName);
  }
  const strong = b0 === 0x80 && (head[1] ?? 0xff) <= 5 && head.length >= 3;
  const claimed = claimedExt || strong;
  if (!claimed && !looksLikePickleStart(b0)) return undefined;
  const format = joblibName ? 'joblib' : 'pickle';
  let scan: PickleScan;
  try {
    scan = await scanPickle(file, 0, file.size, { format, pickles: 'all', joblib: true, extraAllowed: JOBLIB_ALLOWED });
  } catch (err) {
    if (!claimed && err instanceof InvalidModelFileError) return undefined;
    throw err;
  }
  // a guess from a protocol-0/1 first byte must account for the whole file
  if (!claimed && (scan.end < file.size || scan.opcodes < 3)) return undefined;
  return pickleResult(scan, joblibName, file.size, undefined);
};

function pickleResult(scan: PickleScan, joblibName: boolean, size: number, compression: Compression | undefined): FileFormat {
  const acc = new SafetyAcc();
  acc.add(scan);
  const isJoblib = joblibName || scan.globals.includes(JOBLIB_WRAPPER);
  const sklearn = scan.globals.some((g) => g.startsWith('sklearn.'));
  const details: Record<string, unknown> = {
    protocol: scan.protocol,
    pickles: scan.pickles,
    opcodes: scan.opcodes,
    trailing_bytes: Math.max(0, size - scan.end),
  };
  if (compression) details.compression = compression;
  if (scan.persistentIds > 0) details.persistent_ids = scan.persistentIds;
  if (scan.tensorCount > 0) Object.assign(details, tensorDetails(scan));
  const out: FileFormat = {
    format: isJoblib ? 'joblib' : 'pickle',
    framework: sklearn ? 'sklearn' : 'pickle',
    safety: acc.safety(),
    details,
  };
  if (scan.storages.size > 0 && !scan.metadataIncomplete) {
    const p = paramsByDtype(scan.storages as Map<string, StorageInfo>);
    out.parameters = p.parameters;
    out.dtypes = p.dtypes;
  }
  return out;
}

async function compressedPickle(file: FileSource, comp: Compression, joblibName: boolean): Promise<FileFormat> {
  const format = joblibName ? 'joblib' : 'pickle';
  const unknown = (why: string): FileFormat => ({
    format,
    framework: 'pickle',
    safety: safetyOf([], [why]),
    details: { compression: comp, note: why },
  });
  if (comp !== 'zlib' && comp !== 'gzip') return unknown(`${comp}-compressed pickle: cannot be decompressed here, so it was not checked`);
  if (file.size > MAX_COMPRESSED_INPUT) return unknown(`compressed pickle larger than ${MAX_COMPRESSED_INPUT} bytes: not checked`);
  const raw = await file.read(0, file.size);
  let data: Uint8Array;
  try {
    const opts = { maxOutputLength: MAX_DECOMPRESSED, finishFlush: zlibConstants.Z_FINISH };
    data = comp === 'gzip' ? gunzipSync(raw, opts) : inflateSync(raw, opts);
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return unknown(`decompresses to more than ${MAX_DECOMPRESSED} bytes: not checked`);
    throw new InvalidModelFileError(format, `broken ${comp}-compressed pickle: ${(err as Error).message}`);
  }
  const inner = bufferSource(file.path, data);
  const scan = await scanPickle(inner, 0, inner.size, { format, pickles: 'all', joblib: true, extraAllowed: JOBLIB_ALLOWED });
  return pickleResult(scan, joblibName, inner.size, comp);
}

