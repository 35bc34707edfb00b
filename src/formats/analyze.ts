// Runs the detectors over a file and a version: which format each file is,
// what it holds, whether loading it can run code — and one summary per version.
import type { Logger } from '../log.ts';
import { InvalidModelFileError, type Detector, type FileFormat, type FileSource, type Safety, type TensorInfo } from './types.ts';

export interface VersionSummary {
  framework: string | null;
  formats: string[];
  parameters: number | null;
  dtypes: Record<string, number>;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  safety: {
    verdict: Safety['verdict'];
    /** files whose loading runs code, with what they import */
    unsafe_files: Array<{ path: string; findings: Safety['findings'] }>;
    /** model files whose safety could not be checked */
    unchecked_files: string[];
  };
}

export const UNKNOWN_FORMAT = (): FileFormat => ({ format: 'unknown', safety: { verdict: 'unknown', findings: [] }, details: {} });

/**
 * The first detector that recognises the file wins. Detectors with a magic
 * number come before those that decide by structure.
 */
export async function analyzeFile(detectors: Detector[], file: FileSource, log?: Logger): Promise<FileFormat> {
  for (const detect of detectors) {
    try {
      const found = await detect(file);
      if (found) return found;
    } catch (err) {
      if (err instanceof InvalidModelFileError) throw err;
      // A detector bug must not block a publish: record it and move on.
      log?.error('format detector failed', { path: file.path, detector: detect.name, error: (err as Error).stack ?? String(err) });
    }
  }
  return UNKNOWN_FORMAT();
}

// Formats that are data, not code, when they are not recognised as a model.
const SUPPORT_FILE = /\.(json|txt|md|yaml|yml|model|vocab|merges|csv|tsv|cfg|ini|toml|png|jpe?g|gif|wav)$/i;

/**
 * Version-level structure: a TensorFlow SavedModel is `saved_model.pb` plus
 * `variables/`; TF.js is `model.json` plus the weight shards it names.
 */
export function linkVersionFiles(files: Array<{ path: string; analysis: FileFormat }>): void {
  for (const f of files) {
    if (f.analysis.format === 'savedmodel') {
      const dir = f.path.includes('/') ? f.path.slice(0, f.path.lastIndexOf('/') + 1) : '';
      for (const g of files) {
        if (g.analysis.format === 'unknown' && g.path.startsWith(`${dir}variables/`)) {
          g.analysis = { format: 'savedmodel-variables', framework: 'tensorflow', safety: { verdict: 'safe', findings: [] }, details: { savedmodel: f.path } };
        }
      }
    }
    if (f.analysis.format === 'tfjs') {
      const dir = f.path.includes('/') ? f.path.slice(0, f.path.lastIndexOf('/') + 1) : '';
      const shards = new Set(((f.analysis.details.weight_paths as string[] | undefined) ?? []).map((p) => `${dir}${p}`));
      for (const g of files) {
        if (g.analysis.format === 'unknown' && shards.has(g.path)) {
          g.analysis = { format: 'tfjs-weights', framework: 'tfjs', safety: { verdict: 'safe', findings: [] }, details: { model: f.path } };
        }
      }
    }
  }
}

export function summarize(files: Array<{ path: string; analysis: FileFormat }>): VersionSummary {
  const frameworks = new Map<string, number>();
  const dtypes: Record<string, number> = {};
  let parameters: number | null = null;
  let inputs: TensorInfo[] = [];
  let outputs: TensorInfo[] = [];
  const unsafe: VersionSummary['safety']['unsafe_files'] = [];
  const unchecked: string[] = [];
  for (const { path, analysis } of files) {
    if (analysis.framework) frameworks.set(analysis.framework, (frameworks.get(analysis.framework) ?? 0) + (analysis.parameters ?? 0) + 1);
    if (analysis.parameters !== undefined) parameters = (parameters ?? 0) + analysis.parameters;
    for (const [dtype, n] of Object.entries(analysis.dtypes ?? {})) dtypes[dtype] = (dtypes[dtype] ?? 0) + n;
    if (inputs.length === 0 && analysis.inputs?.length) inputs = analysis.inputs;
    if (outputs.length === 0 && analysis.outputs?.length) outputs = analysis.outputs;
    if (analysis.safety.verdict === 'unsafe') unsafe.push({ path, findings: analysis.safety.findings });
    else if (analysis.safety.verdict === 'unknown' && !(analysis.format === 'unknown' && SUPPORT_FILE.test(path))) unchecked.push(path);
  }
  // The framework holding the most parameters is the version's framework.
  const framework = [...frameworks].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
  return {
    framework,
    formats: [...new Set(files.map((f) => f.analysis.format))].sort(),
    parameters,
    dtypes,
    inputs,
    outputs,
    safety: {
      verdict: unsafe.length > 0 ? 'unsafe' : unchecked.length > 0 ? 'unknown' : 'safe',
      unsafe_files: unsafe,
      unchecked_files: unchecked,
    },
  };
}
