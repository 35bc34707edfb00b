// `cairn derive`: asks the server for a derived version (a job), then follows
// the job with a progress bar until it has published the version or failed.
import type { DeriveRequest, JobDoc, MeasureRequest } from '../api/index.ts';
import { CliError, type Command, flag, parseNameRef, printJson, say, sleep, str, strs, UsageError } from './common.ts';
import { Progress } from './progress.ts';
import { isDeriveRecipe, recipeLines } from './recipe.ts';

const OPS = ['fp16', 'int8', 'cast', 'prune'] as const;
const POLL_MS = 250;

/** `k=v`: v as JSON when it parses (numbers, lists), else as text. */
function keyValues(list: string[], what: string, parse: (value: string, key: string) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq < 1) throw new UsageError(`${what} takes key=value, got ${JSON.stringify(item)}`);
    const key = item.slice(0, eq);
    out[key] = parse(item.slice(eq + 1), key);
  }
  return out;
}

function jsonOrText(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function integer(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${what} must be a whole number, got ${JSON.stringify(value)}`);
  return n;
}

function measureOptions(values: Parameters<Command['run']>[2]): MeasureRequest | undefined {
  const shapes = keyValues(strs(values, 'shape'), '--shape', (v, k) => {
    const dims = v.split(',').map(Number);
    if (dims.some((d) => !Number.isInteger(d) || d < 1)) throw new UsageError(`--shape ${k}=${v}: dimensions are whole numbers >= 1, comma-separated`);
    return dims;
  }) as Record<string, number[]>;
  const inputValues = keyValues(strs(values, 'value'), '--value', (v, k) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new UsageError(`--value ${k}=${v}: not a number`);
    return n;
  }) as Record<string, number>;
  const m: MeasureRequest = {
    ...(str(values, 'count') !== undefined ? { count: integer(str(values, 'count'), '--count') } : {}),
    ...(str(values, 'seed') !== undefined ? { seed: integer(str(values, 'seed'), '--seed') } : {}),
    ...(Object.keys(shapes).length > 0 ? { shapes } : {}),
    ...(Object.keys(inputValues).length > 0 ? { values: inputValues } : {}),
  };
  return Object.keys(m).length > 0 ? m : undefined;
}

export const deriveCommand: Command = {
  name: 'derive',
  synopsis: 'derive <name>@<ref> --op <op>',
  summary: 'make a derived version (fp16, int8, cast, prune) on the server, measured against its parent',
  help: `Options:
      --op <op>              fp16 (ONNX), int8 (ONNX, safetensors), cast (safetensors F32 → BF16/F16),
                             prune (ONNX, safetensors: magnitude, per tensor)
      --to <name>@<version>  the derived version (default: same model, <version>-<op>); a name alone
                             keeps the parent's version string
  -p, --param <k=v>          a parameter (repeatable; the value is read as JSON when it is):
                             cast: to=BF16|F16; prune: sparsity=0.5;
                             fp16: minPositive=1e-7 maxFinite=1e4 opBlockList='["Resize"]' nodeBlockList=…
      --file <path>          transform only this file of the parent (repeatable; default: every file
                             of a format the op applies to)
      --samples <path>       a safetensors file of the parent holding ONNX inputs (<input> or <i>/<input>)
      --count <n>            without --samples: inputs generated from the model's signature (default 4)
      --seed <n>             their seed (default 0)
      --shape <input=d,d,…>  the shape of an input with symbolic dimensions (repeatable)
      --value <input=x>      a constant for an input, e.g. a sample rate (repeatable)
  -m, --message <text>       the derived version's message
      --no-wait              print the job and return; follow it with GET /v1/jobs/<id>

The server runs the job: it transforms the files, measures the result against the parent (ONNX:
ONNX Runtime on both, cosine and errors per output, median latency; safetensors: per-tensor error of
the round trip), and publishes it with the numbers in the lineage recipe. The same op with the same
parameters on the same parent gives the version made before. Needs write on the target model.`,
  options: {
    op: { type: 'string' },
    to: { type: 'string' },
    param: { type: 'string', short: 'p', multiple: true },
    file: { type: 'string', multiple: true },
    samples: { type: 'string' },
    count: { type: 'string' },
    seed: { type: 'string' },
    shape: { type: 'string', multiple: true },
    value: { type: 'string', multiple: true },
    message: { type: 'string', short: 'm' },
    'no-wait': { type: 'boolean' },
  },
  async run(ctx, args, values) {
    const parent = parseNameRef(args[0], 'ref', '<name>@<ref>');
    if (args.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(args[1])}`);
    const op = str(values, 'op');
    if (!op || !(OPS as readonly string[]).includes(op)) throw new UsageError(`--op must be one of ${OPS.join(', ')}`);
    const to = str(values, 'to');
    if (to !== undefined && to.includes('@')) parseNameRef(to, 'version', '--to <name>@<version>');
    const measure = measureOptions(values);
    const body: DeriveRequest = {
      op: op as DeriveRequest['op'],
      ...(strs(values, 'param').length > 0 ? { params: keyValues(strs(values, 'param'), '--param', jsonOrText) } : {}),
      ...(to !== undefined ? { to } : {}),
      ...(strs(values, 'file').length > 0 ? { files: strs(values, 'file') } : {}),
      ...(str(values, 'samples') !== undefined ? { samples: str(values, 'samples') } : {}),
      ...(measure ? { measure } : {}),
      ...(str(values, 'message') !== undefined ? { message: str(values, 'message') } : {}),
    };
    const { job: queued } = await ctx.client.derive(parent.name, parent.ref, body);
    if (flag(values, 'no-wait')) {
      if (ctx.json) printJson(ctx, queued);
      else say(ctx, `job ${queued.id} ${queued.state}: ${label(queued)}`);
      return 0;
    }
    const job = await follow(ctx, queued);
    if (job.state === 'failed') {
      if (ctx.json) printJson(ctx, job);
      throw new CliError(job.error?.code ?? 'DERIVE_FAILED', `derive job ${job.id} failed: ${job.error?.message ?? 'no reason given'}`, { job: job.id });
    }
    const version = await ctx.client.getVersion(job.result!.name, job.result!.version);
    if (ctx.json) {
      printJson(ctx, { job, version });
      return 0;
    }
    say(ctx, `${job.result!.name}@${job.result!.version} ${job.result!.digest}`);
    const edge = version.parents.find((p) => isDeriveRecipe(p.recipe));
    if (edge && isDeriveRecipe(edge.recipe)) say(ctx, [`  ${edge.relation} ${edge.name}@${edge.version}`, ...recipeLines(edge.recipe, '  ')].join('\n'));
    return 0;
  },
};

function label(job: JobDoc): string {
  return `${job.op} ${job.parent.name}@${job.parent.version} → ${job.target.name}@${job.target.version}`;
}

/** Polls the job until it ends, drawing its progress. */
async function follow(ctx: Parameters<Command['run']>[0], first: JobDoc): Promise<JobDoc> {
  const progress = new Progress(ctx.progress, ctx.stderr);
  let job = first;
  let phase: string | undefined;
  try {
    while (job.state === 'queued' || job.state === 'running') {
      const now = job.state === 'queued' ? 'queued' : job.progress.phase || 'starting';
      if (now !== phase) {
        phase = now;
        progress.start(`${label(job)}: ${now}`, job.progress.total, job.progress.bytes);
      } else {
        progress.set(job.progress.bytes);
      }
      await sleep(POLL_MS);
      job = await ctx.client.getJob(job.id);
    }
  } finally {
    progress.finish();
  }
  return job;
}
