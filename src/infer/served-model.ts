// One model as the inference server serves it: the versions its labels point
// at (`latest` and every alias, or the one ref it is pinned to), each loaded
// into the runtime. The registry is the source of truth: refresh() reads the
// model's aliases and latest version, starts loading any version not loaded
// yet, and when one is ready (loaded, warmed up) moves its labels onto it in
// one synchronous step, so a request sees either the old version or the new,
// never both. A version no label points at any more is released once the
// requests it is serving have finished. A version that fails to load never
// takes a label: its error stays in the status, and the label keeps serving
// whatever it served before.
import path from 'node:path';
import type { FileDoc, VersionDoc } from '../api/index.ts';
import { ClientError, type CairnClient } from '../client.ts';
import type { Logger } from '../log.ts';
import { Batcher, canBatch, type BatchingOptions, type Feeds } from './batcher.ts';
import type { FileCache } from './file-cache.ts';
import type { InferMetrics } from './metrics.ts';
import { RuntimeError, UnsupportedModelError, type InferenceRuntime, type SessionSignature } from './runtime.ts';
import { allocate, checkShape, elementCount, TensorInputError, type TensorSpec } from './tensors.ts';

export interface ModelOptions {
  name: string;
  /** serve this ref only (an alias, `latest`, a version or a digest); absent: `latest` and every alias */
  ref?: string;
  /** the ONNX file's path in each version, when a version holds more than one */
  file?: string;
  /** false: never merge requests */
  batching: BatchingOptions | false;
  /** run a synthetic input through a new version before it takes its labels */
  warmup: boolean;
}

/** TF Serving's ModelVersionStatus states (get_model_status.proto). */
export type VersionState = 'LOADING' | 'AVAILABLE' | 'UNLOADING' | 'END';

/** Why a request cannot be served, by kind; each protocol maps kinds to its statuses. */
export class ServingError extends Error {
  override readonly name = 'ServingError';
  constructor(
    readonly kind: 'not_found' | 'invalid' | 'unavailable' | 'internal',
    message: string,
  ) {
    super(message);
  }
}

export class ServedVersion {
  state: VersionState = 'LOADING';
  /** TF Serving error code (OK, UNIMPLEMENTED, INVALID_ARGUMENT, UNAVAILABLE, NOT_FOUND …) and message */
  errorCode = 'OK';
  error = '';
  /** the version's files hold no ONNX model the server can run */
  unsupported = false;
  /** when a failed load may be tried again (network, registry or disk trouble) */
  retryAt: number | undefined;
  number = 0;
  digest = '';
  file = '';
  signature: SessionSignature | undefined;
  warmup = '';
  inflight = 0;
  batcher: Batcher | undefined;
  loadedAt: Date | undefined;

  constructor(
    readonly model: string,
    readonly version: string,
    readonly key: string,
  ) {}

  get failed(): boolean {
    return this.state === 'END' && this.errorCode !== 'OK';
  }
}

/** Which version a request asks for. */
export type VersionSelector = { kind: 'default' } | { kind: 'number'; number: number } | { kind: 'label'; label: string } | { kind: 'any'; text: string };

export interface ModelContext {
  client: CairnClient;
  cache: FileCache;
  runtime: InferenceRuntime;
  metrics: InferMetrics;
  log: Logger;
}

const ENDED_KEPT = 8;
const RETRY_MS = 5_000;
let sessionSeq = 0;

function isRetryable(err: unknown): boolean {
  if (err instanceof ClientError) return err.isNetwork || err.status >= 500 || err.status === 429;
  if (err instanceof RuntimeError || err instanceof UnsupportedModelError) return false;
  return true; // disk, digest mismatch: worth another try
}

function codeOf(err: unknown): string {
  if (err instanceof UnsupportedModelError) return 'UNIMPLEMENTED';
  if (err instanceof RuntimeError) return 'INVALID_ARGUMENT';
  if (err instanceof ClientError) return err.status === 404 ? 'NOT_FOUND' : err.status === 401 || err.status === 403 ? 'PERMISSION_DENIED' : 'UNAVAILABLE';
  return 'UNAVAILABLE';
}

