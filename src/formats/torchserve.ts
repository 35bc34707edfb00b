// TorchServe model archives (.mar): a zip with MAR-INF/MANIFEST.json naming
// the runtime, model, handler and serialized weights. A .mar always ships a
// Python handler that runs when the model is served: unsafe by construction.
// Contained pickles and PyTorch files are checked with the pickle walker.
import { bufferSource } from './sources.ts';
import { InvalidModelFileError, type Detector, type FileFormat, type FileSource } from './types.ts';
import { detectPytorch, SafetyAcc, scanMember } from './pytorch.ts';
import { extOf, firstLocalName, hasZipMagic, openZipFor, readZipMember, subSource, unreadEntries, zipMemberDataOffset, ZIP_MEMBER_CAP, type ZipDirectory } from './zip.ts';

const MANIFEST = 'MAR-INF/MANIFEST.json';
const MAX_NESTED = 16;

export const detectTorchserve: Detector = async (file) => {
  const ext = extOf(file.path);
  if (!(await hasZipMagic(file))) {
    if (ext === '.mar') throw new InvalidModelFileError('torchserve', 'not a valid .mar file: it is not a zip archive');
    return undefined;
  }
  const first = await firstLocalName(file);
  const claimed = ext === '.mar' || first === MANIFEST;
  const dir = await openZipFor(file, 'torchserve', claimed);
  if (!dir) return undefined;
  return mar(file, dir, claimed);
};

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v.slice(0, 256) : undefined;
}

async function mar(file: FileSource, dir: ZipDirectory, claimed: boolean): Promise<FileFormat | undefined> {
  const manifestEntry = dir.entries.find((e) => e.name === MANIFEST);
  if (!manifestEntry) {
    if (claimed) throw new InvalidModelFileError('torchserve', `not a valid .mar archive: no ${MANIFEST}`);
    return undefined;
  }
  const raw = await readZipMember(file, dir, manifestEntry, 'torchserve', 1 << 20);
  let manifest: Record<string, unknown> = {};
  if (raw) {
    try {
      const parsed: unknown = JSON.parse(new TextDecoder().decode(raw));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) manifest = parsed as Record<string, unknown>;
      else throw new Error('not an object');
    } catch {
      throw new InvalidModelFileError('torchserve', `broken .mar archive: ${MANIFEST} is not a JSON object`);
    }
  }
  const model = manifest.model && typeof manifest.model === 'object' ? (manifest.model as Record<string, unknown>) : {};
  const handler = str(model.handler);
  const details: Record<string, unknown> = {
    runtime: str(manifest.runtime) ?? null,
    model_name: str(model.modelName) ?? null,
    model_version: str(model.modelVersion) ?? null,
    handler: handler ?? null,
    serialized_file: str(model.serializedFile) ?? null,
    model_file: str(model.modelFile) ?? null,
    archiver_version: str(manifest.archiverVersion) ?? null,
  };
  const acc = new SafetyAcc();
  acc.unknown.push(...unreadEntries(dir));
  acc.finding(`handler:${handler ?? 'unknown'}`, 'a .mar ships a Python handler that runs code when the model is served');
  const pyFiles = dir.entries.filter((e) => e.name.endsWith('.py')).map((e) => e.name);
  if (pyFiles.length > 0) details.python_files = pyFiles.slice(0, 50);

  // weights and pickles inside: plain pickles walked, PyTorch files through the PyTorch detector
  const checked: Array<Record<string, unknown>> = [];
  let parameters: number | undefined;
  let dtypes: Record<string, number> | undefined;
  let nested = 0;
  for (const e of dir.entries) {
    if (e.isDirectory || !/\.(pkl|pickle|pt|pth|bin|ckpt|joblib)$/i.test(e.name)) continue;
    if (nested++ >= MAX_NESTED) {
      acc.unknown.push('more members than were checked');
      break;
    }
    if (/\.(pkl|pickle|joblib)$/i.test(e.name)) {
      const scan = await scanMember(file, dir, e, 'torchserve', acc);
      if (scan) checked.push({ member: e.name, format: 'pickle', verdict: scan.verdict });
      continue;
    }
    let inner: FileSource | undefined;
    if (e.encrypted || (e.method !== 0 && e.method !== 8)) inner = undefined;
    else if (e.method === 0) inner = subSource(file, await zipMemberDataOffset(file, dir, e, 'torchserve'), e.compressedSize, e.name);
    else if (e.uncompressedSize <= ZIP_MEMBER_CAP) {
      const b = await readZipMember(file, dir, e, 'torchserve');
      if (b) inner = bufferSource(e.name, b);
    }
    if (!inner) {
      acc.unknown.push(`${e.name}: not checked (compressed and larger than ${ZIP_MEMBER_CAP} bytes, or unsupported)`);
      continue;
    }
    let found: FileFormat | undefined;
    try {
      found = await detectPytorch(inner);
    } catch (err) {
      if (!(err instanceof InvalidModelFileError)) throw err;
      throw new InvalidModelFileError('torchserve', `broken .mar archive: ${e.name}: ${err.message}`);
    }
    if (!found) {
      checked.push({ member: e.name, format: 'unknown' });
      continue;
    }
    checked.push({ member: e.name, format: found.format, verdict: found.safety.verdict });
    for (const g of found.safety.globals ?? []) if (!acc.globals.includes(g) && acc.globals.length < 10_000) acc.globals.push(g);
    for (const f of found.safety.findings) acc.finding(f.global, `${f.reason} (in ${e.name})`);
    if (found.safety.verdict === 'unknown') acc.unknown.push(...(found.safety.incomplete ?? ['not checked']).map((why) => `${e.name}: ${why}`));
    if (found.parameters !== undefined) parameters = (parameters ?? 0) + found.parameters;
    if (found.dtypes) {
      dtypes ??= {};
      for (const [k, n] of Object.entries(found.dtypes)) dtypes[k] = (dtypes[k] ?? 0) + n;
    }
  }
  details.checked = checked;
  const out: FileFormat = { format: 'torchserve', framework: 'torchserve', safety: acc.safety(), details };
  if (parameters !== undefined) out.parameters = parameters;
  if (dtypes) out.dtypes = dtypes;
  return out;
}
