// Driver failures become domain errors here, once: the chunk store, gc and
// verify all reach storage through this wrapper (src/main.ts applies it).
// DriverError 'unavailable' (the drivers report every backend condition so:
// down, refusing, answering nonsense) is STORAGE_UNAVAILABLE, a 503: try
// again later. 'not_found' and 'exists' pass through as they are: they are
// answers the callers act on (a missing chunk is damaged content; an existing
// one holds the same bytes, by content addressing). Anything else a driver
// throws is a caller's mistake (an unsafe key, a wrong sha256), not a storage
// condition, and stays what it is (test/driver-conformance.test.ts).
import { CairnError } from '../errors.ts';
import { isDriverError, type StorageDriver } from './driver.ts';

export function storageError(err: unknown): unknown {
  if (!isDriverError(err, 'unavailable')) return err;
  return new CairnError('STORAGE_UNAVAILABLE', 'the storage backend is unavailable; try again later', { cause: err.message });
}

async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw storageError(err);
  }
}

/** The same driver, failing with domain errors only (see above). */
export function withStorageErrors(driver: StorageDriver): StorageDriver {
  const presignGet = driver.presignGet?.bind(driver);
  const presignPut = driver.presignPut?.bind(driver);
  return {
    name: driver.name,
    get: (key) => call(() => driver.get(key)),
    put: (key, data, options) => call(() => driver.put(key, data, options)),
    reader: (key, range) => call(() => driver.reader(key, range)),
    stat: (key) => call(() => driver.stat(key)),
    async *list(prefix) {
      try {
        yield* driver.list(prefix);
      } catch (err) {
        throw storageError(err);
      }
    },
    delete: (key) => call(() => driver.delete(key)),
    ping: () => call(() => driver.ping()),
    ...(presignGet && { presignGet: (key: string, seconds: number) => call(() => presignGet(key, seconds)) }),
    ...(presignPut && { presignPut: (key: string, size: number, seconds: number) => call(() => presignPut(key, size, seconds)) }),
  };
}
