// `--limit-rate`: what a push sends, through the server or straight to storage.
import { sleep } from './common.ts';

/** A token bucket: at most `rate` bytes a second, bursts of up to a quarter second's worth. */
export class RateLimiter {
  private allowance = 0;
  private last = Date.now();

  constructor(private readonly rate: number) {}

  async take(n: number): Promise<void> {
    const now = Date.now();
    this.allowance = Math.min(this.rate / 4, this.allowance + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    this.allowance -= n;
    if (this.allowance < 0) await sleep((-this.allowance / this.rate) * 1000);
  }
}