/** The ONNX file of a version and the files it needs next to it (external data). */
export function pickOnnxFile(doc: VersionDoc, configured?: string): { file: FileDoc; needs: FileDoc[] } {
  const byPath = new Map(doc.files.map((f) => [f.path, f]));
  let file: FileDoc | undefined;
  if (configured) {
    file = byPath.get(configured);
    if (!file) throw new UnsupportedModelError(`unsupported: the version has no file ${configured} (the model's configured "file")`);
  } else {
    const onnx = doc.files.filter((f) => f.format === 'onnx' || /\.onnx$/i.test(f.path));
    if (onnx.length === 0) {
      const listed = doc.files.slice(0, 5).map((f) => `${f.path} (${f.format ?? 'unknown'})`);
      throw new UnsupportedModelError(`unsupported: no ONNX model among the version's files: ${listed.join(', ') || 'none'}${doc.files.length > 5 ? ', …' : ''}`);
    }
    file = onnx.length === 1 ? onnx[0] : onnx.find((f) => path.posix.basename(f.path) === 'model.onnx');
    if (!file) throw new UnsupportedModelError(`unsupported: ${onnx.length} ONNX files (${onnx.map((f) => f.path).join(', ')}); name one with "file" in the model's config, or call it model.onnx`);
  }
  const dir = path.posix.dirname(file.path);
  const external = ((file.details as { externalDataFiles?: unknown } | undefined)?.externalDataFiles ?? []) as unknown[];
  const needs: FileDoc[] = [];
  for (const location of external) {
    if (typeof location !== 'string') continue;
    const p = path.posix.normalize(dir === '.' ? location : `${dir}/${location}`);
    const f = byPath.get(p);
    if (!f) throw new UnsupportedModelError(`unsupported: ${file.path} keeps tensors in ${location}, which the version does not hold`);
    if (f !== file && !needs.includes(f)) needs.push(f);
  }
  return { file, needs };
}

/**
 * A synthetic input for a warm-up run: zeros, a symbolic dim 0 as 1, other
 * symbolic dims as `size` (or 1 when the same name is a dim 0 elsewhere).
 */
function syntheticFeeds(inputs: TensorSpec[], size: number): Feeds {
  const batchNames = new Set(inputs.filter((s) => typeof s.shape[0] === 'string' && s.shape[0] !== '').map((s) => s.shape[0] as string));
  const feeds: Feeds = {};
  for (const s of inputs) {
    const dims = s.shape.map((d, i) => (typeof d === 'number' ? d : i === 0 || (d !== '' && batchNames.has(d)) ? 1 : size));
    feeds[s.name] = { type: s.type, dims, data: allocate(s.type, elementCount(dims)) };
  }
  return feeds;
}

export class ServedModel {
  readonly name: string;
  readonly defaultLabel: string;
  /** label → the version it serves now (only AVAILABLE ones) */
  private readonly labels = new Map<string, ServedVersion>();
  /** label → the version the registry says it points at */
  private wanted = new Map<string, string>();
  /** version string → its loaded, loading or failed entry */
  private readonly versions = new Map<string, ServedVersion>();
  /** released, or being released, newest first */
  private readonly ended: ServedVersion[] = [];
  /** a pinned version or digest resolves once: versions do not change */
  private pinnedVersion: string | undefined;
  private refreshing: Promise<void> | undefined;
  private again = false;
  private closed = false;
  lastRefresh: { at: Date; error?: string } | undefined;

  constructor(
    readonly options: ModelOptions,
    private readonly ctx: ModelContext,
  ) {
    this.name = options.name;
    this.defaultLabel = options.ref ?? 'latest';
  }

  /** Has a version to serve for its default label. */
  get ready(): boolean {
    return this.labels.has(this.defaultLabel);
  }

