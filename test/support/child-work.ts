// The child side of process-memory.ts's runInChild: loads a module, says
// "ready", reads the arguments (one JSON line on stdin), runs the exported
// function, says "done <result as JSON>", and exits once stdin closes — so
// the parent can read this process's peak memory after the work and before
// the exit. Its lines on stdout start with "child-work:"; the parent passes
// over anything else the work prints.
import readline from 'node:readline';

const [moduleUrl, fn] = process.argv.slice(2);
const mod = (await import(moduleUrl!)) as Record<string, (...args: unknown[]) => unknown>;
const work = mod[fn!];
if (typeof work !== 'function') throw new Error(`${moduleUrl} exports no function ${fn}`);
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
process.stdout.write('child-work:ready\n');
const first = await lines.next();
if (first.done) process.exit(1);
const result = await work(...(JSON.parse(first.value) as unknown[]));
process.stdout.write(`child-work:done ${JSON.stringify(result ?? null)}\n`);
for await (const _ of lines) void _; // until the parent has read the figures and closes stdin
process.exit(0);
