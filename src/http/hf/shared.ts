// What the routes of the Hugging Face front door (/hf) share: their access,
// the shapes of their documentation, the public address of links they hand
// out, and the one translation of errors into what the Hub's clients read —
// `X-Error-Code` (the Hub's own codes where there is one) and
// `X-Error-Message` headers, and a `{"error": "<message>"}` body.
import type { Request, Response } from 'express';
import type { ErrorCode } from '../../errors.ts';
import { pathParam } from '../openapi.ts';

export const HUB_PREFIX = '/hf';
export const READ = { scope: 'read', model: 'name' } as const;
export const WRITE = { scope: 'write', model: 'name' } as const;

/**
 * The Hub's X-Error-Code for our errors: huggingface_hub turns these into
 * its own exceptions (utils/_http.py, hf_raise_for_status), so that a 403 on
 * a HEAD of a file is "cannot access" rather than "check your connection".
 * Any other error carries Cairn's code.
 */
const HUB_ERROR_CODE: Partial<Record<ErrorCode, string>> = {
  MODEL_NOT_FOUND: 'RepoNotFound',
  VERSION_NOT_FOUND: 'RevisionNotFound',
  VERSION_DELETED: 'RevisionNotFound',
  ALIAS_NOT_FOUND: 'RevisionNotFound',
  INVALID_REF: 'RevisionNotFound',
  FILE_NOT_FOUND: 'EntryNotFound',
  BLOB_NOT_FOUND: 'EntryNotFound',
  UNAUTHORIZED: 'GatedRepo',
  FORBIDDEN: 'GatedRepo',
};

export function isHubRequest(req: Request): boolean {
  return req.originalUrl === HUB_PREFIX || req.originalUrl.startsWith(`${HUB_PREFIX}/`);
}

/** A header value: printable ASCII, bounded (a message may quote a name or a path). */
function headerText(message: string): string {
  const text = message.replace(/[^\x20-\x7e]/g, '?');
  return text.length > 1000 ? `${text.slice(0, 999)}…`.replace(/[^\x20-\x7e]/g, '.') : text;
}

/** Answers an error the way the Hub does (status, code and message as the error table gives them). */
export function sendHubError(res: Response, status: number, code: string, message: string, details: Record<string, unknown>): void {
  res.set({ 'X-Error-Code': HUB_ERROR_CODE[code as ErrorCode] ?? code, 'X-Error-Message': headerText(message) });
  res.status(status).json({ ...details, error: message, code });
}

/** The server's address as the client reached it, for the links answers carry (LFS uploads, next pages, commit URLs). */
export function hubOrigin(req: Request): string {
  return `${req.protocol}://${req.get('host') ?? 'localhost'}`;
}

/** The address of /hf, as HF_ENDPOINT names it. */
export function hubBase(req: Request): string {
  return `${hubOrigin(req)}${HUB_PREFIX}`;
}

/** What the Hub answers with: a JSON document its clients parse (not a Cairn wire type). */
export const HUB_JSON = (description: string, type: 'object' | 'array') => ({
  description,
  content: { 'application/json': { schema: type === 'object' ? { type: 'object' } : { type: 'array', items: { type: 'object' } } } },
});

export const HUB_REVISION = pathParam(
  'revision',
  "`main` or `HEAD` (the latest version), a version, an alias, a manifest digest, or the 40-hex id of a version's publish commit in the lineage repository (what Hugging Face clients pin to)",
);

export const HUB_BRANCH = pathParam('revision', '`main` (a commit there makes the next latest version) or a branch (an alias, which the commit moves)');

/** sha256:<hex> → <hex>, the form the Hub gives LFS files' ids in. */
export const hex = (digest: string) => digest.slice('sha256:'.length);
