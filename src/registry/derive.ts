// Derived versions: from one version, a new one (of the same model or
// another) made by a named, deterministic transform, published like any
// other version (format analysis, safety, git mirror, webhooks) with a
// lineage edge whose recipe holds the transform, its parameters, the tool
// versions and the measured results.
//
// A request becomes a job (a row: it survives a restart); a small runner
// takes queued jobs, a few at a time, and runs each derivation in a worker
// thread (../derive/job-host.ts) while this thread serves the parent's bytes
// from the chunk store and stores the output. Every other file of the parent
// is carried over by reference (its digest). The version becomes visible in
// the publish transaction and nowhere before: a crash mid-job leaves chunks
// for gc, never half a version; the job, still `running` at the next start,
// is run again from scratch, or failed with the reason after MAX_ATTEMPTS.
//
// The same transform with the same parameters on the same parent (its
// digest) has the same key: asking again answers with the job that made the
// version (or is making it), not a new one. Only jobs count: a recipe is
// what a publisher wrote, and anyone may write one.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type Caller, FULL_VIEW, mayRead } from '../access.ts';
import { DERIVE_OPS, type DeriveOp, type JobDoc, type Relation, type VersionDoc } from '../api/index.ts';
import { canonicalJson } from '../canonical-json.ts';
import { DERIVE_VERSION, ONNXRUNTIME_VERSION, TRANSFORMS, type DeriveParams } from '../derive/index.ts';
import { DeriveCancelled, runDerivation, type DeriveRun, type DeriveSpec, type FileOutcome } from '../derive/job-host.ts';
import { deriveRecipe, type RecipeFile } from '../derive/recipe.ts';
import { CairnError, isCairnError } from '../errors.ts';
import { checkName, checkVersion, parseNameRef } from '../identifiers.ts';
import { checkJsonValue } from '../json-limits.ts';
import type { Logger } from '../log.ts';
import type { JobQueries, JobRow, JobView } from '../metadata/jobs.ts';
import type { ModelRow, VersionRow } from '../metadata/models.ts';
import type { GenerateSamples } from '../derive/onnx-measure.ts';
import type { Catalog } from './catalog.ts';
import { defaultTargetVersion, invalid, isObject, normalizeParams, parseMeasure, REQUEST_FIELDS, stringList, unknownFields } from './derive-request.ts';
import type { Publishing } from './publish.ts';
import type { Versions } from './versions.ts';

/** Runs of one job: a job whose run was cut short this many times (the server died each time) is failed, not run again. */
export const MAX_ATTEMPTS = 3;

export const RELATION_OF: Record<DeriveOp, Relation> = { int8: 'quantized-from', fp16: 'converted-from', cast: 'converted-from', prune: 'pruned-from' };

const PROGRESS_EVERY_MS = 250;

export interface DerivationsDeps {
  catalog: Catalog;
  publishing: Publishing;
  versions: Versions;
  jobs: JobQueries;
  /** where ONNX Runtime's model files are written while measuring (emptied at start) */
  scratchDir: string;
  /** jobs run at once */
  concurrency: number;
  log: Logger;
}

/** A request, checked, with its parent resolved: everything but the target's access. */
export interface DerivePlan {
  parent: { model: ModelRow; row: VersionRow };
  op: DeriveOp;
  params: Record<string, unknown>;
  /** paths of the parent files to transform */
  files: string[];
  samples: { file: string } | { generated: GenerateSamples };
  repeat: number;
  target: { name: string; version: string };
  message: string | undefined;
  key: string;
  /** bytes of the files to transform */
  total: number;
}

/** What a job row's params column holds. */
interface StoredParams {
  op: DeriveOp;
  params: Record<string, unknown>;
  files: string[];
  samples: DerivePlan['samples'];
  repeat: number;
  message?: string;
}


export class Derivations {
  private readonly catalog: Catalog;
  private readonly publishing: Publishing;
  private readonly versions: Versions;
  private readonly jobs: JobQueries;
  private readonly scratchDir: string;
  private readonly concurrency: number;
  private readonly log: Logger;
  private readonly running = new Map<string, { run?: DeriveRun; done: Promise<void> }>();
  private started = false;
  private closed = false;

