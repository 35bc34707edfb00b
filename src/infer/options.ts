// `cairn infer`'s configuration: the command line, an optional JSON config
// file (--config) for what the command line cannot say per model, and the
// environment (CAIRN_URL, CAIRN_TOKEN, CAIRN_INFER_WEBHOOK_SECRET). The
// command line wins over the file. Validated here, once, with messages that
// say which setting is wrong.
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_URL } from '../client.ts';
import type { BatchingOptions } from './batcher.ts';
import type { ModelOptions } from './served-model.ts';

export interface InferOptions {
  registryUrl: string;
  token: string | undefined;
  host: string;
  port: number;
  cacheDir: string;
  /** seconds between reads of the registry (webhooks make changes arrive sooner) */
  pollSeconds: number;
  /** registered at the registry as a webhook at start (needs an admin token), removed at stop */
  webhookUrl: string | undefined;
  /** the secret of a webhook registered by hand, to check deliveries with */
  webhookSecret: string | undefined;
  workers: number;
  threads: number;
  maxBodyBytes: number;
  models: ModelOptions[];
}

export class InferUsageError extends Error {
  override readonly name = 'InferUsageError';
}

export const DEFAULT_PORT = 8500;
const DEFAULT_BATCHING: BatchingOptions = { maxBatchSize: 32, maxDelayMs: 0 };

export const INFER_USAGE = `usage: cairn infer [<name>[@<ref>]…] [options]

Serves ONNX models from a Cairn registry over TF Serving's REST API
(/v1/models/…) and the Open Inference Protocol (/v2/…). A model named alone
serves its latest version and every alias (TF Serving labels), following the
registry as they move; <name>@<ref> serves that alias, version or digest only.

  --config <file>        JSON: {"models": ["acme/resnet", {"name": "vad", "ref": "production",
                         "batching": {"max_batch_size": 16, "max_delay_ms": 2} | false,
                         "warmup": true, "file": "model.onnx"}], and any option below
                         in snake_case ("poll_seconds": 1, …)}
  --host <addr>          listen address (default 127.0.0.1)
  --port <n>             listen port (default ${DEFAULT_PORT}; 0: any free port)
  --url <url>            the registry (default $CAIRN_URL, else ${DEFAULT_URL}); token: $CAIRN_TOKEN
  --cache-dir <dir>      model files, kept across restarts (default $XDG_CACHE_HOME/cairn/infer)
  --poll <seconds>       how often to read the registry's aliases (default 1)
  --webhook-url <url>    register this URL (how the registry reaches this server, path
                         /webhooks/cairn) as a webhook at start; needs an admin token.
                         A hook registered by hand: set $CAIRN_INFER_WEBHOOK_SECRET
  --workers <n>          inference threads, each with a session of every loaded version (default 1;
                         0: run on the event loop — no thread hop, the least latency for small
                         models, but each run holds up every other request)
  --threads <n>          ONNX Runtime threads per session (default 0: one per core)
  --batch-size <n>       most rows merged into one run (default ${DEFAULT_BATCHING.maxBatchSize})
  --batch-delay-ms <ms>  how long a batch may wait for company while the model is idle (default 0)
  --no-batching          never merge requests
  --no-warmup            do not run a synthetic input through a new version before it serves
  --max-body-bytes <n>   largest request body (default 64 MiB; 413 past it)
`;

const NAME = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const REF = /^(?:[A-Za-z0-9][A-Za-z0-9._+-]{0,127}|sha256:[0-9a-f]{64})$/;

