// Building blocks of the wire types: each is declared once, as a JSON Schema
// (TypeBox) whose TypeScript type is derived from it. The server's services
// return these types, the client and the CLI read them, and /openapi.json is
// generated from the same schemas — they cannot drift apart.
import { Type, type SchemaOptions, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox';

export { Type, type Static, type TSchema };

/** A string that is one of `values` (a JSON Schema `enum`). */
export function oneOf<const T extends readonly string[]>(values: T, options: { description?: string } = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

/** The schema, or null. */
export function nullable<T extends TSchema>(schema: T, options: SchemaOptions = {}) {
  return Type.Union([schema, Type.Null()], options);
}

/** Any JSON value (recipes, metadata values). */
export const AnyJson = (description = 'any JSON') => Type.Unknown({ description });

const NAME_PART = '[a-z0-9]+(?:[._-][a-z0-9]+)*';
/** A model name, `[<namespace>/]<base>`; neither part a reserved word (README "Namespaces"). */
export const Name = Type.String({ $id: 'Name', pattern: `^${NAME_PART}(?:/${NAME_PART})?$`, maxLength: 128, description: '`[<namespace>/]<name>`: `resnet`, `acme/resnet`' });
/** An alias: one part of a name's pattern; `latest` and `main` are reserved. */
export const AliasName = Type.String({ $id: 'AliasName', pattern: `^${NAME_PART}$`, maxLength: 128 });
export const Version = Type.String({ $id: 'Version', pattern: '^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$' });
export const Digest = Type.String({ $id: 'Digest', pattern: '^sha256:[0-9a-f]{64}$' });
export const Timestamp = (description?: string) => Type.String({ format: 'date-time', ...(description ? { description } : {}) });

export const NextCursor = nullable(Type.String(), { $id: 'NextCursor', description: 'pass as `cursor` for the next page; null on the last page' });

/** A page of a list: `{<key>: [...], next_cursor}` — the key names what is listed. */
export function page<K extends string, T extends TSchema>(key: K, item: T, $id: string) {
  return Type.Object({ [key]: Type.Array(item), next_cursor: NextCursor } as { [P in K]: ReturnType<typeof Type.Array<T>> } & { next_cursor: typeof NextCursor }, { $id });
}

/** Every error answer: a stable code, a message for people, and sometimes details (`offset`, `max_bytes`, …). */
export const ErrorBody = Type.Object(
  {
    error: Type.Object(
      {
        code: Type.String({ description: 'stable, machine-readable' }),
        message: Type.String({ description: 'for people' }),
      },
      {
        additionalProperties: true,
        description: 'some errors add details, e.g. `offset` on UPLOAD_INCOMPLETE / UPLOAD_OFFSET_MISMATCH / UPLOAD_RANGE_EXCEEDED, `max_bytes` on PAYLOAD_TOO_LARGE',
      },
    ),
  },
  { $id: 'Error' },
);
export type ErrorBody = Static<typeof ErrorBody>;

/** An error answer under /hf, as the Hugging Face Hub's clients read it (with `X-Error-Code` and `X-Error-Message` headers). */
export const HubErrorBody = Type.Object(
  {
    error: Type.String({ description: 'for people (also in the `X-Error-Message` header)' }),
    code: Type.String({ description: "Cairn's error code; `X-Error-Code` has the Hub's (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`, `GatedRepo` for 401 and 403) or else this one" }),
  },
  { $id: 'HubError', additionalProperties: true },
);
