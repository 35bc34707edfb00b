// A young-generation collection on request, for the threads that move
// multi-MiB buffers. V8 frees an ArrayBuffer's memory only when it collects,
// which it does on allocation pressure, not when a thread goes idle: measured,
// an idle codec worker kept 63 MiB of dead buffers after a 2 GiB push, and the
// server's RSS crept past 300 MiB. One young collection after each chunk
// returns them at once. It is not free (0.7–1 ms each during a 512 MiB pull,
// ~0.35 s of CPU per pull), but collecting only every 16 MiB was no cheaper:
// V8 then ran more collections of its own for the external memory (A/B, six
// alternating pulls each: random 2.27 vs 2.30 s of server CPU, BF16 3.06 vs
// 2.79 s).
import v8 from 'node:v8';
import vm from 'node:vm';

// --expose-gc set at run time reaches contexts created afterwards (vm's).
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as (options: { type: 'minor' | 'major' }) => void;

/** A young-generation garbage collection now (frees dead buffers). */
export function collectYoungGarbage(): void {
  gc({ type: 'minor' });
}
