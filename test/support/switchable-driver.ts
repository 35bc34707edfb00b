// A memory driver whose backend can be switched off: every operation then
// fails as a real backend's would (DriverError 'unavailable'), so tests can
// take storage away and bring it back in-process.
import { DriverError } from '../../src/blobs/driver.ts';
import { MemoryDriver } from '../../src/blobs/memory-driver.ts';

export class SwitchableDriver extends MemoryDriver {
  down = false;
  private check(key: string): void {
    if (this.down) throw new DriverError('unavailable', key, `backend down (${key})`);
  }
  override async get(key: string) {
    this.check(key);
    return super.get(key);
  }
  override async put(key: string, data: Uint8Array) {
    this.check(key);
    return super.put(key, data);
  }
  override async reader(key: string) {
    this.check(key);
    return super.reader(key);
  }
  override async stat(key: string) {
    this.check(key);
    return super.stat(key);
  }
  override async *list(prefix: string) {
    this.check(prefix);
    yield* super.list(prefix);
  }
  override async delete(key: string) {
    this.check(key);
    return super.delete(key);
  }
  override async ping() {
    this.check('');
  }
}
