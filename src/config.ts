// Typed configuration from the environment, validated once at start (DESIGN "Configuration").
import path from 'node:path';
import { parseDuration } from './durations.ts';

export interface S3Config {
  bucket: string;
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
  prefix: string;
}

export interface Config {
  dataDir: string;
  host: string;
  port: number;
  s3: S3Config | undefined;
  auth: boolean;
  unsafePolicy: 'warn' | 'reject';
  /** requests without a token may read every model (CAIRN_ANONYMOUS_READ; absent: false) */
  anonymousRead?: boolean;
  /** largest file in a publish, and largest upload session (CAIRN_MAX_UPLOAD_BYTES; absent: no limit) */
  maxUploadBytes?: number;
  /** requests a minute per token, or per address without one (CAIRN_RATE_LIMIT; 0 or absent: no limit) */
  rateLimit?: number;
  /** webhooks may post to loopback, private and link-local addresses (CAIRN_WEBHOOK_ALLOW_PRIVATE; absent: false) */
  webhookAllowPrivate?: boolean;
  /** each new version's OCI image form is computed right after publish (CAIRN_OCI_IMAGE_JOB; absent: false — on its first request; `cairn serve` defaults to true) */
  ociImageJob?: boolean;
  /** format analysis at publish (absent: the defaults of analysis-pool.ts) */
  analysis?: AnalysisConfig;
  /** how long the S3 URLs of a chunk map stay valid (CAIRN_PRESIGN_SECONDS; absent: 300) */
  presignSeconds?: number;
  /** garbage collection (absent: the defaults of maintenance/gc.ts) */
  gc?: GcConfig;
  /** derive jobs run at once, each in a worker thread (CAIRN_DERIVE_JOBS; absent: 1) */
  deriveJobs?: number;
}

export interface GcConfig {
  /** keep anything younger than this (CAIRN_GC_GRACE, e.g. 1h) */
  graceSeconds?: number;
  /** upload sessions idle longer than this expire (CAIRN_UPLOAD_TTL, e.g. 24h) */
  uploadTtlSeconds?: number;
}

export interface AnalysisConfig {
  /** worker threads (CAIRN_ANALYSIS_WORKERS) */
  workers?: number;
  /** CPU seconds one file's analysis may take (CAIRN_ANALYSIS_FILE_SECONDS) */
  fileSeconds?: number;
  /** CPU seconds all analyses of one publish may take (CAIRN_ANALYSIS_PUBLISH_SECONDS) */
  publishSeconds?: number;
  /** MiB of heap and buffers one analysis may hold (CAIRN_ANALYSIS_MEMORY_MB) */
  memoryMb?: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function parseBool(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(value)}`);
}

function parseCount(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new ConfigError(`${name} must be a whole number >= 0, got ${JSON.stringify(value)}`);
  return n;
}

/** A whole number >= 1, or undefined when not set (the default applies). */
function parsePositive(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = parseCount(name, value, 0);
  if (n < 1) throw new ConfigError(`${name} must be a whole number >= 1, got ${JSON.stringify(value)}`);
  return n;
}

/** A duration (`3600`, `30m`, `1h`, `7d`), or undefined when not set (the default applies). */
function parseSeconds(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = parseDuration(value);
  if (n === undefined) throw new ConfigError(`${name} must be a duration like 3600, 30m, 1h or 7d, got ${JSON.stringify(value)}`);
  return n;
}

/** The one place that reads the environment (DESIGN "Configuration"); a bad value is a ConfigError naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = Number(env.CAIRN_PORT ?? '7070');
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`CAIRN_PORT must be an integer 0-65535, got ${JSON.stringify(env.CAIRN_PORT)}`);
  }
  const unsafe = env.CAIRN_UNSAFE ?? 'warn';
  if (unsafe !== 'warn' && unsafe !== 'reject') {
    throw new ConfigError(`CAIRN_UNSAFE must be warn or reject, got ${JSON.stringify(unsafe)}`);
  }
  const auth = env.CAIRN_AUTH ?? 'on';
  if (auth !== 'on' && auth !== 'off') {
    throw new ConfigError(`CAIRN_AUTH must be on or off, got ${JSON.stringify(auth)}`);
  }
  const bucket = env.CAIRN_S3_BUCKET;
  const s3: S3Config | undefined = bucket
    ? {
        bucket,
        endpoint: env.CAIRN_S3_ENDPOINT || undefined,
        region: env.CAIRN_S3_REGION || env.AWS_REGION || 'us-east-1',
        forcePathStyle: parseBool('CAIRN_S3_FORCE_PATH_STYLE', env.CAIRN_S3_FORCE_PATH_STYLE, Boolean(env.CAIRN_S3_ENDPOINT)),
        prefix: env.CAIRN_S3_PREFIX ?? '',
      }
    : undefined;
  const presignSeconds = parseSeconds('CAIRN_PRESIGN_SECONDS', env.CAIRN_PRESIGN_SECONDS);
  // SigV4 presigned URLs live at most 7 days
  if (presignSeconds !== undefined && !(presignSeconds >= 1 && presignSeconds <= 604_800)) {
    throw new ConfigError(`CAIRN_PRESIGN_SECONDS must be 1 s to 7 days, got ${JSON.stringify(env.CAIRN_PRESIGN_SECONDS)}`);
  }
  return {
    dataDir: path.resolve(env.CAIRN_DATA_DIR || './storage'),
    host: env.CAIRN_HOST || '127.0.0.1',
    port,
    s3,
    auth: auth === 'on',
    unsafePolicy: unsafe,
    anonymousRead: parseBool('CAIRN_ANONYMOUS_READ', env.CAIRN_ANONYMOUS_READ, false),
    maxUploadBytes: parseCount('CAIRN_MAX_UPLOAD_BYTES', env.CAIRN_MAX_UPLOAD_BYTES, 100 * 1024 ** 3) || undefined,
    rateLimit: parseCount('CAIRN_RATE_LIMIT', env.CAIRN_RATE_LIMIT, 6000),
    webhookAllowPrivate: parseBool('CAIRN_WEBHOOK_ALLOW_PRIVATE', env.CAIRN_WEBHOOK_ALLOW_PRIVATE, false),
    ociImageJob: parseBool('CAIRN_OCI_IMAGE_JOB', env.CAIRN_OCI_IMAGE_JOB, true),
    analysis: {
      workers: parsePositive('CAIRN_ANALYSIS_WORKERS', env.CAIRN_ANALYSIS_WORKERS),
      fileSeconds: parsePositive('CAIRN_ANALYSIS_FILE_SECONDS', env.CAIRN_ANALYSIS_FILE_SECONDS),
      publishSeconds: parsePositive('CAIRN_ANALYSIS_PUBLISH_SECONDS', env.CAIRN_ANALYSIS_PUBLISH_SECONDS),
      memoryMb: parsePositive('CAIRN_ANALYSIS_MEMORY_MB', env.CAIRN_ANALYSIS_MEMORY_MB),
    },
    presignSeconds,
    deriveJobs: parsePositive('CAIRN_DERIVE_JOBS', env.CAIRN_DERIVE_JOBS),
    gc: {
      graceSeconds: parseSeconds('CAIRN_GC_GRACE', env.CAIRN_GC_GRACE),
      uploadTtlSeconds: parseSeconds('CAIRN_UPLOAD_TTL', env.CAIRN_UPLOAD_TTL),
    },
  };
}