  constructor(deps: DerivationsDeps) {
    this.catalog = deps.catalog;
    this.publishing = deps.publishing;
    this.versions = deps.versions;
    this.jobs = deps.jobs;
    this.scratchDir = deps.scratchDir;
    this.concurrency = Math.max(1, deps.concurrency);
    this.log = deps.log;
  }

  // ---- requests ---------------------------------------------------------------

  /** Checks a request against its parent (which the caller may read): 400 for anything wrong with it. */
  plan(name: string, ref: string, body: unknown, caller: Caller): DerivePlan {
    if (!isObject(body)) throw invalid('the body must be a JSON object: {"op": "fp16" | "int8" | "cast" | "prune", …}');
    unknownFields('derive request', body, REQUEST_FIELDS);
    const op = body.op as DeriveOp;
    if (!DERIVE_OPS.includes(op)) throw invalid(`op must be one of ${DERIVE_OPS.join(', ')}, got ${JSON.stringify(body.op)}`);
    const params = normalizeParams(op, body.params);
    if (!mayRead(caller, name)) throw new CairnError('FORBIDDEN', `this token may not read model ${name}`);
    const model = this.catalog.requireModel(name);
    const row = this.catalog.resolve(model, ref);
    const files = this.catalog.models.files(row.id);
    const byPath = new Map(files.map((f) => [f.path, f]));
    const formats = TRANSFORMS[op] as string[];

    let samplesPath: string | undefined;
    if (body.samples !== undefined) {
      if (typeof body.samples !== 'string') throw invalid('samples must be the path of a file in the parent version');
      const f = byPath.get(body.samples);
      if (!f) throw invalid(`samples: ${name}@${row.version} has no file ${body.samples}`);
      if (f.format !== 'safetensors') throw invalid(`samples: ${body.samples} is ${f.format}; a samples file is safetensors (a tensor per model input, or <i>/<input> per sample)`);
      samplesPath = f.path;
    }
    let chosen: string[];
    if (body.files !== undefined) {
      chosen = [...new Set(stringList('files', body.files))];
      for (const p of chosen) {
        const f = byPath.get(p);
        if (!f) throw invalid(`files: ${name}@${row.version} has no file ${p}`);
        if (!formats.includes(f.format)) throw invalid(`files: ${op} applies to ${formats.join(' and ')} files; ${p} is ${f.format}`);
      }
    } else {
      chosen = files.filter((f) => formats.includes(f.format) && f.path !== samplesPath).map((f) => f.path);
      if (chosen.length === 0) throw invalid(`${name}@${row.version} has no ${formats.join(' or ')} file for ${op}`);
    }
    const measure = parseMeasure(body.measure);
    if (body.message !== undefined && typeof body.message !== 'string') throw invalid('message must be a string');

    let target: { name: string; version: string };
    if (body.to === undefined || body.to === null || body.to === '') {
      target = { name: model.name, version: checkVersion(defaultTargetVersion(row.version, op, params)) };
    } else if (typeof body.to !== 'string') {
      throw invalid('to must be a string: <name>@<version> or <name>');
    } else if (body.to.includes('@')) {
      const t = parseNameRef(body.to);
      target = { name: t.name, version: checkVersion(t.ref) };
    } else {
      target = { name: checkName(body.to), version: row.version };
    }
    const key = `sha256:${createHash('sha256')
      .update(canonicalJson({ derive_version: DERIVE_VERSION, parent: row.digest, op, params, files: [...chosen].sort() }))
      .digest('hex')}`;
    return {
      parent: { model, row },
      op,
      params,
      files: chosen,
      samples: samplesPath !== undefined ? { file: samplesPath } : { generated: measure.generated },
      repeat: measure.repeat,
      target,
      message: body.message as string | undefined,
      key,
      total: chosen.reduce((n, p) => n + byPath.get(p)!.size, 0),
    };
  }

