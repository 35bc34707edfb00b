// HTTP Range (RFC 9110 §14) for a single byte range. Multiple ranges are
// answered with the whole representation, which the RFC allows.
import type { Response } from 'express';
import { CairnError } from '../errors.ts';

export type RangeResult = { start: number; end: number } | 'unsatisfiable' | undefined;

export function parseRange(header: string | undefined, size: number): RangeResult {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined; // not a single byte range: ignore it
  const [, first, last] = m;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) return 'unsatisfiable';
    return size === 0 ? 'unsatisfiable' : { start: Math.max(size - suffix, 0), end: size - 1 };
  }
  const start = Number(first);
  if (start >= size) return 'unsatisfiable';
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (end < start) return undefined;
  return { start, end };
}

/**
 * Answers a Range header (undefined: the whole file) for a file of `size`
 * bytes: 206 and Content-Range for a satisfiable range, Content-Length either
 * way; RANGE_NOT_SATISFIABLE (with the unsatisfied-range Content-Range) otherwise.
 */
export function answerRange(res: Response, header: string | undefined, size: number): { range?: { start: number; end: number }; length: number } {
  const range = parseRange(header, size);
  if (range === 'unsatisfiable') {
    res.set('Content-Range', `bytes */${size}`);
    throw new CairnError('RANGE_NOT_SATISFIABLE', `range ${header} is outside the file's ${size} bytes`);
  }
  const length = range ? range.end - range.start + 1 : size;
  if (range) res.status(206).set('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
  res.set('Content-Length', String(length));
  return { range, length };
}

/** `Content-Range: bytes a-b/*` (or `/total`) on an upload PATCH. */
export function parseContentRange(header: string | undefined): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim());
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]) };
}