function int(value: unknown, setting: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw new InferUsageError(`${setting} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
  return n;
}

function seconds(value: unknown, setting: string): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0.05 || n > 86_400) throw new InferUsageError(`${setting} must be a number of seconds in [0.05, 86400], got ${JSON.stringify(value)}`);
  return n;
}

function url(value: unknown, setting: string): string {
  try {
    const u = new URL(String(value));
    if (u.protocol === 'http:' || u.protocol === 'https:') return String(value);
  } catch {
    // reported below
  }
  throw new InferUsageError(`${setting} must be an http:// or https:// URL, got ${JSON.stringify(value)}`);
}

function modelSpec(text: string, where: string): { name: string; ref?: string } {
  const at = text.indexOf('@');
  const name = at < 0 ? text : text.slice(0, at);
  const ref = at < 0 ? undefined : text.slice(at + 1);
  if (!NAME.test(name)) throw new InferUsageError(`${where}: ${JSON.stringify(text)} is not a model name ([namespace/]name, lowercase)`);
  if (ref !== undefined && !REF.test(ref)) throw new InferUsageError(`${where}: ${JSON.stringify(ref)} is not a version, alias or digest`);
  return ref === undefined ? { name } : { name, ref };
}

function batching(value: unknown, where: string, defaults: BatchingOptions | false): BatchingOptions | false {
  if (value === undefined) return defaults;
  if (value === false) return false;
  if (value === true) return defaults || DEFAULT_BATCHING;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InferUsageError(`${where}.batching must be false or {"max_batch_size", "max_delay_ms"}`);
  const b = value as Record<string, unknown>;
  for (const key of Object.keys(b)) if (key !== 'max_batch_size' && key !== 'max_delay_ms') throw new InferUsageError(`${where}.batching: unknown setting ${key}`);
  const base = defaults || DEFAULT_BATCHING;
  return {
    maxBatchSize: b.max_batch_size === undefined ? base.maxBatchSize : int(b.max_batch_size, `${where}.batching.max_batch_size`, 1, 65_536),
    maxDelayMs: b.max_delay_ms === undefined ? base.maxDelayMs : int(b.max_delay_ms, `${where}.batching.max_delay_ms`, 0, 1000),
  };
}

function modelFromConfig(entry: unknown, i: number, defaults: { batching: BatchingOptions | false; warmup: boolean }): ModelOptions {
  const where = `models[${i}]`;
  if (typeof entry === 'string') return { ...modelSpec(entry, where), batching: defaults.batching, warmup: defaults.warmup };
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new InferUsageError(`${where} must be "name[@ref]" or an object`);
  const e = entry as Record<string, unknown>;
  for (const key of Object.keys(e)) if (!['name', 'ref', 'batching', 'warmup', 'file'].includes(key)) throw new InferUsageError(`${where}: unknown setting ${key}`);
  if (typeof e.name !== 'string') throw new InferUsageError(`${where}.name must be a string`);
  const spec = modelSpec(e.ref === undefined ? e.name : `${e.name}@${String(e.ref)}`, where);
  if (e.warmup !== undefined && typeof e.warmup !== 'boolean') throw new InferUsageError(`${where}.warmup must be true or false`);
  if (e.file !== undefined && (typeof e.file !== 'string' || e.file === '')) throw new InferUsageError(`${where}.file must be a path inside the version`);
  return {
    ...spec,
    ...(typeof e.file === 'string' ? { file: e.file } : {}),
    batching: batching(e.batching, where, defaults.batching),
    warmup: e.warmup === undefined ? defaults.warmup : e.warmup,
  };
}

function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'cairn', 'infer');
}

/**
 * The options from `cairn infer`'s arguments (after `infer`), the
 * environment, and the config file they name (read with `readFile`).
 */
