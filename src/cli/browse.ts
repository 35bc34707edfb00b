// The small commands: ls, show, diff, describe, alias / unalias, rm, log.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { FormatSummary, ModelSummary, VersionDiff, VersionDoc, VersionSummary } from '../api/index.ts';
import type { ModelFilter } from '../client.ts';
import { checkAlias, checkAliasName, checkName, checkVersion } from '../identifiers.ts';
import {
  check,
  type Command,
  type Context,
  flag,
  formatBytes,
  parseNameRef,
  positiveInt,
  printJson,
  say,
  shortDigest,
  str,
  table,
  UsageError,
} from './common.ts';
import { derivedLines } from './recipe.ts';

function noMore(args: string[], from: number): void {
  if (args.length > from) throw new UsageError(`unexpected argument ${JSON.stringify(args[from])}`);
}

function day(iso: string | null | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';
}

async function collect<T>(items: AsyncIterable<T>, max: number | undefined): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) {
    if (max !== undefined && out.length >= max) break;
    out.push(item);
  }
  return out;
}

export const lsCommand: Command = {
  name: 'ls',
  aliases: ['list'],
  synopsis: 'ls [name]',
  summary: 'list models, or the versions of one model with their aliases',
  help: `A name is flat (resnet) or namespaced (acme/resnet).

Options:
  -q, --q <text>         only models whose name contains this text
      --namespace <ns>   only the models of this namespace (acme: acme/resnet, not acme)
      --format <f>       only models with a file of this format (onnx, safetensors, gguf, pytorch, …)
      --framework <f>    only models of this framework
      --unsafe           only models with a version whose files run code when loaded
  -n, --limit <n>        at most this many rows (default: all)`,
  options: {
    q: { type: 'string', short: 'q' },
    namespace: { type: 'string' },
    format: { type: 'string' },
    framework: { type: 'string' },
    unsafe: { type: 'boolean' },
    limit: { type: 'string', short: 'n' },
  },
  async run(ctx, args, values) {
    const limit = positiveInt(str(values, 'limit'), '--limit');
    const [name] = args;
    noMore(args, 1);
    const filter = { q: str(values, 'q'), namespace: str(values, 'namespace'), format: str(values, 'format'), framework: str(values, 'framework'), unsafe: flag(values, 'unsafe') ? true : undefined };
    if (name === undefined) return listModels(ctx, filter, limit);
    check(() => checkName(name));
    if (Object.values(filter).some((v) => v !== undefined)) throw new UsageError('--q, --namespace, --format, --framework and --unsafe filter models; they do not apply to the versions of one model');
    return listVersions(ctx, name, limit);
  },
};

async function listModels(ctx: Context, filter: ModelFilter, limit: number | undefined): Promise<number> {
  const models: ModelSummary[] = await collect(ctx.client.allModels({ ...filter, pageSize: 200 }), limit);
  if (ctx.json) {
    printJson(ctx, { models });
    return 0;
  }
  if (models.length === 0) {
    say(ctx, Object.values(filter).some((v) => v !== undefined) ? 'no models match' : 'no models yet');
    return 0;
  }
  say(ctx, table([['NAME', 'LATEST', 'VERSIONS', 'PRODUCTION', 'UPDATED', ''], ...models.map((m) => [m.name, m.latest_version ?? '-', String(m.versions), m.production_version ?? '-', day(m.updated_at), m.unsafe ? 'UNSAFE' : ''])]));
  return 0;
}

async function listVersions(ctx: Context, name: string, limit: number | undefined): Promise<number> {
  const versions: VersionSummary[] = await collect(ctx.client.allVersions(name, { pageSize: 200 }), limit);
  if (ctx.json) {
    printJson(ctx, { name, versions });
    return 0;
  }
  if (versions.length === 0) {
    say(ctx, `${name} has no versions`);
    return 0;
  }
  say(
    ctx,
    table([
      ['VERSION', '#', 'SIZE', 'CREATED', 'BY', 'ALIASES', 'MESSAGE'],
      ...versions.map((v) => [
        v.version,
        String(v.number),
        formatBytes(v.size),
        day(v.created_at),
        v.created_by || '-',
        v.aliases.length > 0 ? v.aliases.join(',') : '-',
        (v.message ?? '').split('\n')[0] ?? '',
      ]),
    ]),
  );
  return 0;
}

