// What format detectors see and say. A detector gets random access to a
// stored file through bounded reads (never the whole file in memory) and
// returns what it recognised, or undefined when the bytes are not its format.

/** Random access to one file's bytes. Reads past the end return what exists. */
export interface FileSource {
  /** the file's name, e.g. `model.safetensors` (a hint only; at publish, without its directory) */
  readonly path: string;
  readonly size: number;
  /** bytes [offset, offset + length) clipped to the file; callers keep `length` bounded (≤ 16 MiB) */
  read(offset: number, length: number): Promise<Uint8Array>;
}

export type Framework = 'onnx' | 'pytorch' | 'tensorflow' | 'tflite' | 'keras' | 'tfjs' | 'gguf' | 'safetensors' | 'numpy' | 'sklearn' | 'pickle' | 'torchserve';

export interface TensorInfo {
  name: string;
  /** e.g. float32, bfloat16, int8, q4_k; lower-case */
  dtype: string;
  /** dimensions; symbolic dims stay as their names */
  shape: Array<number | string>;
}

export interface SafetyFinding {
  /** e.g. `os.system`, `builtins.eval`, `keras.layers.Lambda` */
  global: string;
  /** why it is flagged */
  reason: string;
}

export interface Safety {
  /** safe: walked completely, nothing that runs code; unsafe: something that does; unknown: not (completely) checkable */
  verdict: 'safe' | 'unsafe' | 'unknown';
  findings: SafetyFinding[];
  /** every global a pickle imports, for the record */
  globals?: string[];
  /**
   * What was not checked, and why: a walk cut short by a budget or depth
   * limit, a member too large to read, a structure the scanner cannot follow.
   * Never present on a `safe` verdict (see safetyOf).
   */
  incomplete?: string[];
}

export interface FileFormat {
  /** onnx, safetensors, gguf, pytorch, pickle, joblib, numpy, tflite, keras, h5, savedmodel, tfjs, torchserve, unknown */
  format: string;
  framework?: Framework;
  /** total parameters (elements of weight tensors) when known */
  parameters?: number;
  /** parameter count per dtype */
  dtypes?: Record<string, number>;
  inputs?: TensorInfo[];
  outputs?: TensorInfo[];
  safety: Safety;
  /** format-specific details (producer, opsets, architecture, __metadata__, …); JSON, bounded in size */
  details: Record<string, unknown>;
}

/** The file claims a format (magic or extension) but its structure is broken: 422 INVALID_MODEL_FILE. */
export class InvalidModelFileError extends Error {
  readonly format: string;
  constructor(format: string, message: string) {
    super(message);
    this.name = 'InvalidModelFileError';
    this.format = format;
  }
}

/**
 * One detector per format. Returns undefined when the bytes are not its
 * format; throws InvalidModelFileError when they claim to be and are broken.
 * Must never throw anything else on any input, never hang, and keep every
 * allocation bounded (lengths read from the file are checked against its size).
 */
export type Detector = (file: FileSource) => Promise<FileFormat | undefined>;

export const SAFE: Safety = { verdict: 'safe', findings: [] };

/**
 * The one rule every detector's verdict follows: any finding makes the file
 * unsafe; otherwise any part left unchecked (a budget, a depth limit, …)
 * makes it unknown — a walk that stopped early is never `safe`.
 */
export function safetyOf(findings: SafetyFinding[], incomplete: readonly string[] = [], globals?: string[]): Safety {
  const verdict = findings.length > 0 ? 'unsafe' : incomplete.length > 0 ? 'unknown' : 'safe';
  const out: Safety = { verdict, findings };
  if (globals !== undefined) out.globals = globals;
  if (incomplete.length > 0) out.incomplete = [...new Set(incomplete)].slice(0, 64);
  return out;
}
