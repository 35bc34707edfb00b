// multer 2 with a StorageEngine that streams each file part straight into the
// chunk store: no part is ever held in memory or written to a temp file.
import type { Request, RequestHandler } from 'express';
import multer from 'multer';
import { CairnError, isCairnError } from '../errors.ts';
import { MAX_FILES_PER_VERSION, tooManyFiles, VersionPaths } from '../identifiers.ts';
import { MAX_JSON_BYTES } from '../json-limits.ts';
import type { Publishing } from '../registry/publish.ts';
import { callerOf } from './auth.ts';

export interface StoredPart {
  path: string;
  digest: string;
  size: number;
}

const PATHS_SEEN = Symbol('cairn.multipart.paths');

/** The part of busboy's parser used here (multer hands it to `streamHandler`). */
interface Busboy extends NodeJS.WritableStream {
  on(event: 'file', listener: (field: string, stream: unknown, info: { filename?: string }) => void): this;
  destroy(err: Error): void;
}

/**
 * Fields are held in memory (files never are): at most this many, each at
 * most as long as the longest a publish takes (metadata, a recipe), so a
 * request holds at most 64 MiB of fields. Enough for every field a publish
 * has with MAX_PARENTS parents and relations and a few dozen aliases.
 */
export const MAX_FIELDS = 256;
const MAX_FIELD_BYTES = MAX_JSON_BYTES;

function chunkStoreEngine(publishing: Publishing): multer.StorageEngine {
  return {
    _handleFile(req: Request, file, callback) {
      const paths: VersionPaths = ((req as unknown as Record<symbol, VersionPaths>)[PATHS_SEEN] ??= new VersionPaths());
      let path: string;
      let caller;
      try {
        caller = callerOf(req);
        // every check on the path (and the file count) before a byte is stored
        path = paths.add(file.originalname);
        // When the version field came before the files, refuse a taken version
        // before streaming any bytes.
        const body = req.body as Record<string, unknown> | undefined;
        if (body?.version !== undefined) publishing.assertCanPublish(String(req.params.name), body.version);
      } catch (err) {
        file.stream.resume();
        callback(err as Error);
        return;
      }
      // Do not let the chunk store's early exit destroy the part stream: multer
      // would report that abort (as a malformed body) before the real error.
      publishing.storeFile(file.stream.iterator({ destroyOnReturn: false }), caller).then(
        (stored) => callback(null, { path, digest: stored.digest, size: stored.size } as Partial<Express.Multer.File>),
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

export function multipartPublishBody(publishing: Publishing, { maxFileBytes }: { maxFileBytes?: number } = {}): RequestHandler {
  const options: multer.Options & { streamHandler: (req: Request, busboy: Busboy) => void } = {
    // multer skips a file part without a filename in silence, and busboy
    // leaves the name out when it cannot decode `filename*=` (an unknown
    // charset): that file would be missing from the version. Refuse it.
    streamHandler(req, busboy) {
      busboy.on('file', (_field: string, _stream: unknown, info: { filename?: string }) => {
        if (!info.filename) busboy.destroy(new CairnError('INVALID_PATH', 'a file part has no filename (or one that cannot be decoded): the filename is the path inside the version'));
      });
      req.pipe(busboy);
    },
    storage: chunkStoreEngine(publishing),
    preservePath: true, // the part's filename is the path inside the version
    defParamCharset: 'utf8',
    limits: {
      fields: MAX_FIELDS,
      fieldSize: MAX_FIELD_BYTES,
      // busboy skips every file part past this and says so: the next one is refused before it is stored
      files: MAX_FILES_PER_VERSION,
      parts: MAX_FIELDS + MAX_FILES_PER_VERSION,
      fieldNameSize: 100,
      ...(maxFileBytes ? { fileSize: maxFileBytes } : {}),
    },
  };
  const upload = multer(options).any();
  return function multipartBody(req, res, next) {
    upload(req, res, (err?: unknown) => {
      if (!err || isCairnError(err)) return next(err);
      if (err instanceof multer.MulterError) return next(multerRefusal(err));
      // busboy: truncated or malformed multipart body
      next(new CairnError('INVALID_ARGUMENT', `malformed multipart body: ${(err as Error).message}`));
    });
  };
}

function multerRefusal(err: multer.MulterError): CairnError {
  switch (err.code) {
    case 'LIMIT_FILE_COUNT':
      return tooManyFiles();
    case 'LIMIT_FIELD_VALUE':
      return new CairnError('INVALID_ARGUMENT', `multipart field ${err.field ?? ''} is longer than ${MAX_FIELD_BYTES} bytes`, { field: err.field, max_bytes: MAX_FIELD_BYTES });
    case 'LIMIT_FIELD_COUNT':
      return new CairnError('INVALID_ARGUMENT', `a multipart publish has at most ${MAX_FIELDS} fields`, { max_fields: MAX_FIELDS });
    default:
      return new CairnError(err.code === 'LIMIT_FILE_SIZE' ? 'PAYLOAD_TOO_LARGE' : 'INVALID_ARGUMENT', `multipart body refused: ${err.message}${err.field ? ` (${err.field})` : ''}`);
  }
}

export function storedParts(req: Request): StoredPart[] {
  const files = (req.files ?? []) as unknown as StoredPart[];
  return files.map((f) => ({ path: f.path, digest: f.digest, size: f.size }));
}