export function formatVersion(doc: VersionDoc): string {
  const lines = [
    `${doc.name}@${doc.version}`,
    `  number:      ${doc.number}`,
    `  digest:      ${doc.digest}`,
    `  created:     ${day(doc.created_at)} by ${doc.created_by || '-'}`,
    `  size:        ${formatBytes(doc.size)} in ${doc.files.length} file(s)`,
    `  aliases:     ${doc.aliases.length > 0 ? doc.aliases.join(', ') : '-'}`,
  ];
  if (doc.message) lines.push(`  message:     ${doc.message.split('\n').join('\n               ')}`);
  const metadata = Object.keys(doc.metadata ?? {});
  if (metadata.length > 0) {
    lines.push('  metadata:');
    lines.push(...JSON.stringify(doc.metadata, null, 2).split('\n').map((l) => `    ${l}`));
  }
  for (const [i, p] of (doc.parents ?? []).entries()) {
    const parent = p.hidden ? `(hidden: this token may not read it) (${p.relation})` : `${p.name}@${p.version} (${p.relation}, ${shortDigest(p.digest)})`;
    lines.push(`  ${i === 0 ? 'parents:    ' : '           '} ${parent}`);
  }
  lines.push(...derivedLines(doc.parents ?? []));
  const summary = doc.summary;
  if (summary && summary.formats) {
    lines.push(`  framework:   ${summary.framework ?? '-'}`);
    if (summary.parameters !== null) lines.push(`  parameters:  ${formatCount(summary.parameters)}${dtypeList(summary.dtypes)}`);
    if (summary.inputs.length > 0) lines.push(`  inputs:      ${summary.inputs.map(tensor).join(', ')}`);
    if (summary.outputs.length > 0) lines.push(`  outputs:     ${summary.outputs.map(tensor).join(', ')}`);
    lines.push(`  safety:      ${safetyLine(summary.safety)}`);
    for (const f of summary.safety.unsafe_files) {
      for (const finding of f.findings) lines.push(`               ${f.path}: ${finding.global} — ${finding.reason}`);
    }
  }
  lines.push('  files:');
  lines.push(
    table(
      doc.files.map((f) => [
        `    ${f.path}`,
        formatBytes(f.size),
        f.digest,
        f.format ?? '',
        f.parameters !== undefined ? `${formatCount(f.parameters)} params` : '',
        f.safety && f.safety.verdict !== 'safe' ? f.safety.verdict.toUpperCase() : '',
      ]),
    ),
  );
  return lines.join('\n');
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

function dtypeList(dtypes: Record<string, number>): string {
  const entries = Object.entries(dtypes).sort((a, b) => b[1] - a[1]);
  return entries.length > 0 ? ` (${entries.map(([d, n]) => `${d} ${formatCount(n)}`).join(', ')})` : '';
}

function tensor(t: { name: string; dtype: string; shape: Array<number | string> }): string {
  return `${t.name} ${t.dtype}[${t.shape.join(',')}]`;
}

function safetyLine(s: FormatSummary['safety']): string {
  if (s.verdict === 'unsafe') return `UNSAFE — loading ${s.unsafe_files.map((f) => f.path).join(', ')} can run code`;
  if (s.verdict === 'unknown') return `unknown — not checked: ${s.unchecked_files.join(', ')}`;
  return 'safe — no file runs code when loaded';
}

export const diffCommand: Command = {
  name: 'diff',
  synopsis: 'diff <name>@<ref> <ref>|<name>@<ref>',
  summary: 'what changed from one version to another, and how many bytes their chunks share',
  help: `The first version is the base; the second is a ref of the same model, or <name>@<ref>
of another (a quantized or fine-tuned model against its parent). SHARED is the part of each
file that lies in chunks the base already has: what a push of it did not upload or store again.`,
  options: {},
  async run(ctx, args) {
    const from = parseNameRef(args[0], 'ref', '<name>@<ref>');
    if (args[1] === undefined) throw new UsageError('missing the second version: <ref> or <name>@<ref>');
    const to = args[1].includes('@') ? parseNameRef(args[1], 'ref', '<name>@<ref>') : parseNameRef(`${from.name}@${args[1]}`, 'ref', '<ref>');
    noMore(args, 2);
    const diff = await ctx.client.diff(to.name, to.ref, `${from.name}@${from.ref}`);
    if (ctx.json) {
      printJson(ctx, diff);
      return 0;
    }
    say(ctx, formatDiff(diff));
    return 0;
  },
};

/** The diff as text: counts, a row per file that is not unchanged and its deltas, the metadata that differs, and the shared bytes. */
export function formatDiff(diff: VersionDiff): string {
  const s = diff.summary;
  const pct = (part: number, whole: number) => (whole === 0 ? '-' : `${((100 * part) / whole).toFixed(1)}%`);
  const label = (v: { name: string; version: string }) => `${v.name}@${v.version}`;
  const renamed = s.renamed > 0 ? `, ${s.renamed} renamed` : '';
  const lines = [`${label(diff.from)} → ${label(diff.to)}: ${s.changed} changed, ${s.added} added, ${s.removed} removed${renamed}, ${s.unchanged} unchanged`];
  if (diff.files.length > 0) {
    lines.push(
      table([
        ['STATUS', 'PATH', 'SIZE', 'SHARED', 'DETAIL'],
        ...diff.files.map((f) => [f.status, f.path, f.to ? formatBytes(f.to.size) : '-', f.to ? pct(f.shared_bytes, f.to.size) : '-', fileDetail(f)]),
      ]),
    );
  }
  if (diff.metadata.length > 0) {
    lines.push('metadata:');
    const value = (v: unknown) => JSON.stringify(v) ?? '-';
    for (const m of diff.metadata) lines.push(`  ${m.status === 'added' ? '+' : m.status === 'removed' ? '-' : '~'} ${m.key}: ${m.status === 'added' ? value(m.to) : m.status === 'removed' ? value(m.from) : `${value(m.from)} → ${value(m.to)}`}`);
  }
  if (s.from_parameters !== s.to_parameters) lines.push(`parameters: ${s.from_parameters === null ? '-' : formatCount(s.from_parameters)} → ${s.to_parameters === null ? '-' : formatCount(s.to_parameters)}`);
  lines.push(`${formatBytes(s.to_bytes)}, ${pct(s.shared_bytes, s.to_bytes)} in chunks ${label(diff.from)} already has; ${formatBytes(s.new_stored_bytes)} stored for the rest`);
  return lines.join('\n');
}

function fileDetail(f: VersionDiff['files'][number]): string {
  if (f.status === 'renamed') return `from ${f.from_path}`;
  const d = f.delta;
  if (!d) return '';
  const parts = [`${d.size >= 0 ? '+' : '-'}${formatBytes(Math.abs(d.size))}`];
  if (d.format) parts.push(`format ${d.format.from} → ${d.format.to}`);
  if (d.parameters) parts.push(`params ${d.parameters.from === null ? '-' : formatCount(d.parameters.from)} → ${d.parameters.to === null ? '-' : formatCount(d.parameters.to)}`);
  for (const [dtype, c] of Object.entries(d.dtypes ?? {})) parts.push(`${dtype} ${formatCount(c.from)} → ${formatCount(c.to)}`);
  return parts.join(', ');
}

export const describeCommand: Command = {
  name: 'describe',
  synopsis: 'describe <name> [<description>]',
  summary: "set a model's description and its card (Markdown)",
  help: `Options:
      --readme <file>   the model card: a Markdown file (- reads standard input)
      --no-readme       remove the model card

Without a description or --readme, prints the current ones. Each change is an event in
the model's history and a commit in the lineage (model.json, README.md).`,
  options: {
    readme: { type: 'string' },
    'no-readme': { type: 'boolean' },
  },
  async run(ctx, args, values) {
    const [name, description] = args;
    if (name === undefined) throw new UsageError('expected <name> [<description>]');
    noMore(args, 2);
    check(() => checkName(name));
    const file = str(values, 'readme');
    if (file !== undefined && flag(values, 'no-readme')) throw new UsageError('--readme and --no-readme contradict each other');
    const readme = flag(values, 'no-readme') ? '' : file === undefined ? undefined : await readText(ctx, file);
    const model = description === undefined && readme === undefined ? await ctx.client.getModel(name) : await ctx.client.describeModel(name, { description, readme });
    if (ctx.json) printJson(ctx, { name: model.name, description: model.description, readme: model.readme });
    else say(ctx, `${model.name}: ${model.description || '(no description)'}\n${model.readme ? `card: ${Buffer.byteLength(model.readme)} bytes of Markdown` : 'card: none'}`);
    return 0;
  },
};

async function readText(ctx: Context, file: string): Promise<string> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await fs.readFile(path.resolve(ctx.cwd, file), 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

export const showCommand: Command = {
  name: 'show',
  synopsis: 'show <name>[@<ref>]',
  summary: 'describe one version: files, digests, aliases, metadata',
  help: 'The ref is a version, an alias, latest (the default) or a manifest digest sha256:….',
  options: {},
  async run(ctx, args) {
    const { name, ref } = parseNameRef(args[0], 'ref', '<name>@<ref>', 'latest');
    noMore(args, 1);
    const doc = await ctx.client.getVersion(name, ref);
    if (ctx.json) printJson(ctx, doc);
    else say(ctx, formatVersion(doc));
    return 0;
  },
};

async function removeAlias(ctx: Context, name: string, alias: string): Promise<number> {
  await ctx.client.deleteAlias(name, alias);
  if (ctx.json) printJson(ctx, { name, alias, deleted: true });
  else say(ctx, `removed alias ${name}@${alias}`);
  return 0;
}

export const aliasCommand: Command = {
  name: 'alias',
  synopsis: 'alias <name> <alias> <version>|--delete',
  summary: 'point an alias at a version, move it, or remove it',
  help: `Options:
  -d, --delete    remove the alias (same as: cairn unalias <name> <alias>)`,
  options: {
    delete: { type: 'boolean', short: 'd' },
  },
  async run(ctx, args, values) {
    const [name, alias, version] = args;
    if (name === undefined || alias === undefined) throw new UsageError('expected <name> <alias> <version>');
    check(() => checkName(name));
    check(() => (flag(values, 'delete') ? checkAliasName(alias) : checkAlias(alias)));
    if (flag(values, 'delete')) {
      noMore(args, 2);
      return removeAlias(ctx, name, alias);
    }
    if (version === undefined) throw new UsageError('missing <version> (or --delete to remove the alias)');
    noMore(args, 3);
    check(() => checkVersion(version));
    const result = await ctx.client.setAlias(name, alias, version);
    if (ctx.json) printJson(ctx, { name, ...result });
    else if (result.previous && result.previous !== result.version) say(ctx, `${name}@${result.alias} -> ${result.version} (was ${result.previous})`);
    else say(ctx, `${name}@${result.alias} -> ${result.version}`);
    return 0;
  },
};

export const unaliasCommand: Command = {
  name: 'unalias',
  synopsis: 'unalias <name> <alias>',
  summary: 'remove an alias',
  help: '',
  options: {},
  async run(ctx, args) {
    const [name, alias] = args;
    if (name === undefined || alias === undefined) throw new UsageError('expected <name> <alias>');
    noMore(args, 2);
    check(() => checkName(name));
    check(() => checkAliasName(alias));
    return removeAlias(ctx, name, alias);
  },
};

export const rmCommand: Command = {
  name: 'rm',
  synopsis: 'rm <name>@<version>',
  summary: 'delete a version (move or remove its aliases first)',
  help: 'The version string stays taken: published versions are never reused.',
  options: {},
  async run(ctx, args) {
    const { name, ref: version } = parseNameRef(args[0], 'version', '<name>@<version>');
    noMore(args, 1);
    await ctx.client.deleteVersion(name, version);
    if (ctx.json) printJson(ctx, { name, version, deleted: true });
    else say(ctx, `deleted ${name}@${version}`);
    return 0;
  },
};

export const logCommand: Command = {
  name: 'log',
  aliases: ['history'],
  synopsis: 'log <name>',
  summary: "a model's history, newest first, each event with its lineage commit",
  help: `Options:
  -n, --limit <n>     at most this many events (default: all)

The commit ids are those of the lineage repository (git clone <url>/git/lineage.git).
An event the git mirror has not written yet shows "(pending)".`,
  options: {
    limit: { type: 'string', short: 'n' },
  },
  async run(ctx, args, values) {
    const limit = positiveInt(str(values, 'limit'), '--limit');
    const [name] = args;
    if (name === undefined) throw new UsageError('expected <name>');
    noMore(args, 1);
    check(() => checkName(name));
    const events = await collect(ctx.client.allHistory(name, { pageSize: 200 }), limit);
    if (ctx.json) {
      printJson(ctx, { name, events });
      return 0;
    }
    if (events.length === 0) {
      say(ctx, `${name} has no history`);
      return 0;
    }
    const lines = events.map((e) => {
      const commit = e.commit ? e.commit.slice(0, 12) : '(pending)   ';
      const message = e.message ? `\n${' '.repeat(14)}${e.message.split('\n')[0]}` : '';
      return `${commit}  ${e.subject}  — ${e.author}, ${day(e.time)}${message}`;
    });
    say(ctx, lines.join('\n'));
    return 0;
  },
};
