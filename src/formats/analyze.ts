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

/** Which budget stopped an analysis (see analysis-pool.ts). */
export type AnalysisBudget = 'cpu' | 'memory' | 'read' | 'publish' | 'failed';

/**
 * Thrown through a detector when its analysis is out of budget: never
 * swallowed as a detector failure, so no later detector runs on a file whose
 * walk was cut short.
 */
export class AnalysisStopped extends Error {
  readonly budget: AnalysisBudget;
  constructor(budget: AnalysisBudget, message: string) {
    super(message);
    this.name = 'AnalysisStopped';
    this.budget = budget;
  }
}

/**
 * The record of a file whose analysis stopped early: format and safety
 * `unknown` — a walk cut short is never `safe` — with the reason in
 * `details.analysis_stopped`. The file is still published (flagged unchecked).
 */
export function stoppedAnalysis(budget: AnalysisBudget, reason: string): FileFormat {
  return { format: 'unknown', safety: { verdict: 'unknown', findings: [] }, details: { analysis_stopped: { budget, reason } } };
}

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
      if (err instanceof InvalidModelFileError || err instanceof AnalysisStopped) throw err;
      // A detector bug must not block a publish: record it and move on.
      log?.error('format detector failed', { path: file.path, detector: detect.name, error: (err as Error).stack ?? String(err) });
    }
  }
  return UNKNOWN_FORMAT();
}

// Formats that are data, not code, when they are not recognised as a model.
// text and data that no loader runs: configs, tokenizers, docs, licences, media
const SUPPORT_FILE = /\.(json|txt|md|yaml|yml|model|vocab|merges|csv|tsv|cfg|ini|toml|png|jpe?g|gif|wav)$|(^|\/)(LICEN[CS]E|COPYING|NOTICE|README|AUTHORS|CHANGELOG)([.-][\w.-]*)?$|(^|\/)\.git(attributes|ignore)$/i;

/**
 * Version-level structure: a TensorFlow SavedModel is `saved_model.pb` plus
 * `variables/`; TF.js is `model.json` plus the weight shards it names.
 * Linear in the number of files (a version may hold 10,000).
 */
export function linkVersionFiles(files: Array<{ path: string; analysis: FileFormat }>): void {
  const unknownByPath = new Map(files.filter((f) => f.analysis.format === 'unknown').map((f) => [f.path, f] as const));
  const dirOf = (path: string) => (path.includes('/') ? path.slice(0, path.lastIndexOf('/') + 1) : '');
  // the unknown files under each `…/variables/` directory, by that directory
  const underVariables = new Map<string, Array<{ path: string; analysis: FileFormat }>>();
  for (const f of unknownByPath.values()) {
    for (let at = f.path.indexOf('variables/'); at >= 0; at = f.path.indexOf('variables/', at + 1)) {
      if (at > 0 && f.path[at - 1] !== '/') continue;
      const dir = f.path.slice(0, at);
      const list = underVariables.get(dir);
      if (list) list.push(f);
      else underVariables.set(dir, [f]);
    }
  }
  for (const f of files) {
    if (f.analysis.format === 'savedmodel') {
      for (const g of underVariables.get(dirOf(f.path)) ?? []) {
        if (g.analysis.format === 'unknown') {
          g.analysis = { format: 'savedmodel-variables', framework: 'tensorflow', safety: { verdict: 'safe', findings: [] }, details: { savedmodel: f.path } };
        }
      }
    }
    if (f.analysis.format === 'tfjs') {
      const dir = dirOf(f.path);
      for (const p of (f.analysis.details.weight_paths as string[] | undefined) ?? []) {
        const g = unknownByPath.get(`${dir}${p}`);
        if (g && g.analysis.format === 'unknown') {
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
    else if (analysis.safety.verdict === 'unknown' && !(analysis.format === 'unknown' && SUPPORT_FILE.test(path) && !('analysis_stopped' in analysis.details))) unchecked.push(path);
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
