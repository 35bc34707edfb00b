// JSON request bodies: express.json with a size limit, then a nesting limit,
// so that no handler or error message recurses through a value built to
// exhaust the stack (JSON.parse itself takes any depth).
import express from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CairnError } from '../errors.ts';
import { MAX_JSON_DEPTH, pathPastDepth } from '../json-limits.ts';

/** The publish body holds recipes 3 levels down (`{"parents":[{"recipe":…}]}`); nothing legitimate nests deeper. */
export const MAX_BODY_DEPTH = MAX_JSON_DEPTH + 3;

/** Typed like express.json's own handler, so that routes keep their typed params. */
type BodyParser = (req: IncomingMessage & { body?: unknown }, res: ServerResponse, next: (err?: unknown) => void) => void;

export function jsonBodyParser(limit: string): BodyParser {
  const parse = express.json({ limit });
  return function jsonBodyParser(req, res, next) {
    parse(req, res, (err?: unknown) => {
      if (err) return next(err);
      const deep = pathPastDepth(req.body, MAX_BODY_DEPTH);
      if (deep === undefined) return next();
      next(
        new CairnError('INVALID_ARGUMENT', `JSON body is nested more than ${MAX_BODY_DEPTH} levels deep (at ${deep}); metadata and recipes may nest at most ${MAX_JSON_DEPTH}`, {
          max_depth: MAX_BODY_DEPTH,
        }),
      );
    });
  };
}
