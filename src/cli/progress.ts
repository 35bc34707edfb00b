// A one-line progress bar on stderr, redrawn at most ~10 times a second.
// Only ever constructed enabled when stderr is a terminal and --json is off;
// a disabled Progress does nothing at all.
import { formatBytes } from './common.ts';

const REDRAW_MS = 100;

export class Progress {
  private label = '';
  private total = 0;
  private done = 0;
  private started = 0;
  private startDone = 0;
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly enabled: boolean,
    private readonly out: NodeJS.WritableStream & { columns?: number },
  ) {}

  /** Starts a bar for one file; `label` is e.g. `[2/5] upload weights/model.bin`. */
  start(label: string, total: number, done = 0): void {
    if (!this.enabled) return;
    this.label = label;
    this.total = total;
    this.done = done;
    this.started = Date.now();
    this.startDone = done;
    this.draw(true);
  }

  /** Sets the bytes done so far (may go back, after a retry re-reads the server's offset). */
  set(done: number): void {
    if (!this.enabled) return;
    this.done = done;
    this.draw(false);
  }

  add(bytes: number): void {
    if (!this.enabled) return;
    this.done += bytes;
    this.draw(false);
  }

  /** A line of its own above the bar (e.g. a retry notice). */
  note(text: string): void {
    if (!this.enabled) return;
    this.clear();
    this.out.write(`${text}\n`);
    this.draw(true);
  }

  /** Ends the bar for this file, leaving nothing behind. */
  finish(): void {
    if (!this.enabled) return;
    this.clear();
    this.label = '';
  }

  private clear(): void {
    if (this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
  }

  private draw(force: boolean): void {
    if (!this.label) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < REDRAW_MS && this.done < this.total) return;
    this.lastDraw = now;
    const seconds = (now - this.started) / 1000;
    const rate = seconds > 0.2 ? (this.done - this.startDone) / seconds : 0;
    const fraction = this.total > 0 ? Math.min(this.done / this.total, 1) : 1;
    const width = 24;
    const filled = Math.round(fraction * width);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    const numbers = `${formatBytes(this.done)} / ${formatBytes(this.total)}${rate > 0 ? `  ${formatBytes(rate)}/s` : ''}`;
    const columns = this.out.columns || 100;
    const room = Math.max(columns - bar.length - numbers.length - 5, 10);
    const label = this.label.length > room ? `…${this.label.slice(this.label.length - room + 1)}` : this.label;
    this.out.write(`\r\x1b[K${label}  ${bar} ${numbers}`);
    this.drawn = true;
  }
}
