// Keras v3 `.keras` archives (a zip of config.json, metadata.json and
// model.weights.h5) and HDF5 files (`.h5`/`.hdf5`, legacy Keras models).
// Loading a Keras model runs code when its config holds a Lambda layer
// (marshalled Python bytecode) or a custom class (imported from its module).
import { InvalidModelFileError, safetyOf, type Detector, type FileFormat, type FileSource, type SafetyFinding } from './types.ts';
import { extOf, firstLocalName, hasZipMagic, openZipFor, readZipMember, unreadEntries, type ZipDirectory } from './zip.ts';

export const HDF5_SIGNATURE = Uint8Array.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
const CONFIG_CAP = 16 * 1024 * 1024;
const H5_SCAN = 4 * 1024 * 1024;
const MAX_CLASSES = 200;
const LAMBDA_REASON = 'a Lambda layer deserializes Python bytecode, which runs when the model is loaded';
const CUSTOM_REASON = 'custom class runs code on load';

/**
 * Object and array values walked in a config at most. Every such value takes
 * at least two bytes of JSON, so a config within CONFIG_CAP is always walked
 * to the end; the limit is a backstop, and hitting it makes the file unknown.
 */
const MAX_CONFIG_NODES = CONFIG_CAP / 2;

interface ConfigWalk {
  classes: string[];
  layers: string[];
  findings: SafetyFinding[];
  notes: string[];
  /** set when the walk stopped before the end */
  incomplete: string[];
}

type Frame = { arr: unknown[]; i: number; inLayers: boolean } | { obj: Record<string, unknown>; keys: string[]; i: number };

/**
 * Walks a Keras config JSON in document order: class names, Lambda layers,
 * custom objects. Iterative (any nesting depth) with O(depth) memory; stops
 * only at `maxNodes` objects and arrays, and says so.
 */
export function walkConfig(root: unknown, maxNodes = MAX_CONFIG_NODES): ConfigWalk {
  const out: ConfigWalk = { classes: [], layers: [], findings: [], notes: [], incomplete: [] };
  const seenClass = new Set<string>();
  const flagged = new Set<string>();
  const flag = (global: string, reason: string): void => {
    if (flagged.has(global) || out.findings.length >= 200) return;
    flagged.add(global);
    out.findings.push({ global, reason });
  };
  const frames: Frame[] = [];
  let visited = 0;
  const enter = (v: unknown, inLayers: boolean): void => {
    if (v === null || typeof v !== 'object') return;
    visited++;
    if (Array.isArray(v)) {
      frames.push({ arr: v, i: 0, inLayers });
      return;
    }
    const o = v as Record<string, unknown>;
    const cls = typeof o.class_name === 'string' ? o.class_name : undefined;
    if (cls !== undefined && 'config' in o) {
      const module = typeof o.module === 'string' ? o.module : undefined;
      const registered = typeof o.registered_name === 'string' ? o.registered_name : undefined;
      if (!seenClass.has(cls) && seenClass.size < MAX_CLASSES) {
        seenClass.add(cls);
        out.classes.push(cls);
      }
      if (inLayers && out.layers.length < 1000) out.layers.push(cls);
      if (cls === 'Lambda') flag(`${module ?? 'keras.layers'}.Lambda`, LAMBDA_REASON);
      else if (cls === '__lambda__') flag('keras.__lambda__', 'a serialized Python lambda (bytecode) runs when the model is loaded');
      else if (cls === 'TFOpLambda' && !out.notes.includes('TFOpLambda')) out.notes.push('TFOpLambda');
      if (module !== undefined && !/^(keras|tf_keras|tensorflow\.keras|tensorflow\.python\.keras)(\.|$)/.test(module) && module !== 'builtins') {
        flag(`${module}.${cls}`, CUSTOM_REASON);
      } else if (registered !== undefined && registered.includes('>')) {
        flag(registered, CUSTOM_REASON);
      }
    }
    frames.push({ obj: o, keys: Object.keys(o), i: 0 });
  };
  enter(root, false);
  while (frames.length > 0) {
    if (visited > maxNodes) {
      out.incomplete.push(`config.json holds more than ${maxNodes} objects and arrays: the rest was not checked`);
      break;
    }
    const f = frames[frames.length - 1]!;
    if ('arr' in f) {
      if (f.i >= f.arr.length) frames.pop();
      else enter(f.arr[f.i++], f.inLayers);
    } else if (f.i >= f.keys.length) frames.pop();
    else {
      const k = f.keys[f.i++]!;
      enter(f.obj[k], k === 'layers');
    }
  }
  return out;
}

export const detectKeras: Detector = async (file) => {
  const ext = extOf(file.path);
  if (!(await hasZipMagic(file))) {
    if (ext === '.keras') throw new InvalidModelFileError('keras', 'not a valid .keras file: it is not a zip archive');
    return undefined;
  }
  const first = await firstLocalName(file);
  const claimed = ext === '.keras' || first === 'metadata.json' || first === 'config.json';
  const dir = await openZipFor(file, 'keras', claimed);
  if (!dir) return undefined;
  return kerasZip(file, dir, claimed);
};