  /**
   * Queues a planned derivation (the caller may write its target). The same
   * derivation done before, or queued or running, is answered instead of a
   * new job — when the caller may read where it went.
   */
  submit(plan: DerivePlan, caller: Caller, actor: string): { job: JobDoc; created: boolean } {
    // what jobs made, never what a recipe says: anyone who may publish can write a recipe
    const known = this.jobs.byKey(plan.key);
    const done = known.find((j) => j.state === 'succeeded' && j.result_version_id !== null && this.liveAndReadable(j.result_version_id, caller));
    const active = known.find((j) => (j.state === 'queued' || j.state === 'running') && mayRead(caller, j.target_name));
    const existing = done ?? active;
    if (existing) return { job: this.doc(existing, caller), created: false };

    const now = this.catalog.now().toISOString();
    const id = randomBytes(12).toString('hex');
    const stored: StoredParams = { op: plan.op, params: plan.params, files: plan.files, samples: plan.samples, repeat: plan.repeat, ...(plan.message !== undefined ? { message: plan.message } : {}) };
    const row = {
      id,
      kind: 'derive',
      state: 'queued' as const,
      params: JSON.stringify(stored),
      derive_key: plan.key,
      parent_version_id: plan.parent.row.id,
      target_name: plan.target.name,
      target_version: plan.target.version,
      progress_total: plan.total,
      created_by: actor,
      principal: caller.principal ?? null,
      caller_models: JSON.stringify(caller.models),
      created_at: now,
    };
    this.catalog.db.transaction(() => {
      this.publishing.assertCanPublish(plan.target.name, plan.target.version);
      const other = this.jobs.activeFor(plan.target.name, plan.target.version);
      if (other) throw new CairnError('VERSION_EXISTS', `${plan.target.name}@${plan.target.version} is being made by derive job ${other.id}`);
      this.jobs.insert(row);
    });
    this.log.info('derive job queued', { job: id, parent: `${plan.parent.model.name}@${plan.parent.row.version}`, op: plan.op, target: `${plan.target.name}@${plan.target.version}` });
    this.pump();
    return { job: this.doc(this.jobs.get(id)!, caller), created: true };
  }

  /** A job, for its creator or a caller who may read its target; to anyone else it does not exist. */
  job(id: string, caller: Caller): JobDoc {
    const view = /^[0-9a-f]{24}$/.test(id) ? this.jobs.get(id) : undefined;
    const mine = view !== undefined && caller.principal !== undefined && view.principal === caller.principal;
    if (!view || !(mine || mayRead(caller, view.target_name))) throw new CairnError('JOB_NOT_FOUND', `no job ${id}`);
    return this.doc(view, caller);
  }

  private doc(v: JobView, caller: Caller): JobDoc {
    const p = JSON.parse(v.params) as StoredParams;
    const parentVisible = mayRead(caller, v.parent_name);
    return {
      id: v.id,
      kind: 'derive',
      state: v.state,
      parent: parentVisible ? { name: v.parent_name, version: v.parent_version, digest: v.parent_digest } : { name: 'hidden', version: 'hidden', digest: 'hidden' },
      target: { name: v.target_name, version: v.target_version },
      op: p.op,
      params: p.params,
      files: parentVisible ? p.files : [],
      progress: { bytes: v.progress_bytes, total: v.progress_total, phase: v.phase },
      result: v.result_name !== null && v.result_version !== null && v.result_digest !== null ? { name: v.result_name, version: v.result_version, digest: v.result_digest } : null,
      error: v.error_code !== null ? { code: v.error_code, message: v.error_message ?? '' } : null,
      attempts: v.attempts,
      created_by: v.created_by,
      created_at: v.created_at,
      updated_at: v.updated_at,
      started_at: v.started_at,
      finished_at: v.finished_at,
    };
  }

  private liveAndReadable(versionId: number, caller: Caller): boolean {
    const node = this.catalog.lineage.node(versionId);
    return node !== undefined && node.deleted_at === null && mayRead(caller, node.name);
  }

  /**
   * The version a run of this job published before the server could record
   * it (a crash between the two): the job's target, by the job's author,
   * made from its parent with its derivation key.
   */
  private publishedBy(row: JobRow): number | undefined {
    const model = this.catalog.models.model(row.target_name);
    const version = model && this.catalog.models.versionByString(model.id, row.target_version);
    if (!version || version.deleted_at !== null || version.created_by !== row.created_by) return undefined;
    const ours = this.catalog.lineage.parentsOf(version.id).some((edge) => {
      try {
        return edge.parent_id === row.parent_version_id && (JSON.parse(edge.recipe) as { key?: unknown } | null)?.key === row.derive_key;
      } catch {
        return false;
      }
    });
    return ours ? version.id : undefined;
  }

