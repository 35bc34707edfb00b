// The import-graph check: reads the imports of every file under src/ (static,
// type-only, re-exports and dynamic import(), as TypeScript's own
// pre-processor sees them) and fails when a part imports one it may not (a
// lower layer calling up, a front door reaching past the services) or when
// files import each other in a cycle. `npm run check:layers` (or
// `node --import tsx scripts/check-layers.ts [src dir]`) prints what is wrong
// and exits 1; test/unit/layers.test.ts runs the same check.
//
// The layer table below is the one statement of who may import whom (it
// follows DESIGN "Layers"). Every file under src/ must belong to a part: a
// new folder is added here, with what it may import.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export interface Layer {
  part: string;
  /** files relative to src/; a folder ends in / */
  files: string[];
  /** parts (or single files relative to src/) it may import besides its own files; '*' for any */
  may: string[];
  says: string;
}

export interface Import {
  /** as written */
  spec: string;
  /** the file under src/ it names */
  target: string;
}

export type ImportGraph = Map<string, Import[]>;

/**
 * The parts of src/, top to bottom: the files of each (a folder ends in /),
 * what it may import besides itself (other parts, or single files), and what
 * it is. Imports point down; `shared` is the small kernel everyone may use.
 */
export const LAYERS: readonly Layer[] = [
  { part: 'wiring', files: ['main.ts', 'config.ts'], may: ['*'], says: 'the one composition root; configuration from the environment' },
  // codecs: a direct pull decodes and verifies chunks fetched from S3 as the server would, and a
  // direct push cuts and encodes them as the server would; formats: the tensor layout that cutting follows
  { part: 'cli', files: ['cli.ts', 'cli/'], may: ['wiring', 'infer', 'client', 'api', 'shared', 'codecs', 'formats'], says: 'the CLI: a client of the REST API (serve and lineage rebuild go through main.ts)' },
  { part: 'infer', files: ['infer/'], may: ['client', 'api', 'log.ts'], says: 'cairn infer: a separate server, a client of the registry' },
  { part: 'client', files: ['client.ts'], may: ['api', 'shared'], says: 'the REST client the CLI and infer use' },
  { part: 'http', files: ['http/'], may: ['registry', 'api', 'shared'], says: 'express app, one route table, front doors; routes call services only' },
  { part: 'registry', files: ['registry/', 'maintenance/', 'webhooks/'], may: ['derive', 'lineage', 'formats', 'metadata', 'blobs', 'codecs', 'api', 'shared', 'threads'], says: 'the services: they coordinate the layers below' },
  { part: 'derive', files: ['derive/'], may: ['formats', 'api', 'shared', 'threads'], says: 'derived files (cast, quantize, prune) over the format parsers, in a worker thread' },
  { part: 'lineage', files: ['lineage/'], may: ['metadata', 'api', 'shared'], says: 'the git mirror and smart HTTP' },
  // codecs: the tensor layout a file's header gives is the plain data that chunk cutting follows
  { part: 'formats', files: ['formats/'], may: ['shared', 'threads', 'codecs'], says: 'detectors, safety scan, header parsers; they read sources, not storage' },
  { part: 'metadata', files: ['metadata/'], may: ['blobs', 'codecs', 'api', 'shared'], says: 'SQLite and its queries; implements the index blobs/ declares' },
  { part: 'blobs', files: ['blobs/'], may: ['codecs', 'errors.ts'], says: 'stored bytes: drivers, the chunk store, its index and key layout' },
  { part: 'codecs', files: ['codecs/'], may: ['threads'], says: 'chunk bytes, no storage: cutting, encoding, decoding, their worker pool' },
  { part: 'api', files: ['api/'], may: ['shared'], says: 'the REST wire types, once' },
  {
    part: 'shared',
    files: ['errors.ts', 'identifiers.ts', 'json-limits.ts', 'access.ts', 'canonical-json.ts', 'page-cursors.ts', 'durations.ts', 'log.ts', 'each-limited.ts'],
    may: ['api'],
    says: 'domain errors, identifiers, access rules, canonical JSON, cursors, durations, the logger, bounded concurrency',
  },
  { part: 'threads', files: ['start-worker.ts'], may: [], says: 'starts a worker thread on a module of this package' },
  { part: 'web', files: ['web/'], may: [], says: 'the web UI (static files served as they are)' },
];

const SOURCE = /\.(?:ts|mts|js|mjs)$/;

/** The part a file (relative to src/, `/`-separated) belongs to, or undefined. */
export function partOf(file: string, layers: readonly Layer[] = LAYERS): string | undefined {
  return layers.find((l) => l.files.some((f) => (f.endsWith('/') ? file.startsWith(f) : file === f)))?.part;
}

