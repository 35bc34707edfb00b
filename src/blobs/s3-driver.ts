// S3-compatible driver (@aws-sdk/client-s3). Create-only puts use
// `IfNoneMatch: '*'` (412 when the key exists). Checksums are only computed
// when required: with the SDK defaults several S3-compatible servers (Ceph RGW
// among them) reject streamed bodies or store the aws-chunked framing.
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable } from 'node:stream';
import { assertSafeKey, DriverError, type ByteRange, type PutOptions, type StorageDriver } from './driver.ts';

export interface S3DriverOptions {
  bucket: string;
  prefix?: string;
  client: S3Client;
}

export function createS3Client(options: { endpoint?: string; region: string; forcePathStyle: boolean; credentials?: S3ClientConfig['credentials'] }): S3Client {
  return new S3Client({
    endpoint: options.endpoint,
    region: options.region,
    forcePathStyle: options.forcePathStyle,
    credentials: options.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
  });
}

function statusOf(err: unknown): number | undefined {
  if (err instanceof S3ServiceException) return err.$metadata?.httpStatusCode;
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

export class S3Driver implements StorageDriver {
  readonly name = 's3';
  readonly bucket: string;
  private readonly prefix: string;
  private readonly client: S3Client;

  constructor(options: S3DriverOptions) {
    this.bucket = options.bucket;
    this.prefix = options.prefix ?? '';
    this.client = options.client;
  }

  private objectKey(key: string): string {
    assertSafeKey(key);
    return this.prefix + key;
  }

  private fail(err: unknown, key: string): never {
    const status = statusOf(err);
    const name = (err as Error | undefined)?.name;
    if (name === 'NoSuchBucket') {
      throw new DriverError('unavailable', key, `s3 bucket ${this.bucket} does not exist`, { cause: err });
    }
    if (status === 404 || name === 'NoSuchKey' || name === 'NotFound') {
      throw new DriverError('not_found', key, `no object ${key}`, { cause: err });
    }
    if (status === 412 || name === 'PreconditionFailed') {
      throw new DriverError('exists', key, `object ${key} exists`, { cause: err });
    }
    if (name === 'XAmzContentSHA256Mismatch') {
      // The body is not what its sha256 said: a caller bug or memory damage, not an outage to retry.
      throw new Error(`s3 refused ${key}: the body does not match the sha256 it was sent with`, { cause: err });
    }
    // Connection refused/reset, timeouts, 5xx, throttling, a missing bucket:
    // all mean the backend cannot serve us now.
    throw new DriverError('unavailable', key, `s3 ${name ?? 'error'}${status ? ` (${status})` : ''} on ${key}: ${(err as Error)?.message}`, { cause: err });
  }

  async get(key: string): Promise<Buffer> {
    const objectKey = this.objectKey(key); // an unsafe key is a caller bug, not an outage
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      const size = out.ContentLength;
      if (out.Body instanceof Readable && size !== undefined) {
        // Read straight into one buffer of the announced size: collecting the
        // pieces and concatenating them would hold every object twice.
        const buf = Buffer.allocUnsafeSlow(size);
        let at = 0;
        for await (const piece of out.Body as AsyncIterable<Buffer>) {
          if (at + piece.length > size) throw new Error(`s3 returned more than the ${size} bytes announced for ${key}`);
          piece.copy(buf, at);
          at += piece.length;
        }
        if (at !== size) throw new Error(`s3 returned ${at} of the ${size} bytes announced for ${key}`);
        return buf;
      }
      const bytes = await out.Body!.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      return this.fail(err, key);
    }
  }

  async put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    const objectKey = this.objectKey(key); // an unsafe key is a caller bug, not an outage
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: objectKey,
      Body: data,
      ContentLength: data.byteLength,
      IfNoneMatch: '*',
    });
    const sha256 = options.sha256;
    if (sha256 !== undefined) {
      if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`put ${key}: sha256 must be 64 lowercase hex digits`);
      // SigV4 takes a payload hash already in the request's headers as given
      // instead of hashing the body on the event loop; S3 still checks the
      // body against it (400 XAmzContentSHA256Mismatch).
      command.middlewareStack.add(
        (next) => (args) => {
          const request = args.request as { headers?: Record<string, string> };
          if (request.headers) request.headers['x-amz-content-sha256'] = sha256;
          return next(args);
        },
        { step: 'build', name: 'cairnPayloadSha256' },
      );
    }
    try {
      await this.client.send(command);
    } catch (err) {
      this.fail(err, key);
    }
  }

  async reader(key: string, range?: ByteRange): Promise<Readable> {
    const objectKey = this.objectKey(key); // an unsafe key is a caller bug, not an outage
    try {
      const out = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: objectKey,
          Range: range ? `bytes=${range.start}-${range.end}` : undefined,
        }),
      );
      const body = out.Body;
      if (body instanceof Readable) return body;
      return Readable.fromWeb(body!.transformToWebStream() as never);
    } catch (err) {
      return this.fail(err, key);
    }
  }

  async presignGet(key: string, seconds: number): Promise<string> {
    const objectKey = this.objectKey(key);
    try {
      // local HMAC over the request: no round trip to S3
      return await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }), { expiresIn: seconds });
    } catch (err) {
      this.fail(err, key);
    }
  }

  async presignPut(key: string, size: number, seconds: number): Promise<string> {
    const objectKey = this.objectKey(key);
    if (!Number.isSafeInteger(size) || size < 0) throw new Error(`presignPut ${key}: bad size ${size}`);
    try {
      // Content-Length is a signed header: a body of any other length fails the signature
      return await getSignedUrl(this.client, new PutObjectCommand({ Bucket: this.bucket, Key: objectKey, ContentLength: size }), {
        expiresIn: seconds,
        signableHeaders: new Set(['content-length']),
      });
    } catch (err) {
      this.fail(err, key);
    }
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    const objectKey = this.objectKey(key); // an unsafe key is a caller bug, not an outage
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      return { size: out.ContentLength ?? 0 };
    } catch (err) {
      if (statusOf(err) === 404 || (err as Error)?.name === 'NotFound') {
        await this.ping(); // a HEAD 404 cannot tell a missing key from a missing bucket
        return undefined;
      }
      return this.fail(err, key);
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken: token }),
        );
      } catch (err) {
        this.fail(err, prefix);
      }
      for (const item of out.Contents ?? []) {
        if (item.Key) yield item.Key.slice(this.prefix.length);
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    const objectKey = this.objectKey(key); // an unsafe key is a caller bug, not an outage
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    } catch (err) {
      if (statusOf(err) !== 404 || (err as Error)?.name === 'NoSuchBucket') this.fail(err, key);
    }
  }

  async ping(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      if (statusOf(err) === 404) throw new DriverError('unavailable', '', `s3 bucket ${this.bucket} does not exist`, { cause: err });
      this.fail(err, '');
    }
  }
}

/** Creates the bucket when it does not exist yet (self-hosted convenience). */
export async function ensureBucket(client: S3Client, bucket: string): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    return;
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
  }
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    const name = (err as Error).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err;
  }
}
