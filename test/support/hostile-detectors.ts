// Detectors that misbehave on purpose, by file name, for the analysis pool's
// budget tests (AnalysisPool's `detectors` option loads this module in the
// worker instead of src/formats/index.ts). Any other name goes to the real
// detectors. Each one stands for a way a real detector could be made to go
// wrong by a crafted file, without depending on which detector that is today.
import { DETECTORS as REAL } from '../../src/formats/index.ts';
import type { Detector, FileFormat } from '../../src/formats/types.ts';

const safe = (format: string): FileFormat => ({ format, safety: { verdict: 'safe', findings: [] }, details: {} });
const MiB = 1024 * 1024;

const byName: Record<string, Detector> = {
  /** never returns */
  'spin.bin': async () => {
    for (;;);
  },
  /** builds objects until the heap is full */
  'heap.bin': async () => {
    const held: Array<{ i: number; s: string }> = [];
    for (let i = 0; ; i++) held.push({ i, s: `entry ${i}` });
  },
  /** reads the file and keeps every byte (buffers, outside V8's heap) */
  'hold.bin': async (file) => {
    const held: Uint8Array[] = [];
    for (let at = 0; at < file.size; at += 4 * MiB) held.push(await file.read(at, 4 * MiB));
    return safe(`held-${held.length}`);
  },
  /** reads all of the file, 1 MiB at a time, keeping nothing */
  'readall.bin': async (file) => {
    for (let at = 0; at < file.size; at += MiB) await file.read(at, MiB);
    return safe('read-all');
  },
  /** one read of 32 MiB: over the FileSource contract */
  'big-read.bin': async (file) => {
    await file.read(0, 32 * MiB);
    return safe('big-read');
  },
  /** swallows every error (as a careless detector might) and says safe */
  'swallow.bin': async (file) => {
    for (let at = 0; at < file.size; at += MiB) {
      try {
        await file.read(at, MiB);
      } catch {
        // carry on regardless
      }
    }
    return safe('swallowed');
  },
  /** ends the worker thread */
  'exit.bin': async () => {
    process.exit(3);
  },
};

const hostile: Detector = async (file) => byName[file.path]?.(file);

export const DETECTORS: Detector[] = [hostile, ...REAL];