  // ---- the runner -----------------------------------------------------------

  /**
   * At server start: jobs left `running` by a crash are queued again (or
   * failed after MAX_ATTEMPTS), the scratch directory is emptied, and the
   * queue starts moving.
   */
  start(): void {
    if (this.started) return;
    this.started = true;
    const now = this.catalog.now().toISOString();
    for (const row of this.jobs.inState('running')) {
      if (row.attempts >= MAX_ATTEMPTS) {
        this.jobs.fail(row.id, 'INTERRUPTED', `the server stopped while this job ran, ${row.attempts} times; it is not run again`, now);
        this.log.warn('derive job failed: interrupted too often', { job: row.id, attempts: row.attempts });
      } else {
        this.jobs.requeue(row.id, now, false);
        this.log.info('derive job cut short by a restart: queued again', { job: row.id, attempts: row.attempts });
      }
    }
    fs.rmSync(this.scratchDir, { recursive: true, force: true });
    this.pump();
  }

  /** Stops running jobs (they go back to the queue, not counted as an attempt) and takes no more. */
  async close(): Promise<void> {
    this.closed = true;
    const running = [...this.running.values()];
    await Promise.all(running.map((r) => r.run?.cancel()));
    await Promise.all(running.map((r) => r.done));
  }

  private pump(): void {
    if (!this.started || this.closed) return;
    while (this.running.size < this.concurrency) {
      const row = this.jobs.claimNext(this.catalog.now().toISOString());
      if (!row) return;
      const entry: { run?: DeriveRun; done: Promise<void> } = { done: Promise.resolve() };
      this.running.set(row.id, entry);
      entry.done = this.execute(row, entry).finally(() => {
        this.running.delete(row.id);
        this.pump();
      });
    }
  }