  /** Reads the registry and starts whatever loads that calls for; one at a time, coalesced. */
  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = this.refreshOnce()
      .catch((err: unknown) => {
        // the registry unreachable is no reason to stop serving what is loaded
        const error = (err as Error).message;
        if (this.lastRefresh?.error !== error) this.ctx.log.warn('registry refresh failed; serving what is loaded', { model: this.name, error });
        this.lastRefresh = { at: new Date(), error };
      })
      .finally(() => {
        this.refreshing = undefined;
        if (this.again) {
          this.again = false;
          void this.refresh();
        }
      });
    return this.refreshing;
  }

  private async refreshOnce(): Promise<void> {
    const doc = await this.ctx.client.getModel(this.name);
    const wanted = new Map<string, string>();
    const ref = this.options.ref;
    if (ref === undefined || ref === 'latest') {
      if (doc.latest) wanted.set('latest', doc.latest.version);
    }
    if (ref === undefined) {
      for (const [alias, version] of Object.entries(doc.aliases)) wanted.set(alias, version);
    } else if (ref !== 'latest') {
      if (Object.hasOwn(doc.aliases, ref)) wanted.set(ref, doc.aliases[ref]!);
      else {
        this.pinnedVersion ??= (await this.ctx.client.getVersion(this.name, ref)).version;
        wanted.set(ref, this.pinnedVersion);
      }
    }
    this.wanted = wanted;
    if (this.lastRefresh?.error) this.ctx.log.info('registry refresh works again', { model: this.name });
    this.lastRefresh = { at: new Date() };
    for (const version of new Set(wanted.values())) this.ensureLoading(version);
    this.applyLabels();
  }

  private ensureLoading(version: string): void {
    const known = this.versions.get(version);
    if (known && !(known.failed && known.retryAt !== undefined && Date.now() >= known.retryAt)) return;
    const entry = new ServedVersion(this.name, version, `${this.name}@${version}#${++sessionSeq}`);
    if (known) {
      entry.number = known.number;
      entry.digest = known.digest;
    }
    this.versions.set(version, entry);
    void this.load(entry);
  }

  private async load(entry: ServedVersion): Promise<void> {
    const { client, cache, runtime, metrics, log } = this.ctx;
    const started = performance.now();
    let loaded = false;
    try {
      const doc = await client.getVersion(this.name, entry.version);
      entry.number = doc.number;
      entry.digest = doc.digest;
      const { file, needs } = pickOnnxFile(doc, this.options.file);
      entry.file = file.path;
      const files = [];
      for (const f of [file, ...needs]) {
        const blob = await cache.ensure(f.digest, async () => (await client.getFile(this.name, doc.digest, f.path)).stream);
        files.push({ path: f.path, blob });
      }
      metrics.setCacheBytes(cache.size);
      const dir = await cache.versionDir(doc.digest, files);
      if (this.closed) return;
      entry.signature = await runtime.load(entry.key, path.join(dir, ...file.path.split('/')));
      loaded = true;
      if (this.options.warmup) entry.warmup = await this.warmUp(entry);
      const { inputs, outputs } = entry.signature;
      if (this.options.batching && canBatch(inputs, outputs)) {
        entry.batcher = new Batcher(
          (feeds) => runtime.run(entry.key, feeds),
          runtime.parallelRuns,
          this.options.batching,
          (size) => metrics.observeBatch(this.name, entry.version, size),
          (why) => log.warn('batching turned off for this version', { model: this.name, version: entry.version, why }),
        );
      }
      entry.state = 'AVAILABLE';
      entry.loadedAt = new Date();
      metrics.event(this.name, 'load');
      log.info('version loaded', {
        model: this.name,
        version: entry.version,
        number: entry.number,
        file: entry.file,
        batching: entry.batcher !== undefined,
        warmup: entry.warmup,
        ms: Math.round(performance.now() - started),
      });
    } catch (err) {
      if (loaded) await runtime.release(entry.key);
      entry.state = 'END';
      entry.unsupported = err instanceof UnsupportedModelError;
      entry.errorCode = codeOf(err);
      entry.error = (err as Error).message;
      entry.retryAt = isRetryable(err) ? Date.now() + RETRY_MS : undefined;
      metrics.event(this.name, 'load_failed');
      log.error('version failed to load', { model: this.name, version: entry.version, error: entry.error, code: entry.errorCode, retry: entry.retryAt !== undefined });
    }
    if (this.closed && entry.state === 'AVAILABLE') await this.release(entry);
    else this.applyLabels();
  }

  /** Runs synthetic inputs until one goes through; a model may refuse them all (it says nothing of real inputs). */
  private async warmUp(entry: ServedVersion): Promise<string> {
    const inputs = entry.signature!.inputs;
    let last = '';
    for (const size of [1, 16, 64, 256, 512]) {
      try {
        const t0 = performance.now();
        // one run per worker: each has its own session to warm
        await Promise.all(Array.from({ length: this.ctx.runtime.parallelRuns }, () => this.ctx.runtime.run(entry.key, syntheticFeeds(inputs, size))));
        return `ok in ${Math.round(performance.now() - t0)} ms with ${inputs.map((s) => `${s.name}[${syntheticFeeds([s], size)[s.name]!.dims.join(',')}]`).join(' ')}`;
      } catch (err) {
        if (!(err instanceof RuntimeError)) throw err;
        last = err.message;
      }
      if (!inputs.some((s) => s.shape.some((d, i) => typeof d === 'string' && i > 0))) break; // no other size to try
    }
    return `skipped: no synthetic input went through (${last.slice(0, 300)})`;
  }

  /** Moves labels onto loaded versions; retires versions no label serves. */
  private applyLabels(): void {
    for (const [label, version] of this.wanted) {
      const entry = this.versions.get(version);
      const current = this.labels.get(label);
      if (entry?.state === 'AVAILABLE' && current !== entry) {
        this.labels.set(label, entry);
        this.ctx.metrics.event(this.name, 'swap');
        this.ctx.log.info('label moved', { model: this.name, label, version: entry.version, number: entry.number, from: current?.version ?? null });
      }
    }
    for (const label of [...this.labels.keys()]) if (!this.wanted.has(label)) this.labels.delete(label);
    const serving = new Set(this.labels.values());
    const wantedVersions = new Set(this.wanted.values());
    for (const entry of [...this.versions.values()]) {
      if (entry.state === 'AVAILABLE' && !serving.has(entry)) {
        this.versions.delete(entry.version);
        entry.state = 'UNLOADING';
        this.ended.unshift(entry);
        if (entry.inflight === 0) void this.release(entry);
      } else if (entry.state === 'END' && !wantedVersions.has(entry.version)) {
        this.versions.delete(entry.version);
      }
    }
    this.ended.splice(ENDED_KEPT);
  }

  private async release(entry: ServedVersion): Promise<void> {
    entry.batcher?.close(new ServingError('unavailable', `version ${entry.version} was unloaded`));
    await this.ctx.runtime.release(entry.key);
    entry.state = 'END';
    this.ctx.metrics.event(this.name, 'unload');
    this.ctx.log.info('version unloaded', { model: this.name, version: entry.version, number: entry.number });
  }

  /** The version for a request, held until done() is called. */
  acquire(selector: VersionSelector): ServedVersion {
    const entry = this.select(selector);
    entry.inflight++;
    return entry;
  }

  done(entry: ServedVersion): void {
    entry.inflight--;
    if (entry.inflight === 0 && entry.state === 'UNLOADING') void this.release(entry);
  }

  private select(selector: VersionSelector): ServedVersion {
    const servable = (entry: ServedVersion | undefined): boolean => entry?.state === 'AVAILABLE';
    switch (selector.kind) {
      case 'default': {
        const entry = this.labels.get(this.defaultLabel);
        if (entry && servable(entry)) return entry;
        throw new ServingError('not_found', `Servable not found for request: Latest(${this.name})${this.whyNot(this.wanted.get(this.defaultLabel))}`);
      }
      case 'label': {
        const entry = this.labels.get(selector.label);
        if (entry && servable(entry)) return entry;
        if (!this.wanted.has(selector.label)) throw new ServingError('invalid', `Unrecognized servable version label: ${selector.label}`);
        throw new ServingError('not_found', `Servable not found for request: label ${selector.label} of ${this.name}${this.whyNot(this.wanted.get(selector.label))}`);
      }
      case 'number': {
        const entry = [...this.versions.values()].find((e) => e.number === selector.number);
        if (entry && servable(entry)) return entry;
        throw new ServingError('not_found', `Servable not found for request: Specific(${this.name}, ${selector.number})${entry ? this.whyNot(entry.version) : ''}`);
      }
      case 'any': {
        const byVersion = this.versions.get(selector.text);
        if (byVersion && servable(byVersion)) return byVersion;
        if (this.labels.has(selector.text)) return this.select({ kind: 'label', label: selector.text });
        if (/^[1-9]\d{0,15}$/.test(selector.text)) {
          const byNumber = [...this.versions.values()].find((e) => e.number === Number(selector.text));
          if (byNumber && servable(byNumber)) return byNumber;
        }
        throw new ServingError('not_found', `model ${this.name} has no loaded version ${selector.text}${byVersion ? this.whyNot(byVersion.version) : ''}`);
      }
    }
  }

  private whyNot(version: string | undefined): string {
    if (version === undefined) return '';
    const entry = this.versions.get(version);
    if (!entry) return '';
    if (entry.state === 'LOADING') return `: version ${version} is still loading`;
    if (entry.failed) return `: version ${version} failed to load: ${entry.error}`;
    return '';
  }

  /** Every version the server knows of for this model, newest number first. */
  statuses(): ServedVersion[] {
    const all = [...this.versions.values(), ...this.ended.filter((e) => !this.versions.has(e.version))];
    return all.sort((a, b) => b.number - a.number);
  }

  /** The label map as it is served now (label → version entry). */
  servedLabels(): Map<string, ServedVersion> {
    return new Map(this.labels);
  }

  /** Labels the registry names, whether or not they serve yet. */
  wantedLabels(): Map<string, string> {
    return new Map(this.wanted);
  }

  /**
   * Runs a request on `entry`: checks the feeds against the model's inputs
   * (every input present, no other, types and fixed dims), then runs it,
   * merged with others when the version batches.
   */
  async infer(entry: ServedVersion, feeds: Feeds): Promise<Feeds> {
    const { inputs } = entry.signature!;
    for (const spec of inputs) {
      const t = feeds[spec.name];
      if (!t) throw new TensorInputError(`missing input '${spec.name}': the model takes ${describeInputs(inputs)}`);
      if (t.type !== spec.type) throw new TensorInputError(`input '${spec.name}' is ${t.type}; the model takes ${spec.type}`);
      checkShape(t, spec);
    }
    for (const name of Object.keys(feeds)) {
      if (!inputs.some((s) => s.name === name)) throw new TensorInputError(`unknown input '${name}': the model takes ${describeInputs(inputs)}`);
    }
    try {
      if (entry.batcher) return await entry.batcher.submit(feeds);
      const first = Object.values(feeds)[0];
      this.ctx.metrics.observeBatch(this.name, entry.version, first && first.dims.length > 0 ? first.dims[0]! : 1);
      return await this.ctx.runtime.run(entry.key, feeds);
    } catch (err) {
      // the inputs passed every check the signature allows: what the runtime refuses is these values
      if (err instanceof RuntimeError && !/worker exited|runtime is closed/.test(err.message)) {
        throw new TensorInputError(`the model failed on this input: ${err.message}`);
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.refreshing;
    for (const entry of this.versions.values()) if (entry.state === 'AVAILABLE') await this.release(entry);
  }
}

export function describeInputs(inputs: TensorSpec[]): string {
  return inputs.map((s) => `${s.name} ${s.type}[${s.shape.map((d) => (typeof d === 'number' ? d : -1)).join(', ')}]`).join(', ');
}