export function parseInferOptions(argv: string[], env: NodeJS.ProcessEnv, readFile: (file: string) => string, cwd: string): InferOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string' },
        url: { type: 'string' },
        'cache-dir': { type: 'string' },
        poll: { type: 'string' },
        'webhook-url': { type: 'string' },
        workers: { type: 'string' },
        threads: { type: 'string' },
        'batch-size': { type: 'string' },
        'batch-delay-ms': { type: 'string' },
        'no-batching': { type: 'boolean' },
        'no-warmup': { type: 'boolean' },
        'max-body-bytes': { type: 'string' },
      },
    });
  } catch (err) {
    throw new InferUsageError((err as Error).message);
  }
  const flags = parsed.values;
  let file: Record<string, unknown> = {};
  if (flags.config) {
    const configPath = path.resolve(cwd, flags.config);
    let text: string;
    try {
      text = readFile(configPath);
    } catch (err) {
      throw new InferUsageError(`cannot read the config file ${configPath}: ${(err as Error).message}`);
    }
    try {
      file = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new InferUsageError(`the config file ${configPath} is not JSON: ${(err as Error).message}`);
    }
    if (file === null || typeof file !== 'object' || Array.isArray(file)) throw new InferUsageError(`the config file ${configPath} must hold a JSON object`);
    const known = ['models', 'host', 'port', 'url', 'cache_dir', 'poll_seconds', 'webhook_url', 'workers', 'threads', 'max_body_bytes', 'batching', 'warmup'];
    for (const key of Object.keys(file)) if (!known.includes(key)) throw new InferUsageError(`the config file ${configPath}: unknown setting ${key} (known: ${known.join(', ')})`);
  }
  const pick = (flag: string | undefined, key: string): unknown => flag ?? file[key];

  let defaultBatching = batching(file.batching, 'config', DEFAULT_BATCHING);
  if (flags['batch-size'] !== undefined || flags['batch-delay-ms'] !== undefined) {
    const base = defaultBatching || DEFAULT_BATCHING;
    defaultBatching = {
      maxBatchSize: flags['batch-size'] !== undefined ? int(flags['batch-size'], '--batch-size', 1, 65_536) : base.maxBatchSize,
      maxDelayMs: flags['batch-delay-ms'] !== undefined ? int(flags['batch-delay-ms'], '--batch-delay-ms', 0, 1000) : base.maxDelayMs,
    };
  }
  if (flags['no-batching']) defaultBatching = false;
  if (file.warmup !== undefined && typeof file.warmup !== 'boolean') throw new InferUsageError('config warmup must be true or false');
  const warmup = flags['no-warmup'] ? false : ((file.warmup as boolean | undefined) ?? true);
  const defaults = { batching: defaultBatching, warmup };

  const models: ModelOptions[] = [];
  if (file.models !== undefined) {
    if (!Array.isArray(file.models)) throw new InferUsageError('config models must be a list');
    file.models.forEach((m, i) => {
      const model = modelFromConfig(m, i, defaults);
      // the command line's batching and warm-up flags apply to every model
      if (flags['no-batching']) model.batching = false;
      if (flags['no-warmup']) model.warmup = false;
      models.push(model);
    });
  }
  for (const text of parsed.positionals) models.push({ ...modelSpec(text, 'model'), ...defaults });
  if (models.length === 0) throw new InferUsageError('name at least one model to serve (cairn infer <name>[@<ref>] …, or "models" in --config)');
  const seen = new Set<string>();
  for (const m of models) {
    if (seen.has(m.name)) throw new InferUsageError(`model ${m.name} is named twice: serve one ref of a model, or the model alone for all its labels`);
    seen.add(m.name);
  }

  const host = String(pick(flags.host, 'host') ?? '127.0.0.1');
  const cacheDir = pick(flags['cache-dir'], 'cache_dir');
  const webhookUrl = pick(flags['webhook-url'], 'webhook_url');
  return {
    registryUrl: url(flags.url ?? file.url ?? env.CAIRN_URL ?? DEFAULT_URL, 'the registry URL (--url, CAIRN_URL)'),
    token: env.CAIRN_TOKEN || undefined,
    host,
    port: int(pick(flags.port, 'port') ?? DEFAULT_PORT, 'port', 0, 65_535),
    cacheDir: typeof cacheDir === 'string' && cacheDir !== '' ? path.resolve(cwd, cacheDir) : defaultCacheDir(env),
    pollSeconds: seconds(pick(flags.poll, 'poll_seconds') ?? 1, 'poll'),
    webhookUrl: webhookUrl === undefined ? undefined : url(webhookUrl, 'webhook url'),
    webhookSecret: env.CAIRN_INFER_WEBHOOK_SECRET || undefined,
    workers: int(pick(flags.workers, 'workers') ?? 1, 'workers', 0, 64),
    threads: int(pick(flags.threads, 'threads') ?? 0, 'threads', 0, 1024),
    maxBodyBytes: int(pick(flags['max-body-bytes'], 'max_body_bytes') ?? 64 * 1024 * 1024, 'max body bytes', 1024),
    models,
  };
}
