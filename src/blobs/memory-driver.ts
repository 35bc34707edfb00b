// Objects in a Map: a driver for fast tests and tools, with the contract of
// the fs and S3 drivers (test/driver-conformance.test.ts runs the same suite
// on all three). Objects are copied in and out, as a real backend's would be:
// no caller can change a stored object through a buffer it holds.
import { Readable } from 'node:stream';
import { assertSafeKey, DriverError, type ByteRange, type StorageDriver } from './driver.ts';

export class MemoryDriver implements StorageDriver {
  readonly name = 'memory';
  private readonly objects = new Map<string, Buffer>();

  private object(key: string): Buffer {
    assertSafeKey(key);
    const data = this.objects.get(key);
    if (!data) throw new DriverError('not_found', key, `no object ${key}`);
    return data;
  }

  async get(key: string): Promise<Buffer> {
    return Buffer.from(this.object(key));
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    assertSafeKey(key);
    if (this.objects.has(key)) throw new DriverError('exists', key, `object ${key} exists`);
    this.objects.set(key, Buffer.from(data));
  }

  async reader(key: string, range?: ByteRange): Promise<Readable> {
    const data = this.object(key);
    const part = range ? data.subarray(range.start, range.end + 1) : data;
    return Readable.from([Buffer.from(part)], { objectMode: false });
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    assertSafeKey(key);
    const data = this.objects.get(key);
    return data && { size: data.length };
  }

  async *list(prefix: string): AsyncIterable<string> {
    for (const key of [...this.objects.keys()]) if (key.startsWith(prefix)) yield key;
  }

  async delete(key: string): Promise<void> {
    assertSafeKey(key);
    this.objects.delete(key);
  }

  async ping(): Promise<void> {}
}
