// The storage driver: bytes by key, nothing else. Drivers know nothing of
// digests, chunks or HTTP; they report failures as DriverError kinds and the
// chunk store translates those into domain errors.
import type { Readable } from 'node:stream';

export interface ByteRange {
  /** first byte, inclusive */
  start: number;
  /** last byte, inclusive */
  end: number;
}

export interface PutOptions {
  /**
   * Hex sha256 of the data, when the caller has it already (computed off the
   * event loop): a driver that sends one (S3 signs the payload hash, and the
   * server checks the body against it) uses it instead of hashing again.
   */
  sha256?: string;
}

export interface StorageDriver {
  readonly name: string;
  /** The whole object. Throws DriverError('not_found') when absent. */
  get(key: string): Promise<Buffer>;
  /** Create-only write: throws DriverError('exists') when the key is already there. */
  put(key: string, data: Uint8Array, options?: PutOptions): Promise<void>;
  /** A stream of the object, or of one inclusive byte range of it. */
  reader(key: string, range?: ByteRange): Promise<Readable>;
  /** Size of the object, or undefined when absent. */
  stat(key: string): Promise<{ size: number } | undefined>;
  /** Every key under a prefix, in no particular order. */
  list(prefix: string): AsyncIterable<string>;
  /** Idempotent: deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Cheap round trip that proves the backend answers (readiness). */
  ping(): Promise<void>;
  /**
   * A URL that lets whoever holds it GET the object (one Range allowed) for
   * `seconds`, with no other credential: S3 presigning, so clients fetch
   * bytes straight from the bucket. Drivers that cannot leave it out.
   */
  presignGet?(key: string, seconds: number): Promise<string>;
  /**
   * A URL that lets whoever holds it PUT exactly `size` bytes at `key` for
   * `seconds` (the length is signed: any other is refused by storage).
   * Drivers that cannot leave it out.
   */
  presignPut?(key: string, size: number, seconds: number): Promise<string>;
}

export type DriverErrorKind = 'not_found' | 'exists' | 'unavailable';

export class DriverError extends Error {
  readonly kind: DriverErrorKind;
  readonly key: string;
  constructor(kind: DriverErrorKind, key: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DriverError';
    this.kind = kind;
    this.key = key;
  }
}

export function isDriverError(err: unknown, kind?: DriverErrorKind): err is DriverError {
  return err instanceof DriverError && (kind === undefined || err.kind === kind);
}

/** Keys are produced by layout.ts; drivers still refuse anything that could escape their root. */
export function assertSafeKey(key: string): void {
  if (key === '' || key.startsWith('/') || key.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`unsafe storage key ${JSON.stringify(key)}`);
  }
}
