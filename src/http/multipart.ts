// multer 2 with a StorageEngine that streams each file part straight into the
// chunk store: no part is ever held in memory or written to a temp file.
import type { Request, RequestHandler } from 'express';
import multer from 'multer';
import { CairnError, isCairnError } from '../errors.ts';
import { checkFilePath } from '../identifiers.ts';
import type { Registry } from '../registry.ts';
import { callerOf } from './auth.ts';

export interface StoredPart {
  path: string;
  digest: string;
  size: number;
}

const PATHS_SEEN = Symbol('cairn.multipart.paths');

function chunkStoreEngine(registry: Registry): multer.StorageEngine {
  return {
    _handleFile(req: Request, file, callback) {
      const seen: Set<string> = ((req as unknown as Record<symbol, Set<string>>)[PATHS_SEEN] ??= new Set());
      let caller;
      try {
        caller = callerOf(req);
        checkFilePath(file.originalname);
        if (seen.has(file.originalname)) {
          throw new CairnError('DUPLICATE_PATH', `file path ${file.originalname} appears more than once`);
        }
        seen.add(file.originalname);
        // When the version field came before the files, refuse a taken version
        // before streaming any bytes.
        const body = req.body as Record<string, unknown> | undefined;
        if (body?.version !== undefined) registry.assertCanPublish(String(req.params.name), body.version);
      } catch (err) {
        file.stream.resume();
        callback(err as Error);
        return;
      }
      // Do not let the chunk store's early exit destroy the part stream: multer
      // would report that abort (as a malformed body) before the real error.
      registry.storeFile(file.stream.iterator({ destroyOnReturn: false }), caller).then(
        (stored) => callback(null, { path: file.originalname, digest: stored.digest, size: stored.size } as Partial<Express.Multer.File>),
        (err: Error) => {
          file.stream.resume();
          callback(err);
        },
      );
    },
    _removeFile(_req, _file, callback) {
      // Chunks are content-addressed and may be shared; orphans are left to gc.
      callback(null);
    },
  };
}

export function multipartPublishBody(registry: Registry, options: { maxFileBytes?: number } = {}): RequestHandler {
  const upload = multer({
    storage: chunkStoreEngine(registry),
    preservePath: true, // the part's filename is the path inside the version
    defParamCharset: 'utf8',
    limits: { fields: 1000, fieldSize: 1024 * 1024, files: 10000, parts: 11000, fieldNameSize: 100, ...(options.maxFileBytes ? { fileSize: options.maxFileBytes } : {}) },
  }).any();
  return function multipartBody(req, res, next) {
    upload(req, res, (err?: unknown) => {
      if (!err || isCairnError(err)) return next(err);
      if (err instanceof multer.MulterError) {
        const tooLarge = err.code === 'LIMIT_FILE_SIZE' || err.code === 'LIMIT_FIELD_VALUE';
        return next(new CairnError(tooLarge ? 'PAYLOAD_TOO_LARGE' : 'INVALID_ARGUMENT', `multipart body refused: ${err.message}${err.field ? ` (${err.field})` : ''}`));
      }
      // busboy: truncated or malformed multipart body
      next(new CairnError('INVALID_ARGUMENT', `malformed multipart body: ${(err as Error).message}`));
    });
  };
}

export function storedParts(req: Request): StoredPart[] {
  const files = (req.files ?? []) as unknown as StoredPart[];
  return files.map((f) => ({ path: f.path, digest: f.digest, size: f.size }));
}
