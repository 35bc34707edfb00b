// node:fs for the lineage git writer (`openCairn`'s `gitFs` option) whose
// promise calls wait while the gate is shut: the writer stalls in its next
// file system call, as behind a huge backlog, until `resume`.
import nodeFs from 'node:fs';

export function stallableFs(): { fs: typeof nodeFs; stall(): void; resume(): void } {
  let gate: Promise<void> | undefined;
  let release = () => {};
  const promises = new Proxy(nodeFs.promises, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        while (gate) await gate;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return {
    fs: { ...nodeFs, promises } as typeof nodeFs,
    stall() {
      gate ??= new Promise<void>((resolve) => (release = resolve));
    },
    resume() {
      gate = undefined;
      release();
    },
  };
}