/** Every source file under `srcDir` (relative, `/`-separated) and the files under it each imports. */
export function importGraph(srcDir: string): ImportGraph {
  const files = fs
    .readdirSync(srcDir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && SOURCE.test(e.name))
    .map((e) => path.relative(srcDir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
  const known = new Set(files);
  const graph: ImportGraph = new Map();
  for (const file of files) {
    const text = fs.readFileSync(path.join(srcDir, file), 'utf8');
    const { importedFiles } = ts.preProcessFile(text, true, true);
    const imports: Import[] = [];
    for (const { fileName: spec } of importedFiles) {
      if (!spec.startsWith('.')) continue; // node: and packages
      const target = resolve(path.posix.join(path.posix.dirname(file), spec), known);
      if (target) imports.push({ spec, target });
    }
    graph.set(file, imports);
  }
  return graph;
}

/** A relative import to the file under src/ it names (`.js` may stand for `.ts` or `.d.ts`); undefined outside src/. */
function resolve(joined: string, known: Set<string>): string | undefined {
  const candidates = [joined, joined.replace(/\.js$/, '.ts'), joined.replace(/\.js$/, '.d.ts'), `${joined}.ts`, `${joined}/index.ts`];
  return candidates.find((c) => known.has(c));
}

/** The imports the table does not allow, and the files that belong to no part. */
export function layerViolations(graph: ImportGraph, layers: readonly Layer[] = LAYERS): string[] {
  const problems: string[] = [];
  const byPart = new Map(layers.map((l) => [l.part, l]));
  for (const [file, imports] of graph) {
    const from = partOf(file, layers);
    if (!from) {
      problems.push(`src/${file} belongs to no part of the layer table (scripts/check-layers.ts): add it, with what it may import`);
      continue;
    }
    const rule = byPart.get(from)!;
    for (const { target } of imports) {
      const to = partOf(target, layers);
      if (to === from || rule.may.includes('*') || (to !== undefined && rule.may.includes(to)) || rule.may.includes(target)) continue;
      problems.push(`src/${file} imports src/${target}: ${from} may not import ${to ?? 'a file of no part'} (${from} may import: ${rule.may.join(', ') || 'nothing outside itself'})`);
    }
  }
  return problems;
}

/** Import cycles among the files: each as `a → b → … → a` (one per strongly connected set of files). */
export function importCycles(graph: ImportGraph): string[] {
  // Tarjan's strongly connected components, iteratively (no recursion limit on long chains)
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[] = [];
  let next = 0;
  for (const root of graph.keys()) {
    if (index.has(root)) continue;
    const work: Array<[string, number]> = [[root, 0]];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const [file, at] = frame;
      const targets = (graph.get(file) ?? []).map((i) => i.target);
      if (at < targets.length) {
        frame[1]++;
        const t = targets[at]!;
        if (!index.has(t)) {
          index.set(t, next);
          low.set(t, next++);
          stack.push(t);
          onStack.add(t);
          work.push([t, 0]);
        } else if (onStack.has(t)) {
          low.set(file, Math.min(low.get(file)!, index.get(t)!));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]![0];
        low.set(parent, Math.min(low.get(parent)!, low.get(file)!));
      }
      if (low.get(file) !== index.get(file)) continue;
      const members: string[] = [];
      let m: string;
      do {
        m = stack.pop()!;
        onStack.delete(m);
        members.push(m);
      } while (m !== file);
      const selfImport = (graph.get(file) ?? []).some((i) => i.target === file);
      if (members.length > 1 || selfImport) cycles.push(cyclePath(graph, new Set(members)));
    }
  }
  return cycles;
}

/** One concrete cycle through a strongly connected set of files, for the message. */
function cyclePath(graph: ImportGraph, members: Set<string>): string {
  const start = [...members].sort()[0]!;
  const seen = new Map<string, string | undefined>([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const { target } of graph.get(file) ?? []) {
      if (target === start) {
        const chain = [start];
        for (let f = file; f !== start; f = seen.get(f)!) chain.splice(1, 0, f);
        return [...chain, start].map((f) => `src/${f}`).join(' → ');
      }
      if (members.has(target) && !seen.has(target)) {
        seen.set(target, file);
        queue.push(target);
      }
    }
  }
  return [...members].map((f) => `src/${f}`).join(', ');
}

/** Everything wrong with the imports under `srcDir`: layer violations, then cycles. */
export function checkImports(srcDir: string, layers: readonly Layer[] = LAYERS): { files: number; problems: string[] } {
  const graph = importGraph(srcDir);
  return { files: graph.size, problems: [...layerViolations(graph, layers), ...importCycles(graph).map((c) => `import cycle: ${c}`)] };
}

/** What `npm run check:layers` says about `srcDir`, and whether that is a pass. */
export function layerReport(srcDir: string, layers: readonly Layer[] = LAYERS): { ok: boolean; text: string } {
  const { files, problems } = checkImports(srcDir, layers);
  if (problems.length === 0) return { ok: true, text: `check-layers: ${files} files under ${srcDir}, no import against the layer table, no import cycle` };
  return { ok: false, text: `check-layers: ${problems.length} problem(s) in the imports of ${files} files under ${srcDir}:\n${problems.map((p) => `  ${p}`).join('\n')}` };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { ok, text } = layerReport(path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src')));
  if (ok) {
    console.log(text);
  } else {
    console.error(text);
    process.exit(1);
  }
}