async function kerasZip(file: FileSource, dir: ZipDirectory, claimed: boolean): Promise<FileFormat | undefined> {
  const byName = new Map(dir.entries.map((e) => [e.name, e] as const));
  const config = byName.get('config.json');
  const metadata = byName.get('metadata.json');
  const weights = byName.get('model.weights.h5') ?? byName.get('model.weights.npz');
  if (!config || (!metadata && !weights)) {
    if (claimed) throw new InvalidModelFileError('keras', 'not a valid .keras archive: needs config.json and metadata.json or model.weights.h5');
    return undefined;
  }
  const json = async (e: typeof config, what: string): Promise<unknown> => {
    const b = await readZipMember(file, dir, e, 'keras', CONFIG_CAP);
    if (!b) return undefined;
    try {
      return JSON.parse(new TextDecoder().decode(b));
    } catch {
      throw new InvalidModelFileError('keras', `broken .keras archive: ${what} is not valid JSON`);
    }
  };
  const cfg = await json(config, 'config.json');
  const meta = metadata ? await json(metadata, 'metadata.json') : undefined;
  const details: Record<string, unknown> = {};
  const m = meta && typeof meta === 'object' ? (meta as Record<string, unknown>) : {};
  if (typeof m.keras_version === 'string') details.keras_version = m.keras_version.slice(0, 64);
  if (typeof m.date_saved === 'string') details.date_saved = m.date_saved.slice(0, 64);
  if (weights) details.weights = weights.name;
  // a later config.json than the ones read would be the one Keras loads (zipfile takes the last of a name)
  const unread = unreadEntries(dir);
  if (cfg === undefined) {
    const why = 'config.json could not be read here (too large or unsupported compression)';
    return { format: 'keras', framework: 'keras', safety: safetyOf([], [...unread, why]), details: { ...details, note: why } };
  }
  const c = cfg && typeof cfg === 'object' ? (cfg as Record<string, unknown>) : {};
  if (typeof c.class_name === 'string') details.model_class = c.class_name;
  const walk = walkConfig(cfg);
  details.layers = walk.layers.slice(0, 200);
  details.layer_count = walk.layers.length;
  details.classes = walk.classes;
  if (walk.notes.includes('TFOpLambda')) details.note = 'TFOpLambda layers call TensorFlow ops by name (not arbitrary Python code)';
  return {
    format: 'keras',
    framework: 'keras',
    safety: safetyOf(walk.findings, [...unread, ...walk.incomplete]),
    details,
  };
}

/**
 * How far to look for the superblock of a file whose name does not say HDF5.
 * Each probe past the first stored chunk costs a whole chunk fetched from
 * storage; user blocks this large are unheard of, and a file not recognised
 * here is `unknown`, which is never reported safe.
 */
const UNCLAIMED_SUPERBLOCK_SEARCH = 1024 * 1024;

/** Offset of the HDF5 superblock signature: 0, 512, 1024, 2048, … below `limit` (or -1). */
async function hdf5Offset(file: FileSource, limit: number): Promise<number> {
  for (let off = 0; off + 8 <= file.size && off < limit; off = off === 0 ? 512 : off * 2) {
    const b = await file.read(off, 8);
    if (HDF5_SIGNATURE.every((x, i) => b[i] === x)) return off;
  }
  return -1;
}

export const detectH5: Detector = async (file) => {
  const ext = extOf(file.path);
  const claimed = ext === '.h5' || ext === '.hdf5' || ext === '.he5';
  let off = await hdf5Offset(file, claimed ? file.size : UNCLAIMED_SUPERBLOCK_SEARCH);
  // a zip (a .keras archive) can hold a stored .h5 member that happens to sit at 512, 1024, …
  if (off > 0 && !claimed && (await hasZipMagic(file))) off = -1;
  if (off < 0) {
    if (claimed) throw new InvalidModelFileError('h5', 'not a valid HDF5 file: no HDF5 signature');
    return undefined;
  }
  if (file.size < off + 48) throw new InvalidModelFileError('h5', 'truncated HDF5 file: the superblock is cut short');
  const head = await file.read(off, Math.min(H5_SCAN, file.size - off));
  const text = new TextDecoder('latin1').decode(head);
  const kerasMarks = /keras_version|model_config|"class_name"\s*:/.test(text);
  const lambda = /"class_name"\s*:\s*"Lambda"/.test(text);
  const version = /"keras_version"\s*:\s*"([^"]{1,40})"|keras_version[\x00-\x20]{0,16}([0-9][0-9a-z.\-+]{0,30})/.exec(text);
  const keras = kerasMarks || ext === '.keras';
  const details: Record<string, unknown> = { superblock_offset: off, superblock_version: head[8] ?? null };
  if (version) details.keras_version = version[1] ?? version[2];
  const findings: SafetyFinding[] = lambda ? [{ global: 'keras.layers.Lambda', reason: LAMBDA_REASON }] : [];
  const note = keras
    ? `legacy Keras HDF5 model: its model_config can hold Lambda layers or custom objects; only the first ${H5_SCAN} bytes were searched`
    : 'HDF5 file: contents not checked';
  if (!lambda) details.note = note;
  const out: FileFormat = {
    format: 'h5',
    // HDF5 is not parsed: without a Lambda found, it stays unchecked
    safety: safetyOf(findings, [note]),
    details,
  };
  if (keras || ext === '.h5') out.framework = 'keras';
  return out;
};
