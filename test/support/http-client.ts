// Small helpers over global fetch for the HTTP API tests: JSON calls,
// multipart publishes (FormData, hand-framed, or streamed from generators)
// and error-body assertions.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

export interface JsonResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** Any JSON request; the body (if any) is sent as application/json. */
export async function call<T = any>(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonResponse<T>> {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = undefined;
  if (text.length > 0) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  return { status: res.status, headers: res.headers, body: parsed as T };
}

/** Asserts an error response: the status and `{"error":{"code","message"}}` with this code. */
export function assertError(res: { status: number; body: any }, status: number, code: string | string[], what = ''): void {
  const where = `${what ? `${what}: ` : ''}${JSON.stringify(res.body)}`;
  assert.equal(res.status, status, `status ${res.status}, expected ${status} — ${where}`);
  assert.ok(res.body && typeof res.body === 'object' && res.body.error, `error body expected — ${where}`);
  if (Array.isArray(code)) assert.ok(code.includes(res.body.error.code), `error code ${res.body.error.code}, expected one of ${code.join(', ')} — ${where}`);
  else assert.equal(res.body.error.code, code, `error code — ${where}`);
  assert.equal(typeof res.body.error.message, 'string', `error message — ${where}`);
  assert.ok(res.body.error.message.length > 0, `non-empty error message — ${where}`);
}

export interface FilePart {
  path: string;
  data: Uint8Array;
}

export interface PublishFields {
  version?: string;
  message?: string;
  aliases?: string[];
  metadata?: string;
}

/** Publish with a FormData body: the fields first (in this order), then the file parts. */
export async function publishForm(
  base: string,
  name: string,
  fields: PublishFields,
  files: FilePart[],
  options: { fieldsAfterFiles?: boolean; headers?: Record<string, string> } = {},
): Promise<JsonResponse> {
  const form = new FormData();
  const addFields = () => {
    if (fields.version !== undefined) form.append('version', fields.version);
    if (fields.message !== undefined) form.append('message', fields.message);
    for (const a of fields.aliases ?? []) form.append('alias', a);
    if (fields.metadata !== undefined) form.append('metadata', fields.metadata);
  };
  if (!options.fieldsAfterFiles) addFields();
  for (const f of files) form.append('file', new Blob([bodyOf(f.data)]), f.path);
  if (options.fieldsAfterFiles) addFields();
  const res = await fetch(`${base}/v1/models/${name}/versions`, { method: 'POST', body: form, headers: options.headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

/**
 * A hand-framed multipart body, for file names FormData cannot express
 * exactly. `disposition` is the raw tail of the Content-Disposition header of
 * each file part, e.g. `filename="a"` or `filename*=UTF-8''a%01b`.
 */
export async function publishRawMultipart(
  base: string,
  name: string,
  fields: Record<string, string>,
  files: Array<{ disposition: string | Buffer; data: Uint8Array; contentType?: string }>,
): Promise<JsonResponse> {
  const boundary = `----cairn-test-${randomBytes(8).toString('hex')}`;
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  }
  for (const f of files) {
    // a Buffer disposition goes out byte for byte (bytes that are not UTF-8)
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; `), Buffer.from(f.disposition));
    parts.push(Buffer.from(`\r\nContent-Type: ${f.contentType ?? 'application/octet-stream'}\r\n\r\n`));
    parts.push(Buffer.from(f.data));
    parts.push(Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  const res = await fetch(`${base}/v1/models/${name}/versions`, {
    method: 'POST',
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    body: Buffer.concat(parts),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

/**
 * A multipart body streamed from generators: fields, then each file part's
 * bytes as its source yields them. Nothing is held beyond one piece.
 */
export async function* streamedMultipart(
  boundary: string,
  fields: Record<string, string>,
  files: Array<{ path: string; source: AsyncIterable<Uint8Array> }>,
): AsyncGenerator<Uint8Array> {
  for (const [k, v] of Object.entries(fields)) {
    yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
  }
  for (const f of files) {
    yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${f.path}"\r\nContent-Type: application/octet-stream\r\n\r\n`);
    for await (const piece of f.source) yield piece;
    yield Buffer.from('\r\n');
  }
  yield Buffer.from(`--${boundary}--\r\n`);
}

/** URL path of a file inside a version, each segment percent-encoded. */
export function filePath(name: string, ref: string, path: string): string {
  return `/v1/models/${name}/versions/${encodeURIComponent(ref)}/files/${path.split('/').map(encodeURIComponent).join('/')}`;
}

/** GET a file's bytes (whole body in memory: for modest fixtures). */
export async function pull(base: string, name: string, ref: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
  const res = await fetch(base + filePath(name, ref, path), { headers });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, bytes };
}

/** A Uint8Array as a fetch body (the DOM typings want an ArrayBuffer-backed view; ours always are). */
export function bodyOf(data: Uint8Array): Uint8Array<ArrayBuffer> {
  return data as Uint8Array<ArrayBuffer>;
}

/** An async iterable as a fetch request body, pulled only as fast as the connection takes it. */
export function streamBody(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { value, done } = await it.next();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      async cancel(reason) {
        await it.return?.(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
