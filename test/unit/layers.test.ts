// The import graph of src/ against the layer table (scripts/check-layers.ts):
// no lower layer imports a higher one, no front door reaches past the
// services, no import cycle. Also: the table itself keeps the rules of
// DESIGN "Layers" (so loosening it is a visible change here), and the check
// catches each kind of fault in a small tree made for the purpose.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { checkImports, LAYERS, layerReport } from '../../scripts/check-layers.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

test('src/: every import goes where the layer table allows, and no files import each other in a cycle', () => {
  const { files, problems } = checkImports(path.join(ROOT, 'src'));
  assert.ok(files > 100, `${files} files read`);
  assert.deepEqual(problems, [], `\n${problems.join('\n')}`);
});

describe('the layer table', () => {
  // The rules of DESIGN "Layers" and issue 12: the part on the left never imports those on the right.
  const NEVER: Record<string, string[]> = {
    blobs: ['metadata', 'formats', 'registry', 'http', 'cli', 'lineage', 'derive', 'api', 'wiring'],
    metadata: ['registry', 'http', 'formats', 'lineage', 'cli', 'wiring'],
    formats: ['blobs', 'metadata', 'registry', 'http', 'lineage', 'cli', 'wiring'],
    http: ['metadata', 'blobs', 'lineage', 'formats', 'derive', 'cli', 'wiring'],
    // not formats: issue 17 has the CLI cut chunks as the server does, and that cutting follows the
    // tensor layout the header parsers read (formats/tensor-layout.ts; pure, no storage, no HTTP)
    cli: ['registry', 'metadata', 'blobs', 'http', 'lineage', 'derive'],
    client: ['registry', 'metadata', 'blobs', 'http', 'lineage', 'formats', 'derive', 'wiring', 'cli'],
    registry: ['http', 'cli', 'infer', 'wiring'],
    lineage: ['registry', 'http', 'cli', 'wiring'],
    api: ['registry', 'http', 'metadata', 'blobs', 'cli', 'wiring'],
  };

  test('keeps the rules of DESIGN "Layers"; infer uses only the client, the wire types and the logger', () => {
    const byPart = new Map(LAYERS.map((l) => [l.part, l]));
    for (const [from, forbidden] of Object.entries(NEVER)) {
      const layer = byPart.get(from);
      assert.ok(layer, `a part ${from}`);
      assert.ok(!layer.may.includes('*'), `${from} may import anything`);
      for (const to of forbidden) assert.ok(!layer.may.includes(to), `${from} may import ${to}`);
    }
    assert.deepEqual([...byPart.get('infer')!.may].sort(), ['api', 'client', 'log.ts']);
  });

  test('names only parts it declares, and no file twice', () => {
    const parts = new Set(LAYERS.map((l) => l.part));
    for (const l of LAYERS) for (const m of l.may) assert.ok(m === '*' || parts.has(m) || /\.[mc]?[jt]s$/.test(m), `${l.part} may import ${m}: no such part`);
    const files = LAYERS.flatMap((l) => l.files);
    assert.equal(new Set(files).size, files.length);
  });
});

describe('the check catches', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-layers-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  };
  write('errors.ts', "import './identifiers.ts';\nexport class CairnError extends Error {}\n");
  write('identifiers.ts', "import { CairnError } from './errors.ts';\nexport const x = CairnError;\n");
  write('metadata/db.ts', 'export class Database {}\n');
  write('blobs/chunk-store.ts', "// a comment naming '../metadata/db.ts' is no import\nimport type { Database } from '../metadata/db.ts';\nexport type D = Database;\n");
  write('http/routes/tokens.ts', "export const lazy = () => import('../../metadata/db.ts');\n");
  write('registry/models.ts', "export { Database } from '../metadata/db.ts';\nimport { CairnError } from '../errors.ts';\n");
  write('stray.ts', 'export const stray = 1;\n');

  test('a lower layer importing a higher one (type-only too), a front door past the services (dynamic too), a cycle, a file of no part', () => {
    const { files, problems } = checkImports(dir);
    assert.equal(files, 7);
    assert.deepEqual(problems.sort(), [
      'import cycle: src/errors.ts → src/identifiers.ts → src/errors.ts',
      'src/blobs/chunk-store.ts imports src/metadata/db.ts: blobs may not import metadata (blobs may import: codecs, errors.ts)',
      'src/http/routes/tokens.ts imports src/metadata/db.ts: http may not import metadata (http may import: registry, api, shared)',
      'src/stray.ts belongs to no part of the layer table (scripts/check-layers.ts): add it, with what it may import',
    ]);
  });

  test('its report (what npm run check:layers prints, exiting 1) counts and names each problem', () => {
    const bad = layerReport(dir);
    assert.equal(bad.ok, false);
    assert.match(bad.text, /^check-layers: 4 problem\(s\) in the imports of 7 files under /);
    assert.match(bad.text, /\n {2}src\/blobs\/chunk-store\.ts imports src\/metadata\/db\.ts: blobs may not import metadata/);
  });
});
