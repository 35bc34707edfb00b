// Domain errors: what went wrong, in the registry's own words. No HTTP here —
// src/http/error-status.ts maps each code to a status in one table.

export type ErrorCode =
  | 'INVALID_NAME'
  | 'INVALID_VERSION'
  | 'INVALID_ALIAS'
  | 'INVALID_REF'
  | 'INVALID_PATH'
  | 'INVALID_DIGEST'
  | 'INVALID_ARGUMENT'
  | 'DUPLICATE_PATH'
  | 'UNKNOWN_BLOB'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'RATE_LIMITED'
  | 'TOKEN_EXISTS'
  | 'TOKEN_NOT_FOUND'
  | 'WEBHOOK_NOT_FOUND'
  | 'INVALID_PARENT'
  | 'DIGEST_MISMATCH'
  | 'CHUNK_MISMATCH'
  | 'CHUNK_MISSING'
  | 'STAGING_LIMIT'
  | 'MODEL_NOT_FOUND'
  | 'VERSION_NOT_FOUND'
  | 'VERSION_DELETED'
  | 'ALIAS_NOT_FOUND'
  | 'BLOB_NOT_FOUND'
  | 'FILE_NOT_FOUND'
  | 'UPLOAD_NOT_FOUND'
  | 'JOB_NOT_FOUND'
  | 'ROUTE_NOT_FOUND'
  | 'VERSION_EXISTS'
  | 'MODEL_EXISTS'
  | 'ALIAS_EXISTS'
  | 'PRECONDITION_FAILED'
  | 'VERSION_HAS_ALIASES'
  | 'UPLOAD_OFFSET_MISMATCH'
  | 'UPLOAD_INCOMPLETE'
  | 'UPLOAD_RANGE_EXCEEDED'
  | 'UPLOAD_BUSY'
  | 'UPLOAD_FINISHED'
  | 'RANGE_NOT_SATISFIABLE'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'INVALID_MODEL_FILE'
  | 'UNSAFE_MODEL'
  | 'STORAGE_UNAVAILABLE'
  | 'COMMIT_PENDING'
  | 'CONTENT_CORRUPT'
  | 'DIRECT_UNAVAILABLE'
  | 'INVALID_MANIFEST'
  | 'MANIFEST_NOT_FOUND'
  | 'UNSUPPORTED_OPERATION'
  | 'IMAGE_PENDING'
  | 'INTERNAL';

export class CairnError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'CairnError';
    this.code = code;
    this.details = details;
  }
}

export function isCairnError(err: unknown, code?: ErrorCode): err is CairnError {
  return err instanceof CairnError && (code === undefined || err.code === code);
}