  private async execute(row: JobRow, entry: { run?: DeriveRun }): Promise<void> {
    const scratch = path.join(this.scratchDir, row.id);
    const releases: Array<() => void> = [];
    try {
      const versionId = await this.derive(row, scratch, entry, releases);
      this.jobs.succeed(row.id, versionId, this.catalog.now().toISOString());
      this.log.info('derive job succeeded', { job: row.id, target: `${row.target_name}@${row.target_version}` });
    } catch (err) {
      const now = this.catalog.now().toISOString();
      if (err instanceof DeriveCancelled || this.closed) {
        this.jobs.requeue(row.id, now, true);
        return;
      }
      const code = isCairnError(err) ? err.code : 'INTERNAL';
      const message = err instanceof Error ? err.message : String(err);
      this.jobs.fail(row.id, code, message, now);
      this.log.warn('derive job failed', { job: row.id, code, error: isCairnError(err) ? message : ((err as Error)?.stack ?? message) });
    } finally {
      for (const release of releases) release();
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  }

  /** One run of a job: derive, measure, publish. Returns the new version's id. */
  private async derive(row: JobRow, scratch: string, entry: { run?: DeriveRun }, releases: Array<() => void>): Promise<number> {
    const { catalog } = this;
    const p = JSON.parse(row.params) as StoredParams;
    const caller: Caller = { principal: row.principal ?? undefined, models: JSON.parse(row.caller_models) as string[] };
    const node = catalog.lineage.node(row.parent_version_id)!;
    // published by a run that was cut short before it could say so
    const published = this.publishedBy(row);
    if (published !== undefined) return published;
    if (node.deleted_at !== null) throw new CairnError('INVALID_PARENT', `the parent ${node.name}@${node.version} was deleted before the job ran`);
    this.publishing.assertCanPublish(row.target_name, row.target_version);

    const parent: VersionDoc = catalog.version(node.name, node.version, FULL_VIEW);
    releases.push(this.versions.hold(parent.files.map((f) => f.digest)));
    const byPath = new Map(parent.files.map((f) => [f.path, f]));
    const files = p.files.map((filePath) => byPath.get(filePath)!);
    const samplesFile = 'file' in p.samples ? byPath.get(p.samples.file)! : undefined;
    fs.mkdirSync(scratch, { recursive: true });
    const spec: DeriveSpec = {
      params: { transform: p.op, ...p.params } as DeriveParams,
      files: files.map((f) => ({ path: f.path, format: f.format as 'onnx' | 'safetensors', size: f.size })),
      samples: samplesFile ? { file: { path: samplesFile.path, size: samplesFile.size } } : { generate: (p.samples as { generated: GenerateSamples }).generated },
      repeat: p.repeat,
      scratchDir: scratch,
    };

    const outputs: Array<{ digest: string; size: number }> = [];
    const done = files.map(() => 0);
    let lastWrite = 0;
    const progress = (phase: string, force: boolean) => {
      const now = Date.now();
      if (!force && now - lastWrite < PROGRESS_EVERY_MS) return;
      lastWrite = now;
      this.jobs.progress(row.id, Math.round(done.reduce((a, b) => a + b, 0)), phase, catalog.now().toISOString());
    };
    const run = runDerivation(spec, {
      source: (ref) => {
        if (ref.kind === 'samples') return this.versions.source(samplesFile!.digest, samplesFile!.path);
        const f = files[ref.file]!;
        return ref.kind === 'parent' ? this.versions.source(f.digest, f.path) : this.versions.source(outputs[ref.file]!.digest, f.path);
      },
      store: async (i, bytes) => {
        const stored = await this.publishing.storeFile(bytes, caller);
        releases.push(this.versions.hold([stored.digest]));
        outputs[i] = stored;
      },
      phase: (phase, i) => progress(`${phase} ${files[i]!.path}`, true),
      written: (i, bytes, size) => {
        done[i] = size > 0 ? (files[i]!.size * bytes) / size : files[i]!.size;
        progress(`transform ${files[i]!.path}`, false);
      },
    });
    entry.run = run;
    if (this.closed) await run.cancel();
    const outcomes = await run.result;
    entry.run = undefined;
    if (this.closed) throw new DeriveCancelled();
    files.forEach((f, i) => (done[i] = f.size));
    progress('publish', true);

    const replaced = new Map(files.map((f, i) => [f.path, outputs[i]!]));
    const derivedFiles = parent.files.map((f) => ({ path: f.path, digest: replaced.get(f.path)?.digest ?? f.digest, size: replaced.get(f.path)?.size ?? f.size }));
    const blobs = catalog.blobs;
    const parentBlobs = [...new Set(parent.files.map((f) => f.digest))];
    const derivedBlobs = [...new Set(derivedFiles.map((f) => f.digest))];
    const recipe = deriveRecipe({
      op: p.op,
      params: p.params,
      files: files.map((f, i): RecipeFile => {
        const out = outcomes[i] as FileOutcome;
        return {
          path: f.path,
          format: f.format as 'onnx' | 'safetensors',
          size: { before: f.size, after: outputs[i]!.size },
          stored: { before: blobs.newStoredBytes([f.digest], []), after: blobs.newStoredBytes([outputs[i]!.digest], []) },
          report: out.report,
          measured: out.measured,
        };
      }),
      samples: files.some((f) => f.format === 'onnx') ? p.samples : null,
      key: row.derive_key,
      tool: { derive_version: DERIVE_VERSION, onnxruntime: `onnxruntime-node ${ONNXRUNTIME_VERSION}` },
      size: { before: parent.size, after: derivedFiles.reduce((n, f) => n + f.size, 0) },
      stored: { before: blobs.newStoredBytes(parentBlobs, []), after: blobs.newStoredBytes(derivedBlobs, []), new: blobs.newStoredBytes(derivedBlobs, parentBlobs) },
    });
    checkJsonValue('recipe', recipe);
    const doc = await this.publishing.publish({
      name: row.target_name,
      version: row.target_version,
      files: derivedFiles.map((f) => ({ path: f.path, digest: f.digest })),
      message: p.message ?? `cairn derive ${p.op} of ${node.name}@${node.version}`,
      parents: [{ ref: `${node.name}@${node.version}`, relation: RELATION_OF[p.op], recipe }],
      actor: row.created_by,
      caller,
    });
    const model = catalog.requireModel(doc.name);
    return catalog.models.versionByString(model.id, doc.version)!.id;
  }
}
